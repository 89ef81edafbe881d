"""The proxy process: embedded mitmproxy serving the listening sockets that live inside the jail.

Started by the runner as `python -m netjail.proxyd` with the listeners passed as inherited descriptors. It
imports mitmproxy (the slow part, overlapping with the jail's start), adds netjail's addons before mitmproxy's
defaults, and serves every listener with mitmproxy's regular (HTTP/HTTPS proxy) mode. A connection the command
makes before this is ready waits in the listener's backlog. It writes `ready` on the status descriptor once it
judges connections, and exits with one of the EXIT_* codes below.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys

EXIT_OK = 0
EXIT_START_FAILED = 3
EXIT_LOG_FAILED = 4

PR_SET_PDEATHSIG = 1


def _die_with_parent(expected_parent: int) -> None:
    """If netjail dies, so does the proxy: a proxy without its supervisor must not keep serving."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != expected_parent:
        os._exit(EXIT_START_FAILED)


async def serve(args: argparse.Namespace, status: int) -> int:
    from mitmproxy import options
    from mitmproxy.addons import default_addons
    from mitmproxy.master import Master
    from mitmproxy.proxy.mode_servers import ServerInstance

    from addons.policy import NetjailPolicy
    from addons.proxyauth import NetjailProxyAuth
    from addons.recorder import NetjailRecorder
    from netjail.capture import SyntheticAddresses
    from netjail.jaildns import JailResolverProtocol

    opts = options.Options(mode=[], confdir=args.confdir)
    master = Master(opts)
    synthetic = SyntheticAddresses()
    policy = NetjailPolicy(synthetic)
    recorder = NetjailRecorder()
    master.addons.add(NetjailProxyAuth(), policy, recorder, *default_addons())
    # Addon-owned options exist only once their addon is added.
    opts.update(
        netjail_settings=args.settings,
        netjail_record_dir=args.record_dir,
        netjail_proxy_secret_file=args.secret_file,
        ssl_verify_upstream_trusted_ca=args.upstream_trust,
        connection_strategy="lazy",  # judge Host and SNI before dialing anything
        onboarding=False,
        http3=False,
        rawtcp=True,
    )

    run = asyncio.ensure_future(master.run())
    while not master.addons.get("proxyserver").is_running:
        if run.done():
            run.result()
            return EXIT_START_FAILED
        await asyncio.sleep(0.002)

    proxyserver = master.addons.get("proxyserver")
    servers = []
    for mode, fds in (("regular", args.proxy_fds), ("transparent", args.transparent_fds)):
        instance = ServerInstance.make(mode, proxyserver)
        for fd in fds:
            servers.append(await asyncio.start_server(instance.handle_stream, sock=socket.socket(fileno=fd)))
    loop = asyncio.get_running_loop()
    for fd in args.dns_fds:
        captured = synthetic if args.capture_mode == "transparent" else None
        resolver = JailResolverProtocol(lambda: policy.policy, captured, recorder.record_event)
        transport, _ = await loop.create_datagram_endpoint(lambda r=resolver: r, sock=socket.socket(fileno=fd))
        servers.append(transport)
    os.write(status, b"ready\n")

    loop.add_signal_handler(signal.SIGTERM, master.shutdown)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # the supervisor decides when the proxy stops
    await run
    for server in servers:
        server.close()
    return EXIT_LOG_FAILED if recorder.failed else EXIT_OK


def _configure_logging(log_file: str, debug: bool) -> None:
    """mitmproxy's own messages go to the run's proxy.log; to the terminal only under -d."""
    handlers: list[logging.Handler] = [logging.FileHandler(log_file)]
    if debug:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=logging.INFO if debug else logging.WARNING,
        format="%(asctime)s netjail-proxy %(name)s: %(message)s",
        handlers=handlers,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netjail.proxyd")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--record-dir", required=True)
    parser.add_argument("--confdir", required=True)
    parser.add_argument("--upstream-trust", required=True)
    fd_list = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    parser.add_argument("--proxy-fds", required=True, type=fd_list)
    parser.add_argument("--transparent-fds", default=[], type=fd_list)
    parser.add_argument("--dns-fds", default=[], type=fd_list)
    parser.add_argument("--capture-mode", default="proxy-variables")
    parser.add_argument("--secret-file", default="", help="the run's proxy secret, when the listener is outside the jail")
    parser.add_argument("--status-fd", required=True, type=int)
    parser.add_argument("--parent", required=True, type=int)
    parser.add_argument("--log-file", required=True)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    _die_with_parent(args.parent)
    _configure_logging(args.log_file, args.debug)
    try:
        return asyncio.run(serve(args, args.status_fd))
    except Exception as e:  # noqa: BLE001 - any failure to start is reported, and the run stops
        print(f"netjail proxy: failed to start: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_START_FAILED


if __name__ == "__main__":
    sys.exit(main())

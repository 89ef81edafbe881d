"""The proxy process: embedded mitmproxy serving the sockets that live inside the jail.

netjail starts it first thing, before it has even read the settings (`netjail.proxy.client.StandbyProxy`), so
that importing mitmproxy — the slow part — overlaps everything else a run does. It then waits on its control
socket for one message: the run's configuration as JSON, with the sockets to serve attached (SCM_RIGHTS). It
adds netjail's addons before mitmproxy's defaults, serves the explicit-proxy sockets in mitmproxy's regular mode,
the transparent ones in transparent mode, and the jail resolver's UDP sockets itself. A connection the command
makes before this is ready waits in the listener's backlog. It writes `ready` on the control socket once it
judges connections, and exits with one of the `ProxyExit` codes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ctypes
import json
import logging
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from netjail.utils.status import ProxyExit

if TYPE_CHECKING:
    from netjail.addons.policy import NetjailPolicy
    from netjail.addons.recorder import NetjailRecorder
    from netjail.policy.proxy_settings import ProxySettings

PR_SET_PDEATHSIG = 1
MAX_SOCKETS = 16


def _die_with_parent(expected_parent: int) -> None:
    """If netjail dies, so does the proxy: a proxy without its supervisor must not keep serving."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:  # pragma: no cover - macOS has no parent-death signal: watch for the parent to change
        import threading
        import time

        def watch() -> None:
            while os.getppid() == expected_parent:
                time.sleep(0.2)
            os._exit(ProxyExit.START_FAILED)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != expected_parent:
        os._exit(ProxyExit.START_FAILED)


# The mitmproxy addons a netjail proxy runs besides its own: options and commands, the listeners, protocol
# detection, TLS, and removal of h2c upgrades. The rest of mitmproxy's defaults (replay, scripting, the
# onboarding web app, LDAP proxy auth, …) are never used here, and importing them costs ~250 ms per run.
NEEDED_ADDONS = ("core", "proxyserver", "next_layer", "tlsconfig", "disable_h2c")


def _preload() -> None:
    """Everything the proxy needs, imported while the supervisor is still reading settings. mitmproxy.addons'
    package module imports every default addon; registering the package without running it lets the needed
    ones load alone."""
    import importlib
    import importlib.util
    import types

    if "mitmproxy.addons" not in sys.modules:
        spec = importlib.util.find_spec("mitmproxy.addons")
        assert spec is not None and spec.submodule_search_locations is not None
        package = types.ModuleType("mitmproxy.addons")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["mitmproxy.addons"] = package
    for name in NEEDED_ADDONS:
        importlib.import_module(f"mitmproxy.addons.{name}")
    import mitmproxy.master
    import mitmproxy.proxy.mode_servers  # noqa: F401

    import netjail.addons.ask
    import netjail.addons.canaries
    import netjail.addons.credentials
    import netjail.addons.limits
    import netjail.addons.policy
    import netjail.addons.proxyauth
    import netjail.addons.recorder
    import netjail.proxy.jail_resolver
    import netjail.proxy.upstream_first  # noqa: F401


def _mitmproxy_addons(policy: NetjailPolicy, recorder: NetjailRecorder) -> list:
    from mitmproxy.addons import core, disable_h2c, next_layer, proxyserver

    from netjail.proxy.upstream_first import UpstreamFirstTlsConfig

    return [
        core.Core(),
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        UpstreamFirstTlsConfig(policy, recorder),  # tlsconfig, dialing first to learn the upstream's ALPN
        disable_h2c.DisableH2C(),
    ]


async def serve(
    config: dict, settings: ProxySettings, sockets: dict[str, list[socket.socket]], control: socket.socket
) -> int:
    from mitmproxy import options
    from mitmproxy.master import Master
    from mitmproxy.proxy.mode_servers import ServerInstance

    from netjail.addons.ask import NetjailAsk
    from netjail.addons.canaries import CanaryBodyWatch, CanaryDns, CanaryGuard, Tripwire
    from netjail.addons.credential_messages import CredentialMessages
    from netjail.addons.credentials import CredentialInjector, CredentialRestorer
    from netjail.addons.limits import NetjailLimits
    from netjail.addons.policy import NetjailPolicy
    from netjail.addons.proxyauth import NetjailProxyAuth
    from netjail.addons.recorder import NetjailRecorder
    from netjail.addons.uploads import UploadCaps
    from netjail.detect.canaries import Canary, with_canaries
    from netjail.policy.credentials import Credential
    from netjail.policy.synthetic import SyntheticAddresses
    from netjail.proxy.jail_resolver import JailResolverProtocol
    from netjail.records.redaction import with_credentials

    opts = options.Options(mode=[], confdir=config["confdir"])
    master = Master(opts)
    synthetic = SyntheticAddresses()
    policy = NetjailPolicy(synthetic, settings)
    loop = asyncio.get_running_loop()
    # ask mode's questions to the supervisor, on the control socket (once it is non-blocking: after `ready`)
    ask = NetjailAsk(policy, lambda line: _send_soon(loop, control, line))
    recorder = NetjailRecorder(settings)
    credentials = [Credential.from_config(c) for c in config.get("credentials") or []]
    # the injector wraps the recorder's body taps (after it); the restorer puts placeholders back before it records
    injector = CredentialInjector(
        credentials,
        bool(config.get("allow_plaintext_inject")),
        aws_pairs=config.get("aws_pairs") or [],
        sigv4=config.get("sigv4") or {},
    )
    restorer = CredentialRestorer(injector)
    messages = CredentialMessages(injector)  # WebSocket messages: swapped, and back before they are recorded
    # audit.canaries: a canary seen leaving is denied and the supervisor told (`canary …` lines), which stops the run
    canaries = [Canary.from_config(c) for c in config.get("canaries") or []]
    wire = Tripwire(canaries, lambda line: _send_soon(loop, control, line))
    master.addons.add(
        NetjailProxyAuth(),
        NetjailLimits(settings),
        CanaryGuard(wire),  # the request as the command sent it: refused before anything is asked or judged
        ask,  # holds what ask mode puts to the user, before the policy judges it
        policy,
        restorer,
        messages,
        recorder,
        injector,
        CanaryBodyWatch(wire),  # the body as it goes upstream: wraps the injector's stream
        UploadCaps(settings),
        *_mitmproxy_addons(policy, recorder),
    )
    # Addon-owned options exist only once their addon is added.
    opts.update(
        netjail_settings="",  # no file: the addons take `settings`, validated by the supervisor
        netjail_record_dir=config["record_dir"],
        netjail_proxy_secret_file=config.get("secret_file") or "",
        ssl_verify_upstream_trusted_ca=config["upstream_trust"],
        connection_strategy="lazy",  # judge Host and SNI before dialing anything
        http3=False,
        rawtcp=True,
    )
    recorder.secrets = with_credentials(
        recorder.secrets, credentials
    )  # real values scrubbed from every record
    # canaries named, not echoed, in records; the credential-shape flags skip canaries and placeholders
    recorder.secrets = with_canaries(recorder.secrets, canaries, [c.placeholder for c in credentials])

    run = asyncio.ensure_future(master.run())
    while not master.addons.get("proxyserver").is_running:
        if run.done():
            run.result()
            return ProxyExit.START_FAILED
        await asyncio.sleep(0.002)

    proxyserver = master.addons.get("proxyserver")
    servers: list[asyncio.Server | asyncio.DatagramTransport] = []
    for role, mode in (("proxy", "regular"), ("transparent", "transparent")):
        instance: ServerInstance = ServerInstance.make(mode, proxyserver)
        for sock in sockets.get(role, []):
            servers.append(await asyncio.start_server(instance.handle_stream, sock=sock))
    captured = synthetic if config["capture_mode"] == "transparent" else None
    for sock in sockets.get("dns", []):
        resolver: asyncio.DatagramProtocol = JailResolverProtocol(
            lambda: policy.policy, captured, recorder.record_event
        )
        if wire.matcher:
            resolver = CanaryDns(resolver, wire, recorder.record_event)
        # the factory runs inside this await, before `resolver` is rebound
        transport, _ = await loop.create_datagram_endpoint(lambda: resolver, sock=sock)  # noqa: B023
        servers.append(transport)
    # Handlers before `ready`: a SIGTERM right after it must still end with the recorder's `done`, not the default
    # action that would drop the records of open tunnels.
    loop.add_signal_handler(signal.SIGTERM, master.shutdown)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # the supervisor decides when the proxy stops
    control.sendall(b"ready\n")
    updates = asyncio.ensure_future(_serve_updates(control, policy, ask))
    await run
    updates.cancel()
    for server in servers:
        server.close()
    return ProxyExit.LOG_FAILED if recorder.failed else ProxyExit.OK


_SENDING: set[asyncio.Future] = set()  # kept until sent: the loop holds only weak references to tasks


def _send_soon(loop: asyncio.AbstractEventLoop, control: socket.socket, line: bytes) -> None:
    sending = asyncio.ensure_future(loop.sock_sendall(control, line))
    _SENDING.add(sending)
    sending.add_done_callback(_SENDING.discard)


async def _serve_updates(control: socket.socket, policy: object, ask: object) -> None:
    """Policy updates from the supervisor (netjail/run/updates.py): one JSON line each, `{"reload": PATH,
    "digest": SHA256, "value": BASE64}`, the settings it validated (a pickled ProxySettings); answered
    `reloaded DIGEST CLOSED` or `reload_failed WHY` (the old rules then stay). `{"answer": {...}}`: ask mode's
    answer to a question (addons/ask.py), not replied to."""
    from netjail.policy.proxy_settings import ProxySettings

    loop = asyncio.get_running_loop()
    control.setblocking(False)
    buffer = b""
    while data := await loop.sock_recv(control, 1 << 16):
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                update = json.loads(line)
                if "answer" in update:
                    ask.on_answer(update["answer"])  # type: ignore[attr-defined]
                    continue
                digest = str(update["digest"])
                value = ProxySettings.loads(base64.b64decode(update["value"]))
                closed = policy.reload(digest, value)  # type: ignore[attr-defined]
                reply = f"reloaded {digest} {closed}"
            except Exception as e:  # a message or a traceback stays here: the supervisor says the kind only
                reply = f"reload_failed {type(e).__name__}"
            await loop.sock_sendall(control, reply.encode() + b"\n")


def _receive_configuration(
    control: socket.socket,
) -> tuple[dict, ProxySettings, dict[str, list[socket.socket]]]:
    """One JSON line (netjail/proxy/client.py), the sockets attached to its first bytes."""
    from netjail.policy.proxy_settings import ProxySettings

    message, fds, _flags, _addr = socket.recv_fds(control, 1 << 16, MAX_SOCKETS)
    if not message:  # netjail gave up before the run started (bad settings, no jail): nothing to do
        sys.exit(ProxyExit.OK)
    while not message.endswith(b"\n"):
        more = control.recv(1 << 16)
        if not more:
            raise ConnectionError("the configuration ended before its newline")
        message += more
    config = json.loads(message)
    settings = ProxySettings.loads(base64.b64decode(config.pop("proxy_settings")))
    sockets: dict[str, list[socket.socket]] = {}
    for role, fd in zip(config["roles"], fds, strict=True):
        sockets.setdefault(role, []).append(socket.socket(fileno=fd))
    return config, settings, sockets


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
    parser = argparse.ArgumentParser(prog="netjail.proxy.process")
    parser.add_argument("--control-fd", required=True, type=int)
    parser.add_argument("--parent", required=True, type=int)
    args = parser.parse_args(argv)
    _die_with_parent(args.parent)
    control = socket.socket(fileno=args.control_fd)
    try:
        _preload()
        config, settings, sockets = _receive_configuration(control)
        _configure_logging(config["log_file"], config.get("debug", False))
        return asyncio.run(serve(config, settings, sockets, control))
    except SystemExit:
        raise
    except Exception as e:
        print(f"netjail proxy: failed to start: {type(e).__name__}: {e}", file=sys.stderr)
        return ProxyExit.START_FAILED


if __name__ == "__main__":
    code = main()
    # Records are written unbuffered and closed by the recorder's `done`; skip the interpreter's teardown of
    # mitmproxy's modules, which costs a run a few hundred milliseconds at its end.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

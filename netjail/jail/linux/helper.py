"""The jail's helper: the child netjail forks before anything threaded starts. It enters a new user + network
namespace, brings up loopback, opens the proxy's listeners (and the transparent and resolver sockets) there, hands
them to netjail over a socket pair, waits for the go, and becomes bwrap. Nothing here returns."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
from pathlib import Path

from netjail.jail.linux.capture import DNS_PORT, TRANSPARENT_PORT, CaptureError, install_capture
from netjail.jail.linux.write_observer import ObserverProgram, load_listener
from netjail.jail.spec import PROXY_PORT
from netjail.utils.status import ExitStatus

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def become_bwrap(  # pragma: no cover - runs in the forked child
    channel: socket.socket,
    bwrap_fds: tuple[int, ...],
    args: list[str],
    env: dict[str, str],
    capture: str,
    stdio: tuple[int, int, int] | None,
    observer: ObserverProgram | None = None,
) -> None:
    """In the forked child: build the network namespace, hand its sockets to netjail, wait for the go, exec bwrap.
    Never returns."""
    try:
        for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        # out of netjail's process group: a key pressed on the user's terminal signals netjail, never bwrap (whose
        # death would take the command with it); netjail forwards what is meant for the command
        os.setpgid(0, 0)
        for target, source in enumerate(stdio or ()):
            if source != target:
                os.dup2(source, target)
        uid, gid = os.getuid(), os.getgid()
        os.unshare(os.CLONE_NEWUSER | os.CLONE_NEWNET)
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
        loopback_up()
        report, sockets = namespace_sockets(capture)
        namespaces = namespace_descriptors() if report["capture"] == "transparent" else []
        report["namespaces"] = ["user", "net"][: len(namespaces)]
        listener = []
        if observer is not None:  # the last thing before bwrap: from here on, write calls are observed
            try:
                listener = [load_listener(observer)]
                report["observer"] = "on"
            except OSError as e:
                report["observer"] = f"writes are not observed: {e.strerror or e}"
        socket.send_fds(
            channel, [json.dumps(report).encode()], [s.fileno() for s in sockets] + namespaces + listener
        )
        for fd in listener:
            os.close(fd)
        for s in sockets:
            s.close()
        for fd in namespaces:
            os.close(fd)
        if channel.recv(2) != b"go":
            os._exit(ExitStatus.NETJAIL_FAILED)  # netjail gave up before the command was allowed to start
        channel.close()
        only_inherit(bwrap_fds)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; the command must not inherit that
        os.execve(args[0], args, env)
    except BaseException as e:
        try:
            channel.sendall(
                str(e).encode() if isinstance(e, CaptureError) else f"{type(e).__name__}: {e}".encode()
            )
        finally:
            os._exit(ExitStatus.NETJAIL_FAILED)


def namespace_descriptors() -> list[int]:  # pragma: no cover - forked child
    """This process's user and network namespaces, for netjail to read the drop counters after the run."""
    return [os.open(f"/proc/self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC) for kind in ("user", "net")]


def only_inherit(keep: tuple[int, ...]) -> None:  # pragma: no cover - forked child
    """Descriptors netjail itself inherited must not reach the command: only 0-2 and bwrap's own survive exec."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                os.set_inheritable(fd, fd in keep)
            except OSError:
                pass  # the descriptor listdir itself used, now closed


def namespace_sockets(capture: str) -> tuple[dict, list[socket.socket]]:  # pragma: no cover - forked child
    """The proxy's listeners, the transparent listeners and the resolver's sockets, all inside the namespace."""
    roles: list[str] = []
    sockets: list[socket.socket] = []

    def add(role: str, family: socket.AddressFamily, kind: socket.SocketKind, host: str, port: int) -> bool:
        try:
            sock = bind(family, kind, host, port)
        except OSError:
            if family == socket.AF_INET6:
                return False  # IPv6 disabled on this host: IPv4 alone is enough
            raise
        roles.append(role)
        sockets.append(sock)
        return True

    add("proxy", socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", PROXY_PORT)
    ipv6 = add("proxy", socket.AF_INET6, socket.SOCK_STREAM, "::1", PROXY_PORT)
    add("dns", socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1", DNS_PORT)
    if ipv6:
        add("dns", socket.AF_INET6, socket.SOCK_DGRAM, "::1", DNS_PORT)
    report: dict = {"capture": "proxy-variables", "warning": None, "roles": roles}
    if capture == "proxy-variables":
        return report, sockets
    try:
        install_capture(ipv6)
    except CaptureError as e:
        if capture == "transparent":
            raise CaptureError(
                f'network.capture is "transparent" but capture is not available: {e}. Fix: install nftables and '
                'iproute2 (and allow user namespaces netfilter), or set network.capture to "auto"'
            ) from e
        report["warning"] = (
            f"transparent capture is not available ({e}); only programs that honour HTTP_PROXY reach the network. "
            'Set network.capture to "transparent" to make this an error, or "proxy-variables" to silence it.'
        )
        return report, sockets
    add("transparent", socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", TRANSPARENT_PORT)
    if ipv6:
        add("transparent", socket.AF_INET6, socket.SOCK_STREAM, "::1", TRANSPARENT_PORT)
    report["capture"] = "transparent"
    return report, sockets


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def bind(family: socket.AddressFamily, kind: socket.SocketKind, host: str, port: int) -> socket.socket:
    s = socket.socket(family, kind)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port))
    if kind == socket.SOCK_STREAM:
        s.listen(1024)
    return s

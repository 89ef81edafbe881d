"""Local IPC and process isolation (ATTACKS.md L1, L3–L6): each attempt beside a harmless control."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.netjail import Netjail
from tests.support.servers import serve_connections

pytestmark = pytest.mark.nonroot


@pytest.fixture
def host_unix_socket(netjail: Netjail):
    """A Unix socket server on the host, in the working directory (so its path is visible inside the jail)."""
    path = netjail.work / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    received: list[bytes] = []
    serve_connections(server, lambda conn: received.append(conn.recv(100)))
    yield path, received
    server.close()


CONNECT_UNIX = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'hi'); print('connected')"


def test_l1_host_unix_socket_is_unreachable(netjail: Netjail, host_unix_socket) -> None:
    path, received = host_unix_socket
    result = netjail.run("-s", str(netjail.settings()), "--", sys.executable, "-c", CONNECT_UNIX, str(path))
    assert "connected" not in result.stdout and "Operation not permitted" in result.stderr, result.explain()
    assert received == []
    # control: the settings can allow Unix sockets, and then the same client connects
    allowing = netjail.settings({"allowAllUnixSockets": True})
    result = netjail.run("-s", str(allowing), "--", sys.executable, "-c", CONNECT_UNIX, str(path))
    assert result.stdout.strip() == "connected", result.explain()


def test_l1_abstract_unix_sockets_of_the_host_are_unreachable(netjail: Netjail) -> None:
    name = f"\0netjail-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX)
    server.bind(name)
    server.listen()
    try:
        code = f"import socket; s=socket.socket(socket.AF_UNIX); s.connect({name!r}); print('connected')"
        allowing = netjail.settings(
            {"allowAllUnixSockets": True}
        )  # even with sockets allowed: another namespace
        result = netjail.run("-s", str(allowing), "--", sys.executable, "-c", code)
        assert "connected" not in result.stdout and "Connection refused" in result.stderr, result.explain()
    finally:
        server.close()


def test_l3_host_processes_are_invisible_and_untouchable(netjail: Netjail) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        script = (
            f"ls /proc/{sleeper.pid} >/dev/null 2>&1 && echo visible || echo invisible; "
            f"kill -0 {sleeper.pid} 2>/dev/null && echo signalled || echo no-signal; "
            "sleep 30 & kill -0 $! && echo own-signalled; kill $!"
        )
        result = netjail.run("-s", str(netjail.settings()), "-c", script)
        assert result.stdout.split() == ["invisible", "no-signal", "own-signalled"], result.explain()
        assert sleeper.poll() is None
    finally:
        sleeper.kill()


def test_l3_host_argv_and_environ_are_unreadable(netjail: Netjail) -> None:
    marker = f"netjail-secret-arg-{os.getpid()}"
    sleeper = subprocess.Popen(["sh", "-c", f"sleep 60 # {marker}"])
    try:
        result = netjail.run(
            "-s", str(netjail.settings()), "-c", "cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '"
        )
        assert marker not in result.stdout, result.explain()
        assert "cat" in result.stdout  # control: its own processes are listed
    finally:
        sleeper.kill()


def test_l4_terminal_injection_is_refused_with_and_without_pty(netjail: Netjail) -> None:
    code = """
import fcntl, termios, os, sys
for name, request in (("TIOCSTI", termios.TIOCSTI), ("TIOCSTI-high-bits", termios.TIOCSTI | (1 << 32)), ("TIOCLINUX", 0x541C)):
    try:
        fcntl.ioctl(sys.stdin.fileno(), request, b"x")
        print(name, "allowed")
    except (OSError, OverflowError) as e:
        print(name, getattr(e, "errno", e))
try:
    fcntl.ioctl(sys.stdin.fileno(), termios.TIOCGWINSZ, b"\\0" * 8)
    print("control", "ok")
except OSError as e:
    print("control", e.errno)
"""
    for allow_pty in (False, True):
        cfg = netjail.settings(allowPty=allow_pty)
        result = netjail.run("-s", str(cfg), "--", sys.executable, "-c", code)
        lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
        assert lines["TIOCSTI"] == "1" and lines["TIOCSTI-high-bits"] == "1" and lines["TIOCLINUX"] == "1", (
            result.explain()
        )
        assert lines["control"] != "1"  # not refused by the filter (ENOTTY: stdin is not a terminal here)


def test_l5_only_standard_descriptors_are_inherited(netjail: Netjail) -> None:
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import os,sys; os.execvp(sys.argv[1], sys.argv[1:])", *netjail_argv(netjail), "-c", "ls /proc/self/fd"],
            cwd=netjail.work, env=netjail.env, capture_output=True, text=True, pass_fds=[write_end], timeout=60,
        )  # fmt: skip
    finally:
        os.close(read_end)
        os.close(write_end)
    assert sorted(proc.stdout.split()) == ["0", "1", "2", "3"], (
        proc.stdout + proc.stderr
    )  # 3: ls's own listing


def netjail_argv(netjail: Netjail) -> list[str]:
    from tests.support.netjail import netjail_executable

    return [netjail_executable(), "-s", str(netjail.settings())]


def test_l6_no_capabilities_and_no_way_to_undo_a_rule(netjail: Netjail) -> None:
    (netjail.work / "ro").mkdir()
    cfg = netjail.settings(filesystem={"allowWrite": ["."], "denyWrite": ["ro"]})
    script = (
        "grep CapEff /proc/self/status | tr -d ' \\t'; "
        "umount ro 2>/dev/null; echo umount=$?; "
        "mount -o remount,rw ro 2>/dev/null; echo remount=$?; "
        "unshare -Urm true 2>/dev/null; echo unshare=$?; "
        "touch ro/x 2>/dev/null; echo write=$?; touch ok; echo control=$?"
    )
    result = netjail.run("-s", str(cfg), "-c", script)
    lines = result.stdout.splitlines()
    assert lines[0] == "CapEff:0000000000000000", result.explain()
    assert all(line.split("=")[1] != "0" for line in lines[1:5]), result.explain()
    assert lines[5] == "control=0"
    assert not (netjail.work / "ro" / "x").exists()


def test_f2_mknod_and_symlink_escape_fail(netjail: Netjail, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (netjail.work / "link").symlink_to(outside)
    script = "mknod dev c 1 3 2>/dev/null; echo mknod=$?; echo x > link/escaped 2>/dev/null; echo symlink=$?; echo y > fine; echo control=$?"
    result = netjail.run("-s", str(netjail.settings()), "-c", script)
    assert result.stdout.split() == ["mknod=1", "symlink=1", "control=0"], result.explain()
    assert not (outside / "escaped").exists() and not (netjail.work / "dev").exists()


def test_f1_deny_read_holds_through_proc_self_root_and_hard_links(netjail: Netjail) -> None:
    secret = netjail.work / "secret.txt"
    secret.write_text("TOPSECRET")
    cfg = netjail.settings(filesystem={"allowWrite": ["."], "denyRead": ["secret.txt"]})
    script = f"cat /proc/self/root{secret}; ln {secret} hard 2>/dev/null; cat hard; echo; echo visible > control; cat control"
    result = netjail.run("-s", str(cfg), "-c", script)
    assert "TOPSECRET" not in result.stdout and "visible" in result.stdout, result.explain()

"""Every byte that left is on record, and every verdict is recorded truthfully (ATTACKS.md R10, R12).

Each attack beside its harmless control. The disk-full ones mount a small tmpfs for the state directory and the
command's writable directory (root only); the others run rootless too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from netjail.records.rundir import RunDir
from netjail.records.runs import flow_records
from tests.support.dns import DnsServer
from tests.support.netjail import Netjail, netjail_executable
from tests.support.servers import Origin
from tests.support.wait import wait_until

UNSET = "env -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u http_proxy -u https_proxy -u all_proxy"
CURL = "curl -sS --max-time 10"
TEST_NET_V4, TEST_NET_V6 = "192.0.2.7", "2001:db8::7"  # documentation ranges: the jail's only link is lo
BODY = 300_000


class CountingOrigin(BaseHTTPRequestHandler):
    """Counts every request-body byte it reads, as it reads it (an upload cut short still counts)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            chunk = self.rfile.read1(min(remaining, 65536))
            if not chunk:
                return
            self.server.received += len(chunk)  # type: ignore[attr-defined]
            remaining -= len(chunk)
        body = b"stored\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def counting_origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), CountingOrigin)
    server.daemon_threads = True
    server.received = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def recorded_bytes_out(run_dir: Path) -> int:
    """What the records say left: every flow's bytes_out, incomplete flows (a start without an end) included."""
    flows = list(flow_records(RunDir(run_dir)))
    assert all(f.get("bytes_out") is not None for f in flows), f"a flow's bytes are unknown: {flows}"
    return sum(int(f["bytes_out"]) for f in flows)


# -- R10: disk full ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path, test_ca: tuple[trustme.CA, Path]):
    """A 32 MiB tmpfs holding both the state directory and the command's writable directory."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield Netjail(mount, test_ca[1])
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def upload(port: int, fill: bool) -> str:
    fill_disk = "dd if=/dev/zero of=fill bs=1M 2>/dev/null; " if fill else ""
    return (
        f"head -c {BODY} /dev/urandom > body; {fill_disk}"
        f"{CURL} -o /dev/null -w '%{{http_code}}' --data-binary @body http://allowed.test:{port}/upload"
    )


def test_r10_a_post_after_the_disk_is_filled_is_refused_and_recorded(
    small_disk: Netjail, counting_origin
) -> None:
    cfg = small_disk.settings({"allowedDomains": ["allowed.test"]})
    port = counting_origin.server_address[1]
    control = small_disk.run("-s", str(cfg), "-c", upload(port, fill=False))
    assert control.returncode == 0 and control.stdout == "200", control.explain()
    assert counting_origin.received == BODY == recorded_bytes_out(control.run_dir)
    assert not control.run_dir.joinpath("flows.reserve").exists(), "the reserve outlived the run"

    counting_origin.received = 0
    result = small_disk.run("-s", str(cfg), "-c", upload(port, fill=True))
    assert result.returncode == 125, result.explain()
    assert counting_origin.received == recorded_bytes_out(result.run_dir), "bytes left that are not on record"
    (post,) = result.flows
    assert post["method"] == "POST"
    if counting_origin.received == 0:  # refused: the refusal itself is on record
        assert (post["verdict"], post["reason"]) == ("deny", "log_failed"), post
    end = result.records[-1]
    assert end["event"] == "run_end" and end["reason"] == "log_failed" and end["exit_status"] == 125


def test_r10_a_full_disk_before_the_run_refuses_to_start(small_disk: Netjail) -> None:
    """No reserve, no run: the command never starts when the log's space cannot be set aside."""
    cfg = small_disk.settings({"allowedDomains": ["allowed.test"]})
    control = small_disk.run("-s", str(cfg), "-c", "touch ran")
    assert control.returncode == 0 and (small_disk.work / "ran").exists(), control.explain()
    (small_disk.work / "ran").unlink()
    subprocess.run(["dd", "if=/dev/zero", f"of={small_disk.work / 'fill'}", "bs=1M"], capture_output=True)
    result = small_disk.run("-s", str(cfg), "-c", "touch ran")
    assert result.returncode == 125 and "No space left" in result.stderr, result.explain()
    assert not (small_disk.work / "ran").exists()


# -- R10: the proxy killed mid-upload -------------------------------------------------------------------------

SLOW_UPLOAD = """
import socket, sys, time
s = socket.create_connection(("127.0.0.1", 3128), timeout=30)
s.sendall(f"POST http://allowed.test:{sys.argv[1]}/upload HTTP/1.1\\r\\nHost: allowed.test:{sys.argv[1]}\\r\\n"
          f"Content-Length: 1000000\\r\\n\\r\\n".encode() + b"x" * 50000)
open("sent", "w").close()
time.sleep(60)
"""


def _proxy_pid(netjail_pid: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])
        if ppid == netjail_pid and b"netjail.proxy.process" in cmdline:
            return int(entry.name)
    return None


@pytest.mark.nonroot
def test_r10_a_proxy_killed_mid_upload_leaves_the_started_record(netjail: Netjail, counting_origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    port = counting_origin.server_address[1]
    proc = netjail.popen("-s", str(cfg), "--", sys.executable, "-c", SLOW_UPLOAD, str(port))
    try:
        assert wait_until((netjail.work / "sent").exists), "the upload never started"
        assert wait_until(lambda: counting_origin.received > 0), "no byte reached the origin"
        pid = _proxy_pid(proc.pid)
        assert pid is not None, "no proxy process"
        os.kill(pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 125
    run_dir = netjail.latest_run()
    records = [json.loads(line) for line in (run_dir / "flows.jsonl").read_text().splitlines()]
    starts = [r for r in records if r["event"] == "flow_start"]
    assert [(s["method"], s["host"], s["verdict"]) for s in starts] == [("POST", "allowed.test", "allow")]
    assert not [r for r in records if r["event"] == "flow"], (
        "control: the proxy died before recording the end"
    )
    assert records[-1]["event"] == "run_end" and records[-1]["counts"]["incomplete"] == 1
    shown = subprocess.run(
        [netjail_executable(), "flows", str(run_dir), "--json"],
        capture_output=True,
        text=True,
        env=netjail.env,
    )
    (flow,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert flow["incomplete"] is True and flow["bytes_out"] is None and flow["id"] == starts[0]["id"]


# -- R12: verdicts recorded truthfully --------------------------------------------------------------------------


@pytest.mark.nonroot
def test_r12_a_captured_connection_refused_by_the_local_range_guard_reads_deny(
    netjail: Netjail, http_origin: Origin, dns_server: DnsServer
) -> None:
    dns_server.answers["rebind.test"] = "127.0.0.1"  # allowed by name, resolves to loopback: never dialed
    cfg = netjail.settings(
        {
            "allowedDomains": ["rebind.test", "allowed.test"],
            "resolver": f"127.0.0.1:{dns_server.port}",
            "hosts": {"allowed.test": "127.0.0.1"},  # the control: an operator's pin is allowed
        }
    )
    p = http_origin.port
    raw = f'import socket; s = socket.create_connection(("rebind.test", {p}), timeout=5); s.sendall(b"x"); s.recv(9)'
    get = f"{UNSET} {CURL} -o /dev/null -w '%{{http_code}} '"
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{get} http://rebind.test:{p}/; {UNSET} {sys.executable} -c '{raw}'; {get} http://allowed.test:{p}/",
    )  # fmt: skip
    assert result.stdout.split() == ["502", "200"], result.explain()
    http_denied, tcp_denied, control = result.flows
    for denied in (http_denied, tcp_denied):
        assert (denied["host"], denied["verdict"], denied["reason"], denied["rule"]) == (
            "rebind.test", "deny", "private_destination", "local-range:loopback",
        ), denied  # fmt: skip
    assert (control["verdict"], control["reason"]) == ("allow", "allowed")
    assert result.records[-1]["counts"]["denied"] == 2
    listed = subprocess.run(
        [netjail_executable(), "flows", str(result.run_dir), "--denied", "--json"],
        capture_output=True, text=True, env=netjail.env,
    )  # fmt: skip
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [
        http_denied["id"],
        tcp_denied["id"],
    ]


@pytest.mark.nonroot
def test_r12_a_port_rule_denial_has_its_own_reason_on_every_path(
    netjail: Netjail, http_origin: Origin
) -> None:
    p = http_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test:1", f"other.test:{p}"]})
    raw = f'import socket; s = socket.create_connection(("allowed.test", {p}), timeout=5); s.sendall(b"x"); s.recv(9)'
    get = f"{CURL} -o /dev/null -w '%{{http_code}} '"
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{get} http://allowed.test:{p}/; {get} -p http://allowed.test:{p}/; "   # proxy: plain, CONNECT
        f"{UNSET} {get} http://allowed.test:{p}/; {UNSET} {sys.executable} -c '{raw}'; "  # captured: HTTP, raw TCP
        f"{get} http://other.test:{p}/",  # control: the port its entry names
    )  # fmt: skip
    assert result.stdout.split()[-1] == "200", result.explain()
    *denied, control = result.flows
    assert [(f["verdict"], f["reason"]) for f in denied] == [("deny", "port_not_allowed")] * 4, denied
    assert [f["method"] for f in denied] == ["GET", "CONNECT", "GET", None]
    assert "allowed.test:1" in denied[0]["detail"]
    assert (control["verdict"], control["reason"]) == ("allow", "allowed")


# -- R12: UDP and ICMP are counted ----------------------------------------------------------------------------

DATAGRAMS = f"""
import socket
for family, host in ((socket.AF_INET, "{TEST_NET_V4}"), (socket.AF_INET6, "{TEST_NET_V6}")):
    for _ in range(3):
        try:
            socket.socket(family, socket.SOCK_DGRAM).sendto(b"from-the-jail", (host, 9999))
        except OSError:
            pass
"""


@pytest.mark.nonroot
def test_r12_udp_and_icmp_attempts_are_counted_per_destination(netjail: Netjail) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{UNSET} {sys.executable} -c '{DATAGRAMS}'; ping -c 1 -W 1 127.0.0.1 >/dev/null; echo local=$?; "
        f"ping -c 2 -W 1 {TEST_NET_V4} >/dev/null; ping -6 -c 1 -W 1 {TEST_NET_V6} >/dev/null; "
        "getent hosts allowed.test >/dev/null; echo dns=$?",
    )  # fmt: skip
    # controls: ping works inside the jail (to its own loopback), and DNS is answered by the jail's resolver
    assert "local=0" in result.stdout and "dns=0" in result.stdout, result.explain()
    dropped = {
        (r["protocol"], r["host"], r["port"]): r["packets"] for r in result.records if r["event"] == "dropped"
    }
    assert dropped == {
        ("udp", TEST_NET_V4, 9999): 3,
        ("udp", TEST_NET_V6, 9999): 3,
        ("icmp", TEST_NET_V4, None): 2,
        ("icmpv6", TEST_NET_V6, None): 1,
    }, result.records
    assert result.records[-1]["counts"]["dropped"] == 9
    listed = subprocess.run(
        [netjail_executable(), "flows", str(result.run_dir), "--denied"], capture_output=True, text=True, env=netjail.env
    )  # fmt: skip
    assert "UDP" in listed.stdout and "ICMP" in listed.stdout and "3 packets dropped" in listed.stdout
    why = subprocess.run(
        [netjail_executable(), "why", str(result.run_dir)], capture_output=True, text=True, env=netjail.env
    )
    assert f"udp to {TEST_NET_V4}:9999" in why.stdout, why.stdout


# -- the absolute-form target inside a tunnel -----------------------------------------------------------------

ABSOLUTE_IN_TUNNEL = """
import socket, ssl, sys
port = sys.argv[1]
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(f"CONNECT allowed.test:{port} HTTP/1.1\\r\\nHost: allowed.test:{port}\\r\\n\\r\\n".encode())
assert s.recv(4096).startswith(b"HTTP/1.1 200")
t = ssl.create_default_context().wrap_socket(s, server_hostname="allowed.test")
for authority in (f"allowed.test:{port}", f"other.test:{port}"):
    t.sendall(f"GET https://{authority}/sent HTTP/1.1\\r\\nHost: allowed.test:{port}\\r\\n\\r\\n".encode())
    head = t.recv(65536)
    print(head.split(b" ")[1].decode())
"""


@pytest.mark.nonroot
def test_an_absolute_form_target_inside_a_tunnel_is_recorded_as_sent(
    netjail: Netjail, https_origin: Origin
) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    p = https_origin.port
    result = netjail.run("-s", str(cfg), "--", sys.executable, "-c", ABSOLUTE_IN_TUNNEL, str(p))
    control, other = result.flows
    assert control["target"] == f"https://allowed.test:{p}/sent" and control["verdict"] == "allow", (
        result.explain()
    )
    assert other["target"] == f"https://other.test:{p}/sent"
    assert (other["verdict"], other["reason"]) == ("deny", "host_mismatch")  # it names another host: fronting

"""Transparent capture and the jail's resolver: a program that knows nothing of proxies is judged and recorded like
one that does, and nothing resolves or leaves by any other path. Every proxy variable is unset in these
commands. Targets: loopback origins, and (as root) a test host in a network namespace the test creates."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid

import pytest

from tests.support.dns import DnsServer
from tests.support.netjail import Netjail
from tests.support.servers import Origin, serve_connections
from tests.support.wait import stays_false, wait_until

PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "GRPC_PROXY",
    "grpc_proxy",
)
UNSET = "env " + " ".join(f"-u {v}" for v in PROXY_VARS)
CURL = f"{UNSET} curl -sS --max-time 10"
TEST_NET_ADDRESS = "203.0.113.9"  # TEST-NET-3: documentation only, no host answers there


def dns_records(result) -> list[dict]:
    return [r for r in result.records if r["event"] == "dns"]


@pytest.mark.nonroot
def test_programs_that_ignore_proxy_settings_are_captured_judged_and_recorded(
    netjail: Netjail, http_origin: Origin, https_origin: Origin
) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    code = f"""
import socket, ssl
raw = socket.create_connection(("allowed.test", {https_origin.port}))
tls = ssl.create_default_context().wrap_socket(raw, server_hostname="allowed.test")
tls.sendall(b"GET /raw HTTP/1.1\\r\\nHost: allowed.test:{https_origin.port}\\r\\nConnection: close\\r\\n\\r\\n")
data = b""
while chunk := tls.recv(4096):
    data += chunk
print(data.split(b"\\r\\n")[0].decode(), data.rsplit(b"\\r\\n", 1)[-1].decode().strip())
"""
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{CURL} http://allowed.test:{http_origin.port}/curl && {UNSET} {sys.executable} -c '{code}'",
    )  # fmt: skip
    assert result.returncode == 0, result.explain()
    assert result.stdout.splitlines() == ["hello from http-origin", "HTTP/1.1 200 OK hello from https-origin"]
    assert result.records[0]["capture_mode"] == "transparent"
    flows = result.flows
    assert [(f["host"], f["path"], f["verdict"], f["status"]) for f in flows] == [
        ("allowed.test", "/curl", "allow", 200),
        ("allowed.test", "/raw", "allow", 200),
    ]
    assert flows[1]["sni"] == "allowed.test" and flows[1]["scheme"] == "https"
    answered = {(r["name"], r["type"]) for r in dns_records(result) if r["verdict"] == "allow"}
    assert ("allowed.test", "A") in answered


@pytest.mark.nonroot
def test_denied_names_get_nxdomain_and_reach_no_resolver(
    netjail: Netjail, http_origin: Origin, dns_server: DnsServer
) -> None:
    cfg = netjail.settings(
        {
            "allowedDomains": ["resolved.test", "127.0.0.1"],
            "deniedDomains": ["*.denied.test"],
            "resolver": f"127.0.0.1:{dns_server.port}",
            "hosts": {},
        }
    )
    secret = f"s3cr3t{uuid.uuid4().hex[:8]}"
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"getent hosts {secret}.denied.test; echo getent=$?; "
        f"dig +short +tries=1 +time=2 {secret}.denied.test; dig +tries=1 +time=2 {secret}.denied.test | grep -o 'status: [A-Z]*'; "
        f"getent hosts unlisted.test; echo unlisted=$?; "
        f"getent ahostsv4 resolved.test | head -1 | cut -d' ' -f1; "
        f"{CURL} -o /dev/null -w '%{{http_code}}' http://resolved.test:{http_origin.port}/",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == "getent=2", result.explain()
    assert "status: NXDOMAIN" in lines and "unlisted=2" in lines
    synthetic = lines[-2]
    assert synthetic.startswith("240."), "an allowed name gets a synthetic address, never a real one"
    assert lines[-1] == "200"
    asked = {name for name, _ in dns_server.questions}
    assert asked == {"resolved.test"}, (
        "only the allowed name was ever resolved upstream, and only when dialed"
    )
    denied = [r for r in dns_records(result) if r["verdict"] == "deny"]
    assert {r["name"] for r in denied} == {f"{secret}.denied.test", "unlisted.test"}
    assert all(r["answer"] == "NXDOMAIN" for r in denied)
    assert {r["reason"] for r in denied} == {"denied_by_rule", "not_allowed"}


@pytest.mark.nonroot
def test_ip_literal_connection_is_captured_and_denied(netjail: Netjail, http_origin: Origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    code = f"""
import socket
s = socket.create_connection(("{TEST_NET_ADDRESS}", 80), timeout=5)
s.sendall(b"GET /x HTTP/1.1\\r\\nHost: allowed.test\\r\\nConnection: close\\r\\n\\r\\n")
print(s.recv(100).split(b"\\r\\n")[0].decode())
"""
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{UNSET} {sys.executable} -c '{code}'; {CURL} -o /dev/null -w '%{{http_code}}' http://allowed.test:{http_origin.port}/",
    )  # fmt: skip
    assert result.stdout.splitlines() == ["HTTP/1.1 403 Forbidden", "200"], result.explain()
    denied, control = result.flows
    assert (
        denied["host"] == TEST_NET_ADDRESS
        and denied["reason"] == "ip_literal"
        and denied["verdict"] == "deny"
    )
    assert control["verdict"] == "allow"


@pytest.mark.nonroot
def test_port_of_a_ported_entry_is_enforced_on_captured_connections(
    netjail: Netjail, http_origin: Origin, https_origin: Origin
) -> None:
    cfg = netjail.settings({"allowedDomains": [f"allowed.test:{http_origin.port}"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{CURL} -o /dev/null -w '%{{http_code}} ' http://allowed.test:{http_origin.port}/; "
        f"{CURL} -o /dev/null -w '%{{http_code}}' http://allowed.test:{https_origin.port}/",
    )  # fmt: skip
    assert result.stdout.split() == ["200", "403"], result.explain()
    assert [f["reason"] for f in result.flows] == ["allowed", "port_not_allowed"]


@pytest.fixture
def tcp_echo() -> int:
    """A non-HTTP TCP service on loopback: echoes what it receives, upper-cased."""
    server = socket.create_server(("127.0.0.1", 0))

    def echo(conn: socket.socket) -> None:
        while data := conn.recv(4096):
            conn.sendall(data.upper())

    serve_connections(server, echo)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.nonroot
def test_non_http_tcp_to_an_allowed_host_is_recorded_as_tcp(netjail: Netjail, tcp_echo: int) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    code = f"""
import socket
s = socket.create_connection(("allowed.test", {tcp_echo}), timeout=5)
s.sendall(b"ssh-2.0-netjail-test\\n")
print(s.recv(100).decode().strip())
"""
    result = netjail.run("-s", str(cfg), "-c", f"{UNSET} {sys.executable} -c '{code}'")
    assert result.stdout.strip() == "SSH-2.0-NETJAIL-TEST", result.explain()
    (flow,) = result.flows
    assert flow["scheme"] == "tcp" and flow["host"] == "allowed.test" and flow["port"] == tcp_echo
    assert flow["verdict"] == "allow" and flow["bytes_out"] == len("ssh-2.0-netjail-test\n")
    assert flow["bytes_in"] == flow["bytes_out"]


@pytest.mark.nonroot
def test_the_command_cannot_change_links_routes_or_rules(netjail: Netjail, http_origin: Origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        "PATH=$PATH:/usr/sbin:/sbin; nft flush ruleset; echo nft=$?; ip link set lo down; echo link=$?; "
        "ip route del default; echo route=$?; ip addr add 10.9.9.9/32 dev lo; echo addr=$?; "
        f"{CURL} -o /dev/null -w '%{{http_code}}' http://allowed.test:{http_origin.port}/",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert [line.split("=")[0] for line in lines[:4]] == ["nft", "link", "route", "addr"], result.explain()
    assert all(line.split("=")[1] != "0" for line in lines[:4]), result.explain()
    assert lines[-1] == "200", "capture still works after the attempts"


@pytest.mark.nonroot
def test_fallback_to_proxy_variables_is_announced_and_still_closed(
    netjail: Netjail, http_origin: Origin
) -> None:
    """Forced by an nft that cannot work: one warning, capture_mode recorded, still no route out."""
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    env = {**netjail.env, "NETJAIL_NFT": "/bin/false"}
    p = http_origin.port
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"curl -sS -o /dev/null -w '%{{http_code}} ' http://allowed.test:{p}/; "
        f"{CURL} http://allowed.test:{p}/; echo direct=$?; {UNSET} {sys.executable} -c "
        f"'import socket; socket.create_connection((\"{TEST_NET_ADDRESS}\", 80), timeout=3)' 2>&1 | tail -1",
        env=env,
    )  # fmt: skip
    assert result.stdout.startswith("200 "), result.explain()
    assert "direct=6" in result.stdout  # the allowed name resolves to nothing: fails at once, no hang
    assert "Network is unreachable" in result.stdout
    assert result.stderr.count("warning: transparent capture is not available") == 1
    assert result.records[0]["capture_mode"] == "proxy-variables"

    strict = netjail.settings({"allowedDomains": ["allowed.test"], "capture": "transparent"})
    result = netjail.run("-s", str(strict), "-c", "touch ran", env=env)
    assert result.returncode == 125 and "nft" in result.stderr, result.explain()
    assert not (netjail.work / "ran").exists()


# -- test hosts in a network namespace (root only) ------------------------------------------------------------


@pytest.fixture
def test_host():
    """A host on a veth link to this machine's namespace: 10.233.N.2 and fd6e:6a:N::2, with a UDP listener
    (ports 9999 and 53) and an HTTP server (port 8080) running inside it."""
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    n = os.getpid() % 200 + 1
    name, outer, inner = f"njt{n}", f"njt{n}a", f"njt{n}b"

    def sh(*args: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"

    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "link", "del", outer], capture_output=True)
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", name)
        sh("ip", "addr", "add", f"10.233.{n}.1/30", "dev", outer)
        sh("ip", "-6", "addr", "add", f"fd6e:6a:{n}::1/64", "dev", outer, "nodad")
        sh("ip", "link", "set", outer, "up")
        for cmd in (
            ["ip", "addr", "add", f"10.233.{n}.2/30", "dev", inner],
            ["ip", "-6", "addr", "add", f"fd6e:6a:{n}::2/64", "dev", inner, "nodad"],
            ["ip", "link", "set", inner, "up"],
            ["ip", "link", "set", "lo", "up"],
        ):
            sh("ip", "netns", "exec", name, *cmd)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, "-c", _TEST_HOST_PROGRAM],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert listener.stdout.readline().strip() == "ready"
        host = {"v4": f"10.233.{n}.2", "v6": f"fd6e:6a:{n}::2", "process": listener, "received": []}
        reader = threading.Thread(
            target=lambda: host["received"].extend(iter(listener.stdout.readline, "")), daemon=True
        )
        reader.start()
        yield host
        listener.kill()
        listener.wait()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", outer], capture_output=True)


_TEST_HOST_PROGRAM = """
import socket, threading, http.server, sys
def udp(family, host, port):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, port))
    while True:
        data, peer = s.recvfrom(4096)
        print(f"udp {port} {data[:40]!r}", flush=True)
for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for port in (53, 9999):
        threading.Thread(target=udp, args=(family, host, port), daemon=True).start()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the test host\\n"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class V6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
server = V6(("::", 8080), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def test_udp_dns_and_icmp_to_a_test_host_get_nowhere(netjail: Netjail, test_host: dict) -> None:
    v4, v6 = test_host["v4"], test_host["v6"]
    # control: from outside the jail the test host receives UDP and answers ping
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"control", (v4, 9999))
    assert subprocess.run(["ping", "-c", "1", "-W", "2", v4], capture_output=True).returncode == 0
    assert wait_until(lambda: any("control" in line for line in test_host["received"]), timeout=10), (
        "the test host never received the control datagram"
    )
    test_host["received"].clear()

    code = f"""
import socket
for family, host in ((socket.AF_INET, "{v4}"), (socket.AF_INET6, "{v6}")):
    for port in (9999, 53, 443):
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            s.sendto(b"from-the-jail", (host, port))
            print("sent", host, port)
        except OSError as e:
            print("blocked", host, port, e.errno)
"""
    cfg = netjail.settings({"allowedDomains": ["allowed.test", v4, f"[{v6}]"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{UNSET} {sys.executable} -c '{code}'; ping -c 1 -W 2 {v4}; echo ping=$?; "
        f"dig +tries=1 +time=2 @{v4} allowed.test | grep -o 'status: [A-Z]*'",
    )  # fmt: skip
    assert "ping=0" not in result.stdout, result.explain()
    # the run is over; a datagram that did get out would reach the test host within this window
    assert stays_false(lambda: any("from-the-jail" in line for line in test_host["received"]), 0.5), (
        test_host["received"]
    )
    assert not [line for line in test_host["received"] if line.startswith("udp 53")], (
        "DNS went to the test host"
    )
    assert "status: NOERROR" in result.stdout, "a DNS query to any server is answered by the jail's resolver"


def test_ipv6_test_host_is_reachable_only_through_capture(netjail: Netjail, test_host: dict) -> None:
    v6 = test_host["v6"]
    url = f"http://[{v6}]:8080/"
    # control: reachable from outside the jail
    assert (
        subprocess.run(["curl", "-sS", "--noproxy", "*", url], capture_output=True, text=True).stdout
        == "hello from the test host\n"
    )

    denied_cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run("-s", str(denied_cfg), "-c", f"{CURL} -o /dev/null -w '%{{http_code}}' '{url}'")
    assert result.stdout == "403", result.explain()
    assert result.flows[0]["reason"] == "ip_literal" and result.flows[0]["host"] == v6

    allowed_cfg = netjail.settings({"allowedDomains": [f"[{v6}]"]})
    result = netjail.run("-s", str(allowed_cfg), "-c", f"{CURL} '{url}'")
    assert result.stdout == "hello from the test host\n", result.explain()
    flow = result.flows[0]
    assert flow["verdict"] == "allow" and flow["address"] == v6
    assert json.dumps(flow)  # recorded like any other flow

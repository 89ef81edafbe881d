"""Audit completeness and fail-closed defaults (ATTACKS.md P1, N3, N8, C2, R7, F4)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.netjail import REPO, Netjail
from tests.support.servers import Origin

pytestmark = pytest.mark.nonroot

TUNNEL = """
import socket, ssl, sys
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(f"CONNECT {host}:{port} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\n\\r\\n".encode())
assert s.recv(4096).startswith(b"HTTP/1.1 200")
if mode == "raw":
    s.sendall(b"SSH-2.0-OpenSSH_9.0\\r\\n")
    print(s.recv(100).decode().strip() or "empty")
    sys.exit()
t = ssl.create_default_context().wrap_socket(s, server_hostname=host)
def get(authority):
    try:
        t.sendall(f"GET /{authority} HTTP/1.1\\r\\nHost: {authority}\\r\\n\\r\\n".encode())
    except OSError:
        return "closed"
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        try:
            byte = t.recv(1)
        except OSError:  # the proxy closed the tunnel: a reset or a plain close, either way closed
            return "closed"
        if not byte:
            return "closed"
        head += byte
    length = int([l for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    body = b""
    while len(body) < length:
        body += t.recv(length - len(body))
    return head.split(b" ")[1].decode()
print(get(f"{host}:{port}"), get("denied.test"), get(f"{host}:{port}"))
"""


def test_p1_a_second_request_on_a_kept_alive_tunnel_is_judged_again(
    netjail: Netjail, https_origin: Origin
) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    result = netjail.run(
        "-s", str(cfg), "--", sys.executable, "-c", TUNNEL, "allowed.test", str(https_origin.port), "tls"
    )
    # the fronted request is refused, and the denial closes the tunnel it came on
    assert result.stdout.split() == ["200", "403", "closed"], result.explain()
    assert [f["reason"] for f in result.flows] == ["allowed", "host_mismatch"]


def test_n8_raw_bytes_inside_an_allowed_tunnel_are_recorded(netjail: Netjail, http_origin: Origin) -> None:
    """Not HTTP, not TLS: forwarded as raw TCP (the entry has no port restriction) and recorded with its bytes."""
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(cfg), "--", sys.executable, "-c", TUNNEL, "allowed.test", str(http_origin.port), "raw"
    )
    assert result.returncode == 0, result.explain()
    (flow,) = result.flows
    assert flow["scheme"] == "tcp" and flow["bytes_out"] == len("SSH-2.0-OpenSSH_9.0\r\n")
    ported = netjail.settings({"allowedDomains": ["allowed.test:1"]})
    result = netjail.run(
        "-s", str(ported), "--", sys.executable, "-c", TUNNEL, "allowed.test", str(http_origin.port), "raw"
    )
    assert result.returncode != 0 and result.flows[0]["verdict"] == "deny"


def test_c2_the_bundled_default_allows_no_network(netjail: Netjail, http_origin: Origin) -> None:
    env = {**netjail.env, "XDG_CONFIG_HOME": str(netjail.tmp_path / "none")}
    env.pop("NETJAIL_SETTINGS", None)
    p = http_origin.port
    result = netjail.run(
        "-c",
        f"curl -sS -o /dev/null -w '%{{http_code}}' http://allowed.test:{p}/; echo; echo ok > written",
        env=env,
    )
    assert result.stdout.splitlines()[0] in ("403", "000"), result.explain()  # 000: the name does not resolve
    assert all(f["verdict"] == "deny" for f in result.flows)
    assert (netjail.work / "written").read_text() == "ok\n", "control: the working directory is writable"
    assert result.records[0]["settings_file"] == str(REPO / "configs" / "default.json")


def test_n3_host_resolver_sockets_are_not_in_the_jail(netjail: Netjail) -> None:
    result = netjail.run(
        "-s", str(netjail.settings()), "-c", "ls -A /run; cat /etc/resolv.conf | grep nameserver"
    )
    assert result.stdout.split() == ["netjail", "nameserver", "127.0.0.1"], result.explain()


def test_r7_every_attempt_on_every_ingress_path_gives_exactly_one_record(
    netjail: Netjail, http_origin: Origin, https_origin: Origin
) -> None:
    h, s = http_origin.port, https_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    unset = "env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY -u all_proxy"
    attempts = [
        (f"curl -sS -o /dev/null http://allowed.test:{h}/1", "allow"),  # proxy, plain HTTP
        (f"curl -sS -o /dev/null https://allowed.test:{s}/2", "allow"),  # proxy, CONNECT + TLS
        (f"curl -sS -o /dev/null http://denied.test:{h}/3", "deny"),  # proxy, plain HTTP
        (f"curl -sS -o /dev/null https://denied.test:{s}/4", "deny"),  # proxy, CONNECT refused
        (f"curl -sS -o /dev/null http://other.test:{h}/5", "deny"),  # proxy, not allowed
        (f"{unset} curl -sS -o /dev/null http://allowed.test:{h}/6", "allow"),  # captured, plain HTTP
        (f"{unset} curl -sS -o /dev/null https://allowed.test:{s}/7", "allow"),  # captured, TLS
        (f"{unset} curl -sS -o /dev/null http://203.0.113.9/8", "deny"),  # captured, IP literal
    ]
    result = netjail.run("-s", str(cfg), "-c", "; ".join(a for a, _ in attempts))
    events = [r["event"] for r in result.records]
    flows = result.flows
    assert events[0] == "run_start" and events[-1] == "run_end" and events.count("run_start") == 1
    assert len(flows) == len(attempts), result.explain()
    assert sorted(f["verdict"] for f in flows) == sorted(v for _, v in attempts)
    end = result.records[-1]
    assert end["counts"]["allowed"] == 4 and end["counts"]["denied"] == 4


def test_f4_a_run_leaves_no_stub_or_ghost_file(netjail: Netjail) -> None:
    subprocess.run(["git", "init", "-q", str(netjail.work)], check=True)
    (netjail.work / ".gitignore").write_text("test-ca.pem\n")
    before = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=netjail.work, capture_output=True, text=True
    ).stdout
    cfg = netjail.settings(filesystem={"allowWrite": ["."], "denyRead": ["~/.ssh"], "denyWrite": ["README"]})
    result = netjail.run("-s", str(cfg), "-c", "echo made > made.txt")
    assert result.returncode == 0, result.explain()
    after = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=netjail.work, capture_output=True, text=True
    ).stdout
    assert set(after.splitlines()) - set(before.splitlines()) == {"?? made.txt"}

"""HTTP/2, WebSockets, network.resolver and audit mode through the real proxy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trustme

from tests.support.dns import DnsServer
from tests.support.netjail import TEST_NAMES, Netjail
from tests.support.servers import (
    H2Origin,
    Origin,
    WebSocketEcho,
    start_counting_origin,
    tls_server_context,
)

pytestmark = pytest.mark.nonroot

CURL = "curl -sS --max-time 20"


@pytest.fixture
def h1_origin(test_ca: tuple[trustme.CA, Path]) -> Origin:
    origin = start_counting_origin("h1-origin", tls_server_context(test_ca[0], *TEST_NAMES))
    yield origin
    origin.server.shutdown()


@pytest.fixture
def h2_origin(test_ca: tuple[trustme.CA, Path]) -> H2Origin:
    origin = H2Origin(tls_server_context(test_ca[0], *TEST_NAMES))
    yield origin
    origin.close()


def test_keepalive_https_to_an_http1_origin_uses_one_upstream_handshake(
    netjail: Netjail, h1_origin: Origin
) -> None:
    """curl offers h2 and http/1.1 (its defaults); the upstream speaks HTTP/1.1 only. The proxy learns that before
    it answers curl, so curl gets HTTP/1.1 and its one kept-alive connection is one upstream connection (an h2
    answer would have cost an upstream TLS handshake per request)."""
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    url = f"https://allowed.test:{h1_origin.port}/"
    transfers = " ".join(f"-o /dev/null {url}" for _ in range(5))
    result = netjail.run(
        "-s", str(cfg), "-c", f"{CURL} -w '%{{http_version}} %{{num_connects}}\\n' {transfers}"
    )
    assert result.stdout.split("\n")[:5] == ["1.1 1", "1.1 0", "1.1 0", "1.1 0", "1.1 0"], result.explain()
    assert h1_origin.server.handshakes == ["http/1.1"]  # type: ignore[attr-defined]
    assert [(f["http_version"], f["status"], f["verdict"]) for f in result.flows] == [
        ("HTTP/1.1", 200, "allow")
    ] * 5


def test_http2_end_to_end_with_an_h2_only_origin(netjail: Netjail, h2_origin: H2Origin) -> None:
    """An upstream that speaks only h2 (as a gRPC server) works on the first connection of a run, in h2 on both
    sides, and every stream is recorded."""
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    url = f"https://allowed.test:{h2_origin.port}"
    result = netjail.run(
        "-s",
        str(cfg),
        "-c",
        f"{CURL} -w ' %{{http_version}} %{{num_connects}}\\n' {url}/one {url}/two",
    )
    assert result.stdout.splitlines() == ["h2 hello /one", " 2 1", "h2 hello /two", " 2 0"], result.explain()
    assert h2_origin.handshakes == ["h2"]
    assert [(m, p) for m, p, _ in h2_origin.seen] == [("GET", "/one"), ("GET", "/two")]
    assert [(f["http_version"], f["status"], f["path"]) for f in result.flows] == [
        ("HTTP/2.0", 200, "/one"),
        ("HTTP/2.0", 200, "/two"),
    ]


FRONTING = """
import http.client, ssl, sys
conn = http.client.HTTPSConnection("127.0.0.1", 3128, context=ssl.create_default_context(), timeout=10)
conn.set_tunnel("allowed.test", int(sys.argv[1]))
for host in ("allowed.test", "allowed.test", "denied.test"):
    conn.request("GET", "/", headers={"Host": f"{host}:{sys.argv[1]}"})
    response = conn.getresponse()
    response.read()
    print(response.status)
"""


def test_host_is_judged_on_every_request_of_an_upstream_connection(
    netjail: Netjail, h1_origin: Origin
) -> None:
    """The upstream connection of an allowed tunnel is open before the first request (to learn its ALPN); a
    request inside it that names another Host (fronting) is still denied, recorded, and never reaches the origin,
    while the allowed requests before it, on the same upstream connection, do."""
    cfg = netjail.settings({"allowedDomains": ["allowed.test", "denied.test"]})
    result = netjail.run("-s", str(cfg), "--", sys.executable, "-c", FRONTING, str(h1_origin.port))
    assert result.stdout.split() == ["200", "200", "403"], result.explain()
    assert [(f["verdict"], f["reason"]) for f in result.flows] == [
        ("allow", "allowed"),
        ("allow", "allowed"),
        ("deny", "host_mismatch"),
    ]
    assert [host for _, _, host in h1_origin.seen] == [f"allowed.test:{h1_origin.port}"] * 2
    assert len(h1_origin.server.handshakes) == 1  # type: ignore[attr-defined]


def test_websocket_messages_pass_and_are_counted(netjail: Netjail, ws_origin: WebSocketEcho) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    code = f"""
import socket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT allowed.test:{ws_origin.port} HTTP/1.1\\r\\nHost: allowed.test:{ws_origin.port}\\r\\n\\r\\n")
assert s.recv(4096).startswith(b"HTTP/1.1 200")
ws = WSConnection(ConnectionType.CLIENT)
s.sendall(ws.send(Request(host="allowed.test:{ws_origin.port}", target="/chat")))
replies = []
def pump():
    ws.receive_data(s.recv(65536))
    return list(ws.events())
assert any(isinstance(e, AcceptConnection) for e in pump())
for text in ("hello", "x" * 1000):
    s.sendall(ws.send(Message(data=text)))
    replies += [e.data for e in pump() if isinstance(e, Message)]
s.sendall(ws.send(CloseConnection(code=1000)))
pump()
print(len(replies), replies[0])
"""
    result = netjail.run("-s", str(cfg), "--", sys.executable, "-c", code)
    assert result.stdout.split() == ["2", "hello"], result.explain()
    (flow,) = result.flows
    assert flow["status"] == 101 and flow["verdict"] == "allow"
    assert flow["websocket"] == {
        "messages_out": 3,
        "messages_in": 3,
        "bytes_out": 1005 + 2,
        "bytes_in": 1005 + 2,
    } or (flow["websocket"]["messages_out"] >= 2 and flow["websocket"]["bytes_out"] >= 1005)


def test_network_resolver_is_used_and_never_sees_denied_names(
    netjail: Netjail, http_origin: Origin, dns_server: DnsServer
) -> None:
    """The proxy resolves through network.resolver; a denied or unlisted name is never looked up anywhere."""
    cfg = netjail.settings(
        {
            "allowedDomains": [
                "resolved.test",
                "127.0.0.1",
            ],  # the IP entry lets the name resolve into loopback
            "deniedDomains": ["secret-data.denied.test"],
            "resolver": f"127.0.0.1:{dns_server.port}",
            "hosts": {},
        }
    )
    p = http_origin.port
    get = f"{CURL} -o /dev/null -w '%{{http_code}} '"
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{get} http://secret-data.denied.test:{p}/; {get} http://unlisted.test:{p}/; {get} http://resolved.test:{p}/",
    )  # fmt: skip
    assert result.stdout.split() == ["403", "403", "200"], result.explain()
    names = {name for name, _ in dns_server.questions}
    assert names == {"resolved.test"}
    assert [f["reason"] for f in result.flows] == ["denied_by_rule", "not_allowed", "allowed"]


def test_resolution_failure_is_an_upstream_dns_error(netjail: Netjail, dns_server: DnsServer) -> None:
    cfg = netjail.settings(
        {"allowedDomains": ["allowed.test"], "resolver": f"127.0.0.1:{dns_server.port}", "hosts": {}}
    )
    dns_server.close()  # nothing answers
    result = netjail.run(
        "-s", str(cfg), "-c", f"{CURL} -o /dev/null -w '%{{http_code}}' http://allowed.test:1/"
    )
    assert result.stdout == "502", result.explain()
    flow = result.flows[0]
    assert flow["verdict"] == "allow" and flow["reason"] == "upstream_error" and flow["error_kind"] == "dns"


def test_audit_mode_allows_only_what_the_allow_list_alone_refuses(
    netjail: Netjail, http_origin: Origin
) -> None:
    p = http_origin.port
    cfg = netjail.settings(
        {"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"], "mode": "audit"}
    )
    get = f"{CURL} --noproxy '' -o /dev/null -w '%{{http_code}} '"
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{get} http://other.test:{p}/; {get} http://denied.test:{p}/; {get} http://127.0.0.1:{p}/; {get} http://allowed.test:{p}/",
    )  # fmt: skip
    assert result.stdout.split() == ["200", "403", "403", "200"], result.explain()
    assert [(f["verdict"], f["reason"]) for f in result.flows] == [
        ("allow", "would_deny"),
        ("deny", "denied_by_rule"),
        ("deny", "ip_literal"),
        ("allow", "allowed"),
    ]
    assert result.records[0]["network_mode"] == "audit"


SNI_FRONTING = """
import socket, ssl, sys
def fetch(sni):
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(f"CONNECT allowed.test:{sys.argv[1]} HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n".encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    t = ctx.wrap_socket(s, server_hostname=sni)
    t.sendall(f"GET / HTTP/1.1\\r\\nHost: allowed.test:{sys.argv[1]}\\r\\nConnection: close\\r\\n\\r\\n".encode())
    data = b""
    while chunk := t.recv(4096):
        data += chunk
    return data.split(b" ")[1].decode()
print(fetch("denied.test"), fetch("allowed.test"))
"""


def test_a_tunnel_whose_sni_names_another_host_is_never_dialed(netjail: Netjail, h1_origin: Origin) -> None:
    """The early dial waits for the SNI's verdict: a ClientHello naming another host opens no upstream
    connection (its request is denied), while the control with the tunnel's own name does."""
    cfg = netjail.settings({"allowedDomains": ["allowed.test", "denied.test"]})
    result = netjail.run("-s", str(cfg), "--", sys.executable, "-c", SNI_FRONTING, str(h1_origin.port))
    assert result.stdout.split() == ["403", "200"], result.explain()
    assert [(f["verdict"], f["reason"]) for f in result.flows] == [
        ("deny", "sni_mismatch"),
        ("allow", "allowed"),
    ]
    assert len(h1_origin.server.handshakes) == 1  # type: ignore[attr-defined]

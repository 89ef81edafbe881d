"""HTTP/2, WebSockets, network.resolver and audit mode through the real proxy."""

from __future__ import annotations

import sys

import pytest

from tests.support.dns import DnsServer
from tests.support.netjail import Netjail
from tests.support.servers import Origin, WebSocketEcho

pytestmark = pytest.mark.nonroot

CURL = "curl -sS --max-time 20"


def test_http2_to_the_client_http1_upstream(netjail: Netjail, https_origin: Origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s",
        str(cfg),
        "-c",
        f"{CURL} --http2 -o /dev/null -w '%{{http_version}}' https://allowed.test:{https_origin.port}/",
    )
    assert result.stdout == "2", result.explain()
    assert result.flows[0]["http_version"] == "HTTP/2.0" and result.flows[0]["status"] == 200


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

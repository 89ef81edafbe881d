"""Floods of the parsers in front of the policy: HTTP/2 CONTINUATION frames, HPACK bombs, rapid reset, WebSocket
messages too big or in too many fragments. Each attack runs beside a control in the same run: the proxy bounds the
attack, the origin never receives the abusive request, and the control completes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.netjail import TEST_NAMES, Netjail, Result
from tests.support.servers import H2Origin, WebSocketEcho, tls_server_context

pytestmark = pytest.mark.nonroot

H2CLIENT = Path(__file__).parents[1] / "support" / "h2client.py"


@pytest.fixture
def h2_origin(test_ca) -> Iterator[H2Origin]:
    """HTTP/2 end to end: netjail offers the client h2 only when the upstream speaks it."""
    origin = H2Origin(tls_server_context(test_ca[0], *TEST_NAMES))
    yield origin
    origin.close()


def _h2_run(netjail: Netjail, origin: H2Origin, *steps: str) -> tuple[Result, list[dict[str, Any]]]:
    """Run tests/support/h2client.py once per step ("MODE" or "MODE:N") inside one jail; one JSON report each."""
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    commands = []
    for step in steps:
        mode, _, count = step.partition(":")
        commands.append(f"{sys.executable} {H2CLIENT} {mode} allowed.test {origin.port} {count}")
    result = netjail.run("-s", str(cfg), "-c", " ; ".join(commands))
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(steps), result.explain()
    return result, reports


def _paths_seen(origin: H2Origin, prefix: str) -> set[str]:
    return {path for _, path, _ in origin.seen if path.startswith(prefix)}


def test_h2_continuation_flood_is_cut_off_while_a_control_completes(
    netjail: Netjail, h2_origin: H2Origin
) -> None:
    """CVE-2024-27316 style: a header block that never ends. h2 buffers at most 64 CONTINUATION frames."""
    result, (flood, control) = _h2_run(netjail, h2_origin, "continuation:20000", "control")
    assert flood["closed"] or flood["goaway"] is not None, result.explain()
    assert flood["sent"] < 20000  # the proxy hung up long before the client was done (20 MB of frames)
    assert not _paths_seen(h2_origin, "/continuation")
    assert control["status"] == 200


def test_h2_hpack_bomb_is_refused_and_a_header_list_just_under_passes(
    netjail: Netjail, h2_origin: H2Origin
) -> None:
    """4 KB on the wire that would decode to 4 MB of headers (one dynamic-table entry referenced 1,000 times);
    ten copies (40 KB decoded, under the 64 KiB header list bound) are an ordinary request."""
    result, (bomb, under) = _h2_run(netjail, h2_origin, "hpack-bomb:1000", "hpack-bomb:10")
    assert bomb["wire_bytes"] < 8192
    assert bomb["status"] is None and (bomb["goaway"] is not None or bomb["stream_reset"] or bomb["closed"])
    assert under["status"] == 200, result.explain()
    assert len([p for _, p, _ in h2_origin.seen if p == "/bomb"]) == 1  # only the one under the bound


def test_h2_rapid_reset_leaves_no_request_unrecorded(netjail: Netjail, h2_origin: H2Origin) -> None:
    """CVE-2023-44487 style: streams opened and reset at once. Whatever reached the origin has its record, and
    a fresh connection of the same run is served."""
    result, (_, control) = _h2_run(netjail, h2_origin, "rapid-reset:300", "control")
    reached = _paths_seen(h2_origin, "/reset/")
    recorded = {r["path"] for r in result.flows if r.get("path", "").startswith("/reset/")}
    assert reached <= recorded, result.explain()
    assert control["status"] == 200
    assert result.records[-1]["event"] == "run_end" and result.returncode == 0


WS_CLIENT = """
import socket, sys
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request
s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
s.sendall(b"CONNECT allowed.test:{port} HTTP/1.1\\r\\nHost: allowed.test:{port}\\r\\n\\r\\n")
assert s.recv(4096).startswith(b"HTTP/1.1 200")
ws = WSConnection(ConnectionType.CLIENT)
s.sendall(ws.send(Request(host="allowed.test:{port}", target="/chat")))
def events():
    try:
        data = s.recv(65536)
    except OSError:
        data = b""
    ws.receive_data(data or None)
    return list(ws.events())
assert any(isinstance(e, AcceptConnection) for e in events())
s.sendall(ws.send(Message(data="control")))
print("echo", [e.data for e in events() if isinstance(e, Message)])
try:
    {attack}
    while not any(isinstance(e, CloseConnection) and print("close", e.code) is None for e in events()):
        pass
except OSError as e:
    print("reset", e)
"""

WS_ATTACKS = {
    "maxWebsocketMessageBytes": "s.sendall(ws.send(Message(data=b'x' * 200_000)))",
    "maxWebsocketFragments": (
        "[s.sendall(ws.send(Message(data=b'x', message_finished=False))) for _ in range(100)]"
    ),
}


@pytest.mark.parametrize("limit", list(WS_ATTACKS))
def test_websocket_message_floods_are_closed_with_1009_after_a_control(
    netjail: Netjail, ws_origin: WebSocketEcho, limit: str
) -> None:
    limits = {"maxWebsocketMessageBytes": 65536, "maxWebsocketFragments": 16}
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "limits": limits})
    code = WS_CLIENT.replace("{port}", str(ws_origin.port)).replace("{attack}", WS_ATTACKS[limit])
    result = netjail.run("-s", str(cfg), "--", sys.executable, "-c", code)
    assert "echo ['control']" in result.stdout, result.explain()
    assert "close 1009" in result.stdout
    (flow,) = result.flows
    assert limit in flow["detail"]
    assert flow["websocket"]["messages_out"] == 1  # the control; the flood never became a message

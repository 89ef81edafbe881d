"""addons/canaries.py driven through mitmproxy's test helpers: which requests and lookups a canary trips, what the
record and the supervisor are told (names, never a value), and that every hook fails closed."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json

import pytest
from mitmproxy import dns
from mitmproxy.test import taddons, tflow
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from netjail.addons.canaries import CanaryBodyWatch, CanaryDns, CanaryGuard, Tripwire
from netjail.detect.canaries import CANARY_KEY, mint
from netjail.records.schema import BUFFERED_KEY, METADATA_KEY

PLAN = mint()
TOKEN = PLAN.env["LEGACY_GH_TOKEN"]


def wire() -> tuple[Tripwire, list[bytes]]:
    said: list[bytes] = []
    return Tripwire(PLAN.canaries, said.append), said


def request(path: str = "/x", **headers: str):
    f = tflow.tflow()
    f.request.host = "allowed.test"
    f.request.path = path
    f.request.headers.update(headers)
    f.metadata[METADATA_KEY] = {"verdict": "allow", "judged_host": "allowed.test"}
    return f


@pytest.mark.parametrize(
    ("where", "make"),
    [
        ("header x-deploy", lambda: request(**{"x-deploy": TOKEN})),
        ("header authorization", lambda: request(authorization="Basic " + base64.b64encode(f"u:{TOKEN}".encode()).decode())),
        ("query", lambda: request(f"/x?t={TOKEN.encode().hex()}")),
        ("path", lambda: request(f"/{TOKEN}/x")),
        ("host", lambda: request(host=f"{TOKEN.encode().hex()[:40]}.{TOKEN.encode().hex()[40:]}.allowed.test")),
    ],
)  # fmt: skip
def test_a_canary_in_the_head_is_refused_named_and_told(where: str, make) -> None:
    w, said = wire()
    f = make()
    CanaryGuard(w).requestheaders(f)
    assert f.response is not None and f.response.status_code == 403
    assert f.metadata[METADATA_KEY]["reason"] == "canary_tripped"
    assert f.metadata[CANARY_KEY][0]["canary"] == "LEGACY_GH_TOKEN" and f.metadata[CANARY_KEY][0][
        "where"
    ] == [where]
    (line,) = said
    told = json.loads(line.removeprefix(b"canary "))
    assert told["canary"] == "LEGACY_GH_TOKEN" and told["where"] == where
    assert "canary" not in (f.response.text or "") and "canary" not in str(f.response.headers).lower()
    for text in (line.decode(), f.metadata[METADATA_KEY]["detail"], f.response.text or ""):
        assert TOKEN not in text and TOKEN.encode().hex()[:40] not in text


def test_an_ordinary_request_passes_and_a_second_sighting_is_not_told_again() -> None:
    w, said = wire()
    f = request("/x?q=ghp_" + "a" * 36, authorization="Bearer ghp_" + "b" * 36)
    CanaryGuard(w).requestheaders(f)
    assert f.response is None and CANARY_KEY not in f.metadata and said == []
    for _ in range(2):
        CanaryGuard(w).requestheaders(request(f"/?t={TOKEN}"))
    assert len(said) == 1


def test_connect_targets_and_the_server_name_dialed() -> None:
    w, said = wire()
    f = request()
    f.request.method, f.request.host = "CONNECT", f"{TOKEN.lower()}.allowed.test"
    CanaryGuard(w).http_connect(f)
    assert f.response is not None and f.metadata[CANARY_KEY][0]["where"] == ["connect"]
    data = type("Data", (), {})()
    data.server = tflow.tserver_conn()
    data.server.sni = (
        base64.b32encode(PLAN.env["DEPLOY_AWS_SECRET"].encode()).decode().rstrip("=")[:50] + ".x"
    )
    data.server.error = None
    CanaryGuard(w).server_connect(data)
    assert data.server.error is None  # 50 characters of its base32: too short a part to be the canary
    data.server.sni = base64.b32encode(PLAN.env["DEPLOY_AWS_SECRET"].encode()).decode().rstrip("=") + ".x"
    CanaryGuard(w).server_connect(data)
    assert data.server.error == "netjail: refused"  # the command is told nothing of canaries
    assert json.loads(said[-1].removeprefix(b"canary "))["canary"] == "DEPLOY_AWS_SECRET"


def test_a_websocket_message_with_a_canary_is_dropped_and_the_socket_closed() -> None:
    w, said = wire()
    f = tflow.twebsocketflow()
    f.metadata[METADATA_KEY] = {"verdict": "allow", "judged_host": "allowed.test"}
    guard = CanaryGuard(w)
    f.websocket.messages.append(WebSocketMessage(Opcode.TEXT, True, b'{"t": "hello"}'))
    guard.websocket_message(f)
    assert not f.websocket.messages[-1].dropped and f.error is None  # the control passes
    escaped = "".join(f"\\u{ord(c):04x}" for c in TOKEN)
    f.websocket.messages.append(WebSocketMessage(Opcode.TEXT, True, f'{{"t": "{escaped}"}}'.encode()))
    guard.websocket_message(f)
    message = f.websocket.messages[-1]
    assert message.dropped and message.content == b"" and f.error is not None
    assert f.metadata[CANARY_KEY][0]["where"] == ["websocket message"] and len(said) == 1


def test_a_hook_that_fails_refuses(monkeypatch) -> None:
    w, _ = wire()

    def broken(*_args: object) -> list:
        raise RuntimeError(TOKEN)

    monkeypatch.setattr(w.matcher, "in_name", broken)
    f = request()
    CanaryGuard(w).requestheaders(f)
    assert f.response is not None and f.response.status_code == 502
    assert f.metadata[METADATA_KEY]["verdict"] == "deny" and TOKEN not in f.metadata[METADATA_KEY]["detail"]


def test_a_streamed_body_is_cut_before_a_canary_split_across_chunks() -> None:
    w, said = wire()
    f = request(**{"content-type": "application/octet-stream"})
    seen: list[bytes] = []
    f.request.stream = lambda chunk: seen.append(chunk) or chunk  # the recorder's tap and the injector's swap
    watch = CanaryBodyWatch(w)
    watch.requestheaders(f)
    value = TOKEN.encode()
    with taddons.context(watch):  # close_upstream asks the master for the connection (none here)
        out = [f.request.stream(c) for c in (b"harmless " * 100, b"x=" + value[:10], value[10:])]
    sent = b"".join(b"".join(o) for o in out)
    assert value not in sent and value[:10] not in sent and sent.startswith(b"harmless")
    assert f.error is not None  # killed: the host never sees the request end
    assert f.metadata[METADATA_KEY]["reason"] == "canary_tripped" and f.metadata[CANARY_KEY][0]["where"] == [
        "body"
    ]
    assert len(said) == 1 and seen  # the tap saw the bytes (the recorder counts them)


def test_a_clean_streamed_body_passes_whole() -> None:
    w, _ = wire()
    f = request()
    f.request.stream = lambda chunk: chunk
    CanaryBodyWatch(w).requestheaders(f)
    body = b"".join(b"".join(f.request.stream(c)) for c in (b"a" * 100, TOKEN.encode()[:-1], b""))
    assert body == b"a" * 100 + TOKEN.encode()[:-1] and f.error is None


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"content-encoding": "gzip"}, gzip.compress(b"k=" + TOKEN.encode())),
        ({"content-type": "application/json"}, json.dumps({"k": TOKEN}).replace("g", "\\u0067").encode()),
    ],
)
def test_a_compressed_or_json_body_is_buffered_and_decoded(headers: dict[str, str], body: bytes) -> None:
    w, _ = wire()
    f = request(**headers, **{"content-length": str(len(body))})
    tapped: list[bytes] = []
    f.request.stream = lambda chunk: tapped.append(chunk) or chunk
    watch = CanaryBodyWatch(w)
    watch.requestheaders(f)
    assert f.request.stream is False and f.metadata[BUFFERED_KEY]
    f.request.raw_content = body
    watch.request(f)
    assert f.response is not None and f.response.status_code == 403
    assert b"".join(tapped) == body  # the recorder's tap was fed by hand
    control = request(**headers, **{"content-length": "20"})
    control.request.stream = lambda chunk: chunk
    watch.requestheaders(control)
    control.request.raw_content = gzip.compress(b"k=v") if "content-encoding" in headers else b'{"k": "v"}'
    watch.request(control)
    assert control.response is None


class _Transport(asyncio.DatagramTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def sendto(self, data, addr=None) -> None:  # type: ignore[override]
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False


class _Inner(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr) -> None:
        self.got.append(data)


def _query(name: str) -> bytes:
    question = dns.Question(name, dns.types.A, dns.classes.IN)
    return dns.DNSMessage(1, True, 0, False, False, True, False, 0, 0, [question], [], [], []).packed


def test_a_lookup_carrying_a_canary_gets_nxdomain_and_a_named_record() -> None:
    async def run() -> tuple[_Transport, _Inner, list]:
        records: list = []
        w = Tripwire(PLAN.canaries, None)  # no supervisor: answered at once
        inner, transport = _Inner(), _Transport()
        guard = CanaryDns(inner, w, records.append)
        guard.connection_made(transport)
        hexed = PLAN.env["BACKUP_NPM_TOKEN"].encode().hex()
        guard.datagram_received(_query(f"{hexed[:40]}.{hexed[40:]}.allowed.test"), ("127.0.0.1", 5353))
        guard.datagram_received(_query("allowed.test"), ("127.0.0.1", 5353))
        return transport, inner, records

    transport, inner, records = asyncio.run(run())
    (record,) = records
    assert record["name"] == "canary-BACKUP-NPM-TOKEN.allowed.test" and record["reason"] == "canary_tripped"
    assert record["canaries"] == [{"canary": "BACKUP_NPM_TOKEN", "where": ["dns"], "encoding": "hex"}]
    assert dns.DNSMessage.unpack(transport.sent[0]).response_code == 3
    assert len(inner.got) == 1  # the control went to the resolver

"""Upload caps (network.limits maxRequestUploadBytes, maxHostUploadBytes, maxRunUploadBytes) through the real
proxy, checked by the origin's own byte count: a declared body over a cap gets 413 and nothing arrives; a
streamed (chunked) upload over a cap is cut, and the origin never receives more than the cap; the caps per host
and per run add up across requests; each record names the cap. Beside each, a request under the caps passes."""

from __future__ import annotations

import socket
import sys
import threading

import pytest

from tests.support.netjail import Netjail
from tests.support.servers import RawEcho, serve_connections

pytestmark = pytest.mark.nonroot


class CountingOrigin:
    """A plain-HTTP origin on 127.0.0.1 that counts every byte it receives (heads and bodies, cut or whole) and
    answers 200 once a request is complete (Content-Length or chunked)."""

    def __init__(self) -> None:
        self.received = 0
        self.requests = 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        serve_connections(self.sock, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        buffer = b""
        try:
            while chunk := conn.recv(65536):
                with self.lock:
                    self.received += len(chunk)
                buffer += chunk
                while (done := _complete(buffer)) is not None:
                    buffer = buffer[done:]
                    with self.lock:
                        self.requests += 1
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def _complete(buffer: bytes) -> int | None:
    """The length of the first complete request in `buffer`, or None."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end == -1:
        return None
    head = buffer[:head_end].decode("latin-1").lower()
    body_start = head_end + 4
    if "transfer-encoding: chunked" in head:
        at = body_start
        while (line_end := buffer.find(b"\r\n", at)) != -1:
            size = int(buffer[at:line_end].split(b";")[0], 16)
            if size == 0:
                return line_end + 4 if len(buffer) >= line_end + 4 else None
            at = line_end + 2 + size + 2
        return None
    length = next(
        (int(line.split(":")[1]) for line in head.split("\r\n") if line.startswith("content-length:")), 0
    )
    return body_start + length if len(buffer) >= body_start + length else None


@pytest.fixture
def origin():
    server = CountingOrigin()
    yield server
    server.close()


SENDER = r"""
import http.client, sys
port, size, chunked = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "chunked"
host = sys.argv[4] if len(sys.argv) > 4 else "allowed.test"
conn = http.client.HTTPConnection("127.0.0.1", 3128, timeout=20)
body = b"x" * size
try:
    if chunked:
        conn.putrequest("POST", f"http://{host}:{port}/up")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, size, 16384):
            piece = body[i:i + 16384]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
    else:
        conn.request("POST", f"http://{host}:{port}/up", body=body)
    print(conn.getresponse().status)
except (OSError, http.client.HTTPException) as e:
    print("cut", type(e).__name__)
"""


def send(netjail: Netjail, cfg, port: int, *uploads: tuple[int, str, str]):
    script = netjail.work / "upload.py"
    script.write_text(SENDER)
    command = "; ".join(
        f"{sys.executable} {script} {port} {size} {mode} {host}" for size, mode, host in uploads
    )
    return netjail.run("-s", str(cfg), "-c", command)


def capped(netjail: Netjail, **limits: int):
    return netjail.settings({"allowedDomains": ["allowed.test", "other.test"], "limits": limits})


def test_a_declared_body_over_the_request_cap_gets_413_and_nothing_arrives(
    netjail: Netjail, origin: CountingOrigin
) -> None:
    result = send(
        netjail,
        capped(netjail, maxRequestUploadBytes=10_000),
        origin.port,
        (1_000, "length", "allowed.test"),
        (50_000, "length", "allowed.test"),
    )
    assert result.stdout.split() == ["200", "413"], result.explain()
    assert origin.requests == 1 and origin.received < 10_000  # only the control arrived
    denied = [f for f in result.flows if f["verdict"] == "deny"]
    assert [(f["status"], f["reason"], f["rule"]) for f in denied] == [
        (413, "limit_exceeded", "network.limits.maxRequestUploadBytes")
    ]
    assert "more than 10000 bytes" in denied[0]["detail"]


def test_a_streamed_upload_over_the_request_cap_is_cut_at_the_cap(
    netjail: Netjail, origin: CountingOrigin
) -> None:
    result = send(
        netjail,
        capped(netjail, maxRequestUploadBytes=50_000),
        origin.port,
        (2_000, "chunked", "allowed.test"),
        (400_000, "chunked", "allowed.test"),
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "200" and lines[1] != "200", result.explain()
    assert origin.requests == 1  # the cut upload never completed at the origin
    # the control (its head and 2000 bytes of chunked body) plus at most the cap of the cut one
    assert origin.received <= 50_000 + 3_000, origin.received
    cut = [f for f in result.flows if f["verdict"] == "deny"]
    assert [(f["reason"], f["rule"]) for f in cut] == [
        ("limit_exceeded", "network.limits.maxRequestUploadBytes")
    ]
    assert cut[0]["bytes_out"] <= 50_000


def test_the_host_cap_adds_up_across_requests_and_other_hosts_keep_their_own(
    netjail: Netjail, origin: CountingOrigin
) -> None:
    uploads = [(20_000, "length", "allowed.test")] * 3 + [(20_000, "length", "other.test")]
    result = send(netjail, capped(netjail, maxHostUploadBytes=50_000), origin.port, *uploads)
    assert result.stdout.split() == ["200", "200", "413", "200"], result.explain()
    assert origin.requests == 3 and origin.received < 3 * 21_000
    denied = [f for f in result.flows if f["verdict"] == "deny"]
    assert [(f["host"], f["rule"]) for f in denied] == [("allowed.test", "network.limits.maxHostUploadBytes")]
    assert "all requests to allowed.test" in denied[0]["detail"]


def test_the_run_cap_counts_every_host_together(netjail: Netjail, origin: CountingOrigin) -> None:
    uploads = [
        (20_000, "length", "allowed.test"),
        (20_000, "length", "other.test"),
        (20_000, "length", "other.test"),
    ]
    result = send(netjail, capped(netjail, maxRunUploadBytes=50_000), origin.port, *uploads)
    assert result.stdout.split() == ["200", "200", "413"], result.explain()
    assert origin.requests == 2 and origin.received <= 50_000
    denied = [f for f in result.flows if f["verdict"] == "deny"]
    assert [(f["host"], f["rule"]) for f in denied] == [("other.test", "network.limits.maxRunUploadBytes")]


def test_raw_tcp_counts_against_the_caps_and_is_cut_at_the_cap(netjail: Netjail, raw_echo: RawEcho) -> None:
    command = raw_echo.command()
    result = netjail.run("-s", str(capped(netjail, maxRequestUploadBytes=3)), "-c", command)
    assert b"".join(raw_echo.received) == b"pin", (
        raw_echo.received,
        result.explain(),
    )  # "ping\n" cut at 3 bytes
    tcp = [f for f in result.flows if f["scheme"] == "tcp"]
    assert [(f["verdict"], f["rule"], f["bytes_out"]) for f in tcp] == [
        ("deny", "network.limits.maxRequestUploadBytes", 3)
    ]
    raw_echo.received.clear()
    control = netjail.run("-s", str(capped(netjail, maxRequestUploadBytes=100)), "-c", command)
    assert b"".join(raw_echo.received) == b"ping\n", control.explain()


WEBSOCKET = """
import socket, sys
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message, Request
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
s.sendall(f"CONNECT allowed.test:{port} HTTP/1.1\\r\\nHost: allowed.test:{port}\\r\\n\\r\\n".encode())
assert s.recv(4096).startswith(b"HTTP/1.1 200")
ws = WSConnection(ConnectionType.CLIENT)
s.sendall(ws.send(Request(host=f"allowed.test:{port}", target="/chat")))
def pump():
    try:
        data = s.recv(65536)
    except OSError:
        return ["closed"]
    if not data:
        return ["closed"]
    ws.receive_data(data)
    return list(ws.events())
assert any(isinstance(e, AcceptConnection) for e in pump())
for text in ("small", "x" * 5000):
    try:
        s.sendall(ws.send(Message(data=text)))
    except Exception:
        print("closed"); break
    events = pump()
    print(" ".join("closed" if e == "closed" else str(len(e.data)) for e in events if e == "closed" or isinstance(e, Message)) or "none")
"""


def test_websocket_messages_count_against_the_caps(netjail: Netjail, ws_origin) -> None:
    script = netjail.work / "ws.py"
    script.write_text(WEBSOCKET)
    result = netjail.run(
        "-s",
        str(capped(netjail, maxRequestUploadBytes=2_000)),
        "-c",
        f"{sys.executable} {script} {ws_origin.port}",
    )
    lines = result.stdout.split("\n")
    assert lines[0] == "5", result.explain()  # the small message was echoed: it reached the origin
    assert "5000" not in result.stdout, result.explain()  # the large one never did
    (flow,) = [f for f in result.flows if f.get("websocket")]
    assert (flow["verdict"], flow["rule"]) == ("deny", "network.limits.maxRequestUploadBytes"), flow
    control = netjail.run(
        "-s",
        str(capped(netjail, maxRequestUploadBytes=100_000)),
        "-c",
        f"{sys.executable} {script} {ws_origin.port}",
    )
    assert control.stdout.split() == ["5", "5000"], control.explain()

"""An HTTP/2 client that misbehaves on purpose, run inside the jail: `python h2client.py MODE HOST PORT [N]`.

It opens a CONNECT tunnel through netjail's proxy (`HTTPS_PROXY`), speaks h2 over TLS to the intercepting proxy
(trusting the run's CA through `SSL_CERT_FILE`, as any client in the jail does), and prints one JSON line with what
it observed: the control request's status and how the proxy ended the abusive part (`goaway` with its error code,
`reset` streams, or `closed`). Modes:
- `control`: one GET.
- `continuation`: a HEADERS frame without END_HEADERS, then up to N CONTINUATION frames that never end the block.
- `hpack-bomb`: one request whose header block is small on the wire but decodes to N copies of a 4,000-byte field
  (the first copy enters the HPACK dynamic table; the others are one-byte references to it).
- `rapid-reset`: N requests, each reset (RST_STREAM CANCEL) as soon as it is sent, then a control GET on the same
  connection.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import hyperframe.frame


def tunnel(host: str, port: int) -> ssl.SSLSocket:
    proxy = urlsplit(os.environ["HTTPS_PROXY"])
    raw = socket.create_connection((proxy.hostname, proxy.port), timeout=20)
    raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    reply = raw.recv(4096)
    if not reply.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"CONNECT refused: {reply[:60]!r}")
    context = ssl.create_default_context()
    context.set_alpn_protocols(["h2"])
    tls = context.wrap_socket(raw, server_hostname=host)
    if tls.selected_alpn_protocol() != "h2":
        raise SystemExit(f"no h2: {tls.selected_alpn_protocol()}")
    return tls


class Client:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock = tunnel(host, port)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.goaway: int | None = None
        self.resets: set[int] = set()
        self.statuses: dict[int, int] = {}
        self.closed = False

    def headers(self, path: str, extra: list[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        return [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", f"{self.host}:{self.port}"),
            (":path", path),
            *extra,
        ]

    def flush(self) -> None:
        self.send_raw(self.conn.data_to_send())

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def pump(self, until_stream: int | None = None) -> None:
        """Read until the connection closes, a GOAWAY arrives, or `until_stream` has its response."""
        while not self.closed and self.goaway is None:
            if until_stream is not None and (until_stream in self.statuses or until_stream in self.resets):
                return
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                self.closed = True
                return
            if not data:
                self.closed = True
                return
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                self.closed = True
                return
            for event in events:
                if isinstance(event, h2.events.ResponseReceived):
                    self.statuses[event.stream_id] = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.StreamReset):
                    self.resets.add(event.stream_id)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    self.goaway = int(event.error_code)
                elif isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.flush()

    def get(self, path: str) -> int | None:
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, self.headers(path), end_stream=True)
        self.flush()
        self.pump(until_stream=stream)
        return self.statuses.get(stream)

    def report(self, **fields: object) -> None:
        print(
            json.dumps({"goaway": self.goaway, "closed": self.closed, "resets": len(self.resets), **fields})
        )


def continuation_flood(client: Client, frames: int) -> None:
    stream = client.conn.get_next_available_stream_id()
    block = client.conn.encoder.encode(client.headers("/continuation"))
    head = hyperframe.frame.HeadersFrame(stream, data=block, flags=["END_STREAM"])
    client.send_raw(head.serialize())
    sent = 0
    while sent < frames and not client.closed:
        client.send_raw(hyperframe.frame.ContinuationFrame(stream, data=b"\x40\x01x\x01y" * 200).serialize())
        sent += 1
    client.sock.settimeout(10)
    client.pump()
    client.report(sent=sent)


def hpack_bomb(client: Client, copies: int) -> None:
    stream = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        stream, client.headers("/bomb", [("x-bomb", "A" * 4000)] * copies), end_stream=True
    )
    client.report(wire_bytes=len(data := client.conn.data_to_send()), **_send_and_wait(client, data, stream))


def _send_and_wait(client: Client, data: bytes, stream: int) -> dict[str, object]:
    client.send_raw(data)
    client.pump(until_stream=stream)
    return {"status": client.statuses.get(stream), "stream_reset": stream in client.resets}


def rapid_reset(client: Client, count: int) -> None:
    for _ in range(count):
        stream = client.conn.get_next_available_stream_id()
        client.conn.send_headers(stream, client.headers(f"/reset/{stream}"), end_stream=True)
        client.conn.reset_stream(stream, error_code=h2.errors.ErrorCodes.CANCEL)
        if stream % 64 == 1:
            client.flush()
    client.flush()
    client.report(control=None if client.closed else client.get("/after-resets"))


def main() -> None:
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    client = Client(host, port)
    if mode == "control":
        client.report(status=client.get("/control"))
    elif mode == "continuation":
        continuation_flood(client, count)
    elif mode == "hpack-bomb":
        hpack_bomb(client, count)
    elif mode == "rapid-reset":
        rapid_reset(client, count)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()

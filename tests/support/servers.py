"""Origin servers on 127.0.0.1: HTTP and HTTPS (`OriginHandler`), a WebSocket echo, and an accept loop for
hand-written protocols. Standard library only at import (bench/run.py loads this file on its own)."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import trustme


class OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "origin/1"

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, self.headers.get("Host")))  # type: ignore[attr-defined]
        if self.path.startswith("/bytes/"):
            self._reply(200, b"x" * int(self.path.split("/")[2]))
        elif self.path.startswith("/status/"):
            self._reply(int(self.path.split("/")[2]), b"status\n")
        elif self.path == "/headers":
            self._reply(200, json.dumps(dict(self.headers.items())).encode(), "application/json")
        else:
            self._reply(200, f"hello from {self.server.label}\n".encode())  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.seen.append(("POST", self.path, self.headers.get("Host")))  # type: ignore[attr-defined]
        self._reply(200, f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode())


@dataclass
class Origin:
    label: str
    port: int
    server: ThreadingHTTPServer

    @property
    def seen(self) -> list[tuple[str, str, str]]:
        return self.server.seen  # type: ignore[attr-defined]


def start_origin(label: str, context: ssl.SSLContext | None) -> Origin:
    """An `OriginHandler` server on an ephemeral port of 127.0.0.1 (TLS with `context`), serving in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), OriginHandler)
    server.daemon_threads = True
    server.label = label  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Origin(label, server.server_address[1], server)


def tls_server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    """A server-side TLS context with a certificate from `ca` for `names`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def serve_connections(server: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    """Accept on `server` in a background thread until it is closed; each connection is handled (and closed)
    in a thread of its own."""

    def handle_and_close(conn: socket.socket) -> None:
        with conn:
            handle(conn)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle_and_close, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


class WebSocketEcho:
    """A WebSocket echo origin (plain ws://) on 127.0.0.1, built on wsproto; `received` holds every message's data
    as it arrived."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[str | bytes] = []
        serve_connections(self.sock, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, CloseConnection, Message, Request

        ws = WSConnection(ConnectionType.SERVER)
        while data := conn.recv(65536):
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    conn.sendall(ws.send(AcceptConnection()))
                elif isinstance(event, Message):
                    self.received.append(event.data)
                    conn.sendall(ws.send(Message(data=event.data)))
                elif isinstance(event, CloseConnection):
                    conn.sendall(ws.send(event.response()))
                    return

    def close(self) -> None:
        self.sock.close()


class HandshakeCountingServer(ThreadingHTTPServer):
    """An `OriginHandler` server over TLS that remembers the ALPN protocol of every handshake it completed."""

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()  # an SSLSocket: the handshake is done when accept returns
        self.handshakes.append(conn.selected_alpn_protocol())  # type: ignore[attr-defined]
        return conn, address


def start_counting_origin(label: str, context: ssl.SSLContext) -> Origin:
    """An HTTP/1.1 origin over TLS that offers ALPN `http/1.1` and counts its handshakes (`.server.handshakes`)."""
    context.set_alpn_protocols(["http/1.1"])
    server = HandshakeCountingServer(("127.0.0.1", 0), OriginHandler)
    server.daemon_threads = True
    server.label = label  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    server.handshakes = []  # type: ignore[attr-defined]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Origin(label, server.server_address[1], server)


class H2Origin:
    """An HTTP/2-only origin over TLS (ALPN `h2` and nothing else, as a gRPC server), built on the h2 library:
    answers every GET with `h2 hello <path>` and remembers each handshake's ALPN and each request's authority."""

    def __init__(self, context: ssl.SSLContext) -> None:
        context.set_alpn_protocols(["h2"])
        self.context = context
        self.handshakes: list[str | None] = []
        self.seen: list[tuple[str, str, str]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        serve_connections(self.sock, self._serve)

    def _serve(self, raw: socket.socket) -> None:
        import h2.config
        import h2.connection
        import h2.events

        try:
            conn = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            return
        self.handshakes.append(conn.selected_alpn_protocol())
        if conn.selected_alpn_protocol() != "h2":
            return
        h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2conn.initiate_connection()
        conn.sendall(h2conn.data_to_send())
        while data := conn.recv(65536):
            for event in h2conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers = {k.decode(): v.decode() for k, v in event.headers}
                    self.seen.append((headers[":method"], headers[":path"], headers.get(":authority", "")))
                    body = f"h2 hello {headers[':path']}\n".encode()
                    h2conn.send_headers(
                        event.stream_id,
                        [
                            (":status", "200"),
                            ("content-length", str(len(body))),
                            ("content-type", "text/plain"),
                        ],
                    )
                    h2conn.send_data(event.stream_id, body, end_stream=True)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    conn.sendall(h2conn.data_to_send())
                    return
            conn.sendall(h2conn.data_to_send())

    def close(self) -> None:
        self.sock.close()


RAW_TCP_CLIENT = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(f"CONNECT allowed.test:{sys.argv[1]} HTTP/1.1\r\nHost: allowed.test:{sys.argv[1]}\r\n\r\n".encode())
head = b""
while b"\r\n\r\n" not in head and (chunk := s.recv(4096)):
    head += chunk
s.sendall(b"ping\n")
try:
    print(head.split(b"\r\n")[0].decode(), s.recv(100).decode().strip() or "closed")
except OSError:
    print(head.split(b"\r\n")[0].decode(), "closed")
"""
"""Run inside the jail as `python -c RAW_TCP_CLIENT PORT`: raw TCP (not HTTP) through a CONNECT tunnel to
allowed.test:PORT; prints the tunnel's status line and the echo of `ping` (or `closed`)."""


class RawEcho:
    """A raw TCP echo origin on 127.0.0.1 that keeps every chunk it received (the origin's own byte count)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        serve_connections(self.listener, self._echo)

    def _echo(self, conn: socket.socket) -> None:
        while data := conn.recv(100):
            self.received.append(data)
            conn.sendall(data)

    def command(self) -> str:
        """The shell command that sends `ping` to it from inside the jail."""
        return f"{sys.executable} -c '{RAW_TCP_CLIENT}' {self.port}"

    def close(self) -> None:
        self.listener.close()

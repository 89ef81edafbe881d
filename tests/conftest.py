"""Shared fixtures: real origin servers on 127.0.0.1 (HTTP and HTTPS with a trustme CA) and a runner for the real
netjail command. Every network target in this suite is loopback: names such as `allowed.test` are pinned to
127.0.0.1 with the settings' `network.hosts`, the way an operator would pin them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
import trustme

REPO = Path(__file__).resolve().parent.parent
TEST_NAMES = (
    "allowed.test",
    "denied.test",
    "other.test",
    "example.test",
    "a.example.test",
    "b.a.example.test",
)


# Tests run this interpreter inside the jail. When the checkout (and so .venv) lives under /tmp, which the jail
# replaces with a private one, the settings the tests write make it visible (it must be bound, and only allowWrite
# binds a path); the product's private /tmp is unchanged.
INTERPRETER_UNDER_TMP = [sys.prefix] if Path(sys.prefix).resolve().is_relative_to("/tmp") else []


def netjail_executable() -> str:
    """The netjail console script of the interpreter running the tests."""
    candidate = Path(sys.executable).parent / "netjail"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("netjail")
    assert found, "netjail is not installed in this environment (pip install -e .)"
    return found


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


def _start_origin(label: str, context: ssl.SSLContext | None) -> Origin:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OriginHandler)
    server.daemon_threads = True
    server.label = label  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Origin(label, server.server_address[1], server)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture(scope="session")
def http_origin() -> Origin:
    origin = _start_origin("http-origin", None)
    yield origin
    origin.server.shutdown()


@pytest.fixture(scope="session")
def https_origin(test_ca: tuple[trustme.CA, Path]) -> Origin:
    ca, _ = test_ca
    cert = ca.issue_cert(*TEST_NAMES, "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    origin = _start_origin("https-origin", context)
    yield origin
    origin.server.shutdown()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    run_dir: Path | None

    @property
    def records(self) -> list[dict]:
        assert self.run_dir is not None, f"no run directory; stderr:\n{self.stderr}"
        path = self.run_dir / "flows.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    @property
    def flows(self) -> list[dict]:
        return [r for r in self.records if r["event"] == "flow"]

    def explain(self) -> str:
        return f"exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class Netjail:
    """Runs the real netjail command with its own state directory and working directory."""

    def __init__(self, tmp_path: Path, test_ca_path: Path):
        self.state = tmp_path / "state"
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.tmp_path = tmp_path
        self.test_ca_path = test_ca_path
        # the jail has a private /tmp: a copy in the working directory is what a client inside can read
        self.jail_test_ca = self.work / "test-ca.pem"
        shutil.copy(test_ca_path, self.jail_test_ca)
        self.env = {**os.environ, "NETJAIL_STATE_DIR": str(self.state)}

    def settings(self, network: dict | None = None, filesystem: dict | None = None, **top: Any) -> Path:
        """A settings file in srt's shape with the test names pinned to loopback and the test CA trusted."""
        network = dict(network or {})
        network.setdefault("allowedDomains", [])
        network.setdefault("deniedDomains", [])
        network.setdefault("hosts", {name: "127.0.0.1" for name in TEST_NAMES})
        network.setdefault("tlsTerminate", {"extraCaCertPaths": [str(self.test_ca_path)]})
        fs = {"denyRead": [], "allowWrite": ["."], "denyWrite": [], **(filesystem or {})}
        fs["allowWrite"] = [*fs["allowWrite"], *INTERPRETER_UNDER_TMP]
        path = self.tmp_path / f"settings-{len(list(self.tmp_path.glob('settings-*.json')))}.json"
        path.write_text(json.dumps({"network": network, "filesystem": fs, **top}, indent=2))
        return path

    def latest_run(self) -> Path | None:
        latest = self.state / "runs" / "latest"
        return latest.resolve() if latest.exists() else None

    def run(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Result:
        before = self.latest_run()
        proc = subprocess.run(
            [netjail_executable(), *args],
            cwd=cwd or self.work,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        after = self.latest_run()
        return Result(proc.returncode, proc.stdout, proc.stderr, after if after != before else None)

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(
            [netjail_executable(), *args],
            cwd=self.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )


@pytest.fixture
def netjail(tmp_path: Path, test_ca: tuple[trustme.CA, Path]) -> Netjail:
    return Netjail(tmp_path, test_ca[1])


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


class DnsServer:
    """A UDP DNS server on 127.0.0.1 answering A queries from `answers` (127.0.0.1 for any other name) and
    remembering every question."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.questions: list[tuple[str, int]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import ipaddress

        from mitmproxy import dns

        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.DNSMessage.unpack(data)
            question = query.questions[0]
            self.questions.append((question.name, question.type))
            address = ipaddress.IPv4Address(self.answers.get(question.name, "127.0.0.1"))
            answers = [dns.ResourceRecord.A(question.name, address)] if question.type == 1 else []
            self.sock.sendto(query.succeed(answers).packed, peer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dns_server() -> DnsServer:
    server = DnsServer()
    yield server
    server.close()


class WebSocketEcho:
    """A WebSocket echo origin (plain ws://) on 127.0.0.1, built on wsproto."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        serve_connections(self.sock, self._serve)

    @staticmethod
    def _serve(conn) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, CloseConnection, Message, Request

        ws = WSConnection(ConnectionType.SERVER)
        while data := conn.recv(65536):
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    conn.sendall(ws.send(AcceptConnection()))
                elif isinstance(event, Message):
                    conn.sendall(ws.send(Message(data=event.data)))
                elif isinstance(event, CloseConnection):
                    conn.sendall(ws.send(event.response()))
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def ws_origin() -> WebSocketEcho:
    server = WebSocketEcho()
    yield server
    server.close()

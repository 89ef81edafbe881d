"""A git smart-HTTP origin on 127.0.0.1: `git http-backend` (CGI) behind a small threaded HTTP server that logs
every request it routed, so a test can tell what reached the origin (a denied push never does)."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
}


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _exec_path() -> Path:
    return Path(git("--exec-path").strip())


class _GitHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        server: GitServer = self.server.git  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        server.seen.append((self.command, self.path))
        body = self._body()
        if server.token is not None and _password(self.headers.get("Authorization", "")) != server.token:
            server.refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        env = {
            **GIT_ENV,
            "GIT_PROJECT_ROOT": str(server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": "tester",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        out = subprocess.run(
            [str(_exec_path() / "git-http-backend")], input=body, env=env, capture_output=True, check=False
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n") if b"\r\n\r\n" in out else out.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve


def _password(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value).decode().partition(":")[2]
    except ValueError:
        return None


@dataclass
class GitServer:
    root: Path  # GIT_PROJECT_ROOT: holds org/repo.git, a bare repository with one commit
    seen: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0
    token: str | None = (
        None  # when set, every request needs Basic auth with this password (as a forge's token)
    )
    refused: int = 0  # requests answered 401

    @property
    def repo(self) -> Path:
        return self.root / "org" / "repo.git"

    def head(self) -> str:
        return git("rev-parse", "refs/heads/main", cwd=self.repo).strip()


def start_git_server(tmp_path: Path, token: str | None = None) -> tuple[GitServer, ThreadingHTTPServer]:
    """A bare repository org/repo.git (pushes accepted, one commit on main) served over smart HTTP; with `token`,
    only to a client that sends it as its Basic-auth password."""
    root = tmp_path / "git-root"
    seed = tmp_path / "git-seed"
    git("init", "-q", str(seed))
    (seed / "README").write_text("hello from the git origin\n")
    git("add", "README", cwd=seed)
    git("commit", "-q", "-m", "first", cwd=seed)
    git("clone", "-q", "--bare", str(seed), str(root / "org" / "repo.git"))
    git("config", "http.receivepack", "true", cwd=root / "org" / "repo.git")
    state = GitServer(root, token=token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHandler)
    server.daemon_threads = True
    server.git = state  # type: ignore[attr-defined]
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server

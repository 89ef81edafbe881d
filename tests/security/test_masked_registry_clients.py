"""Masked credential files with the real clients that read them: pip with an index URL whose password is a token
(`pip.conf`), npm with an `_authToken` line (`.npmrc`). Each authenticates to a loopback registry that checks the
real token (over HTTPS with the test CA), while the file the command reads holds a placeholder; the control: the
same client with the token meant for another host sends nothing (its placeholder is refused toward this one). No
file of the run holds the token."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import shutil
import ssl
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from tests.support.netjail import Netjail
from tests.support.servers import tls_server_context

TOKEN = "pypi-" + secrets.token_urlsafe(40)
NPM_TOKEN = "npm_" + secrets.token_hex(18)
PACKAGE = "nj-demo"


def wheel() -> tuple[str, bytes]:
    """A minimal valid wheel of `nj-demo` 1.0 (pure Python, no dependencies)."""
    name, dist = "nj_demo-1.0-py3-none-any.whl", "nj_demo-1.0.dist-info"
    files = {
        "nj_demo/__init__.py": b"",
        f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: nj-demo\nVersion: 1.0\n",
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: netjail-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in files.items()
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist}/RECORD", record + f"{dist}/RECORD,,\n")
    return name, buffer.getvalue()


@dataclass
class Registry:
    port: int
    server: ThreadingHTTPServer
    authorizations: list[str] = field(default_factory=list)  # every Authorization header, as received


def _handler(registry_auth: list[str], wheel_name: str, wheel_data: bytes) -> type[BaseHTTPRequestHandler]:
    pypi_auth = "Basic " + base64.b64encode(f"__token__:{TOKEN}".encode()).decode()
    npm_auth = f"Bearer {NPM_TOKEN}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="registry"')
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            registry_auth.append(auth)
            port = self.server.server_address[1]
            digest = hashlib.sha256(wheel_data).hexdigest()
            if self.path.rstrip("/") == f"/simple/{PACKAGE}":
                if auth != pypi_auth:
                    return self._send(401, b"no\n", "text/plain")
                link = f'<a href="/files/{wheel_name}#sha256={digest}">{wheel_name}</a>'
                return self._send(200, f"<html><body>{link}</body></html>".encode(), "text/html")
            if self.path == f"/files/{wheel_name}":
                if auth != pypi_auth:
                    return self._send(401, b"no\n", "text/plain")
                return self._send(200, wheel_data, "application/octet-stream")
            if self.path == f"/{PACKAGE}":
                if auth != npm_auth:
                    return self._send(401, b'{"error":"unauthorized"}', "application/json")
                tarball = f"https://allowed.test:{port}/{PACKAGE}/-/{PACKAGE}-1.0.0.tgz"
                doc = {
                    "name": PACKAGE,
                    "dist-tags": {"latest": "1.0.0"},
                    "versions": {
                        "1.0.0": {"name": PACKAGE, "version": "1.0.0", "dist": {"tarball": tarball}}
                    },
                }
                return self._send(200, json.dumps(doc).encode(), "application/json")
            self._send(404, b"not found\n", "text/plain")

    return Handler


@pytest.fixture
def registry(test_ca: tuple[trustme.CA, Path]) -> Iterator[Registry]:
    seen: list[str] = []
    name, data = wheel()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen, name, data))
    server.daemon_threads = True
    context: ssl.SSLContext = tls_server_context(test_ca[0], "allowed.test", "other.test", "127.0.0.1")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Registry(server.server_address[1], server, seen)
    server.shutdown()


def settings(netjail: Netjail, path: Path, extract: str, inject: str) -> Path:
    credentials = {
        "files": [{"path": str(path), "mode": "mask", "extract": extract, "injectHosts": [inject]}]
    }
    return netjail.settings({"allowedDomains": ["allowed.test", "other.test"]}, credentials=credentials)


def assert_token_nowhere(run_dir: Path | None, token: str, *outputs: str) -> None:
    assert run_dir is not None
    forms = [token.encode(), base64.b64encode(f"__token__:{token}".encode())]
    for path in (p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(f in data for f in forms), f"{path.name} holds the token"
    assert not any(token in o for o in outputs)


def test_pip_authenticates_with_a_masked_index_password(netjail: Netjail, registry: Registry) -> None:
    conf = netjail.tmp_path / "pip.conf"
    conf.write_text(f"[global]\nindex-url = https://__token__:{TOKEN}@allowed.test:{registry.port}/simple/\n")
    pip = (
        f"PIP_CONFIG_FILE={conf} PIP_DISABLE_PIP_VERSION_CHECK=1 {sys.executable} -m pip download --no-deps "
        f"--no-cache-dir --retries 0 -q -d dl {PACKAGE}"
    )
    command = f"grep -c {TOKEN[:12]} {conf} || true; {pip}"
    extract = r"://[^:@/]+:([^@]+)@"
    result = netjail.run("-s", str(settings(netjail, conf, extract, "allowed.test")), "-c", command)
    assert result.returncode == 0, result.explain()
    assert result.stdout.splitlines()[0] == "0"  # the command's pip.conf holds a placeholder, not the token
    assert (netjail.work / "dl" / "nj_demo-1.0-py3-none-any.whl").is_file()
    assert registry.authorizations[-1] == "Basic " + base64.b64encode(f"__token__:{TOKEN}".encode()).decode()
    assert_token_nowhere(result.run_dir, TOKEN, result.stdout, result.stderr)
    shutil.rmtree(netjail.work / "dl")
    # the control: the token is for another host, so its placeholder toward this one is refused (never sent)
    seen = len(registry.authorizations)
    refused = netjail.run("-s", str(settings(netjail, conf, extract, "other.test")), "-c", pip)
    assert refused.returncode != 0 and not list(netjail.work.glob("dl/*.whl")), refused.explain()
    assert {f["reason"] for f in refused.flows if f["host"] == "allowed.test"} == {"credential_misdirected"}
    assert len(registry.authorizations) == seen


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_authenticates_with_a_masked_npmrc_token(netjail: Netjail, registry: Registry) -> None:
    npmrc = netjail.tmp_path / "npmrc"
    npmrc.write_text(
        f"registry=https://allowed.test:{registry.port}/\n//allowed.test:{registry.port}/:_authToken={NPM_TOKEN}\n"
    )
    npm = f"npm --userconfig {npmrc} --cache ./npm-cache --no-update-notifier view {PACKAGE} version"
    extract = r"_authToken=(\S+)"
    result = netjail.run("-s", str(settings(netjail, npmrc, extract, "allowed.test")), "-c", npm)
    assert result.returncode == 0 and result.stdout.strip() == "1.0.0", result.explain()
    assert registry.authorizations[-1] == f"Bearer {NPM_TOKEN}"
    assert_token_nowhere(result.run_dir, NPM_TOKEN, result.stdout, result.stderr)
    seen = len(registry.authorizations)
    refused = netjail.run("-s", str(settings(netjail, npmrc, extract, "other.test")), "-c", npm)
    assert refused.returncode != 0 and "1.0.0" not in refused.stdout, refused.explain()
    assert {f["reason"] for f in refused.flows if f["host"] == "allowed.test"} == {"credential_misdirected"}
    assert len(registry.authorizations) == seen

"""The baseline: a sample of the catalogue's attacks run WITHOUT netjail, to show they are real — each one works
when unconfined, so the tests that see it fail under netjail prove netjail stops it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.support.dns import DnsServer
from tests.support.servers import Origin


def sh(script: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unconfined_writes_persist_in_shell_rc_and_git_hooks(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".bashrc").write_text("original\n")
    sh("echo pwned >> .bashrc; echo pwned > .git/hooks/pre-commit", tmp_path)
    assert "pwned" in (tmp_path / ".bashrc").read_text()
    assert (tmp_path / ".git" / "hooks" / "pre-commit").read_text() == "pwned\n"


def test_unconfined_network_reaches_any_origin_directly(http_origin: Origin) -> None:
    done = sh(f"curl -sS --noproxy '*' http://127.0.0.1:{http_origin.port}/baseline", Path("/"))
    assert done.stdout == "hello from http-origin\n"


def test_unconfined_dns_query_reaches_the_resolver(dns_server: DnsServer) -> None:
    done = sh(
        f"dig +short +tries=1 +time=2 -p {dns_server.port} @127.0.0.1 secret-data.denied.test", Path("/")
    )
    assert done.stdout.strip() == "127.0.0.1"
    assert ("secret-data.denied.test", 1) in dns_server.questions


def test_unconfined_unix_socket_connects(tmp_path: Path) -> None:
    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    threading.Thread(target=lambda: server.accept()[0].close(), daemon=True).start()
    code = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('connected')"
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=30)
    server.close()
    assert done.stdout.strip() == "connected"


def test_unconfined_environment_secrets_are_inherited(tmp_path: Path) -> None:
    done = sh(
        "echo ${AWS_SECRET_ACCESS_KEY:-unset}", tmp_path, {**os.environ, "AWS_SECRET_ACCESS_KEY": "hunter2"}
    )
    assert done.stdout.strip() == "hunter2"


def test_unconfined_host_processes_are_visible(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        done = sh(f"ls /proc/{sleeper.pid} >/dev/null && echo visible", tmp_path)
        assert done.stdout.strip() == "visible"
    finally:
        sleeper.kill()

"""The macOS run path on this machine: the real runner and proxy with the seatbelt backend, sandbox-exec replaced
by a stand-in that runs the command unsandboxed. It proves the wiring that does not need a Mac: the proxy serves
the backend's listener on the host's loopback, clients reach it with the per-run credentials from the proxy
variables, flows are recorded, exit statuses come through. The sandbox itself is tests/macos (on a Mac)."""

from __future__ import annotations

import base64
import json
import socket
import sys
from pathlib import Path

import pytest

from netjail.jail.macos.sandbox_exec import PROXY_USER, SeatbeltJail
from netjail.run import runner
from netjail.settings import load_settings
from tests.support.servers import Origin

FAKE_SANDBOX_EXEC = '#!/bin/sh\n[ "$1" = "-p" ] || exit 64\nshift 2\nexec "$@"\n'


@pytest.fixture
def macos_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    fake = tmp_path / "sandbox-exec"
    fake.write_text(FAKE_SANDBOX_EXEC)
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NETJAIL_STATE_DIR", str(tmp_path / "state"))
    jails: list[SeatbeltJail] = []

    def seatbelt(settings):  # type: ignore[no-untyped-def]
        jails.append(SeatbeltJail(settings, sandbox_exec=str(fake)))
        return jails[-1]

    monkeypatch.setattr(runner, "current_jail", seatbelt)

    def go(http_port: int, script: str) -> tuple[runner.Outcome, SeatbeltJail, list[dict]]:
        cfg = tmp_path / "settings.json"
        cfg.write_text(
            json.dumps(
                {
                    "network": {
                        "allowedDomains": ["allowed.test"],
                        "deniedDomains": [],
                        "hosts": {"allowed.test": "127.0.0.1", "denied.test": "127.0.0.1"},
                    },
                    "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
                }
            )
        )
        outcome = runner.run(load_settings(cfg), ("/bin/sh", "-c", script), display_command=script)
        records = [json.loads(line) for line in (outcome.run_dir / "flows.jsonl").read_text().splitlines()]
        return outcome, jails[-1], [r for r in records if r["event"] == "flow"]

    return go


def test_requests_go_through_the_proxy_on_the_host_loopback(macos_run, http_origin: Origin) -> None:  # type: ignore[no-untyped-def]
    port = http_origin.port
    script = (
        f'curl -sS -o ok.txt "http://allowed.test:{port}/" && '
        f'curl -sS -o denied.txt -w "%{{http_code}}" "http://denied.test:{port}/" > code.txt; '
        'printf "%s" "$HTTP_PROXY" > proxy.txt; exit 3'
    )
    outcome, jail, flows = macos_run(port, script)
    assert (outcome.exit_status, outcome.reason) == (3, "exited"), outcome
    assert Path("ok.txt").read_text() == "hello from http-origin\n"
    assert Path("code.txt").read_text() == "403"
    assert Path("proxy.txt").read_text() == f"http://{PROXY_USER}:{jail.secret}@127.0.0.1:{jail.proxy_port}"
    assert [(f["host"], f["verdict"]) for f in flows] == [("allowed.test", "allow"), ("denied.test", "deny")]
    assert not jail.run_dir.exists()
    with pytest.raises(OSError):  # the proxy's entrance is gone with the run
        socket.create_connection(("127.0.0.1", jail.proxy_port), timeout=1).close()


def test_a_local_program_without_the_secret_is_refused(macos_run, http_origin: Origin) -> None:  # type: ignore[no-untyped-def]
    """Another program on the Mac (or another sandbox) that finds the port must get 407, never the policy's allow."""
    port = http_origin.port
    probe = (
        "import os, socket, sys\n"
        "host, _, p = os.environ['HTTP_PROXY'].rpartition('@')[2].partition(':')\n"
        "for auth in ('', 'Proxy-Authorization: Basic ' + sys.argv[1] + '\\r\\n'):\n"
        "    s = socket.create_connection((host, int(p)))\n"
        f"    s.sendall(('GET http://allowed.test:{port}/ HTTP/1.1\\r\\nHost: allowed.test\\r\\n' + auth + '\\r\\n').encode())\n"
        "    print(s.recv(12).decode().split()[-1])\n"
    )
    wrong = base64.b64encode(f"{PROXY_USER}:not-the-secret".encode()).decode()
    script = f"{sys.executable} -c {_sh_quote(probe)} {wrong} > codes.txt"
    outcome, _, _ = macos_run(port, script)
    assert outcome.exit_status == 0
    assert Path("codes.txt").read_text().split() == ["407", "407"]


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"

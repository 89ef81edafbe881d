"""StandbyProxy.stop: a proxy that does not stop within STOP_SECONDS is killed, and says so (`killed`), so the
run ends with `proxy_killed` and 125 instead of claiming a clean exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netjail.proxy import client


def _standby(script: str) -> client.StandbyProxy:
    proxy = client.StandbyProxy.__new__(client.StandbyProxy)
    proxy.killed = False
    proxy.control, other = __import__("socket").socketpair()
    other.close()
    proxy.process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proxy.process.stdout is not None and proxy.process.stdout.readline() == b"ready\n"
    return proxy


@pytest.mark.parametrize(
    ("script", "killed"),
    [
        ("import time; print('ready', flush=True); time.sleep(30)", False),  # SIGTERM ends it
        (
            "import signal, time, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(30)",
            True,
        ),
    ],
)
def test_stop_reports_a_kill(monkeypatch: pytest.MonkeyPatch, script: str, killed: bool) -> None:
    monkeypatch.setattr(client, "STOP_SECONDS", 0.5)
    proxy = _standby(script)
    code = proxy.stop()
    assert proxy.killed is killed
    assert code == (-9 if killed else -15)

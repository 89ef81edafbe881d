"""Finding, listing and pruning run directories (`$NETJAIL_STATE_DIR/runs/<run-id>/`).

A run is named on the command line by its id, a unique prefix of one, a path (the run directory or its
flows.jsonl), or `latest` (the default). Listing reads only the first and the last line of each flows.jsonl
(`run_start`, `run_end`), so it stays fast however many flows the runs hold.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast, overload

from netjail.records.log import utc_timestamp
from netjail.records.rundir import RUN_ID_TIME_FORMAT, RunDir, runs_dir
from netjail.records.schema import (
    DnsRecord,
    DroppedRecord,
    FlowRecord,
    FlowStart,
    Record,
    RunCounts,
    is_run_end,
    is_run_start,
)

if TYPE_CHECKING:
    from netjail.detect.secrets import Secrets

MB = 1_000_000


class RunNotFound(Exception):
    """No run matches; str() says what was looked for, where, and what to do."""


def run_dirs(root: Path) -> list[Path]:
    """Run directories, oldest first (run ids sort by start time)."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if p.is_dir() and not p.is_symlink() and _looks_like_run_id(p.name))


def _looks_like_run_id(name: str) -> bool:
    return run_id_time(name) is not None


def run_id_time(run_id: str) -> dt.datetime | None:
    """The start time encoded in a run id (`20261128T074631.519Z-e721a3`)."""
    stamp = run_id.split(".", 1)[0]
    try:
        return dt.datetime.strptime(stamp, RUN_ID_TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def resolve_run(spec: str | None, environ: Mapping[str, str] = os.environ) -> RunDir:
    """A run id, a unique prefix of one, a path, or `latest` / None for the newest run."""
    root = runs_dir(environ)
    if spec in (None, "", "latest"):
        latest = root / "latest"
        if latest.is_dir():
            return RunDir(latest.resolve())
        dirs = run_dirs(root)
        if not dirs:
            raise RunNotFound(f"no runs yet in {root}. Fix: run a command first: netjail -c 'CMD'")
        return RunDir(dirs[-1])
    assert spec is not None
    path = Path(spec).expanduser()
    if path.name == "flows.jsonl" and path.is_file():
        return RunDir(path.parent.resolve())
    if (os.sep in spec or spec.startswith(".")) or (path.is_dir() and (path / "flows.jsonl").exists()):
        if path.is_dir() and (path / "flows.jsonl").exists():
            return RunDir(path.resolve())
        raise RunNotFound(
            f"{spec} is not a run directory (it holds no flows.jsonl). Fix: netjail runs lists the runs"
        )
    matches = [p for p in run_dirs(root) if p.name.startswith(spec)]
    if len(matches) == 1:
        return RunDir(matches[0])
    if not matches:
        raise RunNotFound(f"no run id starts with {spec!r} in {root}. Fix: netjail runs lists the runs")
    shown = ", ".join(p.name for p in matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise RunNotFound(f"{spec!r} matches {len(matches)} runs ({shown}). Fix: give more of the run id")


def first_record(path: Path) -> Record | None:
    """The first line of flows.jsonl, if it is a JSON object (read alone: cheap for a run of any size)."""
    try:
        with path.open("rb") as f:
            line = f.readline(1_000_000)
    except OSError:
        return None
    return _parse(line)


def _last_line(path: Path) -> Record | None:
    """The last complete JSON line, read from the end of the file."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            size = min(end, 65536)
            while True:
                f.seek(end - size)
                chunk = f.read(size)
                lines = chunk.rstrip(b"\n").split(b"\n")
                if len(lines) > 1 or size == end:
                    return _parse(lines[-1])
                size = min(end, size * 4)
    except OSError:
        return None


def _parse(line: bytes) -> Record | None:
    try:
        record: Record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def netjail_alive(pid: object) -> bool:
    """The netjail that wrote run_start is still running (a reused pid that is not netjail's does not count)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        return b"netjail" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


@dataclass
class RunInfo:
    run_id: str
    path: Path
    started: dt.datetime | None
    command: str | None
    exit_status: int | None
    end_reason: str | None
    counts: RunCounts | None = None
    network_mode: str | None = None
    size: int = 0
    in_progress: bool = False
    ended: dt.datetime | None = None
    start_ts: str | None = None  # run_start's ts as written

    def as_json(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "path": str(self.path),
            "start": self.start_ts or (utc_timestamp(self.started.timestamp()) if self.started else None),
            "command": self.command,
            "exit_status": self.exit_status,
            "end_reason": self.end_reason,
            "counts": self.counts or {},
            "network_mode": self.network_mode,
            "bytes_on_disk": self.size,
            "in_progress": self.in_progress,
        }


def run_info(path: Path, *, with_size: bool = True) -> RunInfo:
    run = RunDir(path)
    first = first_record(run.flows_jsonl)  # run_start, unless netjail was killed before it wrote one
    start = first if first is not None and is_run_start(first) else None
    last = _last_line(run.flows_jsonl)
    end = last if last is not None and is_run_end(last) else None
    first_ts = first.get("ts") if first is not None else None
    started = _time(first_ts) or run_id_time(path.name)
    in_progress = end is None and netjail_alive(start.get("pid") if start else None)
    return RunInfo(
        run_id=path.name,
        path=path,
        started=started,
        command=start.get("command") if start else None,
        exit_status=end.get("exit_status") if end else None,
        end_reason=end.get("reason") if end else None,
        counts=(end.get("counts") or None) if end else None,
        network_mode=start.get("network_mode") if start else None,
        size=dir_size(path) if with_size else 0,
        in_progress=in_progress,
        ended=_time(end.get("ts") if end else None),
        start_ts=first_ts if isinstance(first_ts, str) else None,
    )


def _time(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def list_runs(environ: Mapping[str, str] = os.environ) -> Iterator[RunInfo]:
    for path in run_dirs(runs_dir(environ)):
        yield run_info(path)


# ---------------------------------------------------------------------------------------------------------
# Retention
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    info: RunInfo
    why: str


def plan_prune(
    runs: list[RunInfo], max_age_days: int | None, max_total_mb: int | None, now: dt.datetime | None = None
) -> list[Removal]:
    """What `retention` removes: every run that started more than max_age_days ago, then the oldest of the
    rest until all runs together take at most max_total_mb. A run still in progress is never removed."""
    now = now or dt.datetime.now(dt.UTC)
    ordered = sorted(runs, key=lambda r: r.run_id)
    removals: list[Removal] = []
    kept: list[RunInfo] = []
    for info in ordered:
        if info.in_progress:
            kept.append(info)
            continue
        if max_age_days is not None and info.started is not None:
            age = now - info.started
            if age > dt.timedelta(days=max_age_days):
                removals.append(Removal(info, f"started {age.days} days ago (maxAgeDays {max_age_days})"))
                continue
        kept.append(info)
    if max_total_mb is not None:
        limit = max_total_mb * MB
        total = sum(r.size for r in kept)
        for info in kept:
            if total <= limit:
                break
            if info.in_progress:
                continue
            removals.append(
                Removal(info, f"runs took {total / MB:.1f} MB, over maxTotalMB {max_total_mb}; oldest first")
            )
            total -= info.size
    return removals


def remove_runs(removals: list[Removal], environ: Mapping[str, str] = os.environ) -> None:
    root = runs_dir(environ)
    for removal in removals:
        shutil.rmtree(removal.info.path, ignore_errors=True)
    latest = root / "latest"
    if os.path.lexists(latest) and not latest.exists():  # it pointed at a removed run
        remaining = run_dirs(root)
        if remaining:
            RunDir(remaining[-1]).point_latest()
        else:
            latest.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------------
# Reading a run's records for a report
# ---------------------------------------------------------------------------------------------------------


def _audit_settings(run: RunDir) -> tuple[list[str], list[str]]:
    try:
        data = json.loads(run.settings_json.read_text(encoding="utf-8"))
        audit = data.get("audit") or {}
        env_names = [n for n in audit.get("secretEnv") or [] if isinstance(n, str)]
        files = [f for f in audit.get("secretFiles") or [] if isinstance(f, str)]
    except (OSError, ValueError, AttributeError):
        return [], []
    return env_names, files


def configured_secrets(run: RunDir) -> list[str]:
    """The secrets the run's settings name, as flags name them (`env:NAME`, `file:PATH`)."""
    env_names, files = _audit_settings(run)
    return [f"env:{n}" for n in env_names] + [f"file:{Path(f).expanduser()}" for f in files]


def run_secrets(run: RunDir, environ: Mapping[str, str] = os.environ) -> Secrets:
    """The secrets the run's settings name (audit.secretEnv / secretFiles), read now: reports replace them
    again, in case a record was written by something that did not (an older netjail, stock mitmdump)."""
    from netjail.detect.secrets import Secrets

    env_names, files = _audit_settings(run)
    if not env_names and not files:
        return Secrets()
    return Secrets.load(env_names, files, environ)[0]


@overload
def flow_records(
    run: RunDir, secrets: Secrets | None = None, events: tuple[Literal["flow"]] = ("flow",)
) -> Iterator[FlowRecord]: ...
@overload
def flow_records(
    run: RunDir, secrets: Secrets | None = None, *, events: tuple[Literal["flow"], Literal["dns"]]
) -> Iterator[FlowRecord | DnsRecord]: ...
@overload
def flow_records(
    run: RunDir, secrets: Secrets | None = None, *, events: tuple[str, ...]
) -> Iterator[FlowRecord | DnsRecord | DroppedRecord]: ...
def flow_records(
    run: RunDir, secrets: Secrets | None = None, events: tuple[str, ...] = ("flow",)
) -> Iterator[FlowRecord | DnsRecord | DroppedRecord]:
    """The run's records of the given events (`flow`; `dns` for the jail resolver's; `dropped` for packets the
    jail's network dropped), streamed, with any configured secret value replaced. With `flow`, a `flow_start`
    that no `flow` completed (the proxy was killed meanwhile) comes last, as an incomplete flow. Their `event`
    is known: readers may test `record["event"]`."""
    from netjail.detect.secrets import redact_record
    from netjail.records.read import iter_records

    open_starts: dict[object, FlowStart] = {}
    for record in iter_records(run.flows_jsonl):
        event = record.get("event")
        if event == "flow_start" and "flow" in events:
            open_starts[record.get("id")] = cast(FlowStart, record)
            continue
        if event == "flow":
            open_starts.pop(record.get("id"), None)
        if event not in events:
            continue
        if secrets:
            redact_record(cast(dict, record), secrets)  # detect/ (below records) edits a plain dict
        yield cast("FlowRecord | DnsRecord | DroppedRecord", record)  # its event was checked above
    for start in open_starts.values():
        incomplete = incomplete_flow(start)
        if secrets:
            redact_record(cast(dict, incomplete), secrets)
        yield incomplete


INCOMPLETE_DETAIL = (
    "the proxy stopped before this flow ended: it was under way, and how much it sent is unknown"
)


def incomplete_flow(start: FlowStart) -> FlowRecord:
    """A `flow_start` without its `flow`, read as a flow record: what was known when it started, bytes unknown."""
    return cast(
        FlowRecord,
        dict(start)
        | {
            "event": "flow",
            "incomplete": True,
            "status": None,
            "bytes_out": None,
            "bytes_in": None,
            "tunnel": start.get("method") in ("CONNECT", None),
            "detail": INCOMPLETE_DETAIL,
        },
    )

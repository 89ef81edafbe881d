"""Closing the records of runs whose netjail was killed (SIGKILL, power loss) before it could."""

from __future__ import annotations

import os
import time
from pathlib import Path

from netjail.records import build
from netjail.records.log import RecordLog
from netjail.records.reserve import LogReserve
from netjail.records.rundir import RunDir, live_runs
from netjail.records.runs import first_record, netjail_alive
from netjail.records.schema import is_run_start
from netjail.run.journal import JOURNAL_FILE, complete_abandoned


def sweep_abandoned(root: Path) -> list[Path]:
    """Runs whose netjail was killed (SIGKILL, power loss) still hold their CA key and have no run_end: remove
    the key and close their record. A run is live while the process named in its run_start exists."""
    swept = []
    for run in live_runs(root):
        proxy_dir = run.proxy_dir if os.path.lexists(run.proxy_dir) else run.path / "proxy"
        first = first_record(run.flows_jsonl)
        pid = first.get("pid") if first is not None and is_run_start(first) else None
        if pid and netjail_alive(int(pid)):
            continue
        if not pid and time.time() - proxy_dir.stat().st_mtime < 60:
            continue  # being set up right now by another netjail
        run.remove_secrets()
        try:
            reserve = LogReserve.open(run.reserve_file) if run.reserve_file.exists() else None
            records = RecordLog(run.flows_jsonl, reserve)
            _write_completed(records, complete_abandoned(run.path))
            records.write(
                build.run_end(
                    run.run_id,
                    None,
                    "interrupted",
                    message="netjail was killed; a later run removed the run's CA key and closed this record",
                )
            )
        except OSError:
            pass
        # the log's reserve (netjail/records/reserve.py) is not needed once the record is closed
        run.reserve_file.unlink(missing_ok=True)
        swept.append(run.path)
    swept += _complete_journals(root, exclude=set(swept))
    return swept


def _complete_journals(root: Path, exclude: set[Path]) -> list[Path]:
    """Runs whose end-of-run replay did not finish (killed during it, or it met errors): replayed again. A live
    run holds its journal's lock, so it is never touched here."""
    completed = []
    for journal in root.glob(f"*/{JOURNAL_FILE}"):
        if journal.parent in exclude:
            continue
        cleanup = complete_abandoned(journal.parent)
        if cleanup is None:
            continue
        try:
            run = RunDir(journal.parent)
            records = RecordLog(run.flows_jsonl)
            _write_completed(records, cleanup)
            if not _has_run_end(run.flows_jsonl):  # killed between removing its key and writing run_end
                records.write(
                    build.run_end(
                        run.run_id,
                        None,
                        "interrupted",
                        message="netjail was killed while the run ended; a later run completed its end",
                        cleanup_errors=cleanup.errors,
                    )
                )
            records.close()
        except OSError:
            pass
        completed.append(journal.parent)
    return completed


def _has_run_end(path: Path) -> bool:
    try:
        return any(b'"event":"run_end"' in line for line in path.read_bytes().splitlines()[-50:])
    except OSError:
        return False


def _write_completed(records: RecordLog, cleanup) -> None:
    if cleanup is None:
        return
    for record in cleanup.records:
        records.write(build.quarantine(record, swept=True))

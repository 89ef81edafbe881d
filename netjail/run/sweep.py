"""Closing the records of runs whose netjail was killed (SIGKILL, power loss) before it could."""

from __future__ import annotations

import time
from pathlib import Path

from netjail.jail.persistence import quarantine
from netjail.records import build
from netjail.records.log import RecordLog
from netjail.records.rundir import RunDir
from netjail.records.runs import first_record, netjail_alive
from netjail.records.schema import is_run_start


def sweep_abandoned(root: Path) -> list[Path]:
    """Runs whose netjail was killed (SIGKILL, power loss) still hold their CA key and have no run_end: remove
    the key and close their record. A run is live while the process named in its run_start exists."""
    swept = []
    for proxy_dir in root.glob("*/proxy"):
        run = RunDir(proxy_dir.parent)
        first = first_record(run.flows_jsonl)
        pid = first.get("pid") if first is not None and is_run_start(first) else None
        if pid and netjail_alive(int(pid)):
            continue
        if not pid and time.time() - proxy_dir.stat().st_mtime < 60:
            continue  # being set up right now by another netjail
        run.remove_secrets()
        try:
            records = RecordLog(run.flows_jsonl)
            for moved in quarantine(run.path):
                records.write(build.quarantine({"path": moved["path"], "moved_to": moved["moved_to"]}))
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
        swept.append(run.path)
    return swept

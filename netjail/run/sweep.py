"""Closing the records of runs whose netjail was killed (SIGKILL, power loss) before it could."""

from __future__ import annotations

import json
import time
from pathlib import Path

from netjail.jail.persistence import quarantine
from netjail.records.reserve import LogReserve
from netjail.records.rundir import RecordLog, RunDir, utc_timestamp
from netjail.records.runs import netjail_alive


def sweep_abandoned(root: Path) -> list[Path]:
    """Runs whose netjail was killed (SIGKILL, power loss) still hold their CA key and have no run_end: remove
    the key and close their record. A run is live while the process named in its run_start exists."""
    swept = []
    for proxy_dir in root.glob("*/proxy"):
        run = RunDir(proxy_dir.parent)
        try:
            with run.flows_jsonl.open() as f:
                start = json.loads(f.readline() or "{}")
        except (OSError, ValueError):
            start = {}
        pid = start.get("pid")
        if pid and netjail_alive(int(pid)):
            continue
        if not pid and time.time() - proxy_dir.stat().st_mtime < 60:
            continue  # being set up right now by another netjail
        run.remove_secrets()
        try:
            reserve = LogReserve.open(run.reserve_file) if run.reserve_file.exists() else None
            records = RecordLog(run.flows_jsonl, reserve)
            for moved in quarantine(run.path):
                records.write({"event": "quarantine", "ts": utc_timestamp(), **moved})
            records.write(
                {
                    "event": "run_end",
                    "ts": utc_timestamp(),
                    "run_id": run.run_id,
                    "exit_status": None,
                    "reason": "interrupted",
                    "message": "netjail was killed; a later run removed the run's CA key and closed this record",
                    "signal": None,
                    "counts": None,
                }
            )
        except OSError:
            pass
        # the log's reserve (netjail/records/reserve.py) is not needed once the record is closed
        run.reserve_file.unlink(missing_ok=True)
        swept.append(run.path)
    return swept

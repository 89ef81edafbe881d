"""The records the supervisor writes itself (the proxy writes `flow` and `dns`): one builder each, so the
runner and the sweep of abandoned runs write the same shape."""

from __future__ import annotations

import os

from netjail import __version__
from netjail.records.log import utc_timestamp
from netjail.records.schema import (
    CaptureMode,
    EndReason,
    NetworkMode,
    Quarantined,
    QuarantineRecord,
    RunCounts,
    RunEnd,
    RunStart,
    SettingsOrigin,
)


def run_start(
    run_id: str,
    *,
    command: str,
    argv: list[str],
    cwd: str,
    settings_file: str,
    settings_origin: SettingsOrigin,
    platform: str,
    capture_mode: CaptureMode | None,
    network_mode: NetworkMode,
) -> RunStart:
    return {
        "event": "run_start",
        "ts": utc_timestamp(),
        "run_id": run_id,
        "command": command,
        "argv": argv,
        "cwd": cwd,
        "settings_file": settings_file,
        "settings_origin": settings_origin,
        "netjail_version": __version__,
        "platform": platform,
        "capture_mode": capture_mode,
        "network_mode": network_mode,
        "pid": os.getpid(),
    }


def run_end(
    run_id: str,
    exit_status: int | None,
    reason: EndReason,
    *,
    message: str | None = None,
    signal: int | None = None,
    counts: RunCounts | None = None,
    cleanup_errors: list[str] | None = None,
) -> RunEnd:
    record: RunEnd = {
        "event": "run_end",
        "ts": utc_timestamp(),
        "run_id": run_id,
        "exit_status": exit_status,
        "reason": reason,
        "message": message or None,
        "signal": signal,
        "counts": counts,
    }
    if cleanup_errors is not None:
        record["cleanup_errors"] = cleanup_errors
    return record


def quarantine(moved: Quarantined, *, swept: bool = False) -> QuarantineRecord:
    """What the end of the run took out of the tree; `swept` when a later run's sweep did it."""
    if swept:
        return {"event": "quarantine", "ts": utc_timestamp(), "swept": True, **moved}
    return {"event": "quarantine", "ts": utc_timestamp(), **moved}

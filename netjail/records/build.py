"""The records the supervisor writes itself (the proxy writes `flow` and `dns`): one builder each, so the
runner and the sweep of abandoned runs write the same shape."""

from __future__ import annotations

from netjail.records.log import utc_timestamp
from netjail.records.schema import EndReason, QuarantineRecord, RunCounts, RunEnd


def run_end(
    run_id: str,
    exit_status: int | None,
    reason: EndReason,
    *,
    message: str | None = None,
    signal: int | None = None,
    counts: RunCounts | None = None,
) -> RunEnd:
    return {
        "event": "run_end",
        "ts": utc_timestamp(),
        "run_id": run_id,
        "exit_status": exit_status,
        "reason": reason,
        "message": message or None,
        "signal": signal,
        "counts": counts,
    }


def quarantine(path: str, moved_to: str) -> QuarantineRecord:
    """A protected name the command created, and where it was moved (netjail/jail/persistence.py)."""
    return {"event": "quarantine", "ts": utc_timestamp(), "path": path, "moved_to": moved_to}

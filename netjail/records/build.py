"""The records the supervisor writes itself (the proxy writes `flow` and `dns`): one builder each, so the
runner and the sweep of abandoned runs write the same shape."""

from __future__ import annotations

from netjail.records.log import utc_timestamp
from netjail.records.schema import EndReason, Quarantined, QuarantineRecord, RunCounts, RunEnd


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

"""How a run ended: the outcome the supervisor reports, and the failure of netjail itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from netjail.records import build
from netjail.records.schema import EndReason, RunCounts, RunEnd


class RunFailed(Exception):
    """netjail itself failed: the message is for the user, the reason goes into run_end."""

    def __init__(self, message: str, reason: EndReason = "setup_failed"):
        super().__init__(message)
        self.reason = reason


@dataclass
class Outcome:
    exit_status: int
    reason: EndReason
    message: str = ""
    signal_received: int | None = None
    counts: RunCounts | None = None
    run_dir: Path | None = None
    cleanup_errors: list[str] = field(default_factory=list)

    def run_end(self, run_id: str) -> RunEnd:
        """The run's last record."""
        return build.run_end(
            run_id,
            self.exit_status,
            self.reason,
            message=self.message,
            signal=self.signal_received,
            counts=self.counts,
            cleanup_errors=self.cleanup_errors,
        )

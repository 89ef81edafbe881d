"""Writing flows.jsonl: one JSON object per line, appended, each record whole or not at all."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from netjail.records.reserve import NO_SPACE, LogReserve
from netjail.records.schema import Record


def utc_timestamp(when: float | None = None) -> str:
    """RFC 3339, UTC, milliseconds: the `ts` of every record."""
    moment = dt.datetime.fromtimestamp(when, dt.UTC) if when is not None else dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class RecordLog:
    """Appends one JSON object per line to flows.jsonl.

    Each record is written with a single `write` on an O_APPEND descriptor and flushed to the kernel at once,
    so the supervisor and the proxy process can both append without interleaving, and a record is on disk
    (in the page cache) before the traffic it describes goes further. Any OSError propagates: the callers
    treat an unwritable log as fatal.
    """

    def __init__(self, path: Path, reserve: LogReserve | None = None):
        self.path = path
        self.reserve = reserve
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    @property
    def on_reserve(self) -> bool:
        """The disk filled and this log has drawn on its reserve: egress must stop."""
        return self.reserve is not None and self.reserve.drawn

    def write(self, record: Record) -> None:
        line = json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str) + "\n"
        data = line.encode()
        written = self._append(data)
        if written != len(data):
            raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")

    def _append(self, data: bytes) -> int:
        """One write(2); when the disk is full, space is taken from the reserve and the write tried again."""
        while True:
            try:
                return os.write(self._fd, data)
            except OSError as e:
                if e.errno not in NO_SPACE or self.reserve is None or not self.reserve.release(len(data)):
                    raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

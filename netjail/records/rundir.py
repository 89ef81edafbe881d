"""Where a run's records live: `$NETJAIL_STATE_DIR/runs/<run-id>/`.

A run directory holds `flows.jsonl` (one JSON object per line), `flows.mitm` (mitmproxy's own flow file),
`settings.json` (the effective settings) and, while the run lasts, `proxy/` (the per-run CA and the trust
bundle). Everything is private to the user (0700 / 0600).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from netjail.records.reserve import NO_SPACE, LogReserve

RUN_ID_TIME_FORMAT = "%Y%m%dT%H%M%S"


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    if explicit := environ.get("NETJAIL_STATE_DIR"):
        return Path(explicit).expanduser().absolute()
    xdg = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg).expanduser().absolute() / "netjail"


def runs_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return state_dir(environ) / "runs"


def utc_timestamp(when: float | None = None) -> str:
    """RFC 3339, UTC, milliseconds: the `ts` of every record."""
    moment = dt.datetime.fromtimestamp(when, dt.UTC) if when is not None else dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_run_id() -> str:
    """Sortable by start time; the random suffix keeps concurrent runs apart."""
    now = dt.datetime.now(dt.UTC)
    return f"{now.strftime(RUN_ID_TIME_FORMAT)}.{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def flows_jsonl(self) -> Path:
        return self.path / "flows.jsonl"

    @property
    def flows_mitm(self) -> Path:
        return self.path / "flows.mitm"

    @property
    def reserve_file(self) -> Path:
        """Space held for flows.jsonl while the run lasts (netjail/records/reserve.py); removed when it ends."""
        return self.path / "flows.reserve"

    @property
    def settings_json(self) -> Path:
        return self.path / "settings.json"

    @property
    def proxy_dir(self) -> Path:
        """The CA key and other proxy secrets: removed when the run ends."""
        return self.path / "proxy"

    @classmethod
    def create(cls, environ: Mapping[str, str] = os.environ) -> RunDir:
        root = runs_dir(environ)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(root.parent, 0o700)
        path = root / new_run_id()
        path.mkdir(mode=0o700)
        (path / "proxy").mkdir(mode=0o700)
        return cls(path)

    def point_latest(self) -> None:
        """`runs/latest` -> this run, replaced atomically so readers never see it missing."""
        link = self.path.parent / "latest"
        tmp = self.path.parent / f".latest-{self.run_id}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.run_id)
        os.replace(tmp, link)

    def remove_secrets(self) -> None:
        shutil.rmtree(self.proxy_dir, ignore_errors=True)


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

    def write(self, record: Mapping[str, Any]) -> None:
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

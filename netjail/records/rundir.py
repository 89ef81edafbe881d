"""Where a run's records live: `$NETJAIL_STATE_DIR/runs/<run-id>/`.

A run directory holds `flows.jsonl` (one JSON object per line), `flows.mitm` (mitmproxy's own flow file),
`settings.json` (the effective settings) and, while the run lasts, `proxy/` (the per-run CA and the trust
bundle). Everything is private to the user (0700 / 0600).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

RUN_ID_TIME_FORMAT = "%Y%m%dT%H%M%S"


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    if explicit := environ.get("NETJAIL_STATE_DIR"):
        return Path(explicit).expanduser().absolute()
    xdg = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg).expanduser().absolute() / "netjail"


def runs_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return state_dir(environ) / "runs"


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

"""Where a run's records live: `$NETJAIL_STATE_DIR/runs/<run-id>/`; and, while it lasts, its live material.

A run directory holds `flows.jsonl` (one JSON object per line), `flows.mitm` (mitmproxy's own flow file) and
`settings.json` (the effective settings). The live material (the per-run CA key, the trust bundles, the proxy's
secret) is kept apart, in `<live root>/<run-id>/` (`RunDir.proxy_dir`), under one root per user that every jail
hides whatever state directory either run uses: see `live_root`. Everything is private to the user (0700 / 0600).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RUN_ID_TIME_FORMAT = "%Y%m%dT%H%M%S"


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    if explicit := environ.get("NETJAIL_STATE_DIR"):
        return Path(explicit).expanduser().absolute()
    xdg = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg).expanduser().absolute() / "netjail"


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The state directory a run without NETJAIL_STATE_DIR uses: the history a custom one must not reveal."""
    return state_dir({k: v for k, v in environ.items() if k != "NETJAIL_STATE_DIR"})


def live_root(environ: Mapping[str, str] = os.environ) -> Path:
    """The one directory of this user under which live runs keep their CA key and secrets, whatever state
    directory they use. On Linux it lies under /run, which every jail replaces with an empty tmpfs: the user's
    private runtime directory (XDG_RUNTIME_DIR, /run/user/UID), else /run/netjail-UID where /run is writable
    (root). Else a private directory in the temporary directory, which jails hide too (Linux: the private /tmp;
    macOS: the temporary directories) — and every jail masks the live root explicitly as well."""
    uid = os.getuid()
    for base in (environ.get("XDG_RUNTIME_DIR"), f"/run/user/{uid}"):
        if base and os.path.isabs(base) and _private_to(Path(base), uid):
            return Path(base) / "netjail"
    if os.path.isdir("/run") and os.access("/run", os.W_OK):
        return Path(f"/run/netjail-{uid}")
    return Path(tempfile.gettempdir()) / f"netjail-{uid}"


def _private_to(path: Path, uid: int) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not info.st_mode & 0o077


def _ensure_private_dir(path: Path) -> None:
    """Make `path` (0700), or accept it only when it is a real directory of this user that no one else can use:
    in a shared temporary directory, another user could have made it first."""
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        pass
    if not _private_to(path, os.getuid()):
        raise OSError(
            f"{path} is not a private directory of this user (a symlink, or another user's, or open "
            f"to others); netjail keeps its CA key there. Fix: remove it, or set XDG_RUNTIME_DIR"
        )


KNOWN_STATE_DIRS = 32  # custom state directories remembered (and hidden from later jails), newest last


def known_state_dirs(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """Custom state directories runs of this user have used, listed in the default state directory (which every
    jail hides, so a run cannot add to or read the list)."""
    try:
        lines = (default_state_dir(environ) / "state-dirs").read_text().splitlines()
    except OSError:
        return []
    return [Path(line) for line in lines if line.startswith("/")]


def register_state_dir(environ: Mapping[str, str] = os.environ) -> None:
    """Remember this run's state directory when it is a custom one, so that later jails hide it too."""
    current, default = state_dir(environ), default_state_dir(environ)
    if current == default:
        return
    known = [p for p in known_state_dirs(environ) if p != current][-(KNOWN_STATE_DIRS - 1) :] + [current]
    listing = default / "state-dirs"
    tmp = default / f".state-dirs-{os.getpid()}"
    tmp.write_text("".join(f"{p}\n" for p in known))
    os.replace(tmp, listing)


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
    def reserve_file(self) -> Path:
        """Space held for flows.jsonl while the run lasts (netjail/records/reserve.py); removed when it ends."""
        return self.path / "flows.reserve"

    @property
    def settings_json(self) -> Path:
        return self.path / "settings.json"

    @property
    def proxy_dir(self) -> Path:
        """The run's live material (CA key, trust bundles, proxy secret), under the live root: removed when the
        run ends. Its `records` link names this run directory, for the sweep after a kill."""
        return live_root() / self.run_id

    @classmethod
    def create(cls, environ: Mapping[str, str] = os.environ) -> RunDir:
        root = runs_dir(environ)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(root.parent, 0o700)
        path = root / new_run_id()
        path.mkdir(mode=0o700)
        run = cls(path)
        _ensure_private_dir(run.proxy_dir.parent)
        run.proxy_dir.mkdir(mode=0o700)
        (run.proxy_dir / "records").symlink_to(path)
        return run

    def point_latest(self) -> None:
        """`runs/latest` -> this run, replaced atomically so readers never see it missing."""
        link = self.path.parent / "latest"
        tmp = self.path.parent / f".latest-{self.run_id}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.run_id)
        os.replace(tmp, link)

    def remove_secrets(self) -> None:
        shutil.rmtree(self.proxy_dir, ignore_errors=True)
        shutil.rmtree(self.path / "proxy", ignore_errors=True)  # where runs of netjail before 2026-12 kept it


def live_runs(runs: Path) -> list[RunDir]:
    """Runs whose live material still exists: every run of this user under the live root (whatever its state
    directory), and those under `runs` that kept it in their run directory (netjail before 2026-12)."""
    found = {proxy.parent: None for proxy in runs.glob("*/proxy")}
    for link in live_root().glob("*/records"):
        try:
            found.setdefault(Path(os.readlink(link)), None)
        except OSError:
            continue
    return [RunDir(path) for path in found]

"""Protected names that do not exist yet.

The jail makes existing shell rc files, git hooks and config, editor task folders (jail.DANGEROUS_*) read-only,
and pins their parents against renaming. A name that does not exist yet cannot be covered that way without
first creating a stub file in the user's tree (srt's "ghost files", which then show up in `git status` and get
committed). netjail watches those names instead: they are listed before the command starts (`watch.json` in the
run directory, so that a killed run is handled by the next one), and whatever the command created under them is
moved into the run's `quarantine/` folder when the run ends, recorded, and reported.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from netjail.jail.paths import DANGEROUS_DIRECTORIES, DANGEROUS_FILES, GIT_DIR_DENIES
from netjail.jail.spec import PathRules

WATCH_FILE = "watch.json"
QUARANTINE_DIR = "quarantine"


def missing_protected_paths(rules: PathRules, allow_git_config: bool) -> list[Path]:
    missing: list[Path] = []
    for root in rules.writable:
        candidates = [root / name for name in (*DANGEROUS_FILES, *DANGEROUS_DIRECTORIES)]
        if (root / ".git").is_dir():
            candidates += [
                root / ".git" / d for d in GIT_DIR_DENIES if not (allow_git_config and d == "config")
            ]
        missing += [p for p in candidates if not os.path.lexists(p)]
    return missing


def write_watch(run_path: Path, paths: list[Path]) -> None:
    (run_path / WATCH_FILE).write_text(json.dumps([str(p) for p in paths]))


def quarantine(run_path: Path) -> list[dict[str, str]]:
    """Move what appeared under a watched name into the run's quarantine; the watch list is then consumed."""
    watch = run_path / WATCH_FILE
    try:
        paths = [Path(p) for p in json.loads(watch.read_text())]
    except (OSError, ValueError):
        return []
    moved = []
    for path in paths:
        if not os.path.lexists(path):
            continue
        destination = run_path / QUARANTINE_DIR / path.relative_to(path.anchor)
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.move(path, destination)
        moved.append({"path": str(path), "moved_to": str(destination)})
    watch.unlink()
    return moved

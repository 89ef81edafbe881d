"""Protected names that do not exist yet, and the transient stubs of user denyWrite entries.

The jail makes existing shell rc files, git hooks and config, editor task folders (jail.DANGEROUS_*) read-only,
and pins their parents against renaming. A name that does not exist yet cannot be covered that way without
first creating a stub file in the user's tree (srt's "ghost files", which then show up in `git status` and get
committed). netjail watches those names instead: they are listed in the run's journal before the command starts
(so that a killed run is completed by the next one), moved into the run's `quarantine/` folder as soon as they
appear (netjail.jail.watch, Linux) and again when the run ends.

A user's `denyWrite` entry that does not exist yet is the exception (ATTACKS F4 allows it): on Linux a bind
mount needs a mount point, so an empty file is created there before the jail starts, bound read-only, and
removed when the run ends (or by the next run's sweep after a kill, from the journal).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from netjail.jail.paths import DANGEROUS_DIRECTORIES, DANGEROUS_FILES, GIT_DIR_DENIES
from netjail.jail.quarantine import Note, open_parent
from netjail.jail.spec import PathRules

QUARANTINE_DIR = "quarantine"


def missing_protected_paths(rules: PathRules, allow_git_config: bool) -> list[Path]:
    missing: list[Path] = []
    for root in rules.writable:
        candidates = [root / name for name in (*DANGEROUS_FILES, *DANGEROUS_DIRECTORIES)]
        if (root / ".git").is_dir():
            candidates += [
                root / ".git" / d for d in GIT_DIR_DENIES if not (allow_git_config and d == "config")
            ]
        # a name reached through a symlink the user made is not in the tree the jail can write
        missing += [p for p in candidates if not os.path.lexists(p) and not _through_symlink(p, root)]
    return missing


def _through_symlink(path: Path, root: Path) -> bool:
    return any(os.path.islink(p) for p in path.parents if root in p.parents)


def quarantine_destination(run_path: Path, path: Path) -> Path:
    return run_path / QUARANTINE_DIR / path.relative_to(path.anchor)


def missing_read_only(rules: PathRules) -> list[Path]:
    """Read-only entries (user denyWrite) that do not exist yet inside a writable root: they need a stub."""
    return [
        p
        for p in rules.read_only
        if not os.path.lexists(p) and any(w == p or w in p.parents for w in rules.writable)
    ]


def create_stub(path: Path, note: Note) -> list[dict[str, Any]]:
    """An empty file at `path` (and the missing folders above it), each journalled before it is made and
    again with its inode once made, so that only netjail's own stub is ever removed."""
    made: list[dict[str, Any]] = []
    missing = [p for p in reversed(path.parents) if not os.path.lexists(p)]
    for directory in missing:
        note({"op": "stub", "path": str(directory), "kind": "directory"})
        os.mkdir(directory)
        made.append(_made(directory, "directory", note))
    note({"op": "stub", "path": str(path), "kind": "file"})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o400)
    os.close(fd)
    made.append(_made(path, "file", note))
    return made


def _made(path: Path, kind: str, note: Note) -> dict[str, Any]:
    info = os.lstat(path)
    entry = {"op": "stub_made", "path": str(path), "kind": kind, "dev": info.st_dev, "ino": info.st_ino}
    note(entry)
    return entry


def remove_stub(path: Path, kind: str, identity: tuple[int, int] | None) -> str | None:
    """Remove a stub if it is still netjail's (same inode when known; an empty file / empty folder). Returns an
    error text, or None when the stub is gone (or was never made)."""
    try:
        parent = open_parent(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"{path}: {e}"
    try:
        try:
            info = os.lstat(path.name, dir_fd=parent)
        except FileNotFoundError:
            return None
        if identity is not None and (info.st_dev, info.st_ino) != identity:
            return None  # not netjail's: made by someone else after the stub was removed
        if kind == "file":
            if not stat.S_ISREG(info.st_mode) or info.st_size:
                return None  # the user wrote to it from the host (inside it is read-only): it is theirs
            os.unlink(path.name, dir_fd=parent)
        elif stat.S_ISDIR(info.st_mode):
            try:
                os.rmdir(path.name, dir_fd=parent)
            except OSError:
                return None  # the command put files in it: the folder is its own now
        return None
    except OSError as e:
        return f"{path}: {e}"
    finally:
        os.close(parent)

"""Repositories the run created: creating one is normal work, leaving one that executes is not.

A git directory under a writable root that was not there when the run started (`git init`, `cargo new`, a
bare repository, a `.git` file pointing somewhere) keeps what git needs to work and loses what would run a
program on the user's next `git status`: each `config` / `config.worktree` in it is rewritten with only the
keys of `netjail.jail.gitconfig.SAFE_KEYS` (the original goes to quarantine), every hook that is not one of
git's `*.sample` files is quarantined, and so is a redirection git would follow (`commondir`), a `.git` file
the run wrote, and an in-tree `core.hooksPath` directory the run's config named.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netjail.jail import gitconfig
from netjail.jail.quarantine import Note, open_parent, quarantine_entry, unique_destination

# The walk skips what cannot hold a repository of the user's own and would make it slow.
SKIPPED_DIRECTORIES = frozenset({"node_modules", "__pycache__", ".tox", ".mypy_cache", ".pytest_cache"})
SCAN_BUDGET = 200_000  # directories visited per scan; more refuses the run (a partial baseline is unsafe)
CONFIG_NAMES = ("config", "config.worktree")
_GIT_INTERNALS_SKIPPED = frozenset({"objects", "refs", "logs", "lfs", "rr-cache"})


class ScanTooLarge(Exception):
    """The tree is larger than the scan budget: which repositories exist is not known with certainty."""


@dataclass(frozen=True)
class GitDirs:
    """Git directories (`.git` folders, bare repositories) and `.git` files found under some roots."""

    directories: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()

    def as_json(self) -> dict[str, list[str]]:
        return {"directories": sorted(self.directories), "files": sorted(self.files)}

    @classmethod
    def from_json(cls, data: dict) -> GitDirs:
        return cls(frozenset(data.get("directories", ())), frozenset(data.get("files", ())))


def find_git_dirs(roots: Iterable[Path], budget: int = SCAN_BUDGET) -> GitDirs:
    """Every repository under `roots`, however deep (never following a symlink). This is the one function to
    swap for the whole-tree scan of `netjail.jail.protected` once it exists."""
    directories: set[str] = set()
    files: set[str] = set()
    visited = 0
    for root in roots:
        stack = [root]
        while stack:
            here = stack.pop()
            visited += 1
            if visited > budget:
                raise ScanTooLarge(f"more than {budget} directories under {', '.join(map(str, roots))}")
            try:
                entries = [(e, _is_dir(e)) for e in os.scandir(here)]
            except OSError:
                continue
            # git's own test for a repository (HEAD, objects/ and refs/), read from the listing: no stat per directory
            parts = {
                e.name
                for e, is_dir in entries
                if e.name == "HEAD" or (is_dir and e.name in ("objects", "refs"))
            }
            if len(parts) == 3:
                directories.add(str(here))
                continue  # a bare repository (or a .git folder reached as a root): not a work tree
            for entry, is_dir in entries:
                if is_dir is None:
                    continue
                if entry.name == ".git":
                    if is_dir:
                        directories.add(entry.path)
                        stack.extend(_nested_git_dirs(Path(entry.path)))
                    elif entry.is_file(follow_symlinks=False):
                        files.add(entry.path)
                elif is_dir and entry.name not in SKIPPED_DIRECTORIES:
                    stack.append(Path(entry.path))
    return GitDirs(frozenset(directories), frozenset(files))


def _is_dir(entry: os.DirEntry) -> bool | None:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return None  # gone meanwhile


def _nested_git_dirs(git_dir: Path) -> list[Path]:
    """Submodules' git directories live in `.git/modules/<name>`: each is a repository of its own."""
    modules = git_dir / "modules"
    return [Path(e.path) for e in _scandir(modules) if e.is_dir(follow_symlinks=False)]


def _scandir(path: Path) -> list[os.DirEntry]:
    try:
        return list(os.scandir(path))
    except OSError:
        return []


@dataclass
class Sanitised:
    """What sanitising one new repository did: quarantine records and the config entries dropped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def new_git_dirs(before: GitDirs, now: GitDirs) -> GitDirs:
    return GitDirs(now.directories - before.directories, now.files - before.files)


def sanitise_git_dir(
    git_dir: Path,
    writable: tuple[Path, ...],
    quarantine_for: Callable[[Path], Path],
    note: Note,
    since: float,
    *,
    live: bool = False,
) -> Sanitised:
    """Make a git directory the run created safe for the host's git, in place. Idempotent: a second call on
    the result finds nothing to do. `live`: the run's command may still be writing it (the watcher)."""
    done = Sanitised()
    hooks_paths: list[str] = []
    for config in _config_files(git_dir):
        hooks_paths += _hooks_paths(config)
        _sanitise_config(config, quarantine_for, note, done, live=live)
    for hooks in [git_dir / "hooks", *(m / "hooks" for m in _nested_git_dirs(git_dir))]:
        for entry in _scandir(hooks):
            if not entry.name.endswith(".sample") or not entry.is_file(follow_symlinks=False):
                _take(Path(entry.path), quarantine_for, note, done)
    for redirection in (git_dir / "commondir",):
        if os.path.lexists(redirection):
            _take(redirection, quarantine_for, note, done)
    work_tree = git_dir.parent if git_dir.name == ".git" else git_dir
    for value in hooks_paths:
        target = Path(os.path.normpath(work_tree / os.path.expanduser(value)))
        if _is_run_made_hooks_dir(target, work_tree, writable, since):
            _take(target, quarantine_for, note, done)
    return done


def _config_files(git_dir: Path) -> list[Path]:
    """`config`, `config.worktree`, and the same in the repository's worktrees/ and modules/ (any depth),
    never descending into objects or refs."""
    found: list[Path] = []
    stack = [git_dir]
    while stack and len(found) < 1000:
        here = stack.pop()
        for entry in _scandir(here):
            if entry.name in CONFIG_NAMES and not entry.is_dir(follow_symlinks=False):
                found.append(Path(entry.path))
            elif entry.is_dir(follow_symlinks=False) and entry.name not in _GIT_INTERNALS_SKIPPED:
                if entry.name != "hooks":
                    stack.append(Path(entry.path))
    return found


def _read_no_follow(path: Path) -> tuple[int, str] | None:
    """(descriptor opened read-write on the file itself, its text), or None when it is not a regular file
    (checked before it is opened: a FIFO or a device is never opened)."""
    parent = open_parent(path)
    try:
        if not stat.S_ISREG(os.lstat(path.name, dir_fd=parent).st_mode):
            return None
        fd = os.open(path.name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
    finally:
        os.close(parent)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return fd, b"".join(chunks).decode("utf-8", errors="replace")


def _hooks_paths(config: Path) -> list[str]:
    try:
        opened = _read_no_follow(config)
    except OSError:
        return []
    if opened is None:
        return []
    os.close(opened[0])
    try:
        entries = gitconfig.parse(opened[1])
    except gitconfig.Unreadable:
        return []
    return [e.value for e in entries if e.section == "core" and e.key == "hookspath" and e.value]


def _replace_under_git_lock(config: Path, read_fd: int, data: bytes, *, steal_lock: bool) -> bool:
    """Replace `config` by `data` the way git writes it: under `config.lock` (O_EXCL, so no git writes it
    meanwhile), renamed over it, so a reader — git included — only ever sees a whole file. False when git holds
    the lock (its rename is a new event) or `config` is no longer the file that was read. At the end of the
    run no git is left in the jail: a lock it left behind is taken away (`steal_lock`)."""
    # While the run lasts, git in the jail may want the lock: it fails at once if netjail holds it, so the
    # watcher writes a file of its own and renames that instead (readers still only see whole files).
    lock = config.with_name(config.name + (".lock" if steal_lock else f".netjail-{os.getpid()}"))
    parent = open_parent(config)
    try:
        if steal_lock and os.path.lexists(lock):
            os.unlink(lock.name, dir_fd=parent)
        try:
            fd = os.open(lock.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                         dir_fd=parent)  # fmt: skip
        except FileExistsError:
            return False
        try:
            os.write(fd, data)
            os.fchmod(fd, stat.S_IMODE(os.fstat(read_fd).st_mode))
        finally:
            os.close(fd)
        current = os.lstat(config.name, dir_fd=parent)
        if (current.st_dev, current.st_ino) != (os.fstat(read_fd).st_dev, os.fstat(read_fd).st_ino):
            os.unlink(lock.name, dir_fd=parent)  # git renamed a new config in: that is a new event
            return False
        os.rename(lock.name, config.name, src_dir_fd=parent, dst_dir_fd=parent)
        return True
    finally:
        os.close(parent)


def executing_before(git_dir: Path) -> dict[str, list[tuple[str, str | None]]]:
    """For a repository that exists when the run starts and whose config the run may write (`allowGitConfig`):
    each regular config file's executing entries, which the end of the run then leaves alone."""
    before: dict[str, list[tuple[str, str | None]]] = {}
    for config in _config_files(git_dir):
        try:
            opened = _read_no_follow(config)
        except OSError:
            continue
        if opened is not None:
            fd, text = opened
            os.close(fd)
            before[str(config)] = gitconfig.executing_pairs(text)
    return before


def sanitise_user_config(
    config: Path, before: set[tuple[str, str | None]], quarantine_for: Callable[[Path], Path], note: Note
) -> Sanitised:
    """A config of the user's that the run was allowed to write: what the run added that executes is dropped."""
    done = Sanitised()
    if os.path.lexists(config) and not os.path.islink(config):
        _sanitise_config(config, quarantine_for, note, done, before=before)
    return done


def _sanitise_config(
    config: Path,
    quarantine_for: Callable[[Path], Path],
    note: Note,
    done: Sanitised,
    *,
    live: bool = False,
    before: set[tuple[str, str | None]] | None = None,
) -> None:
    try:
        opened = _read_no_follow(config)
    except FileNotFoundError:
        return
    except OSError as e:
        done.errors.append(f"{config}: {e}")
        return
    if opened is None:  # a symlink, FIFO, directory…: not a config netjail can vouch for
        _take(config, quarantine_for, note, done)
        return
    fd, text = opened
    try:
        clean, dropped = (
            gitconfig.sanitize(text) if before is None else gitconfig.sanitize_against(text, before)
        )
        if not dropped:
            return
        original = unique_destination(quarantine_for(config))
        note({"op": "sanitise", "path": str(config), "original": str(original), "dropped": dropped})
        try:
            original.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(original, "x") as f:
                f.write(text)
            kept: str | None = str(original)
        except OSError as e:
            kept = None
            done.errors.append(f"{config}: the original could not be kept ({e}); it is replaced anyway")
        if not _replace_under_git_lock(config, fd, clean.encode(), steal_lock=not live):
            if not live:  # during the run, git's own rename is the next event, and the end of the run follows
                done.errors.append(f"{config}: changed while it was sanitised")
            return
        done.dropped[str(config)] = dropped
        done.records.append(
            {
                "path": str(config),
                "moved_to": kept,
                "action": "sanitised",
                "dropped": dropped,
                "file_type": "file",
            }
        )
    except OSError as e:
        done.errors.append(f"{config}: {e}")
    finally:
        os.close(fd)


def _is_run_made_hooks_dir(target: Path, work_tree: Path, writable: tuple[Path, ...], since: float) -> bool:
    """An in-tree hooks directory the run's config named: inside a writable root, not the work tree or one of
    its parents, and created or changed while the run lasted (a folder of the user's own is left alone: the
    key naming it is gone)."""
    if target == work_tree or target in work_tree.parents:
        return False
    if not any(target == w or w in target.parents for w in writable):
        return False
    try:
        info = os.lstat(target)
    except OSError:
        return False
    return max(info.st_mtime, info.st_ctime) >= since


def _take(path: Path, quarantine_for: Callable[[Path], Path], note: Note, done: Sanitised) -> None:
    record = quarantine_entry(path, quarantine_for(path), note)
    if record["action"] != "gone":
        done.records.append(record)
    if record["action"] == "failed":
        done.errors.append(f"{path}: {record.get('error')}")

"""While the run lasts (Linux): protected names are quarantined, and new repositories sanitised, as they appear.

A protected name that did not exist at the start cannot be made read-only without a stub in the user's tree,
and a repository the command creates does not exist to be protected. Both are handled at the end of the run
(netjail.run.journal); this thread shortens the time they are live from the whole run to the moment between
their creation and the watcher's reaction. It uses inotify (through ctypes: three system calls do not justify
a dependency, and it works without privileges) on
- every existing directory on the way to a missing protected name (a folder created on that way is watched at
  once, and what it already holds is checked, since it may have been filled before the watch was added);
- the writable roots, the work trees of the repositories found at the start, and every directory the run
  creates below those (up to MAX_NEW_DIRECTORY_WATCHES), for a `.git` appearing;
- each new git directory and its `hooks/`, so that a config written or a hook added later is sanitised too.
Events are only triggers: each decision is taken again from the tree (lstat, never following a link), and the
entry itself is moved (netjail.jail.quarantine). What is not covered is documented in docs/security.md.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from netjail.jail.newrepos import SKIPPED_DIRECTORIES, GitDirs, sanitise_git_dir
from netjail.jail.quarantine import Note, quarantine_entry, restore_link

log = structlog.get_logger("netjail")

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_TO, IN_CREATE, IN_DELETE_SELF, IN_MOVE_SELF = 0x80, 0x100, 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR = 0x4000, 0x8000, 0x40000000
IN_ONLYDIR, IN_DONT_FOLLOW = 0x01000000, 0x02000000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
WATCH_MASK = (
    IN_CREATE
    | IN_MOVED_TO
    | IN_CLOSE_WRITE
    | IN_ATTRIB
    | IN_MOVE_SELF
    | IN_DELETE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
)
MAX_NEW_DIRECTORY_WATCHES = 4096
_EVENT = struct.Struct("iIII")
GIT_DIR_TRIGGERS = frozenset({"config", "config.worktree", "commondir", "hooks"})


class WatchUnavailable(OSError):
    """inotify cannot be used here (not Linux, or no instances left)."""


class _Inotify:
    def __init__(self) -> None:
        try:
            self._libc = ctypes.CDLL(None, use_errno=True)
            self._libc.inotify_init1.argtypes = [ctypes.c_int]
            self._libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            self._libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
            fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError) as e:
            raise WatchUnavailable(errno.ENOSYS, f"inotify is not available: {e}") from e
        if fd < 0:
            code = ctypes.get_errno()
            raise WatchUnavailable(code, f"inotify is not available: {os.strerror(code)}")
        self.fd = fd

    def add(self, path: Path, mask: int = WATCH_MASK) -> int:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(path))
        return wd

    def remove(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self.fd, wd)

    def read(self) -> list[tuple[int, int, str]]:
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        events, at = [], 0
        while at + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, at)
            raw = data[at + _EVENT.size : at + _EVENT.size + length].rstrip(b"\0")
            events.append((wd, mask, os.fsdecode(raw)))
            at += _EVENT.size + length
        return events

    def close(self) -> None:
        os.close(self.fd)


class Watcher:
    """The watching thread of one run. `report` receives each quarantine record (with `during_run: true`)."""

    def __init__(
        self,
        *,
        protected: list[Path],
        writable: tuple[Path, ...],
        links: dict[Path, str] | None = None,
        baseline: GitDirs,
        since: float,
        quarantine_for: Callable[[Path], Path],
        note: Note,
        report: Callable[[dict[str, Any]], None],
        errors: list[str] | None = None,
    ) -> None:
        self._protected = set(protected)
        self._links = dict(links or {})  # symlink -> what it holds: put back as soon as the run replaces it
        self._writable = writable
        self._baseline = baseline
        self._since = since
        self._quarantine_for = quarantine_for
        self._note = note
        self._report = report
        self._chains: set[Path] = {a for p in (*protected, *self._links) for a in _chain(p, writable)}
        self._repo_candidates: set[Path] = set(writable) | {
            Path(d).parent for d in baseline.directories if Path(d).name == ".git"
        }
        self._git_dirs: set[Path] = set()
        self._paths: dict[int, Path] = {}
        self._new_directory_watches = 0
        self._inotify = _Inotify()
        self._stop_read, self._stop_write = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="netjail-watch", daemon=True)
        self.errors: list[str] = [] if errors is None else errors

    # -- lifetime ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Add the watches (before the command runs) and start the thread."""
        for directory in sorted(self._chains | self._repo_candidates, key=lambda p: len(p.parts)):
            self._watch(directory)
        self._thread.start()

    def stop(self) -> None:
        os.write(self._stop_write, b"x")
        self._thread.join(timeout=10)
        self._inotify.close()
        os.close(self._stop_read)
        os.close(self._stop_write)

    def _run(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self._inotify.fd, self._stop_read], [], [])
                if self._stop_read in ready:
                    return
                for wd, mask, name in self._inotify.read():
                    self._event(wd, mask, name)
            except Exception as e:
                self.errors.append(f"{type(e).__name__}: {e}")  # still replays everything
                log.warning("watch.error", error=str(e))

    # -- watches ----------------------------------------------------------------------------------------

    def _watch(self, directory: Path) -> bool:
        try:
            wd = self._inotify.add(directory)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                self.errors.append(f"cannot watch {directory}: {e}")
            return False
        self._paths[wd] = directory
        return True

    def _event(self, wd: int, mask: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            self._recheck_everything()
            return
        directory = self._paths.get(wd)
        if directory is None:
            return
        if mask & (IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED):
            # the directory is no longer at that path: decisions are by path, so forget it (its parent's
            # watch sees whatever takes the name next)
            self._paths.pop(wd, None)
            if not mask & IN_IGNORED:
                self._inotify.remove(wd)
            return
        if not name:
            return
        self._check(
            directory / name, is_dir=bool(mask & IN_ISDIR), created=bool(mask & (IN_CREATE | IN_MOVED_TO))
        )

    def _check(self, path: Path, *, is_dir: bool, created: bool) -> None:
        directory = path.parent
        if path in self._links:
            self._restore_link(path)
        elif path in self._protected:
            self._take(path)
        elif path in self._chains and is_dir and created:
            if self._watch(path):  # then what it may already hold
                for protected in self._protected:
                    if path in protected.parents and os.path.lexists(protected):
                        self._take(protected)
                for child in self._chains:
                    if child.parent == path and os.path.isdir(child) and not os.path.islink(child):
                        self._check(child, is_dir=True, created=True)
        if directory in self._git_dirs or (directory.name == "hooks" and directory.parent in self._git_dirs):
            if directory in self._git_dirs and path.name not in GIT_DIR_TRIGGERS:
                return
            git_dir = directory if directory in self._git_dirs else directory.parent
            if path.name == "hooks" and is_dir and created:
                self._watch(path)
            self._sanitise(git_dir)
            return
        if directory in self._repo_candidates:
            if path.name == ".git":
                self._new_repository(path)
            elif is_dir and created and path.name not in SKIPPED_DIRECTORIES:
                self._adopt(path)

    def _adopt(self, directory: Path) -> None:
        """A directory the run created below a watched one: watch it too (what it holds was made by the run)."""
        if directory in self._repo_candidates or self._new_directory_watches >= MAX_NEW_DIRECTORY_WATCHES:
            return
        if os.path.islink(directory) or not self._watch(directory):
            return
        self._new_directory_watches += 1
        self._repo_candidates.add(directory)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name == ".git":
                self._new_repository(path)
            elif entry.is_dir(follow_symlinks=False) and entry.name not in SKIPPED_DIRECTORIES:
                self._adopt(path)

    # -- actions ----------------------------------------------------------------------------------------

    def _new_repository(self, path: Path) -> None:
        if str(path) in self._baseline.directories or str(path) in self._baseline.files:
            return
        if os.path.isdir(path) and not os.path.islink(path):
            self._git_dirs.add(path)
            self._watch(path)
            self._watch(path / "hooks")
            self._sanitise(path)
        elif os.path.lexists(path):
            self._take(path)  # a gitdir pointer (or a link) the run wrote

    def _sanitise(self, git_dir: Path) -> None:
        done = sanitise_git_dir(
            git_dir, self._writable, self._quarantine_for, self._note, self._since, live=True
        )
        for record in done.records:
            self._report({**record, "during_run": True})
            if record.get("action") in ("deleted", "mode_cleared"):
                self.errors.append(f"{record['path']}: {record['action']} ({record.get('error')})")
        self.errors += done.errors

    def _take(self, path: Path) -> None:
        record = quarantine_entry(path, self._quarantine_for(path), self._note)
        if record["action"] == "gone":
            return
        self._report({**record, "during_run": True})
        if record["action"] in ("failed", "deleted", "mode_cleared"):
            self.errors.append(f"{path}: {record['action']} ({record.get('error')})")

    def _restore_link(self, path: Path) -> None:
        record = restore_link(path, self._links[path], self._quarantine_for(path), self._note)
        if record is None:
            return
        self._report({**record, "during_run": True})
        if record["action"] == "failed":
            self.errors.append(f"{path}: link not restored ({record.get('error')})")

    def _recheck_everything(self) -> None:
        for path in list(self._links):
            self._restore_link(path)
        for path in list(self._protected):
            if os.path.lexists(path):
                self._take(path)
        for git_dir in list(self._git_dirs):
            self._sanitise(git_dir)
        for directory in list(self._repo_candidates):
            if os.path.lexists(directory / ".git"):
                self._new_repository(directory / ".git")


def _chain(path: Path, writable: tuple[Path, ...]) -> list[Path]:
    """The directories from the writable root holding `path` down to its parent."""
    roots = [r for r in writable if r in path.parents]
    if not roots:
        return []
    root = max(roots, key=lambda r: len(r.parts))
    return [root, *(a for a in reversed(path.parents) if root in a.parents)]

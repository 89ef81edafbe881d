"""The run's journal: what the end of the run must guarantee, written down before anything is done.

`journal.jsonl` in the run directory holds one JSON object per line, each written (and fsync'd) before the
operation it names: the run's writable roots and the repositories that existed at its start (`begin`), every
protected name that did not exist (`protect`), every symlink on the way to a protected path (`link`, with what
it holds), every stub netjail creates (`stub`, then `stub_made` with its
inode), every quarantine move (`move`) and config rewrite (`sanitise`) with what it did. The end of the run is a
replay of the journal — remove the stubs, quarantine what appeared under a protected name, sanitise the
repositories the run created, put back a replaced link — computed from the current state of the tree each time, so replaying twice does
nothing the second time. Only a replay without errors appends `complete`; otherwise the journal stays for the next
run's sweep, which replays it again (netjail.run.sweep). The live run holds an exclusive lock on the file, so a
sweep never replays a run that is still going.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netjail.jail.newrepos import (
    GitDirs,
    ScanTooLarge,
    find_git_dirs,
    new_git_dirs,
    sanitise_git_dir,
    sanitise_user_config,
)
from netjail.jail.persistence import quarantine_destination, remove_stub
from netjail.jail.quarantine import quarantine_entry, restore_link

JOURNAL_FILE = "journal.jsonl"
COMPLETED_JOURNAL_FILE = "journal-complete.jsonl"  # renamed once replayed without errors: sweeps skip it


class Journal:
    """The open journal of one run (thread-safe: the watcher writes to it while the run lasts)."""

    def __init__(self, run_path: Path, *, blocking: bool = True):
        self.run_path = run_path
        self.path = run_path / JOURNAL_FILE
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError:
            os.close(self._fd)
            raise
        self._lock = threading.Lock()
        # problems the run's own operations met while it lasted (the watcher's): reported by the replay, and
        # they keep the journal open for the next run
        self.errors: list[str] = []

    def write(self, entry: dict[str, Any]) -> None:
        data = (json.dumps(entry, ensure_ascii=True, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            os.write(self._fd, data)
            os.fsync(self._fd)

    def note(self, entry: dict[str, Any]) -> None:
        """write(), but a journal that cannot be written (disk full) must not stop the operation it names."""
        try:
            self.write(entry)
        except OSError:
            pass

    def entries(self) -> list[dict[str, Any]]:
        return read_entries(self.path)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- what the run writes before its command starts ----------------------------------------------------

    def begin(self, writable: Iterable[Path], git_dirs: GitDirs) -> None:
        self.write(
            {
                "op": "begin",
                "pid": os.getpid(),
                "since": time.time(),
                "writable": [str(p) for p in writable],
                "git_dirs": git_dirs.as_json(),
            }
        )

    def protect(self, paths: Iterable[Path]) -> None:
        for path in paths:
            self.write({"op": "protect", "path": str(path)})

    def keep_links(self, links: Iterable[tuple[Path, str]]) -> None:
        for path, target in links:
            self.write({"op": "link", "path": str(path), "target": target})


def read_entries(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def is_complete(entries: list[dict[str, Any]]) -> bool:
    return any(e.get("op") == "complete" for e in entries)


@dataclass
class Cleanup:
    """What a replay did: quarantine records (for flows.jsonl) and the errors it could not get past."""

    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def replay(
    journal: Journal, *, during_run: bool = False, scan: Callable[..., GitDirs] = find_git_dirs
) -> Cleanup:
    """Bring the tree to what the journal promises. Never raises OSError; idempotent."""
    entries = journal.entries()
    result = Cleanup(errors=list(journal.errors))
    begin = next((e for e in entries if e.get("op") == "begin"), None)

    def destination(path: Path) -> Path:
        return quarantine_destination(journal.run_path, path)

    # 1. Stubs: netjail's own, removed (newest first: the file before the folders made for it).
    made = {e["path"]: e for e in entries if e.get("op") == "stub_made"}
    for entry in reversed([e for e in entries if e.get("op") == "stub"]):
        known = made.get(entry["path"])
        identity = (known["dev"], known["ino"]) if known else None
        error = remove_stub(Path(entry["path"]), entry.get("kind", "file"), identity)
        if error:
            result.errors.append(f"stub not removed: {error}")
    # 2. Protected names that did not exist at the start.
    for entry in entries:
        if entry.get("op") != "protect":
            continue
        path = Path(entry["path"])
        if os.path.lexists(path):
            _record(quarantine_entry(path, destination(path), journal.note), result)
    # 2b. Links on the way to a protected path: whatever took a link's place is quarantined, the link restored.
    for entry in entries:
        if entry.get("op") == "link":
            path = Path(entry["path"])
            if (record := restore_link(path, entry["target"], destination(path), journal.note)) is not None:
                _record(record, result)
    # 3. Repositories the run created.
    if begin is not None:
        writable = tuple(Path(p) for p in begin.get("writable", ()))
        try:
            found = new_git_dirs(GitDirs.from_json(begin.get("git_dirs", {})), scan(writable))
        except (ScanTooLarge, OSError) as e:
            result.errors.append(f"the repositories the run created could not be listed: {e}")
            found = GitDirs()
        for git_file in sorted(found.files):
            _record(quarantine_entry(Path(git_file), destination(Path(git_file)), journal.note), result)
        for git_dir in sorted(found.directories):
            done = sanitise_git_dir(Path(git_dir), writable, destination, journal.note, float(begin["since"]))
            for record in done.records:
                _record(record, result)
            result.errors += [e for e in done.errors if e not in result.errors]
    # 4. Configs of existing repositories the run was allowed to write (allowGitConfig): what executes and was
    #    not there before is dropped (git-config(1)'s executing keys stay protected whatever the setting).
    for entry in entries:
        if entry.get("op") != "config_before":
            continue
        before = {(name, value) for name, value in entry.get("executing", [])}
        done = sanitise_user_config(Path(entry["path"]), before, destination, journal.note)
        for record in done.records:
            _record(record, result)
        result.errors += [e for e in done.errors if e not in result.errors]
    for record in result.records:
        record.setdefault("during_run", during_run)
    journal.note({"op": "replayed", "errors": result.errors})
    if not result.errors:
        journal.note({"op": "complete"})
        try:
            os.rename(journal.path, journal.run_path / COMPLETED_JOURNAL_FILE)
        except OSError:
            pass  # `complete` is in it: a sweep finds nothing to do
    return result


def complete_abandoned(run_path: Path) -> Cleanup | None:
    """Replay the journal of a run that is not running (its lock is free) and did not complete it; None when
    there is nothing to do or the run is live."""
    path = run_path / JOURNAL_FILE
    if not path.exists() or is_complete(read_entries(path)):
        return None
    try:
        journal = Journal(run_path, blocking=False)
    except OSError:
        return None  # live: its own netjail holds the lock
    try:
        entries = journal.entries()
        # no `begin`: its run has made the file but not locked it yet (a run opens, then locks, then writes begin),
        # or died before doing anything; replaying would mark it complete and rename it under its live owner
        if is_complete(entries) or not any(e.get("op") == "begin" for e in entries):
            return None
        try:
            return replay(journal)
        except Exception as e:
            return Cleanup(errors=[f"{type(e).__name__}: {e}"])
    finally:
        journal.close()


def _record(record: dict[str, Any], result: Cleanup) -> None:
    if record.get("action") == "gone":
        return
    result.records.append(record)
    if record.get("action") in ("failed", "deleted", "mode_cleared"):
        result.errors.append(f"{record['path']}: {record['action']} ({record.get('error')})")

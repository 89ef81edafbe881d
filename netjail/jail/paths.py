"""The path rules of a jail: which host paths are writable, read-only, hidden or re-opened, resolved once from the
settings (`~` expanded, globs matched, symlinks resolved) so that every backend applies the same ones, and the
files that are never writable inside a writable path (the mandatory denies)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from netjail.jail import protected
from netjail.jail.spec import JailError, PathRules
from netjail.jail.symlinks import extra_name, first_planted_link

if TYPE_CHECKING:
    from netjail.settings import Settings

# Files and folders that run code or redirect tools the next time the user works: never writable (the inventory,
# with the reason for each name, is netjail/jail/protected.py).
DANGEROUS_FILES = tuple(n for n in protected.tree_names() if not n.endswith("/"))
DANGEROUS_DIRECTORIES = tuple(n.rstrip("/") for n in protected.tree_names() if n.endswith("/"))
GIT_DIR_DENIES = ("hooks", "config", "config.worktree", "commondir", "info")


def _expand(entry: str, cwd: Path, *, deny: bool = False, resolve: bool = True) -> list[Path]:
    """One settings path -> the host paths it names: `~` expanded, relative to cwd, globs matched.

    Only what the user wrote is a pattern: the home or working directory put in front of it is matched as the name
    it is (a working directory such as `proj[1]` would otherwise turn every relative entry into a pattern that
    matches nothing, and silently drop its deny). A deny entry spelt like a pattern also names the path spelt
    literally, when that exists: a deny may name more than meant, never less."""
    expanded = os.path.expanduser(entry)
    if entry.startswith("~") and expanded != entry:
        head = entry.split("/", 1)[0]
        base, written = os.path.expanduser(head), entry[len(head) :].lstrip("/")
        literal = os.path.join(base, written) if written else base
        pattern = os.path.join(glob.escape(base), written) if written else glob.escape(base)
    elif os.path.isabs(expanded):
        written = literal = pattern = expanded
    else:
        written = expanded
        literal, pattern = os.path.join(cwd, expanded), os.path.join(glob.escape(str(cwd)), expanded)
    finish = os.path.realpath if resolve else os.path.abspath
    if glob.has_magic(written) and not getattr(entry, "literal", False):  # srt's {"path", "literal": true}
        found = sorted(glob.glob(pattern, recursive=True))
        if deny and os.path.lexists(literal):
            found.append(literal)
        return [Path(finish(p)) for p in found]
    return [Path(finish(literal))]


def _existing(paths: list[Path]) -> list[Path]:
    return [p for p in paths if os.path.lexists(p)]


def _unique(paths: list[Path]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(paths))


def path_rules(
    settings: Settings, cwd: Path, extra_read_only: tuple[Path, ...] = (), settings_file: Path | None = None
) -> PathRules:
    fs = settings.filesystem
    writable = _unique(_existing([p for e in fs.allow_write for p in _expand(e, cwd)]))
    named = (("allowWrite", fs.allow_write), ("allowRead", fs.allow_read))
    literals = [(k, e, p) for k, entries in named for e in entries for p in _expand(e, cwd, resolve=False)]
    # a deny whose path runs through a link in a writable root would land where the link points, not on the
    # path named, and the command could replace the link itself: refused like the allow entries
    denies = (("denyRead", fs.deny_read), ("denyWrite", fs.deny_write))
    literals += [
        (k, e, p) for k, entries in denies for e in entries for p in _expand(e, cwd, deny=True, resolve=False)
    ]
    if (planted := first_planted_link(literals, writable)) is not None:
        raise JailError(planted.message(settings_file))
    try:  # at any depth: mandatoryDenySearchDepth is accepted and no longer limits anything
        protection = protected.scan(writable, allow_git_config=fs.allow_git_config)
    except protected.ScanRefused as e:
        raise JailError(str(e)) from None
    mandatory = protection.read_only
    # a denyWrite entry that does not exist yet stays when it lies in a writable root: it must not be created
    denied_writes = [
        p
        for e in fs.deny_write
        for p in _expand(e, cwd, deny=True)
        if os.path.lexists(p) or _under_any(p, writable)
    ]
    read_only = _unique(denied_writes + mandatory + list(extra_read_only))
    hidden = _unique(_existing([p for e in fs.deny_read for p in _expand(e, cwd, deny=True)]))
    devices = frozenset(os.stat(w).st_dev for w in writable)
    for key, paths in (("denyRead", hidden), ("denyWrite", _existing(denied_writes))):
        for path in paths:
            if (refusal := extra_name(path, key, devices)) is not None:
                raise JailError(f"settings {settings_file}: {refusal}" if settings_file else refusal)
    reallowed = _unique(
        [p for p in _existing([p for e in fs.allow_read for p in _expand(e, cwd)]) if _under_any(p, hidden)]
    )
    return PathRules(
        writable=writable,
        read_only=read_only,
        hidden=hidden,
        reallowed=reallowed,
        placeholders=tuple(protection.placeholders),
        missing=tuple(protection.missing),
        links=tuple(protection.links),
        denied_writes=_unique(denied_writes),
    )


def _under_any(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == r or r in path.parents for r in roots)


@dataclass(frozen=True)
class AbsentEntry:
    """A filesystem entry that names nothing on this machine now: it has no effect on the run."""

    key: str  # allowWrite, allowRead or denyRead
    entry: str  # as written in the settings
    path: (
        Path  # where it resolves: `~` expanded, relative entries against the working directory (as srt does)
    )

    @property
    def relative(self) -> bool:
        return not (self.entry.startswith("~") or os.path.isabs(self.entry))

    def warning(self) -> str:
        """For allowWrite / allowRead: said at the start of a run and by `explain`."""
        where = (
            " (relative entries resolve against the working directory, as in srt)" if self.relative else ""
        )
        what = "matches nothing" if glob.has_magic(self.entry) else "does not exist"
        return (
            f"filesystem.{self.key}: {self.entry!r} is {self.path}, which {what}{where}: it has no effect. "
            "Fix: create it before the run, or correct the entry"
        )

    def note(self) -> str:
        """For denyRead: not a warning (the bundled defaults name many paths most machines do not have)."""
        return f"{self.entry} ({self.path}): absent: readable if created during the run"


def absent_entries(settings: Settings, cwd: Path) -> list[AbsentEntry]:
    """allowWrite, allowRead and denyRead entries that match no existing path (a glob that matches nothing too)."""
    fs = settings.filesystem
    absent = []
    for key, entries, deny in (
        ("allowWrite", fs.allow_write, False),
        ("allowRead", fs.allow_read, False),
        ("denyRead", fs.deny_read, True),
    ):
        for entry in entries:
            if not _existing(_expand(entry, cwd, deny=deny)):
                literal = _expand(glob.escape(entry) if glob.has_magic(entry) else entry, cwd, resolve=False)
                absent.append(AbsentEntry(key, entry, literal[0] if literal else cwd / entry))
    return absent

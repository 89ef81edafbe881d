"""Settings paths that go through a symlink a run could have planted, and opening paths without following any.

A run may write anywhere under a writable root, symlinks included. If a later run resolved an allowWrite or
allowRead entry through such a link, the first run would have chosen what the second one binds: `allowWrite:
["R", "R/sub/build"]` with `R/sub/build -> /outside` makes /outside writable. So an entry whose path has a
symlink in a directory at or below a writable root is refused. A link outside every writable root
(`~/.cache -> /data`, made by the user) is the user's own choice and keeps working.

The check reads names and the mount follows names again later: between the two, a run still alive could swap a
directory for a link. `open_no_follow` opens the resolved path one component at a time with
O_PATH|O_NOFOLLOW, so the descriptor the backend mounts (bwrap `--bind-fd`) is the very inode checked, reached
through no link at all.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

DENY_KEYS = ("denyRead", "denyWrite")


@dataclass(frozen=True)
class PlantedLink:
    """An entry of the settings that resolves through a link inside a writable root."""

    key: str  # "allowWrite", "allowRead", "denyRead" or "denyWrite"
    entry: str  # as the settings write it
    link: Path  # the path component that is a symlink
    target: str  # what the link points to (as stored in it)
    resolved: Path  # where the entry ends up
    inside: Path  # the writable root the link lives in

    def message(self, settings_file: Path | str | None) -> str:
        where = f"settings {settings_file}: " if settings_file else ""
        if self.key in DENY_KEYS:
            effect = "hide" if self.key == "denyRead" else "make read-only"
            return (
                f"{where}{self.key} entry {self.entry!r} goes through the symlink {self.link} -> {self.target} "
                f"(it resolves to {self.resolved}); the link is inside the writable path {self.inside}: a run could "
                f"have made it, to make netjail {effect} another place than the one named, and the command could "
                "replace the link itself. Fix: if you made the link, replace it with what it points to (or keep "
                f"it out of every writable path) and name {str(self.resolved)!r} in the settings; otherwise remove "
                f"it (rm {self.link})"
            )
        return (
            f"{where}{self.key} entry {self.entry!r} goes through the symlink {self.link} -> {self.target} "
            f"(it resolves to {self.resolved}); the link is inside the writable path {self.inside}, where a run "
            "could have made it, so netjail does not follow it. Fix: if you made the link, name where it points "
            f"in the settings ({str(self.resolved)!r}); otherwise remove it (rm {self.link})"
        )


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def planted_link(
    key: str,
    entry: str,
    literal: Path,
    writable_roots: Iterable[Path],
    *,
    resolve: Callable = os.path.realpath,
) -> PlantedLink | None:
    """The first component of `literal` (absolute, not resolved) that is a symlink living in a directory at or
    below one of `writable_roots` (resolved paths), or None."""
    roots = tuple(writable_roots)
    parts = Path(os.path.normpath(literal)).parts
    for depth in range(2, len(parts) + 1):
        component = Path(*parts[:depth])
        if not component.is_symlink():
            continue
        directory = Path(resolve(component.parent))
        inside = [r for r in roots if _within(directory, r)]
        if inside:
            return PlantedLink(
                key=key,
                entry=entry,
                link=component,
                target=os.readlink(component),
                resolved=Path(resolve(literal)),
                inside=max(inside, key=lambda r: len(r.parts)),
            )
    return None


class LinkedPath(OSError):
    """A path that could not be opened without following a symlink."""


def open_no_follow(path: Path) -> int:
    """An O_PATH descriptor for the absolute `path`, reached component by component without following any
    symlink (a link anywhere on the way raises LinkedPath). The caller closes it."""
    if not path.is_absolute():
        raise ValueError(f"not an absolute path: {path}")
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in path.parts[1:]:
            if name in ("..", "."):
                raise LinkedPath(errno.EINVAL, "not a normalised path", str(path))
            try:
                following = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as e:
                raise LinkedPath(
                    e.errno, f"cannot open without following links: {e.strerror}", str(path)
                ) from e
            os.close(fd)
            fd = following
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise LinkedPath(errno.ELOOP, f"{name} is a symlink", str(path))
        return fd
    except BaseException:
        os.close(fd)
        raise


def first_planted_link(
    entries: Iterable[tuple[str, str, Path]], writable_roots: Iterable[Path]
) -> PlantedLink | None:
    """The first of (settings key, entry, literal path) whose path goes through a link in a writable root."""
    roots = tuple(writable_roots)
    for key, entry, literal in entries:
        if (found := planted_link(key, entry, literal, roots)) is not None:
            return found
    return None


def extra_name(path: Path, key: str, writable_devices: frozenset[int], budget: int = 100_000) -> str | None:
    """A refusal when `path` (a denyRead / denyWrite entry, resolved), or a regular file inside it, has more
    than one name: a mask or read-only bind covers the name it is put on, never the inode, so a hard link a run
    made would still read (denyRead) or write (denyWrite) the same file. A run can only make one on the
    filesystem of a writable path, so only files there are checked (one stat each). None when clean."""
    try:
        top = os.lstat(path)
    except OSError:
        return None
    if top.st_dev not in writable_devices:
        return None
    found: tuple[str, int] | None = None
    if stat.S_ISREG(top.st_mode):
        found = (str(path), top.st_nlink) if top.st_nlink > 1 else None
    elif stat.S_ISDIR(top.st_mode):
        stack, seen = [str(path)], 0
        while stack and found is None:
            try:
                with os.scandir(stack.pop()) as entries:
                    for entry in entries:
                        seen += 1
                        if seen > budget:
                            return (
                                f"filesystem.{key}: {path} holds more than {budget} entries, too many to check "
                                "each for other names (hard links). Fix: name the files to deny, not a whole "
                                "large tree"
                            )
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            info = entry.stat(follow_symlinks=False)
                            if info.st_nlink > 1 and info.st_dev in writable_devices:
                                found = (entry.path, info.st_nlink)
                                break
            except OSError:
                continue
    if found is None:
        return None
    name, count = found
    what = "is read" if key == "denyRead" else "is written"
    return (
        f"filesystem.{key}: {name} has {count} names (hard links); the rule covers this name only, and the same "
        f"file {what} through the others (a run may have made one). Fix: give it a name of its own "
        f"(cp -p {name} {name}.tmp && mv {name}.tmp {name}), or look for the others with "
        f"`find / -xdev -samefile {name}`"
    )

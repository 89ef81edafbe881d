"""Taking one entry out of the user's tree into a run's quarantine, whatever it is and whatever goes wrong.

The entry itself is moved, never what it points to: every step works on descriptors opened with O_NOFOLLOW,
relative to a parent directory reached component by component without following a link, so a name swapped
for a symlink while it is moved cannot redirect the move. A FIFO is never opened (a read would block), sockets
and devices are recorded and removed. The outcome is always one of: moved (renamed, or copied and removed
when the state directory is on another filesystem), deleted (the copy could not be made, e.g. ENOSPC: the
content's digest is recorded), gone (the name vanished meanwhile), or failed — and only the last leaves the
name in place, reported as an error.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Note = Callable[[dict[str, Any]], None]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ParentUnsafe(OSError):
    """A directory on the way to the entry is a symlink or not a directory."""


def file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "char-device"),
        (stat.S_ISBLK, "block-device"),
    ):
        if test(mode):
            return name
    return "other"


def open_parent(path: Path) -> int:
    """A descriptor on `path`'s parent, reached from / without following any symlink."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in path.parent.parts[1:]:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ParentUnsafe(e.errno, f"{part} on the way to it is not a plain directory") from e
                raise
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def unique_destination(destination: Path) -> Path:
    candidate, n = destination, 1
    while os.path.lexists(candidate):
        candidate = destination.with_name(f"{destination.name}.{n}")
        n += 1
    return candidate


def quarantine_entry(path: Path, destination: Path, note: Note) -> dict[str, Any]:
    """Take `path` out of the tree into `destination` (in the state directory). Never raises OSError: the
    outcome (and any error) is in the returned record."""
    record: dict[str, Any] = {"path": str(path), "moved_to": None}
    try:
        parent = open_parent(path)
    except FileNotFoundError:
        return {**record, "action": "gone"}
    except OSError as e:
        return {**record, "action": "failed", "error": _describe(e)}
    try:
        return _quarantine_at(parent, path.name, destination, note, record)
    finally:
        os.close(parent)


def _quarantine_at(parent: int, name: str, destination: Path, note: Note, record: dict) -> dict[str, Any]:
    try:
        info = os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return {**record, "action": "gone"}
    except OSError as e:
        return {**record, "action": "failed", "error": _describe(e)}
    record["file_type"] = file_type(info.st_mode)
    destination = unique_destination(destination)
    note({"op": "move", "path": record["path"], "to": str(destination)})
    try:
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _rename_out(parent, name, destination)
        return {**record, "moved_to": str(destination), "action": "moved"}
    except FileNotFoundError:
        if not _exists_at(parent, name):
            return {**record, "action": "gone"}
        first_error: OSError = FileNotFoundError(errno.ENOENT, "the quarantine folder vanished")
    except OSError as e:
        first_error = e
    # Another filesystem (EXDEV), no space (ENOSPC), no permission in the state directory (EACCES): copy what
    # can be copied, then remove the entry from the tree in every case.
    copied = False
    if first_error.errno == errno.EXDEV:
        try:
            _copy_at(parent, name, destination)
            copied = True
        except OSError as e:
            first_error = e
            _remove_path(destination)
    digests = {} if copied else dict(_digests_at(parent, name, ""))
    try:
        _remove_at(parent, name)
    except FileNotFoundError:
        pass
    except OSError as e:
        return _neutralise(parent, name, {**record, "action": "failed", "error": _describe(e)})
    if copied:
        return {**record, "moved_to": str(destination), "action": "moved"}
    return {**record, "action": "deleted", "error": _describe(first_error), "sha256": digests}


def _rename_out(parent: int, name: str, destination: Path) -> None:
    try:
        os.rename(name, destination, src_dir_fd=parent)
    except PermissionError:
        _make_writable(parent)
        os.rename(name, destination, src_dir_fd=parent)


def _make_writable(fd: int) -> None:
    """The command may have made a directory of its own read-only; netjail's user owns it and may undo that."""
    mode = os.fstat(fd).st_mode
    os.fchmod(fd, stat.S_IMODE(mode) | stat.S_IRWXU)


def _exists_at(parent: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=parent)
        return True
    except FileNotFoundError:
        return False


def _copy_at(parent: int, name: str, destination: Path) -> None:
    info = os.lstat(name, dir_fd=parent)
    if stat.S_ISREG(info.st_mode):
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        try:
            if not stat.S_ISREG(os.fstat(src).st_mode):
                raise OSError(errno.EAGAIN, "the entry changed while it was copied")
            dst = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                while chunk := os.read(src, 1 << 20):
                    os.write(dst, chunk)
            finally:
                os.close(dst)
        finally:
            os.close(src)
    elif stat.S_ISDIR(info.st_mode):
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except PermissionError:
            os.chmod(name, stat.S_IMODE(info.st_mode) | stat.S_IRWXU, dir_fd=parent)
            child = os.open(name, _DIR_FLAGS, dir_fd=parent)
        try:
            os.mkdir(destination, 0o700)
            for entry in os.listdir(child):
                _copy_at(child, entry, destination / entry)
        finally:
            os.close(child)
    elif stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(name, dir_fd=parent), destination)
    else:  # FIFO, socket, device: nothing to copy; what it was is recorded beside it
        destination.with_name(destination.name + ".netjail-" + file_type(info.st_mode)).write_text(
            f"{file_type(info.st_mode)} mode {stat.filemode(info.st_mode)}\n"
        )


def _digests_at(parent: int, name: str, prefix: str) -> Iterator[tuple[str, str]]:
    """sha256 of every regular file under the entry, for the record when its content cannot be kept."""
    label = prefix + name
    try:
        info = os.lstat(name, dir_fd=parent)
        if stat.S_ISREG(info.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
            try:
                digest = hashlib.sha256()
                while chunk := os.read(fd, 1 << 20):
                    digest.update(chunk)
            finally:
                os.close(fd)
            yield label, digest.hexdigest()
        elif stat.S_ISDIR(info.st_mode):
            child = os.open(name, _DIR_FLAGS, dir_fd=parent)
            try:
                for entry in sorted(os.listdir(child))[:1000]:
                    yield from _digests_at(child, entry, label + "/")
            finally:
                os.close(child)
        else:
            yield label, file_type(info.st_mode)
    except OSError as e:
        yield label, f"unreadable: {_describe(e)}"


def _remove_at(parent: int, name: str) -> None:
    """Remove the entry itself (a directory with what it holds), never following a link."""
    info = os.lstat(name, dir_fd=parent)
    if not stat.S_ISDIR(info.st_mode):
        try:
            os.unlink(name, dir_fd=parent)
        except PermissionError:
            _make_writable(parent)
            os.unlink(name, dir_fd=parent)
        return
    try:
        child = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except PermissionError:
        os.chmod(name, stat.S_IMODE(info.st_mode) | stat.S_IRWXU, dir_fd=parent)
        child = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        _make_writable(child)
        for entry in os.listdir(child):
            _remove_at(child, entry)
    finally:
        os.close(child)
    try:
        os.rmdir(name, dir_fd=parent)
    except PermissionError:
        _make_writable(parent)
        os.rmdir(name, dir_fd=parent)


def remove_entry(path: Path) -> None:
    """Remove `path` (a directory with what it holds) without following any symlink on the way."""
    parent = open_parent(path)
    try:
        _remove_at(parent, path.name)
    finally:
        os.close(parent)


def _remove_path(path: Path) -> None:
    try:
        remove_entry(path)
    except OSError:
        pass


def _neutralise(parent: int, name: str, record: dict) -> dict:
    """Last resort when the entry can be neither moved nor removed: a regular file loses every permission bit
    (git does not run a hook that is not executable; a shell cannot source a file it cannot read)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, 0)
                return {**record, "action": "mode_cleared"}
        finally:
            os.close(fd)
    except OSError:
        pass
    return record


def _describe(error: OSError) -> str:
    code = errno.errorcode.get(error.errno or 0, "")
    return f"{code}: {error.strerror or error}" if code else str(error)


def restore_entry(kept: Path, path: Path) -> None:
    """Put a quarantined entry back at `path` (`netjail quarantine restore`). The way to `path` is walked without
    following a link, as for the quarantine itself (a run could have planted one since), and nothing already at
    `path` is replaced. Raises OSError (ParentUnsafe, FileExistsError, …) with what is wrong."""
    parent = open_parent(path)
    try:
        if _exists_at(parent, path.name):
            raise FileExistsError(errno.EEXIST, f"{path} exists; move it away first (nothing is replaced)")
        try:
            os.rename(kept, path.name, dst_dir_fd=parent)
            return
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
        # Another filesystem: copy beside the target through the parent's descriptor, then rename into place.
        import shutil

        staging = f".netjail-restore-{os.getpid()}-{path.name}"[:255]
        via = Path(f"/proc/self/fd/{parent}") if Path("/proc/self/fd").is_dir() else path.parent
        if kept.is_dir() and not kept.is_symlink():
            shutil.copytree(kept, via / staging, symlinks=True)
        else:
            shutil.copy2(kept, via / staging, follow_symlinks=False)
        if _exists_at(parent, path.name):
            _remove_at(parent, staging)
            raise FileExistsError(errno.EEXIST, f"{path} appeared meanwhile; nothing was replaced")
        os.rename(staging, path.name, src_dir_fd=parent, dst_dir_fd=parent)
        _remove_path(kept)
    finally:
        os.close(parent)


def restore_link(path: Path, target: str, destination: Path, note: Note) -> dict[str, Any] | None:
    """Put back the symlink `path` -> `target` the run removed or replaced, what took its place quarantined first;
    None when the link is as it was. Never raises OSError: the outcome (and any error) is in the returned record."""
    try:
        if os.readlink(path) == target:
            return None
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: something that is not a link took its place
            return {"path": str(path), "moved_to": None, "action": "failed", "error": _describe(e)}
    record: dict[str, Any] = {"path": str(path), "moved_to": None, "restored_link": target}
    if os.path.lexists(path):
        taken = quarantine_entry(path, destination, note)
        if taken["action"] not in ("moved", "deleted", "gone"):
            return {**taken, "restored_link": target}
        record.update({k: v for k, v in taken.items() if k != "action"})
    note({"op": "restore_link", "path": str(path), "target": target})
    try:
        parent = open_parent(path)
        try:
            os.symlink(target, path.name, dir_fd=parent)
        finally:
            os.close(parent)
    except OSError as e:
        return {**record, "action": "failed", "error": _describe(e)}
    return {**record, "action": "restored"}

"""Space held back for the flow log, so that the jailed command cannot fill the disk under it.

The run directory holds `flows.reserve`, a file of `RESERVE_BYTES` allocated (not sparse) when the run starts.
When an append to flows.jsonl fails for lack of space, the writer shrinks the reserve by what it needs and
writes again: the space comes back to the filesystem for the log alone, as long as the command does not take
it first (then the write fails and egress stops anyway). The supervisor and the proxy share the file; a lock
keeps their draws apart. Once any draw has happened the log is "on reserve": the proxy stops egress and the
run ends with `log_failed`, and the reserve pays for the records of what was already under way.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

RESERVE_BYTES = 8 * 1024 * 1024  # ≈ 4,000 records: the flows still open when the disk fills, and run_end
DRAW_BYTES = 256 * 1024  # released at a time: a few hundred records, so a full disk costs few truncations
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class LogReserve:
    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd = fd
        self.drawn = False  # this process has drawn on the reserve: the disk is full

    @classmethod
    def create(cls, path: Path, size: int = RESERVE_BYTES) -> LogReserve:
        """Allocate the reserve. Raises OSError (ENOSPC) when the space is not there: the run must not start."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            _allocate(fd, size)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return cls(path, fd)

    @classmethod
    def open(cls, path: Path) -> LogReserve:
        return cls(path, os.open(path, os.O_RDWR | os.O_CLOEXEC))

    @property
    def remaining(self) -> int:
        return os.fstat(self._fd).st_size if self._fd >= 0 else 0

    def release(self, needed: int) -> bool:
        """Give back at least `needed` bytes (or all that is left) to the filesystem; False when none is left."""
        if self._fd < 0:
            return False
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(self._fd).st_size
            if size == 0:
                return False
            os.ftruncate(self._fd, max(0, size - max(needed, DRAW_BYTES)))
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self.drawn = True
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _allocate(fd: int, size: int) -> None:
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
        return
    # macOS has no posix_fallocate: written zeros are allocated too
    block = b"\0" * 65536
    for offset in range(0, size, len(block)):
        os.pwrite(fd, block[: size - offset], offset)
    os.fsync(fd)

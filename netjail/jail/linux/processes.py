"""The jail's processes as netjail sees them from outside: bwrap's status lines, the command's PID, and the
wait until the jail's PID namespace is empty (nothing inside writes any more)."""

from __future__ import annotations

import json
import os
import signal
import time

_status_cache: dict[int, dict] = {}


def read_status(fd: int) -> dict:
    """bwrap writes one JSON object per line: `{"child-pid": N, …}` when the command starts, `{"exit-code": N}`
    when it ends. Reads what is there without blocking and merges it."""
    merged = _status_cache.setdefault(fd, {})
    if fd < 0:
        return merged
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    for line in b"".join(chunks).splitlines():
        try:
            merged.update(json.loads(line))
        except ValueError:
            continue
    return merged


def child_pid(fd: int) -> int | None:
    value = read_status(fd).get("child-pid")
    return int(value) if value else None


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def namespace_members(namespace: int) -> list[int]:
    """The live processes of the jail's PID namespace. A zombie runs nothing and writes nothing: it is reaped
    when it is netjail's own child, and never waited for (its parent reaps it; waiting would last until then)."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/pid").st_ino != namespace:
                    continue
                with open(f"/proc/{name}/stat", "rb") as f:
                    state = f.read().rpartition(b")")[2].split()[0]
            except (OSError, IndexError):
                continue
            if state == b"Z":
                try:
                    os.waitpid(int(name), os.WNOHANG)
                except ChildProcessError:
                    pass
                continue
            members.append(int(name))
    return members


def wait_namespace_empty(namespace: int, timeout: float = 10.0) -> None:
    """Until no process is left in the jail's PID namespace. bwrap's outer process can be gone (SIGKILLed by
    the grace period) while its init, killed through --die-with-parent, is still taking the others down."""
    deadline = time.monotonic() + timeout
    while members := namespace_members(namespace):
        for pid in members:
            kill(pid)
        if time.monotonic() > deadline:
            return  # SIGKILLed and still there (uninterruptible sleep): nothing more can be done from here
        time.sleep(0.01)


def reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass

"""The seccomp filter bubblewrap applies to the command (built with libseccomp through pyseccomp).

Everything is allowed except what could reach outside the jail or undo one of its rules:
- `socket(AF_UNIX, …)` unless `allowAllUnixSockets` (a filter cannot judge a path, so it is all or nothing, as
  in srt; `socketpair` stays allowed: it reaches nothing outside);
- the io_uring calls, whose operations bypass the per-call filter;
- the `TIOCSTI` and `TIOCLINUX` ioctls (typing into, or reading, a terminal), compared on the low 32 bits the
  kernel uses, so a request number with high bits set does not slip past;
- mount and namespace calls (`mount`, the new mount API, `umount2`, `pivot_root`, `chroot`, `unshare`,
  `setns`, `clone` with any namespace flag; `clone3`, whose flags a filter cannot read, answers ENOSYS so libc
  falls back to `clone`), and the kernel keyring, which namespaces do not separate.
Process isolation (no ptrace or signal of anything outside) comes from the PID and user namespaces.
"""

from __future__ import annotations

import errno
import os
import platform

AF_UNIX = 1
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
)
DENIED_CALLS = (
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "keyctl", "add_key", "request_key", "bpf",
)  # fmt: skip
NOT_IMPLEMENTED_CALLS = ("io_uring_setup", "io_uring_enter", "io_uring_register", "clone3")


class SeccompUnavailable(Exception):
    pass


def describe(allow_unix_sockets: bool) -> list[str]:
    """The rules in words, for `netjail -d` and `netjail explain`."""
    rules = [] if allow_unix_sockets else ["socket(AF_UNIX) -> EPERM"]
    rules += [f"ioctl({name}) -> EPERM (low 32 bits compared)" for name in ("TIOCSTI", "TIOCLINUX")]
    rules += [f"{call} -> EPERM" for call in DENIED_CALLS]
    rules += ["clone(namespace flags) -> EPERM"]
    rules += [f"{call} -> ENOSYS" for call in NOT_IMPLEMENTED_CALLS]
    return rules


def build_filter(allow_unix_sockets: bool) -> bytes:
    """The compiled BPF program, as bwrap's `--seccomp FD` reads it."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as e:  # OSError: libseccomp itself is missing
        raise SeccompUnavailable(
            f"libseccomp is not available ({e}). Fix: apt-get install libseccomp2"
        ) from e
    denied = sc.ERRNO(errno.EPERM)
    f = sc.SyscallFilter(sc.ALLOW)
    if platform.machine() == "x86_64":
        f.add_arch(sc.Arch.X86)  # 32-bit programs use other syscall numbers: filter those too
    if not allow_unix_sockets:
        f.add_rule(denied, "socket", sc.Arg(0, sc.EQ, AF_UNIX))
    for request in (TIOCSTI, TIOCLINUX):
        f.add_rule(denied, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    for call in DENIED_CALLS:
        f.add_rule(denied, call)
    for flag in NAMESPACE_FLAGS:
        f.add_rule(denied, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for call in NOT_IMPLEMENTED_CALLS:
        f.add_rule(sc.ERRNO(errno.ENOSYS), call)
    try:
        with os.fdopen(os.memfd_create("netjail-seccomp"), "w+b") as program:
            f.export_bpf(program)
            program.seek(0)
            return program.read()
    except OSError as e:
        raise SeccompUnavailable(f"cannot compile the seccomp filter: {e}") from e

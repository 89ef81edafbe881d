"""The write observer: which writes the jail refused, seen from outside it, for the hint after the run.

A read-only bind answers a write with EROFS before any event a file watcher could see (fanotify needs privileges
netjail lacks), so netjail watches the calls instead: a second seccomp filter, loaded by the namespace helper just
before it becomes bwrap, sends every write-intent call (open for writing, creat, mkdir, mknod, unlink, rmdir,
rename, link, symlink, truncate, chmod) to netjail as a user notification. netjail reads the path from the caller's
memory, answers "continue" (the kernel then runs the call as if nothing had looked: this filter decides nothing,
the jail's mounts do), and counts the call when the path lies on a read-only mount inside.

What it costs: one round trip to netjail per write call (bench/write_observer.py); `record.refusedWrites: false`
turns it off. What it cannot see: a read of a denyRead path succeeds on an empty mask, so hidden reads are not
observed; a write through a symlink is judged by the path named, not the link's target.

Everything the observer reads (the path, the directory it is relative to) is the jailed program's to choose, and
may change as soon as the call continues. So it only ever feeds a hint, which the hint code checks against the
rules (netjail/inspect/fs_hints.py), and the paths are resolved inside the jail's root (openat2 RESOLVE_IN_ROOT),
never through a link into the host's.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import posixpath
import select
import stat
import struct
import threading
from dataclasses import dataclass

import structlog

from netjail.jail.refusals import Refusals

log = structlog.get_logger("netjail")

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_NOTIF_SIZES = 3
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
NOTIF_RECV = 0xC0502100  # SECCOMP_IOCTL_NOTIF_RECV: struct seccomp_notif, 80 bytes
NOTIF_SEND = 0xC0182101  # SECCOMP_IOCTL_NOTIF_SEND: struct seccomp_notif_resp, 24 bytes
NOTIF_ID_VALID = 0x40082102
NOTIF_SIZE, RESP_SIZE = 80, 24
SYSCALL_NUMBERS = {"x86_64": {"seccomp": 317}, "aarch64": {"seccomp": 277}}
SYS_OPENAT2 = 437  # the same on every architecture (numbers after 424 are shared)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
AT_FDCWD = -100
AT_REMOVEDIR = 0x200
O_ACCMODE = 3
ST_RDONLY = 1
PATH_MAX = 4096
SKIPPED_ROOTS = ("/proc", "/sys", "/dev")  # the kernel's own files: never a settings change


@dataclass(frozen=True)
class Call:
    """A write-intent system call: its name in the observer's records, where its path and directory are."""

    op: str
    path_arg: int
    dirfd_arg: int | None = None
    flags_arg: int | None = None  # open and openat: only when opened for writing (the filter compares)
    creates: bool = False  # a new name: refused only if it does not exist yet (else EEXIST)
    follows: bool = False  # the last component is followed (open, truncate, chmod)


CALLS: dict[str, Call] = {
    "open": Call("open", 0, None, 1, follows=True),
    "openat": Call("open", 1, 0, 2, follows=True),
    "openat2": Call("open", 1, 0, follows=True),  # flags in a struct the filter cannot read: read here
    "creat": Call("create", 0, creates=True),
    "mkdir": Call("mkdir", 0, creates=True),
    "mkdirat": Call("mkdir", 1, 0, creates=True),
    "mknod": Call("mknod", 0, creates=True),
    "mknodat": Call("mknod", 1, 0, creates=True),
    "symlink": Call("symlink", 1, creates=True),
    "symlinkat": Call("symlink", 2, 1, creates=True),
    "link": Call("link", 1, creates=True),
    "linkat": Call("link", 3, 2, creates=True),
    "unlink": Call("unlink", 0),
    "unlinkat": Call("unlink", 1, 0),
    "rmdir": Call("rmdir", 0),
    "rename": Call("rename", 0),
    "renameat": Call("rename", 1, 0),
    "renameat2": Call("rename", 1, 0),
    "truncate": Call("truncate", 0, follows=True),
    "chmod": Call("chmod", 0, follows=True),
    "fchmodat": Call("chmod", 1, 0, follows=True),
}


class ObserverUnavailable(Exception):
    pass


@dataclass
class ObserverProgram:
    """The filter, compiled in netjail before the fork, so the helper only has to load it."""

    code: ctypes.Array  # struct sock_filter[]
    fprog: ctypes.Structure  # struct sock_fprog pointing at `code`
    seccomp_nr: int
    names: dict[tuple[int, int], str]  # (audit arch, syscall number) -> name in CALLS


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.process_vm_readv.restype = ctypes.c_ssize_t


def build_program() -> ObserverProgram:
    """The observer's filter: notify on the write-intent calls, allow everything else."""
    machine = platform.machine()
    if machine not in SYSCALL_NUMBERS:
        raise ObserverUnavailable(f"no write observer on {machine}")
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as e:
        raise ObserverUnavailable(f"libseccomp is not available ({e})") from e
    f = sc.SyscallFilter(sc.ALLOW)
    arches = [sc.Arch.NATIVE]
    if machine == "x86_64":
        f.add_arch(sc.Arch.X86)
        arches.append(sc.Arch.X86)
    for name, call in CALLS.items():
        try:
            if call.flags_arg is None:
                f.add_rule(sc.NOTIFY, name)
            else:
                for mode in (os.O_WRONLY, os.O_RDWR):
                    f.add_rule(sc.NOTIFY, name, sc.Arg(call.flags_arg, sc.MASKED_EQ, O_ACCMODE, mode))
        except (OSError, RuntimeError, ValueError):
            continue  # a call this architecture does not have (aarch64 has no `open`, `mkdir`…)
    audit_arches = {sc.Arch.NATIVE: _native_audit_arch(sc), sc.Arch.X86: int(sc.Arch.X86)}
    names: dict[tuple[int, int], str] = {}
    for arch in arches:
        for name in CALLS:
            number = sc.resolve_syscall(audit_arches[arch], name)
            if isinstance(number, int) and number >= 0:
                names[(audit_arches[arch], number)] = name
    try:
        with os.fdopen(os.memfd_create("netjail-write-observer"), "w+b") as program:
            f.export_bpf(program)
            program.seek(0)
            raw = program.read()
    except OSError as e:
        raise ObserverUnavailable(f"cannot compile the write observer's filter: {e}") from e
    code = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(raw) // 8, ctypes.cast(code, ctypes.c_void_p))
    return ObserverProgram(code, fprog, SYSCALL_NUMBERS[machine]["seccomp"], names)


def _native_audit_arch(sc) -> int:  # sc: the pyseccomp module
    return int(sc.Arch.X86_64) if platform.machine() == "x86_64" else int(sc.Arch.AARCH64)


def load_listener(program: ObserverProgram) -> int:  # pragma: no cover - runs in the forked helper
    """In the namespace helper, before it becomes bwrap: load the filter, return the listener descriptor. Loading
    needs CAP_SYS_ADMIN in the helper's user namespace (it has just made its own) or no_new_privs."""
    sizes = (ctypes.c_uint16 * 3)()
    if _libc.syscall(program.seccomp_nr, SECCOMP_GET_NOTIF_SIZES, 0, sizes) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(GET_NOTIF_SIZES)")
    if (sizes[0], sizes[1]) != (NOTIF_SIZE, RESP_SIZE):
        raise OSError(errno.ENOTSUP, f"seccomp notification sizes {sizes[0]}/{sizes[1]}")
    fd = _libc.syscall(
        program.seccomp_nr,
        SECCOMP_SET_MODE_FILTER,
        SECCOMP_FILTER_FLAG_NEW_LISTENER,
        ctypes.byref(program.fprog),
    )
    if fd < 0:
        code = ctypes.get_errno()
        why = "another seccomp listener is already set (netjail inside a sandbox that observes)"
        raise OSError(code, why if code == errno.EBUSY else os.strerror(code))
    return fd


class WriteObserver:
    """Answers the filter's notifications on a thread of the supervisor, and counts the refused writes."""

    def __init__(self, listener: int, program: ObserverProgram, refusals: Refusals, bwrap: str):
        self.listener = listener
        self.names = program.names
        self.refusals = refusals
        self.errors = 0
        self.seen = 0
        self._bwrap = _identity(bwrap)
        self._mounts: dict[str, bool] | None = None  # mount point -> read-only, inside the jail
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC)
        self._buffer = ctypes.create_string_buffer(PATH_MAX)
        self._thread = threading.Thread(target=self._serve, name="netjail-write-observer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> Refusals:
        """Once the jail is gone: stop answering, release the listener, and hand over the count."""
        try:
            os.write(self._wake_write, b"x")
        except OSError:
            pass
        self._thread.join(timeout)
        for fd in (self.listener, self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.errors:
            log.debug("jail.write_observer_errors", errors=self.errors, notifications=self.seen)
        return self.refusals

    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        notification = bytearray(NOTIF_SIZE)
        while True:
            try:
                events = dict(poller.poll())
            except InterruptedError:
                continue
            if self._wake_read in events:
                return
            state = events.get(self.listener, 0)
            if not state & select.POLLIN:
                if state & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    return  # every process under the filter is gone
                continue
            notification[:] = bytes(NOTIF_SIZE)
            try:
                fcntl.ioctl(self.listener, NOTIF_RECV, notification, True)
            except OSError:
                continue  # the caller was interrupted meanwhile: nothing waits for an answer
            self.seen += 1
            notification_id, pid, _flags, nr, arch = struct.unpack_from("=QIIiI", notification)
            args = struct.unpack_from("=6Q", notification, 32)
            found: tuple[str, str, str] | None = None
            try:
                found = self._refused(notification_id, pid, self.names.get((arch, nr)), args)
            except Exception:  # the answer below must go out whatever happened here
                self.errors += 1
            finally:
                self._answer(notification_id)
            if found is not None:
                self.refusals.add(*found)

    def _answer(self, notification_id: int) -> None:
        response = struct.pack("=QqiI", notification_id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)
        try:
            fcntl.ioctl(self.listener, NOTIF_SEND, response)
        except OSError:
            pass  # interrupted by a signal meanwhile: the kernel has restarted or failed the call itself

    def _refused(
        self, notification_id: int, pid: int, name: str | None, args: tuple[int, ...]
    ) -> tuple[str, str, str] | None:
        """(op, path, program) when the call is about to fail on a read-only mount inside the jail, else None."""
        if name is None:
            return None
        call = CALLS[name]
        path = self._path(pid, call, args)
        if path is None:
            return None
        if self._mounts is None:
            if self._is_bwrap(pid):
                return None  # bwrap's own set-up, before the command runs
            self._mounts = _read_mounts(pid)
            if self._mounts is None:
                return None  # gone meanwhile: the next caller's table
        if not self._lexically_read_only(path) or path.startswith(SKIPPED_ROOTS):
            return None
        if self._is_bwrap(pid):
            return None
        flags = self._open_flags(pid, call, args)
        if flags is not None and not flags & O_ACCMODE:
            return None  # openat2 for reading
        op = call.op
        if name == "unlinkat" and args[2] & AT_REMOVEDIR:
            op = "rmdir"
        refused = _would_fail_read_only(pid, path, call, flags)
        if not refused or not _still_waiting(self.listener, notification_id):
            return None
        return op, path, _program(pid)  # now: once the call goes on, the program may exec another

    def _path(self, pid: int, call: Call, args: tuple[int, ...]) -> str | None:
        raw = self._read_string(pid, args[call.path_arg])
        if not raw:
            return None
        if not raw.startswith(b"/"):
            dirfd = _signed32(args[call.dirfd_arg]) if call.dirfd_arg is not None else AT_FDCWD
            where = f"/proc/{pid}/cwd" if dirfd == AT_FDCWD else f"/proc/{pid}/fd/{dirfd}"
            try:
                base = os.readlink(where.encode())
            except OSError:
                return None
            if not base.startswith(b"/"):
                return None  # a descriptor that is not a directory of this tree (a pipe, a socket…)
            raw = base + b"/" + raw
        return os.fsdecode(posixpath.normpath(raw)).encode("utf-8", "backslashreplace").decode()

    def _read_string(self, pid: int, address: int) -> bytes:
        """A NUL-terminated string from the caller's memory, up to PATH_MAX: the part up to the end of its page,
        then the next one (process_vm_readv stops at the first unreadable one)."""
        first = min(PATH_MAX, 4096 - address % 4096)
        local = _IoVec(ctypes.cast(self._buffer, ctypes.c_void_p), PATH_MAX)
        remote = (_IoVec * 2)(_IoVec(address, first), _IoVec(address + first, PATH_MAX - first))
        count = _libc.process_vm_readv(pid, ctypes.byref(local), 1, remote, 2, 0)
        if count <= 0:
            return b""
        return self._buffer.raw[:count].split(b"\0", 1)[0]

    def _open_flags(self, pid: int, call: Call, args: tuple[int, ...]) -> int | None:
        if call.op != "open":
            return None
        if call.flags_arg is not None:
            return args[call.flags_arg] & 0xFFFFFFFF
        how = self._read_bytes(pid, args[2], 8)  # openat2: struct open_how, flags first
        return struct.unpack("=Q", how)[0] if len(how) == 8 else 0

    def _read_bytes(self, pid: int, address: int, size: int) -> bytes:
        buffer = ctypes.create_string_buffer(size)
        local, remote = _IoVec(ctypes.cast(buffer, ctypes.c_void_p), size), _IoVec(address, size)
        count = _libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        return buffer.raw[: max(count, 0)]

    def _lexically_read_only(self, path: str) -> bool:
        """The mount the path names without resolving links: the cheap test every call passes."""
        assert self._mounts is not None
        probe = path
        while True:
            if probe in self._mounts:
                return self._mounts[probe]
            if probe == "/":
                return False
            probe = posixpath.dirname(probe)

    def _is_bwrap(self, pid: int) -> bool:
        return self._bwrap is not None and _identity(f"/proc/{pid}/exe") == self._bwrap


def _would_fail_read_only(pid: int, path: str, call: Call, flags: int | None) -> bool:
    """Resolved inside the jail's root: does the call meet a read-only mount (EROFS), rather than succeed or fail
    for another reason (EEXIST, ENOENT, a device opened for writing)?"""
    root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        follow = call.follows and not (flags or 0) & os.O_NOFOLLOW
        target = _open_in_root(root, path, follow)
        creates = call.creates or (flags is not None and flags & os.O_CREAT)
        if target is not None:
            try:
                if call.creates or (flags is not None and flags & os.O_CREAT and flags & os.O_EXCL):
                    return False  # EEXIST
                mode = os.fstat(target).st_mode
                if call.op == "open" and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    return False  # a device, FIFO or socket opens for writing on a read-only mount
                return bool(os.fstatvfs(target).f_flag & ST_RDONLY)
            finally:
                os.close(target)
        if not creates:
            return False  # ENOENT
        parent = _open_in_root(root, posixpath.dirname(path), True)
        if parent is None:
            return False  # ENOENT: the directory does not exist either
        try:
            return bool(os.fstatvfs(parent).f_flag & ST_RDONLY)
        finally:
            os.close(parent)
    finally:
        os.close(root)


def _open_in_root(root: int, path: str, follow: bool) -> int | None:
    """An O_PATH descriptor of `path` looked up inside the jail: `..` and absolute links stay in its root."""
    how = _OpenHow(
        os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW),
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
    relative = path.lstrip("/").encode("utf-8", "surrogateescape") or b"."
    fd = _libc.syscall(SYS_OPENAT2, root, relative, ctypes.byref(how), ctypes.sizeof(how))
    return fd if fd >= 0 else None


def _still_waiting(listener: int, notification_id: int) -> bool:
    """The caller is still the process blocked in that call (its pid was not reused while we looked)."""
    try:
        fcntl.ioctl(listener, NOTIF_ID_VALID, struct.pack("=Q", notification_id))
        return True
    except OSError:
        return False


def _read_mounts(pid: int) -> dict[str, bool] | None:
    """The jail's mount table, from inside: mount point -> read-only. Later lines are mounted over earlier ones."""
    mounts: dict[str, bool] = {}
    try:
        with open(f"/proc/{pid}/mountinfo", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(b" ")
        if len(fields) > 5:
            point = os.fsdecode(_unescape(fields[4])).encode("utf-8", "backslashreplace").decode()
            mounts[point] = b"ro" in fields[5].split(b",")
    return mounts


def _unescape(field: bytes) -> bytes:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    if b"\\" not in field:
        return field
    out, i = bytearray(), 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out += field[i : i + 1]
            i += 1
    return bytes(out)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _program(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode("utf-8", "replace")[:32] or "?"
    except OSError:
        return "?"


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value

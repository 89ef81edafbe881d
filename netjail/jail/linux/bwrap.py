"""The Linux jail: a network namespace netjail prepares itself, and bubblewrap for everything else.

Process tree:  netjail ─┬─ bwrap ── bwrap (pid 1 inside) ── the command
                        └─ proxy process (host network namespace)

Before bwrap starts, a forked child of netjail enters a new user + network namespace, brings up loopback and
opens the proxy's listening sockets there, hands them to netjail over a Unix socket pair, and then becomes
bwrap. bwrap runs without `--unshare-net`, so the command shares that namespace: it holds only loopback, and
the only thing listening is a socket served by the proxy, which itself runs in the host namespace. Nothing
of netjail's listens outside the jail, so no other local process or user can use the run's proxy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from collections.abc import Mapping
from pathlib import Path

from netjail.jail.environment import jail_environment
from netjail.jail.linux.capture import CaptureError
from netjail.jail.linux.dropped import read_dropped
from netjail.jail.linux.helper import become_bwrap
from netjail.jail.linux.processes import child_pid, kill, read_status, reap, wait_namespace_empty
from netjail.jail.linux.seccomp import SeccompUnavailable, build_filter
from netjail.jail.linux.write_observer import (
    ObserverProgram,
    ObserverUnavailable,
    WriteObserver,
    build_program,
)
from netjail.jail.refusals import Refusals, WriteRules
from netjail.jail.spec import PROXY_PORT, JailError, JailSpec, Launched, PathRules
from netjail.jail.symlinks import open_no_follow
from netjail.proxy.ca import SYSTEM_BUNDLE_PATHS, RunCA
from netjail.records.log import utc_timestamp

JAIL_FILES_DIR = "/run/netjail"  # inside the jail: a tmpfs holding the trust bundle and the CA certificate
JAIL_BUNDLE = f"{JAIL_FILES_DIR}/ca-bundle.pem"
JAIL_CA_CERT = f"{JAIL_FILES_DIR}/ca.pem"
RESOLV_CONF = (
    "# netjail: the jail's own resolver (denied names get NXDOMAIN)\nnameserver 127.0.0.1\noptions edns0\n"
)


def bwrap_args(
    spec: JailSpec,
    bwrap: str = "bwrap",
    status_fd: int | None = None,
    seccomp_fd: int | str | None = None,
    path_fds: Mapping[Path, list[int]] | None = None,
) -> list[str]:
    """The whole filesystem and process policy, in one list, in a fixed order:
    namespaces → base mounts → allowWrite → denyWrite and mandatory denies → denyRead masks → allowRead →
    masked credential files → netjail's own state → trust bundle → `--` → command."""
    rules = spec.rules
    unused = {path: list(fds) for path, fds in (path_fds or {}).items()}  # bwrap closes each after its mount
    fd = (lambda path: str(unused[path].pop(0))) if path_fds is not None else (lambda path: "FD")
    args = [bwrap, "--die-with-parent", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    args += ["--unshare-cgroup-try", "--cap-drop", "ALL", "--hostname", "netjail"]
    # Always a session of its own: the user's terminal is never the command's controlling terminal (TIOCSTI
    # cannot type into the user's shell, its keys' signals reach no part of netjail). An interactive run gets the
    # relay's terminal instead (netjail/run/terminal.py), made its own by `spec.command_prefix`.
    args.append("--new-session")

    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    tmp_writable = any(p == Path("/tmp") for p in rules.writable)
    if not tmp_writable:
        args += ["--tmpfs", "/tmp"]
    # /run holds host sockets (D-Bus, agents, nscd, the container runtime): none of them belong inside.
    args += ["--tmpfs", "/run"]
    if not any(spec.cwd == p or p in spec.cwd.parents for p in rules.writable) and _hidden_by_base(spec.cwd):
        args += ["--ro-bind", str(spec.cwd), str(spec.cwd)]

    for path in rules.writable:
        if path == Path("/tmp") and tmp_writable:
            args += ["--bind", "/tmp", "/tmp"]
        else:  # through the descriptor the symlink check opened: the same inode, reached through no link
            args += ["--bind-fd", fd(path), str(path)]
    for ancestor in _ancestors_to_pin(rules):
        args += ["--bind", str(ancestor), str(ancestor)]
    for path in rules.read_only:
        args += ["--ro-bind", str(path), str(path)]
    masked_dirs = [path for path in rules.hidden if _is_real_dir(path)]
    for path in rules.hidden:
        args += ["--tmpfs", str(path)] if path in masked_dirs else ["--ro-bind", "/dev/null", str(path)]
    for path in rules.reallowed:  # mounted before the masks turn read-only: their mount points live there
        args += ["--ro-bind-fd", fd(path), str(path)]
    # allowWrite inside a denyRead region is readable and writable again (srt's precedence), with the
    # protected paths inside it read-only again
    rewritable = _rewritable(rules)
    for path in rewritable:
        args += ["--bind-fd", fd(path), str(path)]
    for path in rules.read_only:
        if any(w == path or w in path.parents for w in rewritable):
            args += ["--ro-bind", str(path), str(path)]
    # masked credential files: their copies with placeholders, over the /dev/null masks and every bind that covers them
    for real, masked_copy in spec.masked_files:
        args += ["--ro-bind", str(masked_copy), str(real)]
    for path in masked_dirs:
        args += ["--remount-ro", str(path)]
    for path in spec.private_state:
        if os.path.lexists(path) and not _emptied_by_base(path, rules):
            args += _mask(path)

    bundle = str(spec.ca.jail_bundle)
    for system_bundle in SYSTEM_BUNDLE_PATHS:
        if os.path.isfile(system_bundle):
            args += ["--ro-bind", bundle, os.path.realpath(system_bundle)]
    args += ["--ro-bind", bundle, JAIL_BUNDLE, "--ro-bind", str(spec.ca.cert_path), JAIL_CA_CERT]
    if os.path.lexists(
        "/etc/resolv.conf"
    ):  # may be a link into /run (systemd-resolved): bind where it points
        args += ["--ro-bind", str(spec.files_dir / "resolv.conf"), os.path.realpath("/etc/resolv.conf")]

    args += ["--chdir", str(spec.cwd)]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    if status_fd is not None:
        args += ["--json-status-fd", str(status_fd)]
    args.append("--")
    args += (*spec.command_prefix, *spec.argv)
    return args


def _check_own_files_dir(rules: PathRules) -> None:
    """The jail's trust bundle and resolver live in JAIL_FILES_DIR. With the host's /run bound writable, bwrap would
    create them in the host's /run: files other runs share, or a refusal for a user who may not write there."""
    own = Path(JAIL_FILES_DIR)
    for path in rules.writable:
        if path == own or path in own.parents:
            raise JailError(
                f"allowWrite names {path}, which holds {own}, where netjail puts the jail's trust bundle and resolver "
                f"configuration: bound from the host, they would be written into the host's {path}. Fix: name the "
                f"directories under {path} the command needs instead (for example {path}/user/{os.getuid()})"
            )


def _rewritable(rules: PathRules) -> list[Path]:
    return [w for w in rules.writable if any(h in w.parents for h in rules.hidden if _is_real_dir(h))]


def _open_bound_paths(rules: PathRules) -> dict[Path, list[int]]:
    """O_PATH descriptors, opened without following links, for each `--bind-fd` / `--ro-bind-fd` of bwrap_args
    (one per mount: bwrap closes a descriptor once it has mounted it)."""
    opened: dict[Path, list[int]] = {}
    try:
        for path in (*rules.writable, *rules.reallowed, *_rewritable(rules)):
            if path != Path("/tmp"):
                opened.setdefault(path, []).append(open_no_follow(path))
    except OSError as e:
        for path_fd in (fd for fds in opened.values() for fd in fds):
            os.close(path_fd)
        raise JailError(
            f"cannot open {e.filename} to bind it: {e.strerror}. Fix: check that no part of it was "
            "replaced by a symlink since the settings were read"
        ) from e
    return opened


def _ancestors_to_pin(rules: PathRules) -> list[Path]:
    """Every directory between a writable root and a protected path inside it, bound onto itself: a mount point
    cannot be renamed (EBUSY), so `mv .git x; mkdir -p .git/hooks` cannot sidestep a read-only .git/hooks."""
    pinned: dict[Path, None] = {}
    for protected in (*rules.read_only, *rules.hidden):
        roots = [r for r in rules.writable if r in protected.parents]
        if not roots:
            continue
        root = max(roots, key=lambda r: len(r.parts))
        for ancestor in reversed(protected.parents):
            if root in ancestor.parents:
                pinned[ancestor] = None
    return list(pinned)


def _emptied_by_base(path: Path, rules: PathRules) -> bool:
    """Under the jail's own empty /run, with no host path bound in or around it: nothing there to mask."""
    bound = (*rules.writable, *rules.reallowed)
    return Path("/run") in path.parents and not any(
        p == path or p in path.parents or path in p.parents for p in bound
    )


def _hidden_by_base(path: Path) -> bool:
    return any(path == Path(p) or Path(p) in path.parents for p in ("/tmp", "/run"))


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _mask(path: Path) -> list[str]:
    if _is_real_dir(path):
        return ["--tmpfs", str(path), "--remount-ro", str(path)]
    return ["--ro-bind", "/dev/null", str(path)]


class BwrapJail:
    name = "linux-bwrap"
    creates_mount_points = True  # a bind needs its mount point to exist on the host
    relays_terminal = True

    def __init__(self, bwrap_path: str | Path | None = None) -> None:
        self.bwrap = str(bwrap_path) if bwrap_path else (shutil.which("bwrap") or "")
        # bwrap pid -> descriptors of the jail's user and network namespaces (transparent capture): they keep the
        # namespace, and its dropped-packet counters, readable after the command is gone
        self.namespaces: dict[int, list[int]] = {}
        self.observers: dict[int, WriteObserver] = {}  # bwrap pid -> its write observer

    def check(self) -> None:
        if not self.bwrap or not os.access(self.bwrap, os.X_OK):
            raise JailError(
                "bubblewrap (bwrap) is not installed. Fix: install it (Debian/Ubuntu: `apt-get install bubblewrap`)"
            )

    def describe(self, spec: JailSpec) -> list[str]:
        return bwrap_args(spec, self.bwrap or "bwrap", status_fd=None, seccomp_fd="FD")

    def environment(self, base: dict[str, str], ca: RunCA) -> dict[str, str]:
        return jail_environment(base, f"http://127.0.0.1:{PROXY_PORT}", JAIL_BUNDLE, JAIL_CA_CERT)

    def launch(self, spec: JailSpec) -> Launched:
        _check_own_files_dir(spec.rules)
        spec.files_dir.joinpath("resolv.conf").write_text(RESOLV_CONF)
        try:
            program = build_filter(spec.allow_unix_sockets)
        except SeccompUnavailable as e:
            raise JailError(str(e)) from e
        seccomp_fd = os.memfd_create("netjail-seccomp")
        os.write(seccomp_fd, program)
        os.lseek(seccomp_fd, 0, os.SEEK_SET)
        path_fds = _open_bound_paths(spec.rules)
        observer_program, observer_note = _observer_program(spec)
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        status_read, status_write = os.pipe()
        args = bwrap_args(spec, self.bwrap, status_fd=status_write, seccomp_fd=seccomp_fd, path_fds=path_fds)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which becomes bwrap or exits
            parent_end.close()
            os.close(status_read)
            keep = (status_write, seccomp_fd, *(fd for fds in path_fds.values() for fd in fds))
            keep += spec.pass_fds  # network.ask.agentChannel: the command's end of its agent channel
            become_bwrap(child_end, keep, args, spec.env, spec.capture, spec.stdio, observer_program)
        child_end.close()
        os.close(status_write)
        os.close(seccomp_fd)
        for path_fd in (fd for fds in path_fds.values() for fd in fds):
            os.close(path_fd)
        launched = Launched(pid=pid, status_fd=status_read)
        try:
            parent_end.settimeout(10)
            message, fds, _flags, _addr = socket.recv_fds(parent_end, 65536, 16)
            report = json.loads(message) if message.startswith(b"{") else None
        except (OSError, ValueError) as e:
            message, fds, report = f"no answer from the namespace helper: {e}".encode(), [], None
        observed = report is not None and report.get("observer") == "on"
        expected = (
            len(report["roles"]) + len(report.get("namespaces", [])) + observed if report is not None else -1
        )
        listener = fds.pop() if observed and len(fds) == expected else None
        namespace_fds = fds[len(report["roles"]) :] if report is not None else []
        if report is None or len(fds) + (listener is not None) != expected:
            for fd in fds:
                os.close(fd)
            parent_end.close()
            self.cleanup(launched)
            raise JailError(
                f"cannot prepare the jail's network namespace: {message.decode(errors='replace')}"
            )
        for role, fd in zip(report["roles"], fds):
            launched.sockets.setdefault(role, []).append(socket.socket(fileno=fd))
        if namespace_fds:
            self.namespaces[pid] = namespace_fds
        launched.capture_mode = report["capture"]
        launched.capture_warning = report.get("warning")
        launched.gate = parent_end
        if listener is not None and observer_program is not None:
            # a thread, now that the helper is forked: it answers bwrap's own set-up calls too
            refusals = Refusals(WriteRules.of(spec.rules, spec.private_state))
            observer = WriteObserver(listener, observer_program, refusals, self.bwrap)
            observer.start()
            self.observers[pid] = observer
        elif spec.observe_writes:
            launched.observer_note = (report or {}).get("observer") or observer_note
        return launched

    def start(self, launched: Launched) -> None:
        """Let the command run: until now the helper waits, so that nothing runs before run_start is written."""
        if launched.gate is not None:
            launched.gate.sendall(b"go")
            launched.gate.close()
            launched.gate = None

    def child_exit_status(self, launched: Launched, wait_status: int) -> int | None:
        status = read_status(launched.status_fd)
        if "exit-code" in status:
            return int(status["exit-code"])
        if "child-pid" in status and os.WIFSIGNALED(wait_status):
            return 128 + os.WTERMSIG(wait_status)  # bwrap was killed before it could report the command's end
        return None  # bwrap failed while setting the jail up

    def signal(self, launched: Launched, signum: signal.Signals) -> None:
        # bwrap does not forward signals. The command runs in bwrap's new session, whose process group id is
        # the pid of bwrap's init; init ignores signals from outside its namespace, the command does not.
        group = child_pid(launched.status_fd)
        target = -group if group else launched.pid
        try:
            os.kill(target, signum)
        except ProcessLookupError:
            pass

    def cleanup(self, launched: Launched) -> None:
        status = read_status(launched.status_fd)
        if not launched.reaped:
            if status.get("child-pid"):
                # the jail's init first: the kernel empties its PID namespace before bwrap can report its end
                kill(int(status["child-pid"]))
            reap(launched.pid)  # killing bwrap takes the whole sandbox down (--die-with-parent)
            launched.reaped = True
        if status.get("pid-namespace"):
            wait_namespace_empty(int(status["pid-namespace"]))
        self._count_dropped(launched)
        if (observer := self.observers.pop(launched.pid, None)) is not None:
            launched.refused = [dict(r) for r in observer.stop().records()]
        launched.release()

    def _count_dropped(self, launched: Launched) -> None:
        """Once the sandbox is gone: what its network dropped, per destination, for the run's records."""
        fds = self.namespaces.pop(launched.pid, None)
        if not fds:
            return
        try:
            launched.dropped = read_dropped(*fds)
        except CaptureError as e:
            launched.dropped = [{"event": "dropped", "ts": utc_timestamp(), "error": str(e)}]
        finally:
            for fd in fds:
                os.close(fd)


def _observer_program(spec: JailSpec) -> tuple[ObserverProgram | None, str | None]:
    """The write observer's filter, compiled before the fork (record.refusedWrites)."""
    if not spec.observe_writes:
        return None, None
    try:
        return build_program(), None
    except ObserverUnavailable as e:
        return None, f"writes are not observed: {e}"

"""The macOS jail: `sandbox-exec` with a generated seatbelt profile, and netjail's proxy on the host's loopback.

Process tree:  netjail ─┬─ /bin/sh (gate) → sandbox-exec → /bin/sh (status) → the command   (one pid: each execs
                        │                                                                   the next)
                        └─ proxy process

macOS has no network namespace, so the proxy listens on 127.0.0.1 at a port chosen per run, outside the jail. The
profile lets the command connect to that one port and nowhere else (no other TCP or UDP, no DNS through the
system resolver, no Unix socket unless the settings allow one). Because any other local program could connect to
the port too, the proxy requires a per-run secret, sent as proxy credentials (`http://netjail:SECRET@127.0.0.1:PORT`
in the proxy variables, so every client that honours them sends `Proxy-Authorization: Basic …`). The secret lives
only in the command's environment and in the proxy process.

There is no bind mount on macOS: the CA variables point at copies of the trust bundle and CA certificate in the
run's own directory (`/private/tmp/netjail-XXXX/trust/`), which also holds the command's TMPDIR. Programs that ignore
those variables (Security.framework clients: Go, Swift, `security`, some Rust TLS stacks) do not trust netjail's CA.

Not run on a Mac by this file's author: see docs/macos.md for what has and has not been verified.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from netjail.jail.environment import jail_environment
from netjail.jail.macos.policy import HOST_TEMP_DIRS, is_under, seatbelt_policy, user_temp_dir
from netjail.jail.macos.sbpl import SbplError
from netjail.jail.macos.seatbelt import profile
from netjail.jail.macos.violations import LOG_COMMAND, ViolationLog, write_rules
from netjail.jail.refusals import Refusals
from netjail.jail.spec import JailError, JailSpec, Launched

if TYPE_CHECKING:
    from netjail.proxy.ca import RunCA
    from netjail.settings import Settings

log = structlog.get_logger("netjail")
SANDBOX_EXEC = "/usr/bin/sandbox-exec"
PROXY_USER = "netjail"
STATUS_FD = 3
GATE_FD = 4
# Outside the sandbox, in the working directory: wait for netjail's "go" (or give up when netjail closes the gate),
# then become sandbox-exec. Nothing of Python runs in the child: it is spawned, not forked.
GATE_SHIM = (
    f'cd -- "$1" || exit 125; shift; IFS= read -r go <&{GATE_FD} || exit 125; exec {GATE_FD}<&-; exec "$@"'
)
# Inside the sandbox: its line on the status pipe proves the profile was applied; then the pipe is closed and the
# command takes the shell's place (same pid). A missing program gives 127, as everywhere else.
STATUS_SHIM = f'printf started >&{STATUS_FD}; exec {STATUS_FD}>&-; exec "$@"'
RESET_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ)


def default_run_parent() -> Path:
    """Where the run's directory goes: /private/tmp on macOS (hidden from the command, the run's own directory
    re-opened), the system temp directory elsewhere (tests)."""
    if sys.platform == "darwin":
        return Path("/private/tmp")
    return Path(os.path.realpath(tempfile.gettempdir()))


class SeatbeltJail:
    name = "macos-seatbelt"
    creates_mount_points = False  # the profile denies a path that does not exist yet
    relays_terminal = False  # the command keeps the user's terminal (docs/macos.md)

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        sandbox_exec: str | None = None,
        proxy_port: int | None = None,
        secret: str | None = None,
        run_dir: Path | None = None,
        log_tag: str | None = None,
        log_command: str | None = None,
    ) -> None:
        """`proxy_port`, `secret`, `run_dir` and `log_tag` are chosen per run when not given (`netjail explain`
        gives placeholders, so that nothing is bound or created). `log_command` reads the sandbox's violation
        log (/usr/bin/log; tests give a stand-in)."""
        self.settings = settings
        self.sandbox_exec = sandbox_exec or SANDBOX_EXEC
        self.log_command = log_command or LOG_COMMAND
        self.secret = secret or secrets.token_urlsafe(32)
        token = secrets.token_hex(8)
        self.run_dir = run_dir or default_run_parent() / f"netjail-{token}"
        self.log_tag = log_tag or f"netjail-{token}"
        self._port = proxy_port
        self._listeners: list[socket.socket] = []
        self._created = False
        self._new_session = True
        self._status: dict[int, bytes] = {}
        self._cleaned: set[int] = set()
        self._violations: ViolationLog | None = None  # the sandbox's violation log, while the run lasts

    # -- paths and the proxy's entrance ---------------------------------------------------------------------------

    @property
    def run_tmp(self) -> Path:
        return self.run_dir / "tmp"

    @property
    def trust_dir(self) -> Path:
        return self.run_dir / "trust"

    @property
    def bundle_path(self) -> Path:
        return self.trust_dir / "ca-bundle.pem"

    @property
    def ca_cert_path(self) -> Path:
        return self.trust_dir / "ca.pem"

    @property
    def proxy_port(self) -> int:
        """The proxy's port on the loopback: the listeners are bound the first time the port is needed."""
        if self._port is None:
            self._listeners = _bind_loopback_pair()
            self._port = self._listeners[0].getsockname()[1]
        return self._port

    def proxy_url(self, with_secret: bool = True) -> str:
        auth = f"{PROXY_USER}:{self.secret}@" if with_secret else ""
        return f"http://{auth}127.0.0.1:{self.proxy_port}"

    def host_temp_dirs(self) -> tuple[str, ...]:
        user = user_temp_dir()
        return HOST_TEMP_DIRS + ((user,) if user else ())

    # -- the Jail interface ---------------------------------------------------------------------------------------

    def check(self) -> None:
        if not os.access(self.sandbox_exec, os.X_OK):
            raise JailError(
                f"{self.sandbox_exec} is missing. Fix: netjail's macOS jail needs sandbox-exec, which is part of "
                "macOS; run netjail on macOS 10.15 or later"
            )
        if self.settings is not None and self.settings.network.capture == "transparent":
            raise JailError(
                'network.capture "transparent" is not available on macOS. Fix: use "auto" or "proxy-variables"; '
                "the seatbelt profile already denies every connection that bypasses the proxy"
            )

    def profile(self, spec: JailSpec) -> str:
        from netjail.settings import NetworkSettings

        network = (
            self.settings.network if self.settings else NetworkSettings(allowed_domains=[], denied_domains=[])
        )
        allow_git_config = self.settings.filesystem.allow_git_config if self.settings else False
        policy = seatbelt_policy(
            spec,
            network,
            allow_git_config=allow_git_config,
            proxy_port=self.proxy_port,
            run_dir=str(self.run_dir),
            run_tmp=str(self.run_tmp),
            host_temp_dirs=self.host_temp_dirs(),
            log_tag=self.log_tag,
        )
        try:
            return profile(policy)
        except SbplError as e:
            raise JailError(
                f"cannot write the seatbelt profile: {e}. Fix: rename that path, or remove the settings entry "
                "that names it"
            ) from None

    def describe(self, spec: JailSpec) -> list[str]:
        return self.profile(spec).splitlines()

    def environment(self, base: dict[str, str], ca: RunCA) -> dict[str, str]:
        env = jail_environment(
            base, self.proxy_url(with_secret=False), str(self.bundle_path), str(self.ca_cert_path)
        )
        url = self.proxy_url()
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY"):
            env[name] = env[name.lower()] = url
        env["GIT_SSH_COMMAND"] = (
            "ssh -o ControlMaster=no -o ControlPath=none -o ProxyCommand='socat - "
            f"PROXY:127.0.0.1:%h:%p,proxyport={self.proxy_port},proxyauth={PROXY_USER}:{self.secret}'"
        )
        # Seatbelt's "localhost" matches 127.0.0.1 and ::1, not the IPv4-mapped ::ffff:127.0.0.1 that Java's
        # dual-stack sockets use: without this, JVMs cannot reach the proxy.
        env["JAVA_TOOL_OPTIONS"] += " -Djava.net.preferIPv4Stack=true"
        env["TMPDIR"] = str(self.run_tmp) + "/"
        return env

    def launch(self, spec: JailSpec) -> Launched:
        listeners: list[socket.socket] = []
        try:
            listeners = self._take_listeners()
            self._prepare_run_dir(spec.ca)
            args = [
                self.sandbox_exec,
                "-p",
                self.profile(spec),
                "/bin/sh",
                "-c",
                STATUS_SHIM,
                "netjail",
                *spec.argv,
            ]
        except BaseException:
            for listener in listeners:
                listener.close()
            self._discard()
            raise
        self._new_session = not spec.allow_pty
        status_read, status_write = os.pipe()
        parent_gate, child_gate = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Above the numbers they are given in the child, so that dup2 really clears close-on-exec there.
        high_status = fcntl.fcntl(status_write, fcntl.F_DUPFD_CLOEXEC, 10)
        high_gate = fcntl.fcntl(child_gate.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(status_write)
        child_gate.close()
        try:
            pid = os.posix_spawn(
                "/bin/sh",
                ["/bin/sh", "-c", GATE_SHIM, "netjail", str(spec.cwd), *args],
                spec.env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, high_status, STATUS_FD),
                    (os.POSIX_SPAWN_DUP2, high_gate, GATE_FD),
                ],
                setsid=self._new_session,  # no controlling terminal: TIOCSTI cannot type into the user's shell
                setsigdef=RESET_SIGNALS,
            )
        except OSError as e:
            os.close(status_read)
            parent_gate.close()
            for listener in listeners:
                listener.close()
            self._discard()
            raise JailError(f"cannot start sandbox-exec: {e}") from e
        finally:
            os.close(high_status)
            os.close(high_gate)
        launched = Launched(
            pid=pid,
            sockets={"proxy": listeners},
            status_fd=status_read,
            capture_mode="proxy-variables",
            gate=parent_gate,
            proxy_secret=self.secret,
        )
        if spec.observe_writes or spec.debug:
            self._start_violation_log(spec, launched)
        return launched

    def start(self, launched: Launched) -> None:
        if self._violations is not None and (note := self._violations.wait_ready()) is not None:
            observing = self._violations.refusals is not None
            self._violations.stop(drain=False)
            self._violations = None
            if observing:
                launched.observer_note = note
            log.debug("jail.write_observer", note=note)
        if launched.gate is not None:
            launched.gate.sendall(b"go\n")
            launched.gate.close()
            launched.gate = None

    def child_exit_status(self, launched: Launched, wait_status: int) -> int | None:
        if not self._started(launched.status_fd):
            return None  # sandbox-exec refused the profile, or failed before the command
        if os.WIFEXITED(wait_status):
            return os.WEXITSTATUS(wait_status)
        if os.WIFSIGNALED(wait_status):
            return 128 + os.WTERMSIG(wait_status)
        return None

    def signal(self, launched: Launched, signum: signal.Signals) -> None:
        # Without allowPty the command leads its own session and process group (its pid): the whole group gets it.
        if launched.pid <= 0:
            return
        try:
            if self._new_session:
                os.killpg(launched.pid, signum)
                return
        except ProcessLookupError:
            pass
        try:
            os.kill(launched.pid, signum)
        except ProcessLookupError:
            pass

    def cleanup(self, launched: Launched) -> None:
        if launched.pid <= 0:  # never launched: 0 or -1 would name netjail's own process group
            launched.reaped = True
        elif self._new_session and launched.pid not in self._cleaned:
            self._cleaned.add(launched.pid)
            # What the command left running in its process group. A group id is not reused while the group has a
            # member; once it has none this finds nothing (ESRCH), moments after the leader was reaped.
            try:
                os.killpg(launched.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not launched.reaped:
            try:
                os.kill(launched.pid, signal.SIGKILL)
                os.waitpid(launched.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            launched.reaped = True
        if self._violations is not None:
            # the command is gone: what the log still delivers is its own; nothing to wait for if it never ran
            violations, self._violations = self._violations, None
            refusals = violations.stop(drain=self._started(launched.status_fd))
            if refusals is not None:
                launched.refused = [dict(r) for r in refusals.records()]
        launched.release()
        self._discard()

    # -- helpers --------------------------------------------------------------------------------------------------

    def _take_listeners(self) -> list[socket.socket]:
        self.proxy_port  # noqa: B018 - binds the listeners if environment() has not
        if not self._listeners:
            raise JailError("the proxy's port was given, so there is no listener to hand to the proxy")
        listeners, self._listeners = self._listeners, []
        return listeners

    def _prepare_run_dir(self, ca: RunCA) -> None:
        """The run's directory: 0700, created fresh (never reused), with TMPDIR and the trust files."""
        try:
            os.mkdir(self.run_dir, 0o700)
        except OSError as e:
            raise JailError(f"cannot create the run's directory {self.run_dir}: {e}") from e
        self._created = True
        os.mkdir(self.run_tmp, 0o700)
        os.mkdir(self.trust_dir, 0o700)
        shutil.copyfile(ca.jail_bundle, self.bundle_path)
        shutil.copyfile(ca.cert_path, self.ca_cert_path)
        for path in (self.bundle_path, self.ca_cert_path):
            os.chmod(path, 0o444)
        os.chmod(self.trust_dir, 0o500)

    def _started(self, fd: int) -> bool:
        seen = self._status.get(fd, b"")
        if fd >= 0 and b"started" not in seen:
            os.set_blocking(fd, False)
            try:
                while chunk := os.read(fd, 64):
                    seen += chunk
            except BlockingIOError:
                pass
            self._status[fd] = seen
        return b"started" in seen

    def _discard(self) -> None:
        for listener in self._listeners:
            listener.close()
        self._listeners = []
        if self._violations is not None:
            self._violations.stop(drain=False)
            self._violations = None
        if self._created:
            if self.trust_dir.exists():
                os.chmod(self.trust_dir, 0o700)
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self._created = False

    def _start_violation_log(self, spec: JailSpec, launched: Launched) -> None:
        """The sandbox's denials of this run (tagged with its log tag, netjail/jail/macos/violations.py): the
        refused writes for the records (record.refusedWrites), every denial as a debug event under -d. A stream
        that cannot start leaves the run as it is, with a note."""
        try:
            refusals = None
            if spec.observe_writes:
                writable = [str(w) for w in spec.rules.writable]
                temp = [t for t in self.host_temp_dirs() if not any(is_under(t, w) for w in writable)]
                refusals = Refusals(write_rules(spec, tuple(temp)))
            violations = ViolationLog(self.log_tag, refusals, debug=spec.debug, command=self.log_command)
            note = violations.start()
        except Exception as e:  # the command is spawned: whatever happens here, the run goes on without it
            note = f"writes are not observed: {e}"
        if note is None:
            self._violations = violations
        elif spec.observe_writes:
            launched.observer_note = note
        else:
            log.debug("sandbox.log_unavailable", error=note)


def _bind_loopback_pair(attempts: int = 20) -> list[socket.socket]:
    """Listeners on 127.0.0.1 and [::1] at the same free port. Seatbelt's "localhost:PORT" admits both addresses:
    holding both means no other program can listen on the one netjail would leave free and receive the command's
    connections there. Without IPv6 on the loopback, 127.0.0.1 alone."""
    for _ in range(attempts):
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            v4.bind(("127.0.0.1", 0))
            v4.listen(1024)
        except OSError as e:
            v4.close()
            raise JailError(f"cannot listen on 127.0.0.1 for the proxy: {e}") from e
        port = v4.getsockname()[1]
        try:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        except OSError:
            return [v4]  # no IPv6 at all
        try:
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(("::1", port))
            v6.listen(1024)
        except OSError as e:
            v6.close()
            if e.errno == errno.EADDRINUSE:
                v4.close()
                continue
            return [v4]  # no IPv6 loopback here
        return [v4, v6]
    raise JailError("cannot find a port free on both 127.0.0.1 and [::1] for the proxy")

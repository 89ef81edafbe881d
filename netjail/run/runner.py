"""One run: settings → run directory and log → CA → jail + proxy → supervise → run_end → summary.

The supervisor never imports mitmproxy: the proxy is a child process that imports it while the jail starts.
Order matters for failing closed: the log is open and `run_start` written before anything starts; the
listeners exist before the command does, so an early connection waits for the proxy; if the proxy cannot
start or dies, the sandbox is killed and netjail exits 125.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, cast

import structlog

from netjail import __version__
from netjail.jail.persistence import missing_protected_paths, quarantine, write_watch
from netjail.jail.spec import (
    Jail,
    JailError,
    JailSpec,
    Launched,
    PathRules,
    inherited_environment,
    path_rules,
)
from netjail.proxy.ca import RunCA, create_run_ca
from netjail.proxy.client import ProxyFailed, StandbyProxy
from netjail.records import build
from netjail.records.log import RecordLog, utc_timestamp
from netjail.records.read import count_verdicts
from netjail.records.rundir import RunDir, runs_dir, state_dir
from netjail.records.schema import CaptureMode, EndReason, RunCounts, RunStart
from netjail.run.backends import current_jail
from netjail.run.sweep import sweep_abandoned
from netjail.settings import LoadedSettings, Settings
from netjail.utils.status import ExitStatus, ProxyExit

log = structlog.get_logger("netjail")

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 5.0


class RunFailed(Exception):
    """netjail itself failed: the message is for the user, the reason goes into run_end."""

    def __init__(self, message: str, reason: EndReason = "setup_failed"):
        super().__init__(message)
        self.reason = reason


@dataclass
class Outcome:
    exit_status: int
    reason: EndReason
    message: str = ""
    signal_received: int | None = None
    counts: RunCounts | None = None
    run_dir: Path | None = None


def command_argv(command: str | None, argv: tuple[str, ...]) -> tuple[str, ...]:
    """`-c CMD` runs through bash as srt does; `-- PROG ARG…` runs as given, through `sh -c 'exec "$@"'` so that
    a missing or non-executable program gives 127 / 126 (bwrap itself exits 1 when exec fails)."""
    if command is not None:
        shell = shutil.which("bash") or "/bin/sh"
        return (shell, "-c", command)
    return ("/bin/sh", "-c", 'exec "$@"', "netjail", *argv)


def run(
    loaded: LoadedSettings,
    argv: tuple[str, ...],
    *,
    debug: bool = False,
    display_command: str = "",
    warn: Callable[[str], None] = lambda message: None,
    proxy: StandbyProxy | None = None,
) -> Outcome:
    """One run. `proxy` is the proxy process the caller started early (else one is started here); the run owns it
    from here on."""
    proxy = proxy or StandbyProxy()
    try:
        return _run(loaded, argv, debug, display_command, warn, proxy)
    finally:
        proxy.kill()  # stopped already on every normal path; this is for the ones that raised


def _run(
    loaded: LoadedSettings,
    argv: tuple[str, ...],
    debug: bool,
    display_command: str,
    warn: Callable[[str], None],
    proxy: StandbyProxy,
) -> Outcome:
    settings = loaded.settings
    jail = current_jail(settings)
    jail.check()
    cwd = Path.cwd().resolve()
    sweep_abandoned(runs_dir())
    runs = RunDir.create()
    records = RecordLog(runs.flows_jsonl)
    runs.flows_mitm.touch(mode=0o600)
    runs.settings_json.write_text(loaded.effective_json())
    runs.point_latest()
    log.debug("run.start", run_dir=str(runs.path), settings=str(loaded.path), origin=loaded.origin)
    for preset, hosts in loaded.expansions.items():
        log.debug("settings.preset", preset=preset, hosts=hosts)

    started = False

    def announce(capture_mode: str | None) -> None:
        """run_start: written once the jail exists (so it can say how traffic is captured) and before the
        command may run."""
        nonlocal started
        run_start: RunStart = {
            "event": "run_start",
            "ts": utc_timestamp(),
            "run_id": runs.run_id,
            "command": display_command,
            "argv": list(argv),
            "cwd": str(cwd),
            "settings_file": str(loaded.path.resolve()),
            "settings_origin": loaded.origin,
            "netjail_version": __version__,
            "platform": jail.name,
            "capture_mode": cast("CaptureMode | None", capture_mode),  # Launched.capture_mode is a str
            "network_mode": settings.network.mode,
            "pid": os.getpid(),
        }
        records.write(run_start)
        started = True

    outcome = Outcome(ExitStatus.NETJAIL_FAILED, "setup_failed")
    try:
        outcome = _supervise(jail, loaded, runs, argv, cwd, debug, announce, warn, proxy)
    except (JailError, RunFailed, OSError) as e:
        outcome = Outcome(ExitStatus.NETJAIL_FAILED, getattr(e, "reason", "setup_failed"), message=str(e))
    finally:
        runs.remove_secrets()
        for moved in quarantine(runs.path):
            warn(f"the command created {moved['path']} (a protected name); moved to {moved['moved_to']}")
            records.write(build.quarantine({"path": moved["path"], "moved_to": moved["moved_to"]}))
        outcome.counts = count_verdicts(runs.flows_jsonl)
        try:
            if not started:
                announce(None)
            records.write(
                build.run_end(
                    runs.run_id,
                    outcome.exit_status,
                    outcome.reason,
                    message=outcome.message,
                    signal=outcome.signal_received,
                    counts=outcome.counts,
                )
            )
        except OSError as e:
            outcome = Outcome(
                ExitStatus.NETJAIL_FAILED, "log_failed", message=f"cannot write the flow log: {e}"
            )
        records.close()
    outcome.run_dir = runs.path
    return outcome


def _private_state(rules: PathRules, prepare: bool) -> tuple[Path, ...]:
    """netjail's own state and user settings: masked inside. The settings folder is made when it is missing
    but would be writable inside, so the command cannot plant a settings file for the next run."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    user_settings = config_home / "netjail"
    writable = any(w == user_settings or w in user_settings.parents for w in rules.writable)
    if prepare and writable and not user_settings.exists():
        user_settings.mkdir(parents=True, mode=0o700, exist_ok=True)
    return (state_dir(), user_settings)


def build_spec(
    jail: Jail,
    loaded: LoadedSettings,
    argv: tuple[str, ...],
    cwd: Path,
    ca: RunCA,
    files_dir: Path,
    *,
    debug: bool = False,
    prepare: bool = True,
) -> JailSpec:
    """What the jail is asked to apply, from the settings: used by a run, and by `netjail explain` (prepare=False:
    it creates nothing)."""
    settings = loaded.settings
    rules = path_rules(settings, cwd, extra_read_only=(loaded.path.resolve(),))
    return JailSpec(
        argv=argv,
        cwd=cwd,
        env=jail.environment(inherited_environment(os.environ, settings.env_passthrough), ca),
        rules=rules,
        ca=ca,
        allow_pty=settings.allow_pty,
        private_state=_private_state(rules, prepare),
        files_dir=files_dir,
        capture=settings.network.capture,
        allow_unix_sockets=settings.network.allow_all_unix_sockets,
        debug=debug,
    )


def _supervise(
    jail: Jail,
    loaded: LoadedSettings,
    runs: RunDir,
    argv: tuple[str, ...],
    cwd: Path,
    debug: bool,
    announce: Callable[[str | None], None],
    warn: Callable[[str], None],
    proxy: StandbyProxy,
) -> Outcome:
    settings: Settings = loaded.settings
    ca = create_run_ca(runs.proxy_dir, settings.network.tls_terminate.extra_ca_cert_paths)
    spec = build_spec(jail, loaded, argv, cwd, ca, runs.proxy_dir, debug=debug)
    log.debug("jail.args", platform=jail.name, args=jail.describe(spec))
    if debug:
        from netjail.jail.linux.seccomp import describe as seccomp_rules

        log.debug("jail.seccomp", rules=seccomp_rules(spec.allow_unix_sockets))

    write_watch(runs.path, missing_protected_paths(spec.rules, settings.filesystem.allow_git_config))
    launched: Launched | None = None
    try:
        launched = jail.launch(spec)
        if launched.capture_warning:
            warn(launched.capture_warning)
        log.debug("jail.capture", mode=launched.capture_mode)
        if launched.capture_mode == "transparent":
            from netjail.jail.linux.capture import NFT_RULES

            log.debug("jail.capture_rules", nft=NFT_RULES)
        announce(launched.capture_mode)
        proxy.configure(_proxy_config(runs, ca, launched, debug), launched.sockets)
        for (
            sockets
        ) in launched.sockets.values():  # the proxy holds them now: if it dies, connections are refused
            for sock in sockets:
                sock.close()
        launched.sockets.clear()
        jail.start(launched)
        outcome = _wait(jail, launched, proxy)
        jail.cleanup(launched)
        if proxy.stop() == ProxyExit.LOG_FAILED and outcome.reason != "log_failed":
            outcome = Outcome(
                ExitStatus.NETJAIL_FAILED, "log_failed", message="the flow log could not be written"
            )
        return outcome
    except ProxyFailed as e:
        raise RunFailed(str(e), reason="proxy_failed") from e
    finally:
        if launched is not None:
            jail.cleanup(launched)
        proxy.stop()


def _proxy_config(runs: RunDir, ca: RunCA, launched: Launched, debug: bool) -> dict:
    secret_file = None
    if (
        launched.proxy_secret is not None
    ):  # the listener is outside the jail: only the run's clients may use it
        secret_file = runs.proxy_dir / "proxy-secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(launched.proxy_secret)
    return {
        "settings": str(runs.settings_json),
        "record_dir": str(runs.path),
        "confdir": str(ca.confdir),
        "upstream_trust": str(ca.host_bundle),
        "log_file": str(runs.path / "proxy.log"),
        "capture_mode": launched.capture_mode,
        "secret_file": str(secret_file) if secret_file else None,
        "debug": debug,
    }


class ExitNotifier:
    """A descriptor that becomes readable when a child process exits: a pidfd on Linux, a kqueue on macOS."""

    def __init__(self, pid: int):
        if hasattr(os, "pidfd_open"):
            self._fd, self._kqueue = os.pidfd_open(pid), None
        else:  # pragma: no cover - macOS
            import select

            self._kqueue = select.kqueue()
            self._kqueue.control(
                [select.kevent(pid, select.KQ_FILTER_PROC, select.KQ_EV_ADD, select.KQ_NOTE_EXIT)], 0
            )
            self._fd = self._kqueue.fileno()

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._kqueue is not None:
            self._kqueue.close()
        else:
            os.close(self._fd)


def _wait(jail: Jail, launched: Launched, proxy: StandbyProxy) -> Outcome:
    selector = selectors.DefaultSelector()
    jail_exit, proxy_exit = ExitNotifier(launched.pid), ExitNotifier(proxy.pid)
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)
    previous = {s: signal.signal(s, lambda *_: None) for s in FORWARDED_SIGNALS}
    old_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
    selector.register(jail_exit.fileno(), selectors.EVENT_READ, "jail")
    selector.register(proxy_exit.fileno(), selectors.EVENT_READ, "proxy")
    selector.register(proxy.control, selectors.EVENT_READ, "proxy_status")
    selector.register(wake_read, selectors.EVENT_READ, "signal")
    received: int | None = None
    forced = False
    deadline: float | None = None
    started = time.monotonic()
    try:
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            events = selector.select(timeout)
            if not events and deadline is not None:
                log.warning("run.grace_expired", seconds=GRACE_SECONDS)
                os.kill(launched.pid, signal.SIGKILL)  # bwrap's death takes the whole sandbox with it
                forced = True
                deadline = None
                continue
            for key, _ in events:
                match key.data:
                    case "proxy_status":
                        line = proxy.control.recv(64)
                        if not line:
                            selector.unregister(proxy.control)
                        elif b"ready" in line:
                            log.debug("proxy.ready", after_ms=round((time.monotonic() - started) * 1000))
                    case "signal":
                        for signum in wake_read.recv(64):
                            received = signum
                            log.debug("run.signal", signal=signal.Signals(signum).name)
                            jail.signal(launched, signal.Signals(signum))
                        deadline = deadline or time.monotonic() + GRACE_SECONDS
                    case "proxy":
                        code = proxy.process.wait()
                        reason: EndReason = "log_failed" if code == ProxyExit.LOG_FAILED else "proxy_failed"
                        message = (
                            "the flow log could not be written; the sandbox was stopped"
                            if reason == "log_failed"
                            else f"the proxy stopped unexpectedly (exit {code}); the sandbox was stopped"
                        )
                        jail.cleanup(launched)
                        return Outcome(
                            ExitStatus.NETJAIL_FAILED, reason, message=message, signal_received=received
                        )
                    case "jail":
                        _, wait_status = os.waitpid(launched.pid, 0)
                        launched.reaped = True
                        status = jail.child_exit_status(launched, wait_status)
                        if status is None:
                            return Outcome(
                                ExitStatus.NETJAIL_FAILED,
                                "setup_failed",
                                message="the jail could not be set up (bwrap failed)",
                            )
                        if received is not None:
                            # killed after the grace period: report the signal netjail itself was sent
                            status = 128 + received if forced else status
                            return Outcome(status, "interrupted", signal_received=received)
                        return Outcome(status, "signaled" if status > 128 else "exited")
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        selector.close()
        jail_exit.close()
        proxy_exit.close()
        wake_read.close()
        wake_write.close()

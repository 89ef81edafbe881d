"""One run: settings → run directory and log → CA → jail + proxy → supervise → run_end → summary.

The supervisor never imports mitmproxy: the proxy is a child process that imports it while the jail starts.
Order matters for failing closed: the log is open and `run_start` written before anything starts; the
listeners exist before the command does, so an early connection waits for the proxy; if the proxy cannot
start or dies, the sandbox is killed and netjail exits 125.
"""

from __future__ import annotations

import dataclasses
import os
import selectors
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import structlog

from netjail.jail.credentials import CredentialError, MaskPlan, prepare_credentials
from netjail.jail.environment import inherited_environment, masked_environment, withheld_names
from netjail.jail.newrepos import ScanTooLarge
from netjail.jail.paths import absent_entries, path_rules
from netjail.jail.protected import create_placeholders, remove_placeholders
from netjail.jail.scrub import Scrubbed, scrub_environment
from netjail.jail.spec import Jail, JailError, JailSpec, Launched, PathRules
from netjail.policy.proxy_settings import ProxySettings
from netjail.proxy.ca import RunCA, create_run_ca
from netjail.proxy.client import ProxyFailed, StandbyProxy
from netjail.records import build
from netjail.records.log import RecordLog
from netjail.records.otlp import ExportConfig, RecordExport
from netjail.records.read import count_verdicts
from netjail.records.reserve import LogReserve
from netjail.records.rundir import (
    RunDir,
    default_state_dir,
    known_state_dirs,
    live_root,
    register_state_dir,
    runs_dir,
    state_dir,
)
from netjail.records.schema import CaptureMode, DroppedRecord, EndReason, RefusedWrite, RunCounts, RunEnd
from netjail.run.ask import Asking
from netjail.run.backends import current_jail
from netjail.run.endofrun import end_of_run, prepare_end_of_run, start_watcher
from netjail.run.journal import Journal
from netjail.run.sweep import sweep_abandoned
from netjail.run.terminal import HANGUP, Escaped, TerminalRelay
from netjail.run.updates import PolicyUpdates
from netjail.settings import LoadedSettings, Settings
from netjail.utils.status import ExitStatus, ProxyExit

log = structlog.get_logger("netjail")

# SIGINT is forwarded and the run goes on as long as the command does (a program may handle it); SIGTERM and SIGHUP
# are forwarded, and after GRACE_SECONDS everything left is killed
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
    cleanup_errors: list[str] = field(default_factory=list)

    def run_end(self, run_id: str) -> RunEnd:
        """The run's last record."""
        return build.run_end(
            run_id,
            self.exit_status,
            self.reason,
            message=self.message,
            signal=self.signal_received,
            counts=self.counts,
            cleanup_errors=self.cleanup_errors,
        )


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
    control_fd: int | None = None,
    agent_fd: int | None = None,
) -> Outcome:
    """One run. `proxy` is the proxy process the caller started early (else one is started here); the run owns it
    from here on. `control_fd`: policy updates, one settings object per line (netjail/run/updates.py).
    `agent_fd`: ask mode's questions to the harness (netjail/run/ask.py)."""
    proxy = proxy or StandbyProxy()
    try:
        return _run(loaded, argv, debug, display_command, warn, proxy, control_fd, agent_fd)
    finally:
        proxy.kill()  # stopped already on every normal path; this is for the ones that raised


def _run(
    loaded: LoadedSettings,
    argv: tuple[str, ...],
    debug: bool,
    display_command: str,
    warn: Callable[[str], None],
    proxy: StandbyProxy,
    control_fd: int | None = None,
    agent_fd: int | None = None,
) -> Outcome:
    settings = loaded.settings
    jail = current_jail(settings)
    jail.check()
    cwd = Path.cwd().resolve()
    export_config = ExportConfig.from_environ()
    sweep_abandoned(runs_dir())
    runs = RunDir.create()
    reserve, reserve_error = reserve_log_space(runs)
    records = RecordLog(runs.flows_jsonl, reserve)
    runs.flows_mitm.touch(mode=0o600)
    runs.settings_json.write_text(loaded.effective_json())
    runs.point_latest()
    journal = Journal(runs.path)
    live = str(runs.proxy_dir)  # the CA key and secrets: hidden from every jail, removed at the end
    log.debug(
        "run.start",
        run_dir=str(runs.path),
        live_material=live,
        settings=str(loaded.path),
        origin=loaded.origin,
    )
    for preset, hosts in loaded.expansions.items():
        log.debug("settings.preset", preset=preset, hosts=hosts)

    started = False
    export: RecordExport | None = None

    def announce(capture_mode: str | None) -> None:
        """run_start: written once the jail exists (so it can say how traffic is captured) and before the
        command may run. The OTLP export starts with it: its threads may not exist before the jail's
        namespaces are made (unshare refuses a threaded process)."""
        nonlocal started, export
        run_start = build.run_start(
            runs.run_id,
            command=display_command,
            argv=list(argv),
            cwd=str(cwd),
            settings_file=str(loaded.path.resolve()),
            settings_origin=loaded.origin,
            platform=jail.name,
            capture_mode=cast("CaptureMode | None", capture_mode),  # Launched.capture_mode is a str
            network_mode=settings.network.mode,
        )
        records.write(run_start)
        started = True
        if export_config is not None:
            export = RecordExport(export_config, runs.flows_jsonl, runs.run_id)

    outcome = Outcome(ExitStatus.NETJAIL_FAILED, "setup_failed")
    try:
        if reserve_error is not None:
            raise RunFailed(
                f"cannot reserve space for the flow log in {runs.path}: {reserve_error}", "log_failed"
            )
        outcome = _supervise(
            jail,
            loaded,
            runs,
            journal,
            argv,
            cwd,
            debug,
            announce,
            warn,
            records,
            proxy,
            control_fd,
            agent_fd,
        )
    except (JailError, RunFailed, OSError) as e:
        outcome = Outcome(ExitStatus.NETJAIL_FAILED, getattr(e, "reason", "setup_failed"), message=str(e))
    finally:
        runs.remove_secrets()
        outcome.cleanup_errors += end_of_run(journal, records, warn).errors
        journal.close()
        outcome.counts = count_verdicts(runs.flows_jsonl)
        try:
            if not started:
                announce(None)
            records.write(outcome.run_end(runs.run_id))
        except OSError as e:
            outcome = Outcome(
                ExitStatus.NETJAIL_FAILED, "log_failed", message=f"cannot write the flow log: {e}"
            )
        records.close()
        if reserve is not None:
            reserve.remove()
        if export is not None and (undelivered := export.close()):
            warn(undelivered)
    outcome.run_dir = runs.path
    return outcome


def reserve_log_space(runs: RunDir) -> tuple[LogReserve | None, OSError | None]:
    """The log's reserve, taken before the command can fill the disk (netjail/records/reserve.py)."""
    try:
        return LogReserve.create(runs.reserve_file), None
    except OSError as e:
        return None, e


def _private_state(rules: PathRules, prepare: bool) -> tuple[Path, ...]:
    """netjail's own state and user settings: masked inside. The settings folder is made when it is missing
    but would be writable inside, so the command cannot plant a settings file for the next run."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    user_settings = config_home / "netjail"
    writable = any(w == user_settings or w in user_settings.parents for w in rules.writable)
    if prepare and writable and not user_settings.exists():
        user_settings.mkdir(parents=True, mode=0o700, exist_ok=True)
    # Every state directory netjail knows of is hidden: this run's, the default one (the history, when a custom
    # one is set; made now when missing, since a mount cannot hide what appears after the jail starts) and the
    # live root, where every run of this user keeps its CA key and secrets.
    # Custom state directories earlier runs used are hidden too (not those holding what the run may use).
    history = default_state_dir()
    if prepare:
        history.mkdir(parents=True, mode=0o700, exist_ok=True)
        register_state_dir()
    used = (*rules.writable, *rules.reallowed)
    others = [d for d in known_state_dirs() if d.is_dir() and not any(d == u or d in u.parents for u in used)]
    return tuple(dict.fromkeys((state_dir(), history, user_settings, live_root(), *others)))


def inherited_variables(settings: Settings) -> Scrubbed:
    """What the command inherits: the default variables and envPassthrough, credentials taken out of the
    defaults' values (envPassthrough passes whole)."""
    passthrough = settings.env_passthrough
    inherited = inherited_environment(os.environ, passthrough, credential_variables(settings))
    return scrub_environment(inherited, passthrough)


def credential_variables(settings: Settings) -> list[str]:
    """srt's credentials.envVars: withheld even when the default list names them (credentials > envPassthrough >
    defaults)."""
    return [v.name for v in settings.credentials.env_vars]


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
    masks: MaskPlan | None = None,
) -> JailSpec:
    """What the jail is asked to apply, from the settings: used by a run, and by `netjail explain` (prepare=False:
    it creates nothing)."""
    settings = loaded.settings
    rules = path_rules(settings, cwd, extra_read_only=(loaded.path.resolve(),), settings_file=loaded.path)
    inherited = inherited_variables(settings)
    masks = masks or MaskPlan(withheld=[v.name for v in settings.credentials.env_vars])
    return JailSpec(
        argv=argv,
        cwd=cwd,
        env=jail.environment(masked_environment(inherited.env, masks.env, masks.withheld), ca),
        rules=rules,
        ca=ca,
        allow_pty=settings.allow_pty,
        private_state=_private_state(rules, prepare),
        files_dir=files_dir,
        capture=settings.network.capture,
        allow_unix_sockets=settings.network.allow_all_unix_sockets,
        debug=debug,
        masked_files=tuple(masks.files),
        observe_writes=settings.record.refused_writes,
    )


def _supervise(
    jail: Jail,
    loaded: LoadedSettings,
    runs: RunDir,
    journal: Journal,
    argv: tuple[str, ...],
    cwd: Path,
    debug: bool,
    announce: Callable[[str | None], None],
    warn: Callable[[str], None],
    records: RecordLog,
    proxy: StandbyProxy,
    control_fd: int | None = None,
    agent_fd: int | None = None,
) -> Outcome:
    settings: Settings = loaded.settings
    ca = create_run_ca(runs.proxy_dir, settings.network.tls_terminate.extra_ca_cert_paths)
    try:
        masks = prepare_credentials(settings, os.environ, cwd, runs.proxy_dir / "masked")
    except CredentialError as e:
        raise RunFailed(str(e)) from e
    for warning in masks.warnings:
        warn(warning)
    if masks.credentials or masks.withheld:
        log.debug("credentials", **masks.describe())
    spec = build_spec(jail, loaded, argv, cwd, ca, runs.proxy_dir, debug=debug, masks=masks)
    log.debug("jail.args", platform=jail.name, args=jail.describe(spec))
    for absent in absent_entries(settings, cwd):  # no effect on the run: said, never silently dropped
        if absent.key == "denyRead":
            log.debug("jail.absent", key=absent.key, entry=absent.entry, note=absent.note())
        else:
            warn(absent.warning())
    scrubbed = inherited_variables(settings)  # names only: the values are what must not be shown
    log.debug("env.scrubbed", credentials_removed=list(scrubbed.cleaned), not_passed=list(scrubbed.dropped))
    withheld = withheld_names(os.environ, settings.env_passthrough, credential_variables(settings))
    withheld = [n for n in withheld if n not in spec.env]
    log.debug("env.withheld", names=withheld)  # netjail's own values (proxy, CA) replace the others
    if debug:
        from netjail.jail.linux.seccomp import describe as seccomp_rules

        log.debug("jail.seccomp", rules=seccomp_rules(spec.allow_unix_sockets))

    placeholders = create_placeholders(spec.rules.placeholders)
    try:
        protected = prepare_end_of_run(jail, spec, journal, settings.filesystem.allow_git_config)
    except ScanTooLarge as e:
        remove_placeholders(placeholders)
        raise RunFailed(
            f"the writable paths are too large to list their repositories ({e}). Fix: narrow allowWrite"
        ) from e
    launched: Launched | None = None
    watcher = None
    asking: Asking | None = None
    relay = TerminalRelay.open() if jail.relays_terminal else None
    if relay is not None:  # interactive: the command gets a terminal of its own (netjail/run/terminal.py)
        spec = dataclasses.replace(spec, stdio=relay.stdio, command_prefix=relay.command_prefix())
        warn = relay.notices(warn)
    # under a relay, the command runs after this prefix (not in the jail.args above, which a run without one shows)
    log.debug("jail.terminal", relayed=relay is not None, command_prefix=list(spec.command_prefix))
    try:
        launched = jail.launch(spec)
        watcher = start_watcher(journal, spec, protected, warn, records)
        if launched.capture_warning:
            warn(launched.capture_warning)
        log.debug("jail.capture", mode=launched.capture_mode)
        if launched.observer_note:
            log.debug("jail.write_observer", note=launched.observer_note)
        if launched.capture_mode == "transparent":
            from netjail.jail.linux.capture import NFT_RULES

            log.debug("jail.capture_rules", nft=NFT_RULES)
        announce(launched.capture_mode)
        proxy.configure(
            proxy_config(runs, ca, launched.capture_mode, launched.proxy_secret, debug, masks),
            launched.sockets,
            ProxySettings.of(settings),
        )
        # the proxy holds them now: if it dies, connections are refused
        for sockets in launched.sockets.values():
            for sock in sockets:
                sock.close()
        launched.sockets.clear()
        jail.start(launched)
        if relay is not None:
            relay.started()
        updates = PolicyUpdates(loaded, runs, records, proxy.control.sendall, control_fd)
        asking = Asking(loaded, runs, records, proxy.control.sendall, updates, relay, agent_fd, warn)
        outcome = _wait(jail, launched, proxy, relay, updates, asking)
        jail.cleanup(launched)
        if proxy.stop() == ProxyExit.LOG_FAILED and outcome.reason != "log_failed":
            outcome = Outcome(
                ExitStatus.NETJAIL_FAILED, "log_failed", message="the flow log could not be written"
            )
        elif proxy.killed:
            message = "the proxy did not stop in time and was killed: flows still open then have no record"
            outcome = Outcome(ExitStatus.NETJAIL_FAILED, "proxy_killed", message=message)
        return outcome
    except ProxyFailed as e:
        raise RunFailed(str(e), reason="proxy_failed") from e
    finally:
        if launched is not None:
            jail.cleanup(launched)  # returns once the jail's PID namespace is empty: nothing writes any more
            for dropped in launched.dropped:  # what the jail's network dropped, counted per destination
                records.write(cast(DroppedRecord, dropped))
            for refused in launched.refused:  # the writes the jail refused, per path
                records.write(cast(RefusedWrite, refused))
        if watcher is not None:
            watcher.stop()
        if asking is not None:
            asking.close()
        proxy.stop()
        if relay is not None:
            relay.close()  # the user's terminal as it was, on every way out
        remove_placeholders(placeholders)  # before the quarantine, which would take them for the command's


def proxy_config(
    runs: RunDir,
    ca: RunCA,
    capture_mode: str,
    proxy_secret: str | None,
    debug: bool,
    masks: MaskPlan | None = None,
) -> dict:
    """What the proxy process is told (netjail/proxy/process.py). `proxy_secret`: the listener is reachable from
    outside the jail, so only the run's clients may use it. `masks`: the masked credentials, real values
    included, which travel over the control socket only, never through a file."""
    masks = masks or MaskPlan()
    secret_file = None
    if proxy_secret is not None:
        secret_file = runs.proxy_dir / "proxy-secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(proxy_secret)
    return {
        "settings": str(runs.settings_json),
        "record_dir": str(runs.path),
        "confdir": str(ca.confdir),
        "upstream_trust": str(ca.host_bundle),
        "log_file": str(runs.path / "proxy.log"),
        "capture_mode": capture_mode,
        "secret_file": str(secret_file) if secret_file else None,
        "debug": debug,
        "credentials": [c.as_config() for c in masks.credentials],  # real values: this socket, never a file
        "allow_plaintext_inject": masks.allow_plaintext_inject,
        "aws_pairs": masks.aws_pairs,
        "sigv4": masks.sigv4,
    }


class ExitNotifier:
    """A descriptor that becomes readable when a child process exits: a pidfd on Linux, a kqueue on macOS."""

    def __init__(self, pid: int):
        self._kqueue = None
        if sys.platform != "darwin":
            self._fd = os.pidfd_open(pid)
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


def _wait(
    jail: Jail,
    launched: Launched,
    proxy: StandbyProxy,
    relay: TerminalRelay | None = None,
    updates: PolicyUpdates | None = None,
    asking: Asking | None = None,
) -> Outcome:
    selector = selectors.DefaultSelector()
    jail_exit, proxy_exit = ExitNotifier(launched.pid), ExitNotifier(proxy.pid)
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)
    handled = (*FORWARDED_SIGNALS, signal.SIGUSR1, *((signal.SIGWINCH,) if relay is not None else ()))
    previous = {s: signal.signal(s, lambda *_: None) for s in handled}
    old_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
    selector.register(jail_exit.fileno(), selectors.EVENT_READ, "jail")
    selector.register(proxy_exit.fileno(), selectors.EVENT_READ, "proxy")
    selector.register(proxy.control, selectors.EVENT_READ, "proxy_status")
    selector.register(wake_read, selectors.EVENT_READ, "signal")
    if relay is not None:
        relay.register(selector)
    if updates is not None:
        updates.register(selector)
    if asking is not None:
        asking.register(selector)
    received: int | None = None
    forced = False
    deadline: float | None = None
    started = time.monotonic()
    try:
        while True:
            ends = [t for t in (deadline, asking.next_deadline() if asking else None) if t is not None]
            events = selector.select(max(0.0, min(ends) - time.monotonic()) if ends else None)
            if asking is not None:
                asking.expire()  # held requests past network.ask.timeoutSeconds are denied
            if not events and deadline is not None and time.monotonic() >= deadline:
                log.warning("run.grace_expired", seconds=GRACE_SECONDS)
                os.kill(launched.pid, signal.SIGKILL)  # bwrap's death takes the whole sandbox with it
                forced = True
                deadline = None
                continue
            for key, mask in events:
                match key.data:
                    case ("terminal", relay_event):
                        try:
                            relay_event(selector, mask)
                        except Escaped as e:  # `~.` or the user's terminal closed: hang the command up
                            assert relay is not None
                            log.debug("run.escape", how=str(e))
                            relay.say(f"{e}: the command is hung up, the run ends")
                            received = HANGUP
                            relay.signal_session(HANGUP)
                            jail.signal(launched, HANGUP)
                            deadline = deadline or time.monotonic() + GRACE_SECONDS
                    case ("ask", ask_event):
                        ask_event(selector, mask)
                    case "proxy_status":
                        data = proxy.control.recv(4096)
                        if not data:
                            selector.unregister(proxy.control)
                        for line in data.decode("ascii", "replace").splitlines():
                            if line == "ready":
                                log.debug("proxy.ready", after_ms=round((time.monotonic() - started) * 1000))
                            elif asking is not None and asking.on_proxy_line(line):
                                continue
                            elif updates is not None:
                                updates.on_proxy_line(line)
                    case "control":
                        assert updates is not None
                        updates.from_control(selector)
                    case "signal":
                        for signum in wake_read.recv(64):
                            if signum == signal.SIGUSR1:  # netjail's own: re-read the settings file
                                if updates is not None:
                                    updates.from_signal()
                                continue
                            if signum == signal.SIGWINCH:
                                if relay is not None:
                                    relay.resize()
                                continue
                            log.debug("run.signal", signal=signal.Signals(signum).name)
                            jail.signal(launched, signal.Signals(signum))
                            if signum == signal.SIGINT:
                                # as a Ctrl-C would: the command decides what it means, no grace period
                                if relay is not None:
                                    relay.signal_foreground(signum)
                                continue
                            if relay is not None:
                                relay.signal_session(signum)
                            received = signum
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
                        if relay is not None:
                            relay.drain()
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

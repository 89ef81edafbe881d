"""One run: settings → run directory and log → CA → jail + proxy → supervise → run_end → summary.

The supervisor never imports mitmproxy: the proxy is a child process that imports it while the jail starts.
Order matters for failing closed: the log is open and `run_start` written before anything starts; the
listeners exist before the command does, so an early connection waits for the proxy; if the proxy cannot
start or dies, the sandbox is killed and netjail exits 125.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import cast

import structlog

from netjail.detect.canaries import CanaryPlan, mint
from netjail.jail.credentials import CredentialError, prepare_credentials
from netjail.jail.environment import withheld_names
from netjail.jail.newrepos import ScanTooLarge
from netjail.jail.paths import absent_entries
from netjail.jail.protected import create_placeholders, remove_placeholders
from netjail.jail.spec import Jail, JailError, Launched
from netjail.policy.proxy_settings import ProxySettings
from netjail.proxy.ca import create_run_ca
from netjail.proxy.client import ProxyFailed, StandbyProxy
from netjail.records import build
from netjail.records.log import RecordLog
from netjail.records.otlp import ExportConfig, RecordExport
from netjail.records.read import count_verdicts
from netjail.records.reserve import LogReserve
from netjail.records.rundir import RunDir, runs_dir
from netjail.records.schema import CaptureMode, DroppedRecord, RefusedWrite
from netjail.run.agent_channel import JailChannel
from netjail.run.ask import Asking
from netjail.run.backends import current_jail
from netjail.run.endofrun import end_of_run, prepare_end_of_run, start_watcher
from netjail.run.journal import Journal
from netjail.run.outcome import Outcome, RunFailed
from netjail.run.spec import build_spec, credential_variables, inherited_variables, proxy_config
from netjail.run.supervise import wait
from netjail.run.sweep import sweep_abandoned
from netjail.run.terminal import TerminalRelay
from netjail.run.updates import PolicyUpdates
from netjail.settings import LoadedSettings, Settings
from netjail.utils.status import ExitStatus, ProxyExit

log = structlog.get_logger("netjail")


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


def _mint_canaries(jail: Jail, settings: Settings, runs: RunDir) -> CanaryPlan | None:
    """audit.canaries: this run's decoys; the decoy file (Linux) in the live directory, bound in by the jail."""
    if not settings.audit.canaries:
        return None
    passed = inherited_variables(settings).env
    plan = mint(existing=passed, with_file=jail.name == "linux-bwrap")
    if plan.file_text:
        path = runs.proxy_dir / "canary-credentials"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(plan.file_text)
    log.debug("canaries", planted=[c.name for c in plan.canaries])  # names only
    return plan


def _tripped_in_records(runs: RunDir) -> Outcome | None:
    """A canary the proxy recorded (addons/canaries.py) but whose line the supervisor never read."""
    from netjail.records.read import iter_records
    from netjail.run.supervise import canary_message

    for record in iter_records(runs.flows_jsonl):
        sightings = record.get("canaries")
        if isinstance(sightings, list) and sightings and isinstance(sightings[0], dict):
            first = sightings[0]
            host = record.get("host") or record.get("name")
            said = {"canary": first.get("canary"), "host": host, "where": (first.get("where") or ["?"])[0]}
            message = canary_message("canary " + json.dumps(said))
            return Outcome(ExitStatus.CANARY_TRIPPED, "canary_tripped", message=message)
    return None


def reserve_log_space(runs: RunDir) -> tuple[LogReserve | None, OSError | None]:
    """The log's reserve, taken before the command can fill the disk (netjail/records/reserve.py)."""
    try:
        return LogReserve.create(runs.reserve_file), None
    except OSError as e:
        return None, e


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
    canaries = _mint_canaries(jail, settings, runs)
    spec = build_spec(
        jail, loaded, argv, cwd, ca, runs.proxy_dir, debug=debug, masks=masks, canaries=canaries
    )
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
    channel = JailChannel.open(settings)  # network.ask.agentChannel: the command's own (run/agent_channel.py)
    try:
        launched = jail.launch(channel.give(spec) if channel is not None else spec)
        if channel is not None:
            channel.launched()
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
            proxy_config(runs, ca, launched.capture_mode, launched.proxy_secret, debug, masks, canaries),
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
        asking = Asking(loaded, runs, records, proxy.control.sendall, updates, relay, agent_fd, warn, channel)
        outcome = wait(jail, launched, proxy, relay, updates, asking)
        jail.cleanup(launched)
        if proxy.stop() == ProxyExit.LOG_FAILED and outcome.reason != "log_failed":
            outcome = Outcome(
                ExitStatus.NETJAIL_FAILED, "log_failed", message="the flow log could not be written"
            )
        elif proxy.killed:
            message = "the proxy did not stop in time and was killed: flows still open then have no record"
            outcome = Outcome(ExitStatus.NETJAIL_FAILED, "proxy_killed", message=message)
        elif canaries is not None and outcome.reason in ("exited", "signaled"):
            outcome = _tripped_in_records(runs) or outcome  # the command ended before the proxy's word came
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
        elif channel is not None:
            channel.close()
        proxy.stop()
        if relay is not None:
            relay.close()  # the user's terminal as it was, on every way out
        remove_placeholders(placeholders)  # before the quarantine, which would take them for the command's

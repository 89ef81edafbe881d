"""The run's side of persistence: what is journalled before the command starts, the watcher while it runs,
and the replay when it ends (netjail.run.journal), reported to the user and in flows.jsonl."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import cast

import structlog

from netjail.jail.newrepos import GitDirs, executing_before, find_git_dirs
from netjail.jail.persistence import (
    create_stub,
    missing_protected_paths,
    missing_read_only,
    quarantine_destination,
)
from netjail.jail.spec import Jail, JailSpec
from netjail.records import build
from netjail.records.log import RecordLog
from netjail.records.schema import Quarantined
from netjail.run.journal import Cleanup, Journal, replay

log = structlog.get_logger("netjail")


def prepare_end_of_run(jail: Jail, spec: JailSpec, journal: Journal, allow_git_config: bool) -> list[Path]:
    """Journal what the end of the run must guarantee, before anything can change: the repositories that exist,
    the protected names that do not, and the stubs a platform that needs mount points gets for missing denyWrite
    entries."""
    baseline = find_git_dirs(spec.rules.writable)  # ScanTooLarge: the caller refuses the run
    journal.begin(spec.rules.writable, baseline)
    if allow_git_config:  # the run may write their configs: what executes in them now is the user's
        for git_dir in sorted(baseline.directories):
            for config, pairs in executing_before(Path(git_dir)).items():
                journal.write({"op": "config_before", "path": config, "executing": pairs})
    # the names the start-of-run scan found missing anywhere (spec.rules.missing) and those at each root
    protected = list(
        dict.fromkeys([*missing_protected_paths(spec.rules, allow_git_config), *spec.rules.missing])
    )
    journal.protect(protected)
    journal.keep_links(spec.rules.links)
    if getattr(jail, "creates_mount_points", False):
        for path in missing_read_only(spec.rules):
            create_stub(path, journal.write)
    return protected


def start_watcher(
    journal: Journal, spec: JailSpec, protected: list[Path], warn: Callable[[str], None], records: RecordLog
):
    """The watcher (Linux); elsewhere the end of the run and the platform's profile do the work alone."""
    from netjail.jail.watch import Watcher, WatchUnavailable

    begin = next(e for e in journal.entries() if e.get("op") == "begin")
    try:
        watcher = Watcher(
            protected=protected,
            links=dict(spec.rules.links),
            writable=spec.rules.writable,
            baseline=GitDirs.from_json(begin["git_dirs"]),
            since=float(begin["since"]),
            quarantine_for=lambda path: quarantine_destination(journal.run_path, path),
            note=journal.note,
            report=lambda record: report_quarantine(record, records, warn),
            errors=journal.errors,
        )
    except WatchUnavailable as e:
        log.debug("watch.unavailable", error=str(e))
        return None
    watcher.start()
    return watcher


def end_of_run(journal: Journal, records: RecordLog, warn: Callable[[str], None]) -> Cleanup:
    """Replay the journal (stubs removed, protected names quarantined, new repositories sanitised). Whatever
    goes wrong is reported in one message and in run_end, never raised: the journal stays for the next run."""
    try:
        cleanup = replay(journal)
    except Exception as e:
        cleanup = Cleanup(errors=[f"{type(e).__name__}: {e}"])
    for record in cleanup.records:
        report_quarantine(record, records, warn)
    if cleanup.errors:
        warn(
            f"the end of the run met {len(cleanup.errors)} problem(s) ({'; '.join(cleanup.errors[:3])}); the tree "
            f"was made safe where it could be, and the next run completes the rest from {journal.path}"
        )
    return cleanup


def report_quarantine(record: dict, records: RecordLog, warn: Callable[[str], None]) -> None:
    action = record.get("action", "moved")
    if action == "restored":
        what = (
            f"replaced {record['path']} (a symlink on the way to a protected path); netjail restored the link"
            + (f" and moved what was there to {record['moved_to']}" if record.get("moved_to") else "")
        )
    elif action == "sanitised":
        what = f"removed {', '.join(record.get('dropped', []))} from {record['path']} (a repository the run created)"
    elif action == "moved":
        what = f"created {record['path']} (a protected name); moved to {record['moved_to']}"
    else:
        what = f"created {record['path']} (a protected name); {action}: {record.get('error', '')}"
    warn(
        f"the command {what}" if action != "sanitised" else f"netjail {what}"
    )  # restored: the command's doing
    try:
        records.write(build.quarantine(cast(Quarantined, record)))
    except OSError:
        pass  # the journal holds it; run_end reports the log failure

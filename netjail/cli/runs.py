"""`netjail runs`: the runs, oldest first, and `--prune` by the retention settings (docs/flows.md).

Imported on every `netjail -c …` (through netjail/cli/group.py), so only click and the standard library at
module level; everything else is imported inside the command that needs it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from netjail.cli.reading import JSON_OPTION, die
from netjail.utils.status import ExitStatus

if TYPE_CHECKING:
    from netjail.inspect.tables import Cell
    from netjail.records.runs import RunInfo


@click.command()
@click.option(
    "--prune", is_flag=True, help="Remove the runs the retention settings say to remove, and list them."
)
@click.option("--dry-run", is_flag=True, help="With --prune: list what would be removed, remove nothing.")
@click.option(
    "-s",
    "--settings",
    "settings_path",
    type=click.Path(path_type=Path),
    help="Settings file with `retention` (default: as for a run).",
)
@click.option("--max-age-days", type=click.IntRange(min=1), help="Override retention.maxAgeDays.")
@click.option("--max-total-mb", type=click.IntRange(min=1), help="Override retention.maxTotalMB.")
@JSON_OPTION
def runs(
    prune: bool,
    dry_run: bool,
    settings_path: Path | None,
    max_age_days: int | None,
    max_total_mb: int | None,
    as_json: bool,
) -> None:
    """The runs, oldest first: id, start, command, exit status, counts, size.

    \b
    Examples:
      netjail runs
      netjail runs --prune                   # apply settings "retention": {"maxAgeDays": 30, "maxTotalMB": 500}
      netjail runs --prune --dry-run --max-age-days 7
    """
    from netjail.records.rundir import runs_dir
    from netjail.records.runs import list_runs

    infos = list(list_runs())
    if prune:
        _prune(infos, dry_run, settings_path, max_age_days, max_total_mb, as_json)
        return
    _list_runs(infos, as_json, runs_dir())


def _redacted_command(info: RunInfo) -> str:
    from netjail.records.rundir import RunDir
    from netjail.records.runs import run_secrets

    command = info.command or ""
    secrets = run_secrets(RunDir(info.path))
    return secrets.redact_text(command)[0] if secrets else command


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell_text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


def _list_runs(infos: list[RunInfo], as_json: bool, root: Path) -> None:
    from netjail.inspect.tables import Column, Output
    from netjail.utils.text import human_bytes

    if as_json:
        for info in infos:
            data = info.as_json()
            data["command"] = _redacted_command(info) if info.command is not None else None
            sys.stdout.write(json.dumps(data, ensure_ascii=True) + "\n")
        return
    out = Output()
    if not infos:
        out.line(f"no runs in {root}")
        return
    rows: list[list[Cell]] = []
    for info in infos:
        c: Mapping[str, object] = info.counts or {}
        status = (
            "running" if info.in_progress else ("?" if info.exit_status is None else str(info.exit_status))
        )
        rows.append(
            [
                info.run_id,
                info.started.strftime("%Y-%m-%d %H:%M") if info.started else "?",
                _redacted_command(info),
                (status, "green" if status == "0" else "red" if status not in ("running", "?") else None),
                str(c.get("flows", "")),
                str(c.get("allowed", "")),
                (str(c.get("denied", "")), "bold red" if c.get("denied") else None),
                str(c.get("failed", "")),
                (str(c.get("dns_denied", "")), "bold red" if c.get("dns_denied") else None),
                human_bytes(info.size) if out.terminal else str(info.size),
            ]
        )
    if out.terminal:  # the command gets what the other columns leave of the terminal's width
        others = [max(len(h), *(len(_cell_text(r[i])) for r in rows)) for i, h in
                  enumerate(["run", "start (UTC)", "command", "exit", "flows", "allowed", "denied", "failed", "dns denied", "size"]) if i != 2]  # fmt: skip
        room = max(12, min(80, out.console.width - sum(others) - 3 * 10 - 2))
        for row in rows:
            row[2] = _shorten(_cell_text(row[2]), room)
    out.table(
        [
            Column("run", no_wrap=True),
            Column("start (UTC)", no_wrap=True),
            Column("command", no_wrap=True),
            Column("exit", justify="right", no_wrap=True),
            Column("flows", justify="right", no_wrap=True),
            Column("allowed", justify="right", no_wrap=True),
            Column("denied", justify="right", no_wrap=True),
            Column("failed", justify="right", no_wrap=True),
            Column("dns denied", justify="right", no_wrap=True),
            Column("size", justify="right", no_wrap=True),
        ],
        rows,
    )
    if out.terminal:
        out.line(
            f"{len(infos)} run{'s' if len(infos) != 1 else ''} in {root} · netjail flows RUN · netjail runs --prune",
            "dim",
        )


def _prune(
    infos: list[RunInfo],
    dry_run: bool,
    settings_path: Path | None,
    max_age: int | None,
    max_mb: int | None,
    as_json: bool,
) -> None:
    from netjail.records.runs import plan_prune, remove_runs
    from netjail.settings import SettingsError, find_settings_path, load_settings

    source = "the command line"
    if max_age is None or max_mb is None:
        try:
            path, _origin = find_settings_path(settings_path)
            retention = load_settings(path).settings.retention
        except SettingsError as e:
            die(str(e), ExitStatus.NETJAIL_FAILED)
        max_age = max_age if max_age is not None else retention.max_age_days
        max_mb = max_mb if max_mb is not None else retention.max_total_mb
        source = str(path)
    if max_age is None and max_mb is None:
        die(
            f"no retention is set in {source}, so nothing is removed. Fix: add "
            '{"retention": {"maxAgeDays": 30, "maxTotalMB": 1000}} to it, or pass --max-age-days / --max-total-mb'
        )
    removals = plan_prune(infos, max_age, max_mb)
    if not dry_run:
        remove_runs(removals)
    freed = sum(r.info.size for r in removals)
    if as_json:
        print(
            json.dumps(
                {
                    "dry_run": dry_run,
                    "retention": {"maxAgeDays": max_age, "maxTotalMB": max_mb, "from": source},
                    "removed": [
                        {"run_id": r.info.run_id, "bytes": r.info.size, "why": r.why} for r in removals
                    ],
                    "kept": len(infos) - len(removals),
                    "bytes_freed": freed,
                },
                ensure_ascii=True,
            )
        )
        return
    verb = "would remove" if dry_run else "removed"
    limits = ", ".join(
        part
        for part in (f"maxAgeDays {max_age}" if max_age else "", f"maxTotalMB {max_mb}" if max_mb else "")
        if part
    )
    click.echo(
        f"retention ({limits}, from {source}): {verb} {len(removals)} of {len(infos)} runs, {freed / 1e6:.1f} MB"
    )
    for r in removals:
        click.echo(f"  {verb} {r.info.run_id}  {r.info.size / 1e6:.1f} MB  {r.why}")

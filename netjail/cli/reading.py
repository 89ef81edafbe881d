"""What the commands that read runs share: the [RUN] argument, --json, SIZE options, and how they fail.

Imported on every `netjail -c …` (through netjail/cli/group.py), so only click and the standard library at
module level.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click

from netjail.utils.status import ExitStatus

if TYPE_CHECKING:
    from netjail.records.rundir import RunDir

RUN_ARGUMENT = click.argument("run", required=False, metavar="[RUN]")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON).")


def die(message: str, code: int = ExitStatus.ERROR) -> NoReturn:
    from netjail.utils.text import safe_text

    click.echo(f"netjail: {safe_text(message)}", err=True)
    sys.exit(code)


def open_run(spec: str | None) -> RunDir:
    from netjail.records.runs import RunNotFound, resolve_run

    try:
        run = resolve_run(spec)
    except RunNotFound as e:
        die(str(e))
    if not run.flows_jsonl.is_file():
        die(f"{run.path} has no flows.jsonl; it is not a complete run directory")
    return run


def size_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    from netjail.inspect.flows import parse_size

    try:
        return parse_size(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None

"""`netjail config check | schema | init | diff`: settings tooling (docs/commands.md).

Only click and the standard library are imported here: this module is loaded on every `netjail` start.
Exit status: 0; 125 when a file is refused (the message names the file, the field and the fix); 1 when a file
to write cannot be written; 2 for a usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from netjail.utils.status import ExitStatus

FILE = click.Path(path_type=Path, dir_okay=False)


def _refuse(message: object) -> NoReturn:
    click.echo(f"netjail: {message}", err=True)
    sys.exit(ExitStatus.NETJAIL_FAILED)


def _load(path: Path) -> Any:
    from netjail.settings import SettingsError, load_settings

    try:
        return load_settings(path)
    except SettingsError as e:
        _refuse(e)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def config() -> None:
    """Check, compare and start settings files.

    \b
    Examples:
      netjail config check settings.json
      netjail config diff old.json new.json
      netjail config init --from-srt ~/.srt-settings.json -o settings.jsonc
      netjail config schema > settings.schema.json
    """


@config.command()
@click.argument("file", type=FILE)
def check(file: Path) -> None:
    """Validate FILE as a run would, then lint it: one warning per entry that allows more than it seems to
    (shared wildcards, hosts that tunnel anything, local pins without a port), and the presets' expansion.

    \b
    Example:
      netjail config check settings.json
    Exit status: 0 (warnings included), 125 when the file is refused.
    """
    from netjail.inspect.config import expansions, lints

    loaded = _load(file)
    linted = [str(lint) for lint in lints(loaded.settings, loaded.expansions)]
    # a lint the loader warns about too (a local pin without a port) is said once, among the lints
    found = [*(w for w in loaded.warnings if w not in linted), *linted]
    for line in expansions(loaded):
        click.echo(f"preset: {line}")
    for warning in found:
        click.echo(f"warning: {warning}")
    count = f"{len(found)} warning{'' if len(found) == 1 else 's'}" if found else "no warnings"
    click.echo(f"{file}: valid, {count}")


@config.command()
def schema() -> None:
    """Print the JSON Schema of a settings file (docs/settings.schema.json).

    \b
    Example:
      netjail config schema > settings.schema.json
    """
    from netjail.settings import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@config.command()
@click.option(
    "--from-srt", "srt_file", type=FILE, help="Copy this srt file, with netjail's verdicts as comments."
)
@click.option("-o", "--output", type=FILE, help="Write here (refused if it exists) instead of stdout.")
def init(srt_file: Path | None, output: Path | None) -> None:
    """Print a commented starting point (JSONC), or a copy of an srt file with netjail's verdict on each key.

    \b
    Examples:
      netjail config init -o ~/.config/netjail/settings.json
      netjail config init --from-srt ~/.srt-settings.json -o settings.jsonc
    Exit status: 0; 125 when the srt file is not JSON; 1 when OUT exists or cannot be written.
    """
    from netjail.inspect.config_init import STARTING_POINT, annotate

    text = STARTING_POINT
    if srt_file is not None:
        from netjail.settings import SettingsError
        from netjail.settings.load import read_json

        try:
            text = annotate(read_json(srt_file))
        except SettingsError as e:
            _refuse(e)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with output.open("x", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        click.echo(f"netjail: cannot write {output} ({e.strerror or e})", err=True)
        sys.exit(ExitStatus.ERROR)
    click.echo(f"wrote {output}; check it with: netjail config check {output}", err=True)


@config.command()
@click.argument("before", type=FILE)
@click.argument("after", type=FILE)
def diff(before: Path, after: Path) -> None:
    """What changing BEFORE into AFTER allows or denies, in words: every host, port and wildcard either file
    names, judged by both files' policies; then pins, modes and filesystem rules.

    \b
    Example:
      netjail config diff settings.json settings.new.json
    Exit status: 0 (also when nothing changes), 125 when either file is refused.
    """
    from netjail.inspect.config import diff as compare

    changes = compare(_load(before).settings, _load(after).settings)
    for change in changes:
        click.echo(change)
    if not changes:
        click.echo("no change in what is allowed or denied")


COMMANDS = [config]

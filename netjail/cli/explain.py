"""`netjail explain`: what a run with these settings would apply, without running anything.

Only click and the standard library are imported here: this module is loaded on every `netjail` start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from netjail.utils.status import ExitStatus


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-s", "--settings", "settings_path", type=click.Path(path_type=Path), help="Settings file (srt format)."
)
@click.option(
    "--platform",
    type=click.Choice(["linux", "macos"]),
    default=None,
    help="Jail to describe (default: this machine's). The other platform's is built from this machine's paths.",
)
@click.option(
    "-c", "--command", "command", default=None, help="Command line, as for a run (default: a placeholder)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object: the policy, and bwrap_args or profile."
)
def explain(settings_path: Path | None, platform: str | None, command: str | None, as_json: bool) -> None:
    """Print what a run would apply: the policy in words, then the bwrap argument list (Linux) or the seatbelt
    profile (macOS). Nothing is started or created.

    \b
    Examples:
      netjail explain -s settings.json
      netjail explain -s settings.json --platform macos
      netjail explain --platform macos --json | jq -r .profile > netjail.sb
    Settings are found as for a run: -s FILE, else $NETJAIL_SETTINGS, else ~/.config/netjail/settings.json, else
    configs/default.json. Exit status: 0, or 125 when the settings are refused or no jail can be described.
    """
    from netjail.inspect.explain import explain as build
    from netjail.inspect.explain import host_platform, render
    from netjail.jail.spec import JailError
    from netjail.run.runner import command_argv
    from netjail.settings import SettingsError, find_settings_path, load_settings

    try:
        path, origin = find_settings_path(settings_path)
        loaded = load_settings(path, origin=origin)
        report = build(loaded, platform or host_platform(), command_argv(command or "<command>", ()))
    except (SettingsError, JailError, OSError) as e:
        click.echo(f"netjail: {e}", err=True)
        sys.exit(ExitStatus.NETJAIL_FAILED)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(render(report), nl=False)


COMMANDS = [explain]

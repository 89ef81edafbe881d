"""`netjail check URL`: the decision for one request, and the rule that made it, without running anything.

Only click and the standard library are imported here: this module is loaded on every `netjail` start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from netjail.utils.status import ExitStatus

DENIED = 1


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("url")
@click.option("-m", "--method", default="GET", show_default=True, help="HTTP method of the request.")
@click.option(
    "-s", "--settings", "settings_path", type=click.Path(path_type=Path), help="Settings file (srt format)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object: verdict, reason, rule, detail, steps."
)
def check(url: str, method: str, settings_path: Path | None, as_json: bool) -> None:
    """Say whether netjail would let METHOD URL through, and which rule decides: the domain lists, a pinned
    address, then the request rules (network.rules). Reads the settings file only: no proxy, no DNS.

    \b
    Examples:
      netjail check https://github.com/org/repo.git/info/refs?service=git-upload-pack -s settings.json
      netjail check --method POST https://api.example.com/v1/messages --json
    Settings are found as for a run. Exit status: 0 allowed, 1 denied, 2 a URL netjail cannot read, 125 the
    settings are refused.
    """
    from netjail.inspect.check import BadURL, render
    from netjail.inspect.check import check as judge
    from netjail.settings import SettingsError, find_settings_path, load_settings

    try:
        path, origin = find_settings_path(settings_path)
        loaded = load_settings(path, origin=origin)
    except (SettingsError, OSError) as e:
        click.echo(f"netjail: {e}", err=True)
        sys.exit(ExitStatus.NETJAIL_FAILED)
    try:
        report = judge(loaded, url, method)
    except BadURL as e:
        click.echo(f"netjail check: {e}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(render(report), nl=False)
    sys.exit(0 if report["verdict"] == "allow" else DENIED)


COMMANDS = [check]

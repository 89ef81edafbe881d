"""`netjail doctor`: whether netjail can run on this machine, and the one command that fixes each missing piece.

Only click and the standard library are imported here: this module is loaded on every `netjail` start.
"""

from __future__ import annotations

import json
import sys

import click

from netjail.utils.status import ExitStatus


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="One JSON object: can_run, the checks, the raw probes.")
def doctor(as_json: bool) -> None:
    """Check what netjail needs here: bubblewrap and its options, user namespaces, netfilter inside one,
    seccomp, Python and mitmproxy, the state directory and the settings file a run would use.

    \b
    Examples:
      netjail doctor
      netjail doctor --json | jq '.checks[] | select(.status != "ok")'
    Exit status: 0 when netjail can run here (warnings allowed), 1 when something it needs is missing.
    """
    from netjail.inspect.doctor import can_run, diagnose, render, report
    from netjail.inspect.doctor_probes import probe

    probes = probe()
    checks = diagnose(probes)
    if as_json:
        click.echo(json.dumps(report(probes, checks), indent=2, ensure_ascii=False))
    else:
        click.echo(render(checks), nl=False)
    sys.exit(ExitStatus.OK if can_run(checks) else ExitStatus.ERROR)


COMMANDS = [doctor]

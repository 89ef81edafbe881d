"""The commands that read runs: `flows`, `audit`, `why`, `learn`, `export`, and `runs` from cli/runs.py
(docs/flows.md). What they share (the [RUN] argument, --json, sizes, failing) is in cli/reading.py.

Imported by netjail/cli/group.py on every `netjail -c …`, so this module imports only click and the standard
library; everything else is imported inside the command that needs it.

[RUN] is a run id, a unique prefix of one, a path (the run directory or its flows.jsonl), or `latest`
(the default). Output: rich tables on a terminal, plain text when piped, JSON with --json.
Exit status: 0; 1 when the run cannot be found or read; 2 for a usage error; `audit --check` 3 when
something is flagged; `learn` the command's own status (125 when netjail itself failed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import click

from netjail.cli.reading import JSON_OPTION, RUN_ARGUMENT, die, open_run, size_option
from netjail.cli.runs import runs
from netjail.utils.status import ExitStatus

# ---------------------------------------------------------------------------------------------------------
# flows
# ---------------------------------------------------------------------------------------------------------


@click.command()
@RUN_ARGUMENT
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="PATTERN",
    help="Only these hosts: a glob (*.github.com) or a name (with its subdomains). Repeatable.",
)
@click.option("--denied", is_flag=True, help="Only flows netjail denied.")
@click.option("--allowed", is_flag=True, help="Only flows netjail allowed.")
@click.option(
    "--failed",
    is_flag=True,
    help="Only upstream failures (DNS, TLS, refused, timeout) and HTTP 4xx/5xx answers.",
)
@click.option(
    "--method",
    "methods",
    multiple=True,
    metavar="METHOD",
    help="Only this HTTP method (GET, POST, CONNECT…). Repeatable.",
)
@click.option(
    "--min-bytes-out",
    callback=size_option,
    metavar="SIZE",
    help="Only requests that sent at least SIZE bytes (5000, 10k, 1.5MB).",
)
@click.option("--flagged", is_flag=True, help="Only flows the audit detectors flagged.")
@click.option(
    "--credentials",
    "with_credentials",
    is_flag=True,
    help="Only flows that carried a masked credential (injected, or its placeholder left in place).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many matching flows.")
@click.option(
    "--show",
    "show_id",
    metavar="ID",
    help="Show one flow (an id from --json, or its start): request and response headers and body starts, redacted.",
)
@click.option(
    "--body-bytes",
    type=click.IntRange(min=0),
    default=2048,
    show_default=True,
    help="With --show: how much of each body to show.",
)
@JSON_OPTION
def flows(
    run: str | None,
    hosts: tuple[str, ...],
    denied: bool,
    allowed: bool,
    failed: bool,
    methods: tuple[str, ...],
    min_bytes_out: int | None,
    flagged: bool,
    with_credentials: bool,
    limit: int | None,
    show_id: str | None,
    body_bytes: int,
    as_json: bool,
) -> None:
    """The flows of RUN (default: the latest run), one row per request attempt, one per lookup the jail's
    resolver answered (method DNS), and one per destination of the UDP and ICMP packets the jail dropped.

    \b
    Examples:
      netjail flows                          # the latest run
      netjail flows --denied                 # what was blocked, DNS lookups included
      netjail flows --method DNS             # the lookups alone
      netjail flows --failed --host '*.example.org'
      netjail flows --min-bytes-out 1MB --method POST --method PUT
      netjail flows --credentials            # where masked credentials were injected, or refused
      netjail flows 20261128T0746 --json | jq -r .url
      netjail flows --show 3f2a9c                # one flow: headers and the start of each body
    """
    if show_id is not None:
        _show(run, show_id, body_bytes, as_json)
        return
    from netjail.inspect.flows import COLUMNS, FlowFilter, flow_row
    from netjail.inspect.tables import Output
    from netjail.records.runs import flow_records, run_secrets
    from netjail.records.schema import FlowRecord

    chosen = open_run(run)
    verdicts = frozenset(v for v, on in (("deny", denied), ("allow", allowed)) if on)
    keep = FlowFilter(
        hosts=hosts,
        verdicts=verdicts,
        failed=failed,
        methods=frozenset(m.upper() for m in methods),
        min_bytes_out=min_bytes_out,
        flagged=flagged,
        credentials=with_credentials,
    )
    # a `dropped` record carries the fields of a flow the table shows (verdict, host, port, bytes_out); a `dns`
    # record is a row of its own kind (method DNS, the name as host)
    listed = cast(
        "Iterator[FlowRecord]", flow_records(chosen, run_secrets(chosen), events=("flow", "dropped", "dns"))
    )
    records = (r for r in listed if keep(r))
    shown = 0
    if as_json:
        write = sys.stdout.write
        for record in records:
            write(json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n")
            shown += 1
            if limit and shown >= limit:
                break
        return
    out = Output()
    table = out.stream_table(COLUMNS)
    for record in records:
        table.add(flow_row(record, human=out.terminal))
        shown += 1
        if limit and shown >= limit:
            break
    table.close()
    if out.terminal:
        out.line(f"{shown} flow{'s' if shown != 1 else ''} · run {chosen.run_id} · {chosen.path}", "dim")
    elif shown == 0:
        click.echo("(no flows match)", err=True)


def _show(run: str | None, flow_id: str, body_bytes: int, as_json: bool) -> None:
    from netjail.inspect.show import FlowNotFound, find_flow, render
    from netjail.inspect.show import as_json as shown_json
    from netjail.records.runs import run_secrets

    chosen = open_run(run)
    try:
        shown = find_flow(chosen, flow_id, run_secrets(chosen))
    except FlowNotFound as e:
        die(str(e))
    if as_json:
        click.echo(json.dumps(shown_json(shown, body_bytes), ensure_ascii=True))
    else:
        click.echo(render(shown, body_bytes), nl=False)


# ---------------------------------------------------------------------------------------------------------
# audit
# ---------------------------------------------------------------------------------------------------------


@click.command()
@RUN_ARGUMENT
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML report (timeline, bytes-out chart).",
)
@click.option(
    "--large-upload",
    callback=size_option,
    metavar="SIZE",
    help="Flag requests that sent at least SIZE (default 1MiB, as recorded).",
)
@click.option("--check", is_flag=True, help=f"Exit {ExitStatus.FLAGGED} when anything is flagged (for CI).")
@JSON_OPTION
def audit(
    run: str | None, html_path: Path | None, large_upload: int | None, check: bool, as_json: bool
) -> None:
    """What left the machine in RUN: per destination host the requests, bytes sent and received, denied
    attempts; then the flows flagged as possible exfiltration, and why.

    \b
    Flags: large uploads; request bodies, URLs or headers carrying high-entropy or encoded data; many
    distinct subdomains under one domain or long DNS labels (DNS tunnelling); the value of a secret named
    in settings audit.secretEnv / audit.secretFiles (never shown, only its name and a digest).
    \b
    Examples:
      netjail audit
      netjail audit --html report.html && xdg-open report.html
      netjail audit --json | jq '.flagged[].flags'
    """
    from netjail.inspect.audit import build_report, render, to_json
    from netjail.inspect.tables import Output

    chosen = open_run(run)
    report = build_report(chosen, large_upload=large_upload)
    if html_path is not None:
        from netjail.inspect.audit_html import render_html

        try:
            html_path.write_text(render_html(report), encoding="utf-8")
        except OSError as e:
            die(f"cannot write {html_path}: {e.strerror or e}")
    if as_json:
        sys.stdout.write(to_json(report) + "\n")
    else:
        render(report, Output())
        if html_path is not None:
            click.echo(f"\nHTML report: {html_path}")
    from netjail.inspect.audit_credentials import misdirected

    if check and (report["totals"]["flagged_flows"] or report["findings"] or misdirected(report)):
        sys.exit(ExitStatus.FLAGGED)


# ---------------------------------------------------------------------------------------------------------
# why
# ---------------------------------------------------------------------------------------------------------


@click.command()
@RUN_ARGUMENT
@JSON_OPTION
def why(run: str | None, as_json: bool) -> None:
    """Why a run's network use failed: the blocked hosts and upstream failures, grouped, with what each means
    and the exact settings change that fixes it. Recognises pip, npm and git and says what they fetched.

    \b
    Examples:
      netjail why
      netjail why --json | jq '.blocked[].fix'
    """
    from netjail.inspect.tables import Output
    from netjail.inspect.why import diagnose
    from netjail.inspect.why_render import render

    chosen = open_run(run)
    diagnosis = diagnose(chosen)
    if as_json:
        sys.stdout.write(json.dumps(diagnosis, indent=2, ensure_ascii=True) + "\n")
        return
    render(diagnosis, Output())


# ---------------------------------------------------------------------------------------------------------
# learn
# ---------------------------------------------------------------------------------------------------------


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "-s",
    "--settings",
    "settings_path",
    type=click.Path(path_type=Path),
    help="BASE settings (default: as for a run).",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the learned settings (default: learned-settings.json in the run directory).",
)
@click.option("-c", "--command", "command", help="Command line to run with bash -c.")
@click.option("-d", "--debug", is_flag=True, help="Debug log on stderr, as for a run.")
@click.option(
    "--keep-unused", is_flag=True, help="Keep BASE's allowedDomains entries the command did not use."
)
@JSON_OPTION
@click.option(
    "--rules",
    is_flag=True,
    help="Also propose network.rules: per host, the methods used and the narrowest path globs, the rest denied.",
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def learn(
    settings_path: Path | None,
    output: Path | None,
    command: str | None,
    debug: bool,
    keep_unused: bool,
    as_json: bool,
    rules: bool,
    argv: tuple[str, ...],
) -> None:
    """Run CMD with network.mode "audit" and write the settings that would have allowed exactly what it used.

    Requests the allow list would refuse (not_allowed) go through and are recorded as would_deny; deniedDomains,
    the local-range guard, the fronting checks and the jail still hold. The result keeps BASE's other settings,
    lists exact hosts (a *.parent wildcard only for several subdomains of a parent that is not a shared
    hosting domain), and the diff against BASE is printed.

    \b
    Examples:
      netjail learn -s base.json -o project.json -c 'pip install -r requirements.txt'
      netjail -s project.json -c 'pip install -r requirements.txt'
    """
    from netjail.inspect.learn import run_learn

    if command is not None and argv:
        die("give either -c 'CMD' or -- PROG ARG…, not both", ExitStatus.NETJAIL_FAILED)
    if command is None and not argv:
        die(
            "nothing to run. Fix: netjail learn -c 'CMD'  or  netjail learn -- PROG ARG…",
            ExitStatus.NETJAIL_FAILED,
        )
    sys.exit(
        run_learn(
            settings_path,
            output,
            command,
            argv,
            debug=debug,
            keep_unused=keep_unused,
            as_json=as_json,
            rules=rules,
        )
    )


# ---------------------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------------------


@click.command()
@RUN_ARGUMENT
@click.option(
    "--har",
    "har_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Write HAR 1.2 here ('-' for stdout).",
)
@JSON_OPTION
def export(run: str | None, har_path: Path, as_json: bool) -> None:
    """Export RUN's flows as HAR 1.2 (browser devtools, HAR viewers). Credentials and configured secrets stay
    redacted; each entry carries netjail's verdict in `_netjail`.

    \b
    Examples:
      netjail export --har run.har
      mitmweb -r ~/.local/state/netjail/runs/latest/flows.mitm     # the full flows, in mitmproxy's UI
    """
    from netjail.inspect.har import write_har

    chosen = open_run(run)
    try:
        if str(har_path) == "-":
            summary = write_har(chosen, sys.stdout)
        else:
            with har_path.open("w", encoding="utf-8") as f:
                summary = write_har(chosen, f)
    except OSError as e:
        die(f"cannot write {har_path}: {e.strerror or e}")
    if as_json:
        click.echo(json.dumps(summary | {"file": str(har_path)}, ensure_ascii=True), err=str(har_path) == "-")
    elif str(har_path) != "-":
        click.echo(
            f"wrote {summary['entries']} entries to {har_path} (HAR 1.2)"
            + (f"; redacted: {', '.join(summary['redacted'])}" if summary["redacted"] else "")
        )


COMMANDS = [flows, runs, audit, why, learn, export]

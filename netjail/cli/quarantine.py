"""`netjail quarantine list / show / restore`: what runs took out of the tree, and putting it back
(netjail/inspect/quarantined.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from netjail.cli.reading import JSON_OPTION, die


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def quarantine() -> None:
    """What runs took out of the tree because a host tool would run it later (a new .git hook, a
    .github/workflows file, a .claude/settings.json…): list it, look at it, put it back.

    \b
    Examples:
      netjail quarantine list
      netjail quarantine show 1                 # item 1 of the latest run that quarantined something
      netjail quarantine restore 20261202T0412#2
    """


@quarantine.command("list")
@click.argument("run", required=False, metavar="[RUN]")
@JSON_OPTION
def list_items(run: str | None, as_json: bool) -> None:
    """Every quarantined item (of RUN, or of all runs, newest first)."""
    from netjail.cli.reading import open_run
    from netjail.inspect.quarantined import all_items, run_items
    from netjail.inspect.tables import Cell, Column, Output
    from netjail.utils.text import safe_text

    items = run_items(open_run(run)) if run else list(all_items())
    if as_json:
        for item in items:
            click.echo(json.dumps(item.as_json(), ensure_ascii=True))
        return
    out = Output()
    if not items:
        out.line("nothing quarantined" + (f" in run {run}" if run else ""))
        return
    rows: list[list[Cell]] = [
        [
            item.name,
            str(item.record.get("ts", ""))[:19].replace("T", " "),
            safe_text(item.record.get("path")),
            (item.state, "green" if item.state == "restored" else None),
        ]
        for item in items
    ]
    out.table(
        [Column("item", no_wrap=True), Column("taken (UTC)", no_wrap=True), Column("path"), Column("state")],
        rows,
    )
    if out.terminal:
        out.line("netjail quarantine show ITEM · netjail quarantine restore ITEM", "dim")


@quarantine.command()
@click.argument("item")
@JSON_OPTION
def show(item: str, as_json: bool) -> None:
    """What ITEM is (RUN#N, or N in the latest run that has items), why it was taken, and its content."""
    from netjail.inspect.quarantined import ItemNotFound, find_item
    from netjail.inspect.quarantined import show as render

    try:
        found = find_item(item)
    except ItemNotFound as e:
        die(str(e))
    click.echo(json.dumps(found.as_json(), ensure_ascii=True) if as_json else render(found).rstrip())


@quarantine.command()
@click.argument("item")
@click.option("--to", type=click.Path(path_type=Path), help="Put it here instead of where it was.")
def restore(item: str, to: Path | None) -> None:
    """Put ITEM back where it was (or at --to). Nothing in place is replaced; what you restore will run when
    the tool it belongs to next starts (that is why it was taken)."""
    from netjail.inspect.quarantined import ItemNotFound, find_item
    from netjail.inspect.quarantined import restore as put_back

    try:
        found = find_item(item)
        target = put_back(found, to)
    except ItemNotFound as e:
        die(str(e))
    except OSError as e:
        die(f"cannot restore {item}: {e.strerror or e}" + (f" ({e.filename})" if e.filename else ""))
    click.echo(f"restored {found.name} to {target}")
    click.echo(f"note: {found.why()}", err=True)


COMMANDS = [quarantine]

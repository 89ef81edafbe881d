"""The command line. `netjail [-s FILE] [-d] -c 'CMD'` or `netjail [-s FILE] [-d] -- PROG ARG…`.

Exit status: the command's own; 128+N if it died of signal N; 126 not executable; 127 not found; 125 when
netjail itself failed (bad settings, no bwrap, the proxy failed to start or died, the log could not be written).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from netjail import __version__
from netjail.utils.status import ExitStatus


class DefaultRunGroup(click.Group):
    """`netjail -c …` and `netjail -- prog` mean `netjail run …`: srt's command line, unchanged. A first word that
    is neither an option, a subcommand nor a program (`netjail flow`) is click's usage error, exit 2, with the
    closest subcommands: nothing runs and no run directory is made."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            word = args[0]
            if word.startswith("-") or "/" in word or shutil.which(word) is not None:
                args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultRunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netjail")
def main() -> None:
    """Run a command in a jail whose every byte of egress is judged and recorded.

    \b
    Without a subcommand, netjail runs one (the default command, `run`):
      netjail [-s FILE] [-d] -c 'CMD'       CMD with bash -c
      netjail [-s FILE] [-d] -- PROG ARG…   PROG as given
      -s, --settings FILE  settings file (srt format); else $NETJAIL_SETTINGS,
                           ~/.config/netjail/settings.json, configs/default.json
      -c, --command CMD    command line to run with bash -c
      -d, --debug          debug log on stderr: settings, bwrap arguments, decisions
    On a terminal, `~.` at the start of a line ends the run.

    \b
    Examples:
      netjail -s configs/example.json -c 'pip download requests'
      netjail -- curl -sS https://example.com/
      netjail flows --denied
    """


def _fail(message: str) -> None:
    for line in message.splitlines() or [""]:  # a settings file's problems come one per line
        click.echo(f"netjail: {line}", err=True)
    sys.exit(ExitStatus.NETJAIL_FAILED)


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "-s", "--settings", "settings_path", type=click.Path(path_type=Path), help="Settings file (srt format)."
)
@click.option("-c", "--command", "command", help="Command line to run with bash -c.")
@click.option(
    "-d", "--debug", is_flag=True, help="Debug log on stderr: settings used, bwrap arguments, decisions."
)
@click.option(
    "--control-fd",
    type=click.IntRange(min=3),
    metavar="FD",
    help="Read policy updates from this descriptor while the run lasts: one whole settings object per line "
    "(srt's protocol). SIGUSR1 re-reads the settings file.",
)
@click.option(
    "--agent-fd",
    type=click.IntRange(min=3),
    metavar="FD",
    help="Ask mode (network.ask): put questions to the harness on this descriptor, outside the jail (srt's agent "
    "channel protocol, newline-delimited JSON: docs/policy.md).",
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def run(
    settings_path: Path | None,
    command: str | None,
    debug: bool,
    control_fd: int | None,
    agent_fd: int | None,
    argv: tuple[str, ...],
) -> None:
    """Run CMD (or PROG ARG…) inside the jail.

    \b
    Examples:
      netjail run -s settings.json -c 'npm install'
      netjail run -- python3 -m pip download six
      netjail --control-fd 3 -s settings.json -c 'claude' 3< updates.fifo
    Settings: -s FILE, else $NETJAIL_SETTINGS, else ~/.config/netjail/settings.json, else configs/default.json.
    While it runs, only the network part of the settings can change (SIGUSR1, --control-fd): docs/policy.md.
    """
    from netjail.utils import logs

    logs.configure(debug)
    if command is not None and argv:
        _fail("give either -c 'CMD' or -- PROG ARG…, not both. Fix: quote the whole command after -c")
    if control_fd is not None:
        try:
            os.fstat(control_fd)
            os.set_inheritable(control_fd, False)  # netjail's, never the command's
        except OSError:
            _fail(
                f"--control-fd {control_fd}: that descriptor is not open. Fix: open it for netjail, e.g. 3< FILE"
            )
    if agent_fd is not None:
        try:
            os.fstat(agent_fd)
            os.set_inheritable(
                agent_fd, False
            )  # the harness's and netjail's: the jailed program cannot answer
        except OSError:
            _fail(
                f"--agent-fd {agent_fd}: that descriptor is not open. Fix: pass netjail one end of a socketpair "
                "(e.g. Popen(pass_fds=...))"
            )
    if command is None and not argv:
        _fail("nothing to run. Fix: netjail -c 'CMD'  or  netjail -- PROG ARG…")

    # The proxy process starts first: importing mitmproxy, the slowest part of a run, overlaps everything else.
    from netjail.proxy.client import StandbyProxy

    proxy = StandbyProxy()

    import structlog

    from netjail.inspect.summary import render
    from netjail.jail.spec import JailError
    from netjail.records.otlp import ExportConfigError
    from netjail.run.runner import command_argv
    from netjail.run.runner import run as run_jailed
    from netjail.settings import SettingsError, find_settings_path, load_settings

    log = structlog.get_logger("netjail")
    try:
        path, origin = find_settings_path(settings_path)
        loaded = load_settings(path, origin=origin)
    except SettingsError as e:
        proxy.kill()
        _fail(str(e))
    for warning in loaded.warnings:
        click.echo(f"netjail: warning: {warning}", err=True)
    log.debug("settings.used", file=str(loaded.path), origin=loaded.origin)

    full_argv = command_argv(command, argv)
    display = command if command is not None else " ".join(argv)
    try:
        outcome = run_jailed(
            loaded,
            full_argv,
            debug=debug,
            display_command=display,
            warn=lambda message: click.echo(f"netjail: warning: {message}", err=True),
            proxy=proxy,
            control_fd=control_fd,
            agent_fd=agent_fd,
        )
    except (JailError, ExportConfigError, OSError) as e:
        _fail(str(e))
    if outcome.message:
        click.echo(f"netjail: {outcome.message}", err=True)
    if outcome.run_dir is not None:
        summary = render(outcome.run_dir / "flows.jsonl", outcome.run_dir)
        if summary:
            click.echo(summary, err=True)
    # Everything is written and closed; the interpreter's own teardown would only delay the shell.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(outcome.exit_status)


from netjail.cli.flows import COMMANDS as _FLOW_COMMANDS  # noqa: E402

for _command in _FLOW_COMMANDS:
    main.add_command(_command)


from netjail.cli.explain import COMMANDS as _EXPLAIN_COMMANDS  # noqa: E402

for _command in _EXPLAIN_COMMANDS:
    main.add_command(_command)


from netjail.cli.check import COMMANDS as _CHECK_COMMANDS  # noqa: E402

for _command in _CHECK_COMMANDS:
    main.add_command(_command)


from netjail.cli.ask import COMMANDS as _ASK_COMMANDS  # noqa: E402
from netjail.cli.config import COMMANDS as _CONFIG_COMMANDS  # noqa: E402
from netjail.cli.doctor import COMMANDS as _DOCTOR_COMMANDS  # noqa: E402
from netjail.cli.proxy import COMMANDS as _PROXY_COMMANDS  # noqa: E402
from netjail.cli.quarantine import COMMANDS as _QUARANTINE_COMMANDS  # noqa: E402

for _command in (
    *_ASK_COMMANDS,
    *_DOCTOR_COMMANDS,
    *_CONFIG_COMMANDS,
    *_PROXY_COMMANDS,
    *_QUARANTINE_COMMANDS,
):
    main.add_command(_command)


if __name__ == "__main__":
    main()

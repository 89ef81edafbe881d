"""`netjail proxy`: the judging and recording proxy alone, for containers and VMs (netjail/run/standalone.py)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from netjail.utils.status import ExitStatus


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-s", "--settings", "settings_path", type=click.Path(path_type=Path), help="Settings file (JSON)."
)
@click.option(
    "--listen",
    default="127.0.0.1:0",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen. Loopback unless named; port 0 picks a free one.",
)
@click.option(
    "--client-host",
    metavar="NAME",
    help="The name or address clients reach the proxy by, in the URL printed and in --env-file "
    "(a compose service name, a bridge address). Default: the --listen address.",
)
@click.option(
    "--ca-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the run CA's certificate (PEM) here, for clients to trust.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the client's variables (proxy URL with the secret, CA paths) here, mode 0600: "
    "`docker run --env-file FILE`.",
)
@click.option("-d", "--debug", is_flag=True, help="mitmproxy's and netjail's debug messages on stderr.")
def proxy(
    settings_path: Path | None,
    listen: str,
    client_host: str | None,
    ca_out: Path | None,
    env_file: Path | None,
    debug: bool,
) -> None:
    """Run only the judging and recording proxy, for clients outside any jail (containers, VMs) that set their
    proxy variables to it. Every client must send the generated secret (it is in the proxy URL printed); the
    records are a run like any other (netjail flows). Stop with Ctrl-C or SIGTERM.

    \b
    Examples:
      netjail proxy -s settings.json
      netjail proxy -s settings.json --listen 0.0.0.0:3128 --client-host proxy --env-file /share/proxy.env
    """
    from netjail.utils import logs

    logs.configure(debug)
    from netjail.run.standalone import parse_listen

    try:
        host, port = parse_listen(listen)
    except ValueError as e:
        click.echo(f"netjail: {e}", err=True)
        sys.exit(ExitStatus.NETJAIL_FAILED)

    from netjail.proxy.client import StandbyProxy

    standby = StandbyProxy()  # mitmproxy's import overlaps reading the settings

    from netjail.inspect.summary import render
    from netjail.run.outcome import RunFailed
    from netjail.run.standalone import Listening, serve
    from netjail.settings import SettingsError, find_settings_path, load_settings

    try:
        path, origin = find_settings_path(settings_path)
        loaded = load_settings(path, origin=origin)
    except SettingsError as e:
        standby.kill()
        click.echo(f"netjail: {e}", err=True)
        sys.exit(ExitStatus.NETJAIL_FAILED)
    for warning in loaded.warnings:
        click.echo(f"netjail: warning: {warning}", err=True)
    creds = loaded.settings.credentials
    if any(c.mode == "mask" for c in (*creds.env_vars, *creds.files)):
        click.echo(
            'netjail: warning: credentials in mode "mask" are not applied by netjail proxy: its clients are not '
            "started by netjail, so they hold their own values (docs/proxy.md)",
            err=True,
        )

    def ready(listening: Listening) -> None:
        ca = str(listening.ca_cert)
        if ca_out is not None:
            shutil.copyfile(listening.ca_cert, ca_out)
            ca = str(ca_out)
        variables = listening.environment(
            ca_path=ca, bundle_path=None if ca_out is None else ca, client_host=client_host
        )
        if env_file is not None:
            _write_private(env_file, "".join(f"{k}={v}\n" for k, v in variables.items()))
        click.echo(
            f"netjail proxy: listening on {listening.host}:{listening.port}, settings {loaded.path}\n"
            f"  proxy URL (with this run's secret): {listening.url_for(client_host)}\n"
            f"  trust the run CA: {ca}\n"
            + (f"  client variables written to {env_file}\n" if env_file else "")
            + f"  records: {listening.run_dir}  (netjail flows; Ctrl-C stops)",
            err=True,
        )
        for key in (
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "https_proxy",
            "http_proxy",
            "SSL_CERT_FILE",
            "NODE_EXTRA_CA_CERTS",
        ):
            click.echo(f"export {key}={variables[key]}")  # `eval` it, or read the lines
        sys.stdout.flush()

    try:
        outcome = serve(loaded, host, port, on_ready=ready, debug=debug, proxy=standby)
    except RunFailed as e:
        click.echo(f"netjail: {e}", err=True)
        sys.exit(ExitStatus.NETJAIL_FAILED)
    if outcome.message:
        click.echo(f"netjail: {outcome.message}", err=True)
    if outcome.run_dir is not None and (summary := render(outcome.run_dir / "flows.jsonl", outcome.run_dir)):
        click.echo(summary, err=True)
    sys.exit(outcome.exit_status)


COMMANDS = [proxy]

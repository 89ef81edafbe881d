"""`netjail ask [RUN]`: answer ask mode's questions of a running sandbox from another terminal (netjail/run/ask.py).

Only click and the standard library at module level: this module is loaded on every `netjail` start.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys

import click

from netjail.utils.status import ExitStatus


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_spec", metavar="[RUN]", required=False)
def ask(run_spec: str | None) -> None:
    """Answer the questions a running sandbox in ask mode (network.ask) puts, from this terminal: each request to
    a host no allowedDomains entry covers is shown, and the line you type answers it — o (once: the connections
    waiting), r (this run), a (always: added to the settings file), d (deny). Lasts until the run ends.

    \b
    Examples:
      netjail ask              # the newest run
      netjail ask 20261202T0712
    Exit status: 0 when the run ended, 125 when the run is not running in ask mode.
    """
    from netjail.records.runs import RunNotFound, resolve_run
    from netjail.run.ask import TYPED, short_socket_address, socket_path

    try:
        run = resolve_run(run_spec)
    except RunNotFound as e:
        _fail(str(e))
    path = socket_path(run)
    if not path.exists():
        _fail(
            f"run {run.run_id} is not running in ask mode (no {path}). Fix: start it with network.ask.enabled "
            "in its settings"
        )
    address, dir_fd = short_socket_address(path)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(address)
    except OSError as e:
        _fail(f"run {run.run_id}: cannot reach its ask socket ({e.strerror}); has it ended?")
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    conn.sendall(json.dumps({"type": "hello", "protocol_version": 1}).encode() + b"\n")
    click.echo(f"netjail ask: answering for run {run.run_id}", err=True)

    waiting: list[dict] = []  # questions shown, oldest first
    selector = selectors.DefaultSelector()
    selector.register(conn, selectors.EVENT_READ, "run")
    selector.register(0, selectors.EVENT_READ, "typed")
    buffer = typed = b""
    while True:
        for key, _ in selector.select():
            if key.data == "typed":
                chunk = os.read(0, 1 << 16)
                if not chunk:
                    selector.unregister(0)
                typed += chunk
                while b"\n" in typed and waiting:
                    line, typed = typed.split(b"\n", 1)
                    _answer(conn, waiting, TYPED.get(line.decode(errors="replace").strip().lower()))
                continue
            data = conn.recv(1 << 16)
            if not data:
                click.echo(f"netjail ask: run {run.run_id} ended", err=True)
                sys.exit(0)
            buffer += data
            while b"\n" in buffer:
                line_bytes, buffer = buffer.split(b"\n", 1)
                message = json.loads(line_bytes)
                if message.get("type") == "permission_request":
                    waiting.append(message)
                    if len(waiting) == 1:
                        _prompt_next(waiting)
                        while b"\n" in typed and waiting:  # typed ahead of the question
                            line, typed = typed.split(b"\n", 1)
                            _answer(conn, waiting, TYPED.get(line.decode(errors="replace").strip().lower()))
                elif message.get("type") == "resolved":
                    was_first = bool(waiting) and waiting[0]["id"] == message["id"]
                    waiting[:] = [q for q in waiting if q["id"] != message["id"]]
                    click.echo(f"\n{message['id']}: {message['answer']} ({message['by']})")
                    if message.get("diff"):
                        click.echo(message["diff"].rstrip())
                    if was_first:
                        _prompt_next(waiting)


def _answer(conn: socket.socket, waiting: list[dict], answer: str | None) -> None:
    """The line typed answers the oldest question shown."""
    if answer is None or answer not in waiting[0]["options"]:
        click.echo("  type " + ", ".join(o[0] for o in waiting[0]["options"]) + ": ", nl=False)
        return
    question = waiting.pop(0)
    scope = {"behavior": "deny"} if answer == "deny" else {"behavior": "allow", "scope": answer}
    conn.sendall(json.dumps({"type": "permission_response", "id": question["id"], **scope}).encode() + b"\n")
    _prompt_next(waiting)


def _prompt_next(waiting: list[dict]) -> None:
    if not waiting:
        return
    question = waiting[0]
    names = {"once": "[o]nce", "run": "for this [r]un", "always": "[a]lways", "deny": "[d]eny"}
    choices = ", ".join(names[o] for o in question["options"])
    click.echo(f"{question['id']}: {question['description']}\n  {choices}? ", nl=False)


def _fail(message: str) -> None:
    click.echo(f"netjail ask: {message}", err=True)
    sys.exit(ExitStatus.NETJAIL_FAILED)


COMMANDS = [ask]

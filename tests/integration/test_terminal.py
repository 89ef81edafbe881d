"""Interactive runs under a real pseudo-terminal: the keys reach the command, the run lasts as long as it does,
the terminal is left as it was found (netjail/run/terminal.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.support.netjail import Netjail, netjail_executable
from tests.support.terminal import TerminalSession, take_terminal

pytestmark = pytest.mark.nonroot

# prints whether stdin is the command's controlling terminal (the relay's) or not
OWN_TERMINAL = (
    f'{sys.executable} -c \'import os\ntry: print("own" if os.tcgetpgrp(0) == os.getpgrp() else "other")'
    f'\nexcept OSError: print("not-own")\''
)
BASH = ("-c", "PS1='ready> ' exec bash --norc --noprofile -i")  # type only once it prompts: no typeahead


@pytest.fixture
def session_of(netjail: Netjail):
    opened: list[TerminalSession] = []

    def start(*args: str) -> TerminalSession:
        session = TerminalSession(netjail, "-s", str(netjail.settings()), *args)
        opened.append(session)
        return session

    yield start
    for session in opened:
        session.close()


def test_ctrl_c_reaches_a_repl_that_handles_it_and_the_run_goes_on(session_of) -> None:
    session = session_of("--", sys.executable, "-q")
    session.expect(">>> ")
    session.type("\x03")
    at = session.expect("KeyboardInterrupt")
    session.type("1+1\r")
    session.expect("2\r\n", after=at)
    session.type("exit()\r")
    assert session.wait() == 0, session.output


def test_ctrl_c_ends_a_program_that_does_not_handle_it_with_its_own_status(session_of) -> None:
    session = session_of("-c", "echo started; sleep 300")
    session.expect("started")
    session.type("\x03")
    assert session.wait() == 128 + signal.SIGINT, session.output


def test_ctrl_z_and_fg_in_a_shell_inside(session_of) -> None:
    session = session_of(*BASH)
    session.expect("ready> ")
    session.type("sh -c 'echo running; exec cat'\r")
    at = session.expect("running\r\n")
    session.type("\x1a")
    at = session.expect("Stopped", after=at)
    session.type("fg\r")
    at = session.expect("fg\r\n", after=at)
    at = session.expect("exec cat'\r\n", after=at)  # bash names the job it resumes
    session.type("resumed-line\r")
    at = session.expect("resumed-line\r\nresumed-line", after=at)  # the terminal's echo, then cat's copy
    session.type("\x04")
    session.type("exit 3\r")
    assert session.wait() == 3, session.output


def test_stty_size_follows_a_resize(session_of) -> None:
    session = session_of(*BASH)
    session.expect("ready> ")
    session.type("stty size\r")
    at = session.expect("24 80")
    session.resize(30, 100)
    session.type("stty size\r")
    session.expect("30 100", after=at)
    session.type("exit\r")
    assert session.wait() == 0, session.output


def test_modes_are_restored_after_the_command_ends(session_of) -> None:
    session = session_of("-c", "stty -echo; exit 4")  # the command changes its own terminal, not the user's
    assert session.wait() == 4, session.output
    assert session.modes() == session.modes_before


def test_modes_are_restored_after_sigterm(session_of) -> None:
    session = session_of("-c", "echo started; sleep 300")
    session.expect("started")
    assert session.modes() != session.modes_before  # control: raw while relaying
    session.signal(signal.SIGTERM)
    assert session.wait() == 128 + signal.SIGTERM, session.output
    assert session.modes() == session.modes_before


def test_tilde_dot_ends_the_run_and_tilde_tilde_types_one(session_of) -> None:
    session = session_of("-c", "trap '' INT; echo ready; exec cat")  # Ctrl-C cannot end it: the escape does
    at = session.expect("ready\r\n")
    session.type("a~~b\r")
    at = session.expect("a~~b\r\na~~b", after=at)  # not at the start of a line: passed as typed
    session.type("~~c\r")
    at = session.expect("~c\r\n~c", after=at)
    session.type("\x03")
    session.type("\r~.")
    assert session.wait() == 128 + signal.SIGHUP, session.output
    assert "~." in session.output[at:]
    assert session.modes() == session.modes_before


def test_a_pipeline_keeps_the_users_terminal_and_stderr_to_a_file_stays_there(netjail: Netjail) -> None:
    """`netjail … | less`: stdout is a pipe, so no relay (the reader at the end needs the keys): the command gets
    the user's terminal itself as stdin. With stdout on the terminal and stderr to a file, the relay runs and
    stderr still goes to the file."""
    master, slave = os.openpty()
    errors = netjail.tmp_path / "errors.txt"
    script = f"{OWN_TERMINAL}; test -t 0 && ! test -t 1 && echo piped"
    try:
        with errors.open("w") as err:
            piped = subprocess.run(
                [netjail_executable(), "-s", str(netjail.settings()), "-c", script],
                cwd=netjail.work, env=netjail.env, stdin=slave, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True, preexec_fn=take_terminal, timeout=60, text=True,
            )  # fmt: skip
        # stdin is the user's terminal itself, not the command's controlling one (a session of its own)
        assert piped.returncode == 0 and piped.stdout.split() == ["not-own", "piped"], piped.stdout
        with errors.open("w") as err:
            relayed = subprocess.run(
                [netjail_executable(), "-s", str(netjail.settings()), "-c", f"echo to-stderr >&2; {OWN_TERMINAL}"],
                cwd=netjail.work, env=netjail.env, stdin=slave, stdout=slave, stderr=err,
                start_new_session=True, preexec_fn=take_terminal, timeout=60,
            )  # fmt: skip
        assert relayed.returncode == 0
        assert "to-stderr" in errors.read_text()
        shown = os.read(master, 65536).decode(errors="replace")
        assert "own" in shown.split() and "to-stderr" not in shown, shown  # the jail's own terminal
    finally:
        os.close(master)
        os.close(slave)


def test_terminal_injection_is_refused_on_the_jails_own_terminal(session_of) -> None:
    """Under the relay the command's terminal is the jail's own (its controlling terminal); TIOCSTI on it is still
    refused, while a harmless terminal request on it works."""
    code = (
        "import fcntl, os, termios\n"
        "for name, request in (('sti', termios.TIOCSTI), ('winsz', termios.TIOCGWINSZ)):\n"
        "    try:\n"
        "        fcntl.ioctl(0, request, b'\\0' * 8); print(name, 'allowed')\n"
        "    except OSError as e:\n"
        "        print(name, 'errno', e.errno)\n"
        "print('own', os.getsid(0) == os.getpid() and os.tcgetpgrp(0) == os.getpgrp())\n"
    )
    session = session_of("--", sys.executable, "-c", code)
    assert session.wait() == 0, session.output
    assert "sti errno 1" in session.output and "winsz allowed" in session.output, session.output
    assert "own True" in session.output  # the command leads its own session, on its own terminal

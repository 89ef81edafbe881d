"""The relay terminal's parts that need no jail: the escape, the question to the user, the modes it leaves."""

from __future__ import annotations

import os
import select
import selectors
import termios
import threading

import pytest

from netjail.run.terminal import Escaped, TerminalRelay


@pytest.fixture
def outer():
    """A terminal standing for the user's: the relay gets its slave as stdin/stdout, the test types on the master."""
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def relay_on(slave: int) -> TerminalRelay:
    master, inner = os.openpty()
    modes = termios.tcgetattr(slave)
    return TerminalRelay(master, inner, slave, slave, (inner, inner, inner), saved_modes=modes)


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        (b"ls\r", b"ls\r"),
        (b"~~\r", b"~\r"),  # ~~ at the start of a line types one ~
        (b"a~.\r", b"a~.\r"),  # not at the start of a line: as typed
        (b"~x", b"~x"),  # ~ then anything else: both reach the command
        (b"\r~~x", b"\r~x"),
        (b"x\n~~", b"x\n~"),
    ],
)
def test_typed_bytes_pass_but_the_escape(outer, typed: bytes, sent: bytes) -> None:
    relay = relay_on(outer[1])
    try:
        assert relay.filter_typed(typed) == sent
    finally:
        relay.close()


@pytest.mark.parametrize("typed", [b"~.", b"echo\r~.", b"x\n~."])
def test_tilde_dot_at_the_start_of_a_line_escapes(outer, typed: bytes) -> None:
    relay = relay_on(outer[1])
    try:
        with pytest.raises(Escaped):
            relay.filter_typed(typed)
    finally:
        relay.close()


def test_the_escape_may_come_split_across_reads(outer) -> None:
    relay = relay_on(outer[1])
    try:
        assert relay.filter_typed(b"\r~") == b"\r"
        with pytest.raises(Escaped):
            relay.filter_typed(b".")
    finally:
        relay.close()


def test_ask_pauses_output_and_reads_an_answer_in_the_usual_modes(outer) -> None:
    master, slave = outer
    relay = relay_on(slave)
    before = termios.tcgetattr(slave)
    command = os.dup(relay.stdio[1])  # the command's hold on the jail's terminal
    relay.started()
    selector = selectors.DefaultSelector()
    relay.register(selector)
    try:
        os.write(command, b"command output\n")  # written by the command while the question is open
        seen = bytearray()

        def user() -> None:  # reads the question, then answers it
            while b"allow?" not in seen:
                seen.extend(os.read(master, 1024))
            assert termios.tcgetattr(slave)[3] & termios.ICANON  # a line, as the user's shell gives one
            os.write(master, b"yes\n")

        answering = threading.Thread(target=user)
        answering.start()
        assert relay.ask("allow? ") == "yes"
        answering.join(timeout=10)
        assert b"command output" not in seen  # paused: the question stands alone
        assert termios.tcgetattr(slave) != before  # raw again, relaying
        for key, mask in selector.select(timeout=1):
            if key.fileobj == relay.master:
                key.data[1](selector, mask)
        shown = os.read(master, 1024)
        while b"command output" not in shown and select.select([master], [], [], 1)[0]:
            shown += os.read(master, 1024)
        assert b"command output" in shown  # and the output resumes
    finally:
        relay.close()
        selector.close()
        os.close(command)
    assert termios.tcgetattr(slave) == before

"""The relay terminal: the command gets a pseudo-terminal of its own, and netjail relays bytes between it and the
user's terminal (sudo's `use_pty` model).

Why: the user's terminal is never the command's controlling terminal. The keys that make signals (Ctrl-C,
Ctrl-Z, Ctrl-\\) are bytes netjail passes on, so the jail's own terminal turns them into signals for the
command's foreground process group, and nothing of netjail's is hit; a shell inside has job control; a resize
reaches the command as SIGWINCH; a TIOCSTI (refused by the seccomp filter anyway) could only type into the jail's
own terminal.

While the relay runs, the user's terminal is in raw mode; its modes are restored on every way out (`close`,
called from a `finally`). The escape is ssh's: at the start of a line, `~.` ends the run (the command is hung up,
as when a terminal closes) and `~~` types one `~`; programs never see it.

`ask` pauses the command's output and puts a question to the user: it is called from the supervisor's loop.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import selectors
import shutil
import signal
import struct
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

ESCAPE = b"~"
LINE_ENDS = (b"\r", b"\n")
BLOCK = 65536
TIOCGSID = getattr(termios, "TIOCGSID", 0x5429)  # Linux's value; Python's termios does not name it


class Escaped(Exception):
    """The user typed the escape `~.`: end the run."""


@dataclass
class TerminalRelay:
    master: int
    slave: int | None  # closed once the command holds it
    outer_in: int  # the user's terminal (netjail's stdin)
    outer_out: int  # where the jail's terminal output goes: netjail's stdout, a terminal
    stdio: tuple[int, int, int]  # the command's 0, 1, 2: the jail's terminal where netjail's is a terminal
    saved_modes: list = field(default_factory=list)
    setsid: str = "setsid"
    _pending: bytearray = field(default_factory=bytearray)  # typed, not yet taken by the jail's terminal
    _line_start: bool = True
    _escape_seen: bool = False
    _paused: bool = False
    _output_open: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _prompt: Callable[[str], None] | None = (
        None  # takes what is typed while a question is shown (netjail/run/ask.py)
    )
    _selector: selectors.BaseSelector | None = None
    _held_output: object = None  # the jail terminal's selector data, while a question holds its output

    @classmethod
    def open(cls, stdin: int = 0, stdout: int = 1, stderr: int = 2) -> TerminalRelay | None:
        """A relay when netjail's stdin and stdout are a terminal whose foreground it holds (not a background job:
        raw mode would stop it; not `netjail … | less`: the reader at the end of the pipe needs the keys), and
        util-linux `setsid` is there to make the jail's terminal the command's own."""
        setsid = shutil.which("setsid", path="/usr/bin:/bin") or shutil.which("setsid")  # the system's first
        if setsid is None or not os.isatty(stdin) or not os.isatty(stdout):
            return None
        try:
            if os.tcgetpgrp(stdin) != os.getpgrp():
                return None
            modes = termios.tcgetattr(stdin)
        except OSError:
            return None
        master, slave = os.openpty()
        termios.tcsetattr(slave, termios.TCSANOW, modes)  # the jail's terminal starts as the user's is now
        os.set_inheritable(slave, False)
        stdio = (slave, slave, slave if os.isatty(stderr) else stderr)  # stderr to a file stays there
        relay = cls(master, slave, stdin, stdout, stdio, saved_modes=modes, setsid=setsid)
        relay.resize()
        return relay

    def command_prefix(self) -> tuple[str, ...]:
        """Run inside the jail before the command: a session of its own whose controlling terminal is its stdin
        (`--wait` keeps the exit status should setsid have to fork)."""
        return (self.setsid, "--ctty", "--wait")

    def started(self) -> None:
        """The command holds the jail's terminal: drop netjail's copy (so the end of the command is seen) and put
        the user's terminal in raw mode."""
        if self.slave is not None:
            os.close(self.slave)
            self.slave = None
        os.set_blocking(self.master, False)
        tty.setraw(self.outer_in, termios.TCSADRAIN)

    def register(self, selector: selectors.BaseSelector) -> None:
        self._selector = selector
        selector.register(self.outer_in, selectors.EVENT_READ, ("terminal", self._on_typed))
        selector.register(self.master, selectors.EVENT_READ, ("terminal", self._on_output))

    # --- relaying ---

    def _on_typed(self, selector: selectors.BaseSelector, events: int) -> None:
        if self._paused and self._prompt is None:
            return
        try:
            data = os.read(self.outer_in, BLOCK)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return
            data = b""
        if not data:  # the user's terminal is gone: the jail's hangs up too
            selector.unregister(self.outer_in)
            raise Escaped("the terminal closed")
        if self._prompt is not None:  # the answer to netjail's question: never the command's
            self._prompt(data.decode(errors="replace"))
            return
        self._pending += self.filter_typed(data)
        self._flush_typed(selector)

    def filter_typed(self, data: bytes) -> bytes:
        """Typed bytes without the escape sequences; raises Escaped at `~.` on a new line."""
        out = bytearray()
        for byte in (data[i : i + 1] for i in range(len(data))):
            if self._escape_seen:
                self._escape_seen = False
                if byte == b".":
                    raise Escaped("~.")
                if byte == ESCAPE:
                    out += ESCAPE
                    self._line_start = False
                    continue
                out += ESCAPE  # not an escape: the `~` was meant for the command
            elif self._line_start and byte == ESCAPE:
                self._escape_seen = True
                continue
            out += byte
            self._line_start = byte in LINE_ENDS
        return bytes(out)

    def _flush_typed(self, selector: selectors.BaseSelector) -> None:
        try:
            written = os.write(self.master, self._pending) if self._pending else 0
        except BlockingIOError:
            written = 0
        except OSError:  # the command closed its terminal: what it did not read is lost, as on any terminal
            written = len(self._pending)
        del self._pending[:written]
        try:
            key = selector.get_key(self.master)
        except KeyError:  # nothing holds the jail's terminal any more
            self._pending.clear()
            return
        wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._pending else 0)
        if key.events != wanted:
            selector.modify(self.master, wanted, key.data)

    def _on_output(self, selector: selectors.BaseSelector, events: int) -> None:
        if events & selectors.EVENT_WRITE:
            self._flush_typed(selector)
        if events & selectors.EVENT_READ and not self._paused and self._copy_output() is False:
            selector.unregister(self.master)

    def _copy_output(self) -> bool | None:
        """Copy what the jail's terminal has written: True when something was, None when nothing is there now,
        False once nothing holds its other side."""
        try:
            data = os.read(self.master, BLOCK)
        except BlockingIOError:
            return None
        except OSError:  # EIO: every descriptor of the jail's terminal is closed
            self._output_open = False
            return False
        if not data:
            self._output_open = False
            return False
        _write_all(self.outer_out, data)
        return True

    def drain(self) -> None:
        """After the command's end: what it wrote last and is still in the jail's terminal."""
        while self._output_open and self._copy_output():
            pass  # until nothing is left (None) or nothing holds the jail's terminal any more (False)

    def resize(self) -> None:
        """The user's window size onto the jail's terminal: the kernel tells its foreground group (SIGWINCH)."""
        with suppress(OSError):
            size = fcntl.ioctl(self.outer_in, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)

    # --- signals ---

    def signal_foreground(self, signum: int) -> None:
        """What a key would do: the signal to the foreground process group of the jail's terminal."""
        with suppress(OSError):
            os.killpg(os.tcgetpgrp(self.master), signum)

    def signal_session(self, signum: int) -> None:
        """The command (leader of the jail's terminal's session) and the foreground group of its terminal."""
        with suppress(OSError):
            session = struct.unpack("i", fcntl.ioctl(self.master, TIOCGSID, b"\0" * 4))[0]
            os.killpg(session, signum)
        self.signal_foreground(signum)

    # --- the user's terminal ---

    @contextmanager
    def cooked_output(self) -> Iterator[None]:
        """netjail's own messages while the relay runs: lines end as the user's terminal expects."""
        with self._lock:
            modes = _modes(self.outer_in)
            if modes is not None and self.saved_modes:
                cooked = list(modes)
                cooked[1] = self.saved_modes[1]  # output flags (OPOST, ONLCR) as they were
                with suppress(OSError):
                    termios.tcsetattr(self.outer_in, termios.TCSADRAIN, cooked)
            try:
                yield
            finally:
                if modes is not None:
                    with suppress(OSError):
                        termios.tcsetattr(self.outer_in, termios.TCSADRAIN, modes)

    def say(self, message: str) -> None:
        """One line of netjail's own on the user's terminal, between the command's output."""
        _write_all(self.outer_out, f"\r\nnetjail: {message}\r\n".encode())

    def notices(self, say: Callable[[str], None]) -> Callable[[str], None]:
        def relayed(message: str) -> None:
            with self.cooked_output():
                say(message)

        return relayed

    def ask(self, question: str, read: Callable[[], str] | None = None) -> str:
        """Pause the command's output, put `question` on the user's terminal in its usual modes and return the line
        typed (without its end). Called from the supervisor's loop: until it returns, the command's output waits
        in the jail's terminal (the command blocks once that is full) and nothing typed reaches it."""
        with self._lock:
            self._paused = True
            try:
                with suppress(OSError):
                    termios.tcsetattr(self.outer_in, termios.TCSADRAIN, self.saved_modes)
                _write_all(self.outer_out, b"\r\n" + question.encode())
                answer = read() if read is not None else _read_line(self.outer_in)
                return answer
            finally:
                with suppress(OSError):
                    tty.setraw(self.outer_in, termios.TCSADRAIN)
                self._line_start = True
                self._paused = False

    def open_prompt(self, question: str, on_typed: Callable[[str], None]) -> None:
        """Like `ask`, without blocking the supervisor's loop: the command's output is held (left in the jail's
        terminal), the user's terminal is in its usual modes (the kernel edits the line), and what is typed goes to
        `on_typed` until `close_prompt`."""
        self._paused = True
        self._prompt = on_typed
        if self._selector is not None and self._held_output is None:
            with suppress(KeyError):
                self._held_output = self._selector.get_key(self.master).data
                self._selector.unregister(self.master)  # not read while held: no busy loop on its output
        with suppress(OSError):
            termios.tcsetattr(self.outer_in, termios.TCSADRAIN, self.saved_modes)
        self.show(question)

    def show(self, text: str) -> None:
        _write_all(self.outer_out, text.replace("\r\n", "\n").replace("\n", "\r\n").encode())

    def close_prompt(self) -> None:
        """The command's output and the user's keys are the command's again; full-screen programs redraw."""
        if self._prompt is None:
            return
        self._prompt = None
        with suppress(OSError):
            tty.setraw(self.outer_in, termios.TCSADRAIN)
        if self._selector is not None and self._held_output is not None:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._pending else 0)
            self._selector.register(self.master, events, self._held_output)
            self._held_output = None
        self._line_start = True
        self._paused = False
        self.signal_foreground(signal.SIGWINCH)  # as after a resize: curses programs repaint the screen

    def close(self) -> None:
        """Restore the user's terminal and release the jail's. Safe to call more than once."""
        if self.saved_modes:
            with suppress(OSError):
                termios.tcsetattr(self.outer_in, termios.TCSADRAIN, self.saved_modes)
        for fd in (self.slave, self.master):
            if fd is not None and fd >= 0:
                with suppress(OSError):
                    os.close(fd)
        self.slave, self.master = None, -1


def _modes(fd: int) -> list | None:
    try:
        return termios.tcgetattr(fd)
    except OSError:
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # the user's terminal is shared and may be non-blocking: wait until it drains
            select.select([], [fd], [], 1.0)
        except OSError:
            return  # the user's terminal is gone: nothing left to show it on


def _read_line(fd: int) -> str:
    line = bytearray()
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        line += chunk
    return line.decode(errors="replace").rstrip("\r\n")


HANGUP = signal.SIGHUP  # what `~.` and a closed terminal send the command, as a terminal's hangup does

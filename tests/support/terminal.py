"""A real pseudo-terminal for interactive tests: netjail runs as the foreground of a terminal the test holds, as
it would in a user's terminal window; the test types into it and reads what the terminal shows."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

from tests.support.netjail import Netjail, netjail_executable


def take_terminal() -> None:  # runs in the child, after setsid: the terminal on stdin becomes its own
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class TerminalSession:
    """`netjail ARGS…` on a fresh pseudo-terminal (24 rows, 80 columns), its output collected as it comes."""

    def __init__(self, netjail: Netjail, *args: str, cwd: Path | None = None):
        self.master, self.slave = os.openpty()
        self.resize(24, 80)
        self.modes_before = termios.tcgetattr(self.slave)
        self.proc = subprocess.Popen(
            [netjail_executable(), *args],
            cwd=cwd or netjail.work,
            env={**netjail.env, "TERM": "xterm"},
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
            preexec_fn=take_terminal,
        )
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._output += data

    @property
    def output(self) -> str:
        with self._lock:
            return self._output.decode(errors="replace")

    def type(self, text: str | bytes) -> None:
        os.write(self.master, text.encode() if isinstance(text, str) else text)

    def expect(self, text: str, timeout: float = 30, after: int = 0) -> int:
        """Wait until `text` shows (after offset `after` of the output); returns the offset just past it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.output.find(text, after)
            if found >= 0:
                return found + len(text)
            if self.proc.poll() is not None:
                time.sleep(0.2)  # the last output may still be on its way
                found = self.output.find(text, after)
                if found >= 0:
                    return found + len(text)
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} never showed; exit {self.proc.poll()}; output:\n{self.output}")

    def resize(self, rows: int, columns: int) -> None:
        """As a terminal window does: the new size, and SIGWINCH to the terminal's foreground (netjail)."""
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def modes(self) -> list:
        return termios.tcgetattr(self.slave)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

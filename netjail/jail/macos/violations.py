"""The sandbox's violation log on macOS: which writes the seatbelt profile refused, for the hint after the run.

Seatbelt reports each denial to the unified log, from the kernel (process 0, the Sandbox extension as sender), as
`Sandbox: <process>(<pid>) deny(<n>) <operation> <target>`, with the rule's `(with message …)` text appended on a
line of its own. Every deny rule of netjail's profile carries the run's tag (`netjail-<16 hex>`,
netjail/jail/macos/seatbelt.py), so the run's own denials are those whose last line is its tag. srt reads the
same log the same way (a per-session suffix in every `(with message …)`, `log stream --predicate`).

netjail starts `log stream --style ndjson --predicate 'processID == 0 AND eventMessage CONTAINS "<tag>"'` when
the jail is set up, holds the command until the stream has printed its first line (it is listening then), and
stops it once the command has ended, after the lines still on their way have arrived (the log delivers after the
fact). A stream that cannot start does not stop the run: `Launched.observer_note` says why writes are not
observed, as on Linux.

Only `file-write*` denials are counted, classified by the same rules and tally as on Linux
(netjail/jail/refusals.py); reads of hidden paths are not reported (Linux cannot see them either). What a line
says is trusted only as far as its provenance: `processID` is stamped by the logging system from the sender's
real identity, so a jailed program that writes sandbox-shaped text to the log (it may: `com.apple.logd` is open)
is not the kernel, and its lines are dropped. The path is still the jailed program's choice (it named the file
it tried), so it only ever feeds a hint, checked against the rules (netjail/inspect/fs_hints.py).

Not run on a Mac by this file's author: see docs/macos.md.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import IO

import structlog

from netjail.jail.refusals import Refusals, WriteRules
from netjail.jail.spec import JailSpec
from netjail.utils.text import safe_text

log = structlog.get_logger("netjail")

LOG_COMMAND = "/usr/bin/log"
READY_SECONDS = 1.0  # the longest the command is held for the stream to start listening
QUIET_SECONDS = 0.25  # after the command: the stream has delivered once this long passes without a line…
DRAIN_SECONDS = 1.0  # …or this long in all
MAX_LINE_BYTES = 64 * 1024  # one ndjson record; a longer line is dropped
MAX_DUPLICATES = 10_000  # "N duplicate reports for …" counts N attempts, at most this many
SKIPPED_ROOTS = ("/dev",)  # devices: never a settings change (as on Linux, with /proc and /sys)
TAG = re.compile(r"[A-Za-z0-9_-]{1,64}")
REPORT = re.compile(
    r"(?:(?P<duplicates>\d{1,9}) duplicate reports? for )?"
    r"Sandbox: (?P<process>.*?)\((?P<pid>\d+)\) deny\(\d+\) (?P<operation>[a-z0-9*-]+)(?: (?P<target>.*))?",
    re.DOTALL,
)
# seatbelt's write operations, in the words the Linux observer uses for its calls where one fits
WRITE_OPS = {
    "file-write-create": "create",
    "file-write-data": "write",
    "file-write-unlink": "unlink",
    "file-write-mode": "chmod",
    "file-write-owner": "chown",
    "file-write-times": "utimes",
    "file-write-flags": "chflags",
    "file-write-setugid": "chmod",
    "file-write-xattr": "xattr",
}


@dataclass(frozen=True)
class Denial:
    """One report of the run's tag: seatbelt's operation, its target (a path for file operations), the process
    (the kernel's short name, as on Linux), and how many attempts it stands for."""

    operation: str
    target: str
    process: str
    count: int = 1


def predicate(tag: str) -> str:
    """The stream's filter: kernel messages that carry the run's tag. The parser checks both again."""
    if not TAG.fullmatch(tag):
        raise ValueError(f"a log tag is letters, digits, '-' and '_': {tag!r}")
    return f'processID == 0 AND eventMessage CONTAINS "{tag}"'


def stream_argv(tag: str, command: str = LOG_COMMAND) -> list[str]:
    return [command, "stream", "--style", "ndjson", "--predicate", predicate(tag)]


def parse_line(line: str | bytes, tag: str) -> Denial | None:
    """A line of `log stream --style ndjson` → the run's denial it reports, or None: the banner, a malformed
    line, a message not from the kernel, another run's tag, a report of something else."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    pid, message = record.get("processID"), record.get("eventMessage")
    if type(pid) is not int or pid != 0 or not isinstance(message, str):
        return None  # an absent processID is not the kernel's either
    report, newline, last = message.rpartition("\n")
    if not newline or last.strip() != tag:
        return None
    match = REPORT.fullmatch(report.rstrip("\r\n"))
    if match is None:
        return None
    duplicates = int(match["duplicates"] or 0)
    return Denial(
        operation=match["operation"],
        target=match["target"] or "",
        process=match["process"],
        count=min(max(duplicates, 1), MAX_DUPLICATES),
    )


def refused_write(denial: Denial) -> tuple[str, str, str] | None:
    """(op, path, program) as the Linux observer reports them, when the denial is a write to a path."""
    if not denial.operation.startswith("file-write"):
        return None  # reads, network, Mach services…: the hint is about writes
    if not denial.target.startswith("/"):
        return None
    path = posixpath.normpath(denial.target)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if any(path == root or path.startswith(root + "/") for root in SKIPPED_ROOTS):
        return None
    op = WRITE_OPS.get(denial.operation, denial.operation.removeprefix("file-write-") or "write")
    # as on Linux: what cannot be written as UTF-8 (a lone surrogate from a \\ud800 escape) is shown escaped
    path = path.encode("utf-8", "backslashreplace").decode()
    program = denial.process.encode("utf-8", "backslashreplace").decode()[:32] or "?"
    return op, path, program


def write_rules(spec: JailSpec, host_temp_dirs: tuple[str, ...] = ()) -> WriteRules:
    """The Linux rules, plus what only the profile refuses: protected names that do not exist yet (on Linux
    they are watched and quarantined, here denied) and the host's temporary directories, which netjail hides
    (the command's TMPDIR is its own): a write there is netjail's doing, not a settings change."""
    base = WriteRules.of(spec.rules, spec.private_state)
    return replace(
        base,
        protected=base.protected + tuple(PurePosixPath(p) for p in spec.rules.missing),
        private_state=base.private_state + tuple(PurePosixPath(t) for t in host_temp_dirs),
    )


class ViolationLog:
    """`log stream` for one run: started before the command, read on a thread, stopped after it."""

    def __init__(
        self, tag: str, refusals: Refusals | None, *, debug: bool = False, command: str = LOG_COMMAND
    ) -> None:
        self.tag = tag
        self.argv = stream_argv(tag, command)
        self.refusals = refusals  # None: only the debug events (-d without record.refusedWrites)
        self.debug = debug
        self.lines = 0
        self.denials = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._last_line = time.monotonic()
        self._stderr = b""
        self._threads: list[threading.Thread] = []

    def start(self) -> str | None:
        """Start the stream; None, or why writes are not observed."""
        try:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # the terminal's Ctrl-C is the command's, not the stream's
            )
        except OSError as e:
            return f"writes are not observed: cannot start {self.argv[0]} ({e.strerror or e})"
        assert self._process.stdout is not None and self._process.stderr is not None
        for target, stream in ((self._read, self._process.stdout), (self._read_errors, self._process.stderr)):
            thread = threading.Thread(target=target, args=(stream,), daemon=True, name="netjail-sandbox-log")
            thread.start()
            self._threads.append(thread)
        return None

    def wait_ready(self, timeout: float = READY_SECONDS) -> str | None:
        """Before the command starts: wait for the stream's first line (its banner: it is listening). None, or
        why writes are not observed (the stream ended first). A stream that is only slow is given the benefit of
        the doubt: the run goes on, and it may miss the first refusals."""
        if self._process is None:
            return None
        if not self._ready.wait(timeout):
            log.debug("sandbox.log_slow", seconds=timeout)
            return None
        if self.lines:
            return None
        try:
            status = self._process.wait(1.0)  # its output ended without a line: it is ending
        except subprocess.TimeoutExpired:
            return None
        self._threads[1].join(1.0)
        errors = self._stderr.decode("utf-8", "replace").strip()
        why = safe_text(errors.splitlines()[0][:200]) if errors else f"exit status {status}"
        return f"writes are not observed: `log stream` ended at once ({why})"

    def stop(self, drain: bool = True) -> Refusals | None:
        """Once the command is gone: let the lines still in flight arrive (unless `drain` is false), stop the
        stream, and hand over the tally."""
        process, self._process = self._process, None
        if process is None:
            return self.refusals
        if drain and process.poll() is None:
            started = time.monotonic()
            while process.poll() is None:
                now = time.monotonic()
                if now - started >= DRAIN_SECONDS or now - max(self._last_line, started) >= QUIET_SECONDS:
                    break
                time.sleep(0.02)
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)  # its own session: `log` and nothing of netjail's
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.wait(2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for thread in self._threads:
            thread.join(2.0)
        if self.refusals is not None:
            log.debug("jail.write_observer", lines=self.lines, denials=self.denials)
        return self.refusals

    def _read(self, stream: IO[bytes]) -> None:
        with stream:
            while line := stream.readline(MAX_LINE_BYTES + 1):
                self._last_line = time.monotonic()
                self.lines += 1
                self._ready.set()
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                        pass  # the rest of an overlong line
                    continue
                try:
                    self._take(line)
                except Exception as e:  # a bad line costs that line, never the stream
                    log.debug("sandbox.log_line_error", error=type(e).__name__)
        self._ready.set()  # ended: wait_ready looks at why

    def _take(self, line: bytes) -> None:
        denial = parse_line(line, self.tag)
        if denial is None:
            return
        self.denials += 1
        if self.debug:
            log.debug(
                "sandbox.denied",
                operation=denial.operation,
                target=safe_text(denial.target[:1024]),
                process=safe_text(denial.process),
                count=denial.count,
            )
        if self.refusals is None:
            return
        refused = refused_write(denial)
        if refused is not None:
            for _ in range(denial.count):
                self.refusals.add(*refused)

    def _read_errors(self, stream: IO[bytes]) -> None:
        with stream:
            while chunk := stream.read(4096):
                if len(self._stderr) < 4096:
                    self._stderr += chunk[: 4096 - len(self._stderr)]

"""The platform interface: what every jail backend is given and must provide.

The runner builds one `JailSpec` from the validated settings and hands it to the platform's `Jail`; it never
branches on the platform itself. The path rules in it are resolved once (`netjail.jail.paths`), so the Linux bwrap
backend and the macOS seatbelt backend apply the same policy; the command's environment is
`netjail.jail.environment`.
"""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from netjail.jail import protected

if TYPE_CHECKING:
    from netjail.proxy.ca import RunCA

PROXY_PORT = 3128  # inside the jail's own network namespace, so it never collides with the host


class JailError(Exception):
    """The jail cannot be set up: the command must not run."""


@dataclass(frozen=True)
class PathRules:
    """Absolute, symlink-resolved host paths, in the order the backends apply them."""

    writable: tuple[Path, ...]
    read_only: tuple[Path, ...]  # denyWrite and the mandatory denies inside writable paths
    hidden: tuple[Path, ...]  # denyRead
    reallowed: tuple[Path, ...]  # allowRead inside a denyRead region
    # names in git directories that do not exist yet: created before the jail starts (read_only lists them),
    # removed when the run ends
    placeholders: tuple[protected.Placeholder, ...] = ()
    missing: tuple[Path, ...] = ()  # other protected names that do not exist yet: watched, then quarantined
    # symlinks in a writable root on the way to a protected path (its target is in read_only or missing), with
    # what each holds: restored if the run replaces them
    links: tuple[tuple[Path, str], ...] = ()
    denied_writes: tuple[
        Path, ...
    ] = ()  # the user's own denyWrite entries among read_only (the rest: protected)


@dataclass(frozen=True)
class JailSpec:
    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str]
    rules: PathRules
    ca: RunCA
    allow_pty: bool
    private_state: tuple[Path, ...]  # netjail's own settings, state and CA: masked inside
    files_dir: Path  # private directory for files the backend generates for the jail (resolv.conf, …)
    capture: str = "auto"  # network.capture
    allow_unix_sockets: bool = False  # network.allowAllUnixSockets: no seccomp rule against socket(AF_UNIX)
    debug: bool = False
    # an interactive run (netjail/run/terminal.py): the command's standard descriptors, and what runs before it
    # inside the jail to make its terminal the controlling one
    stdio: tuple[int, int, int] | None = None
    command_prefix: tuple[str, ...] = ()
    # credentials.files in mode "mask": (the real file, its copy with placeholders), bound over the real one
    masked_files: tuple[tuple[Path, Path], ...] = ()
    observe_writes: bool = False  # record.refusedWrites: report the writes the jail refuses
    # descriptors the command inherits at their own numbers (network.ask.agentChannel, netjail/run/ask.py); every
    # other descriptor of netjail's is closed before the command runs
    pass_fds: tuple[int, ...] = ()


@dataclass
class Launched:
    """A sandbox whose command is ready to start: the supervisor waits on `pid` and reads `status_fd`."""

    pid: int
    reaped: bool = False
    # role -> sockets the proxy serves: "proxy" (explicit HTTP proxy), "transparent", "dns"
    sockets: dict[str, list[socket.socket]] = field(default_factory=dict)
    status_fd: int = -1
    capture_mode: str = "proxy-variables"
    capture_warning: str | None = None
    gate: socket.socket | None = None  # the backend's hold on the command until `start`
    proxy_secret: str | None = None  # set when the proxy's listener is reachable from outside the jail
    dropped: list[dict] = field(default_factory=list)  # `dropped` records, known once `cleanup` has run
    refused: list[dict] = field(default_factory=list)  # `refused_write` records, known once `cleanup` has run
    observer_note: str | None = None  # why writes are not observed, when they were asked to be

    def release(self) -> None:
        """Close what the supervisor still holds of the sandbox (the caller has made sure the process is gone)."""
        for sockets in self.sockets.values():
            for sock in sockets:
                sock.close()
        self.sockets.clear()
        if self.gate is not None:
            self.gate.close()
            self.gate = None
        if self.status_fd >= 0:
            os.close(self.status_fd)
            self.status_fd = -1


class Jail(Protocol):
    name: str
    # True when protecting a path needs it to exist on the host (bwrap's mount points): netjail then creates a
    # transient stub for a missing denyWrite entry before launch and removes it at the end (netjail.jail.persistence)
    creates_mount_points: bool
    # True when the backend honours JailSpec.stdio and command_prefix: an interactive run then gets the relay's
    # terminal (netjail/run/terminal.py)
    relays_terminal: bool

    def check(self) -> None:
        """Raise JailError when the platform lacks what the jail needs (before anything starts)."""

    def describe(self, spec: JailSpec) -> list[str]:
        """What will be applied, for `-d` and `netjail explain`."""

    def environment(self, base: dict[str, str], ca: RunCA) -> dict[str, str]:
        """The command's environment: proxy and CA variables as seen from inside this platform's jail."""

    def launch(self, spec: JailSpec) -> Launched:
        """Set the jail up with the command held back. Raise JailError if it cannot be set up."""

    def start(self, launched: Launched) -> None:
        """Let the command run."""

    def child_exit_status(self, launched: Launched, wait_status: int) -> int | None:
        """The command's exit status, or None when the jail itself failed before the command ran."""

    def signal(self, launched: Launched, signum: signal.Signals) -> None:
        """Forward a signal to the command (not to the jail's own machinery)."""

    def cleanup(self, launched: Launched) -> None:
        """Kill whatever is left and release what launch created."""

"""Exit statuses: part of netjail's interface, defined once."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What `netjail` itself exits with. A run otherwise exits with its command's own status, 128+N when the
    command died of signal N, 126 when it is not executable and 127 when it is not found, as a shell does."""

    OK = 0
    ERROR = 1  # a flows command could not do what was asked (no such run, an unreadable file)
    FLAGGED = 3  # `netjail audit --check` found something
    CANARY_TRIPPED = 122  # audit.canaries: a canary credential was seen leaving; the sandbox was stopped
    NETJAIL_FAILED = (
        125  # netjail failed: bad settings, no jail, the proxy failed or died, the log unwritable
    )
    NOT_EXECUTABLE = 126
    NOT_FOUND = 127
    SIGNALED = 128  # + the signal's number


class ProxyExit(IntEnum):
    """How the proxy process tells the supervisor why it ended (its exit status)."""

    OK = 0
    START_FAILED = 3
    LOG_FAILED = 4

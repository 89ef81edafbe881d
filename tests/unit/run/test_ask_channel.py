"""network.ask.agentChannel's descriptor (netjail/run/agent_channel.py): what a run asks of the jail, and the macOS
backend's spawn path passing it (run here with the stand-in for sandbox-exec of test_sandbox_exec.py: the spawn, the
gate and status shims, not seatbelt itself — that is untested). The Linux path is tests/integration/test_ask_in_jail.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from netjail.jail.macos.sandbox_exec import SeatbeltJail
from netjail.run.agent_channel import CHANNEL_VARIABLE, JailChannel
from netjail.settings import Settings
from tests.unit.jail.macos.test_sandbox_exec import fake, make_spec, run, work  # noqa: F401 (fixtures)


def _settings(**ask: object) -> Settings:
    return Settings.model_validate(
        {
            "network": {"allowedDomains": [], "deniedDomains": [], "ask": ask},
            "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
        }
    )


def test_no_channel_without_the_opt_in() -> None:
    assert JailChannel.open(_settings(enabled=True)) is None
    assert JailChannel.open(_settings()) is None
    channel = JailChannel.open(_settings(enabled=True, agentChannel=True))  # control
    assert channel is not None
    channel.close()


def test_both_ends_are_close_on_exec_until_the_jail_is_given_its_own(fake: Path, work: Path) -> None:  # noqa: F811
    s = _settings(enabled=True, agentChannel=True)
    channel = JailChannel.open(s)
    assert channel is not None
    try:
        assert not os.get_inheritable(channel.ours.fileno())
        assert not os.get_inheritable(channel.theirs.fileno())
        jail = SeatbeltJail(s, sandbox_exec=str(fake))
        spec = make_spec(jail, work, ("true",), s)
        given = channel.give(spec)
        fd = channel.theirs.fileno()
        assert given.env[CHANNEL_VARIABLE] == str(fd) and given.pass_fds == (fd,)
        assert CHANNEL_VARIABLE not in spec.env and spec.pass_fds == ()  # the spec it was given is unchanged
        assert not os.get_inheritable(channel.ours.fileno())  # netjail's end never goes anywhere
        channel.launched()
        assert channel.theirs.fileno() == -1
    finally:
        channel.close()


def test_the_macos_spawn_passes_the_descriptor_to_the_command(fake: Path, work: Path) -> None:  # noqa: F811
    """Through posix_spawn, the gate shim, (the stand-in for) sandbox-exec and the status shim: the command writes
    on the descriptor its variable names, and netjail's end reads it."""
    s = _settings(enabled=True, agentChannel=True)
    channel = JailChannel.open(s)
    assert channel is not None
    try:
        jail = SeatbeltJail(s, sandbox_exec=str(fake))
        script = f"import os; os.write(int(os.environ[{CHANNEL_VARIABLE!r}]), b'hello')"
        spec = channel.give(make_spec(jail, work, (sys.executable, "-c", script), s))
        _launched, status = run(jail, spec, before_start=lambda _launched: channel.launched())
        assert status == 0
        channel.ours.settimeout(5)
        assert channel.ours.recv(16) == b"hello"
        assert channel.ours.recv(16) == b""  # the command was its only other holder
    finally:
        channel.close()

"""network.ask.agentChannel: ask mode's questions put to the command itself, srt's `--agent-channel` (its
`src/sandbox/agent-channel.ts`, and `src/cli.ts`, which gives the wrapped command one end of a socketpair as fd 3
and names it in SANDBOX_AGENT_CHANNEL_FD). netjail/run/ask.py speaks the protocol over netjail's end; this module
makes the pair and hands the command its end.
"""

from __future__ import annotations

import dataclasses
import os
import socket

import structlog

from netjail.jail.spec import JailSpec
from netjail.settings import Settings

log = structlog.get_logger("netjail")

CHANNEL_VARIABLE = "SANDBOX_AGENT_CHANNEL_FD"  # srt's name (SANDBOX_AGENT_CHANNEL_FD_ENV_VAR)


class JailChannel:
    """network.ask.agentChannel: a socketpair whose one end the command inherits, as srt's `--agent-channel` gives
    the wrapped command its fd 3. netjail keeps the other end and speaks the agent-channel protocol over it.

    Both ends are created close-on-exec. The jail's end is passed to the jail alone (JailSpec.pass_fds: on Linux
    the namespace helper keeps it open for bwrap, which leaves it open for the command and keeps no copy of its own,
    so netjail sees it close when the command closes it; made inheritable for the
    launch so that macOS's posix_spawn of sandbox-exec passes it too, untested) and netjail closes its copy once the
    jail is launched. No other process netjail starts (the proxy, git, nft) gets it. Inside, as under srt, the
    command holds it without close-on-exec: what the command starts inherits it unless the command marks it
    close-on-exec, which an agent should do when it takes it."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    @classmethod
    def open(cls, settings: Settings) -> JailChannel | None:
        ask = settings.network.ask
        return cls() if ask.enabled and ask.agent_channel else None

    def give(self, spec: JailSpec) -> JailSpec:
        """`spec` with the jail's end passed to the command and its number in SANDBOX_AGENT_CHANNEL_FD."""
        fd = self.theirs.fileno()
        os.set_inheritable(fd, True)  # until `launched`: the jail's launch is the only spawn meanwhile
        log.debug("ask.jail_channel", variable=CHANNEL_VARIABLE, fd=fd)
        return dataclasses.replace(
            spec, env={**spec.env, CHANNEL_VARIABLE: str(fd)}, pass_fds=(*spec.pass_fds, fd)
        )

    def launched(self) -> None:
        """The jail holds its end now: netjail's copy of it goes."""
        self.theirs.close()

    def close(self) -> None:
        self.theirs.close()
        self.ours.close()

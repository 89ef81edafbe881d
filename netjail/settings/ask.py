"""`network.ask`: a request to a host that no allowedDomains entry covers (and that no deniedDomains entry denies)
is held and put to the user — allow once, for this run, always, or deny — instead of being denied at once
(docs/policy.md, "Ask mode"). It is srt's `strictAllowlist: false` with somewhere to ask.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from netjail.settings.errors import Problem
from netjail.settings.fields import SettingsModel


class AskSettings(SettingsModel):
    enabled: bool = Field(
        default=False,
        description=(
            "Hold a request to a host no allowedDomains entry covers and ask: on the run's terminal, through "
            "`netjail ask RUN`, or through --agent-fd. With none of them it is denied, as without ask mode."
        ),
    )
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=60, description="A question not answered in this many seconds is answered deny."
    )
    agent_channel: bool = Field(
        default=False,
        description=(
            "Also put the questions to the command itself, srt's --agent-channel: it inherits one end of a "
            "socketpair, its number in SANDBOX_AGENT_CHANNEL_FD (srt's agent-channel protocol). Its answers are "
            'recorded as decided by "jailed-agent"; "always" is never offered to it and is denied if it sends '
            "it. Read when the run starts. Only for a command whose judgement you accept (docs/policy.md)."
        ),
    )

    @model_validator(mode="after")
    def _channel_needs_ask_mode(self) -> AskSettings:
        if self.agent_channel and not self.enabled:
            raise Problem(
                "agentChannel puts ask mode's questions to the command, and ask mode is off (enabled is false)",
                "set enabled: true as well, or remove agentChannel",
                at=("agentChannel",),
            )
        return self

"""`network.ask`: a request to a host that no allowedDomains entry covers (and that no deniedDomains entry denies)
is held and put to the user — allow once, for this run, always, or deny — instead of being denied at once
(docs/policy.md, "Ask mode"). It is srt's `strictAllowlist: false` with somewhere to ask.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

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

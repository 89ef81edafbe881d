"""The jail backend for this platform: the one place that knows which backends exist.

The platform interface (`netjail.jail.spec.Jail`) imports none of its backends; the runner asks here.
"""

from __future__ import annotations

import sys

from netjail.jail.spec import Jail, JailError
from netjail.settings import Settings


def current_jail(settings: Settings | None = None) -> Jail:
    if sys.platform.startswith("linux"):
        from netjail.jail.linux.bwrap import BwrapJail

        return BwrapJail(settings.bwrap_path if settings else None)
    if sys.platform == "darwin":
        from netjail.jail.macos.sandbox_exec import SeatbeltJail

        return SeatbeltJail(settings)
    raise JailError(f"netjail has no jail for platform {sys.platform!r}")

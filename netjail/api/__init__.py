"""The Python API: `from netjail import Sandbox`. The top layer: it runs the `netjail` command and reads the
records its runs write, as a user would."""

from netjail.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {"sandbox": ("Sandbox", "Completed", "SandboxError")})

"""netjail: run a command in a jail whose every byte of egress is judged and recorded by mitmproxy."""

from netjail.utils.lazy import lazy_exports

# The one source of the version: pyproject.toml's metadata is read from this line at build time
# (`dynamic = ["version"]`). Not the other way round: importlib.metadata.version() costs 10-40 ms, on the
# critical path of every command.
__version__ = "0.1.0"

# `from netjail import Sandbox` (the Python API), imported only when asked for: `import netjail` alone, as the
# proxy process does, loads nothing else (no structlog, no pydantic).
__all__, __getattr__ = lazy_exports("netjail", {"api": ("Sandbox", "Completed", "SandboxError")})

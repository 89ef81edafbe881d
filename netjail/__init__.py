"""netjail: run a command in a jail whose every byte of egress is judged and recorded by mitmproxy."""

import sys as _sys

# The one source of the version: pyproject.toml's metadata is read from this line at build time
# (`dynamic = ["version"]`). Not the other way round: importlib.metadata.version() costs 10-40 ms, on the
# critical path of every command.
__version__ = "0.1.0"


def _import_structlog_without_rich() -> None:
    """structlog imports rich (~120 ms) only to pretty-print tracebacks; netjail's supervisor starts on every
    command's critical path and renders its own messages, so it takes structlog without it. rich stays
    importable for the commands that draw tables."""
    if "structlog" in _sys.modules or "rich" in _sys.modules:
        return
    _sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail inside structlog only
    try:
        import structlog  # noqa: F401
    finally:
        del _sys.modules["rich"]


_import_structlog_without_rich()


def __getattr__(name: str) -> object:
    """`from netjail import Sandbox` (the Python API), imported only when asked for."""
    if name in ("Sandbox", "Completed", "SandboxError"):
        from netjail import api

        return getattr(api, name)
    raise AttributeError(f"module 'netjail' has no attribute {name!r}")

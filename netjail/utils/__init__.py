"""Exit statuses, terminal-safe text, bundled resources, logging set-up: the standard library and structlog only."""

from netjail.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "status": ("ExitStatus", "ProxyExit"),
        "text": ("human_bytes", "quoted", "safe_text"),
        "resources": ("bundled_config",),
        "lazy": ("lazy_exports",),
    },
)

"""The command line: one click group (`group`); each command a thin layer over the packages below."""

from netjail.utils.lazy import import_without

import_without("structlog", "rich")  # before any command module imports structlog

from netjail.cli.group import main  # noqa: E402

__all__ = ["main"]

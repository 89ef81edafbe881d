"""The command line: one click group (`group`); each command a thin layer over the packages below."""

from netjail.cli.group import main

__all__ = ["main"]

"""structlog set-up: readable key-value lines on a terminal, JSON when stderr is not one."""

from __future__ import annotations

import logging
import sys

from netjail.utils.lazy import import_without

import_without("structlog", "rich")  # the first import of structlog in a command's path: logs comes first

import structlog  # noqa: E402


def configure(debug: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING
    renderer: structlog.typing.Processor
    if sys.stderr.isatty():
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    elif debug:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S.%f", utc=False),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )

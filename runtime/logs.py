"""structlog configuration: one JSON event per line, with the request's context merged in."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from runtime.settings import LogFormat


def configure_logging(
    level: str = "info",
    fmt: LogFormat = LogFormat.JSON,
    stream: TextIO | None = None,
    *,
    cache_loggers: bool = True,
) -> None:
    """Configure structlog for the whole process.

    Request-scoped values (request id, method, token id) are bound with
    ``structlog.contextvars`` by the call boundary and merged into every event.

    Args:
        level: Minimum level name (debug, info, warning, error).
        fmt: JSON for production, console for a person at a terminal.
        stream: Where events go; standard output by default.
        cache_loggers: Freeze each logger's configuration at its first use, for speed;
            tests that capture events switch it off.
    """
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt is LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=cache_loggers,
    )

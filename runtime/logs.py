"""structlog configuration: one JSON event per line, with the request's context merged in."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

from runtime.context import call_of_context
from runtime.settings import LogFormat


def add_call_context(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """Add the request id and method (``rpc``) of the call being served, if any, to an event."""
    call = call_of_context()
    if call is not None:
        event.setdefault("request_id", call.request_id)
        event.setdefault("rpc", call.method)
    return event


def configure_logging(
    level: str = "info",
    fmt: LogFormat = LogFormat.JSON,
    stream: TextIO | None = None,
    *,
    cache_loggers: bool = True,
) -> None:
    """Configure structlog for the whole process.

    The request id and method of the call being served (`runtime.context`, opened by the
    call boundary) are added to every event.

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
            add_call_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=cache_loggers,
    )

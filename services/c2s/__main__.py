"""Start the c2s service: ``python -m services.c2s``."""

from __future__ import annotations

from runtime.logs import configure_logging
from runtime.server import run_process
from services.c2s.app import build_server
from services.c2s.settings import C2sSettings


async def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = C2sSettings()
    configure_logging(settings.log_level, settings.log_format)
    await build_server(settings).run_until_signalled()


if __name__ == "__main__":
    run_process(main)

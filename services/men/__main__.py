"""Start the men service: ``python -m services.men``."""

from __future__ import annotations

from runtime.logs import configure_logging
from runtime.server import run_process
from services.men.app import build_server
from services.men.settings import MenSettings


async def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = MenSettings()
    configure_logging(settings.log_level, settings.log_format)
    await build_server(settings).run_until_signalled()


if __name__ == "__main__":
    run_process(main)

"""Start the france_travail service: ``python -m services.france_travail``."""

from __future__ import annotations

from runtime.logs import configure_logging
from runtime.server import run_process
from services.france_travail.app import build_server
from services.france_travail.settings import FranceTravailSettings


async def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = FranceTravailSettings()
    configure_logging(settings.log_level, settings.log_format)
    await build_server(settings).run_until_signalled()


if __name__ == "__main__":
    run_process(main)

"""Start the cnous service: ``python -m services.cnous``."""

from __future__ import annotations

from runtime.logs import configure_logging
from runtime.server import run_process
from services.cnous.app import build_server
from services.cnous.settings import CnousSettings


async def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = CnousSettings()
    configure_logging(settings.log_level, settings.log_format)
    await build_server(settings).run_until_signalled()


if __name__ == "__main__":
    run_process(main)

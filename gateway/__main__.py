"""Start the gateway: ``python -m gateway``."""

from __future__ import annotations

import sys

from gateway.app import build_server
from gateway.settings import GatewaySettings
from runtime.logs import configure_logging
from runtime.server import run_process


async def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        server = build_server(settings)
    except ValueError as error:
        # A configuration mistake: say it plainly rather than with a traceback.
        sys.exit(f"gateway: {error}")
    await server.run_until_signalled()


if __name__ == "__main__":
    run_process(main)

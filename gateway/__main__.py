"""Start the gateway: ``python -m gateway`` (with ``GATEWAY_WORKERS`` above 1, its workers' supervisor)."""

from __future__ import annotations

import sys

from gateway.app import serve
from gateway.settings import GatewaySettings
from gateway.workers import supervise
from runtime.logs import configure_logging
from runtime.server import PortInUseError


def main() -> None:
    """Serve until SIGTERM or SIGINT, alone or as the supervisor of ``GATEWAY_WORKERS`` workers."""
    settings = GatewaySettings()
    if settings.gateway_workers == 1:
        serve(settings)
        return
    configure_logging(settings.log_level, settings.log_format)
    try:
        status = supervise(settings)
    except PortInUseError as error:
        sys.exit(str(error))
    sys.exit(status)


if __name__ == "__main__":
    main()

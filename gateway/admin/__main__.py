"""Entry point of ``python -m gateway.admin``."""

from gateway.admin.cli import main

raise SystemExit(main())

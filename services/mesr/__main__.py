"""Start the mesr service: ``python -m services.mesr``."""

from services.mesr.app import MESR

MESR.run()

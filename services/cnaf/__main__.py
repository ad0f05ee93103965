"""Start the cnaf service: ``python -m services.cnaf``."""

from services.cnaf.app import CNAF

CNAF.run()

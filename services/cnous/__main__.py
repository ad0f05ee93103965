"""Start the cnous service: ``python -m services.cnous``."""

from services.cnous.app import CNOUS

CNOUS.run()

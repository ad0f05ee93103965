"""Start the france_travail service: ``python -m services.france_travail``."""

from services.france_travail.app import FRANCE_TRAVAIL

FRANCE_TRAVAIL.run()

"""Start the france_travail service: ``python -m services.france_travail``."""

from services.france_travail.app import FRANCE_TRAVAIL

if __name__ == "__main__":
    FRANCE_TRAVAIL.run()

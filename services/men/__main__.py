"""Start the men service: ``python -m services.men``."""

from services.men.app import MEN

MEN.run()

"""Start the men service: ``python -m services.men``."""

from services.men.app import MEN

if __name__ == "__main__":
    MEN.run()

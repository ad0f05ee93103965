"""Start the ants service: ``python -m services.ants``."""

from services.ants.app import ANTS

if __name__ == "__main__":
    ANTS.run()

"""Start the cnaf service: ``python -m services.cnaf``."""

from services.cnaf.app import CNAF

if __name__ == "__main__":
    CNAF.run()

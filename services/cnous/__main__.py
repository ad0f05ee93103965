"""Start the cnous service: ``python -m services.cnous``."""

from services.cnous.app import CNOUS

if __name__ == "__main__":
    CNOUS.run()

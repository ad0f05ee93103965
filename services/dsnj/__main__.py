"""Start the dsnj service: ``python -m services.dsnj``."""

from services.dsnj.app import DSNJ

if __name__ == "__main__":
    DSNJ.run()

"""Start the mesr service: ``python -m services.mesr``."""

from services.mesr.app import MESR

if __name__ == "__main__":
    MESR.run()

"""Start the sdh service: ``python -m services.sdh``."""

from services.sdh.app import SDH

if __name__ == "__main__":
    SDH.run()

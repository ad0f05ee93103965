"""Start the c2s service: ``python -m services.c2s``."""

from services.c2s.app import C2S

if __name__ == "__main__":
    C2S.run()

"""Start the console: ``python -m console`` (`console.app`)."""

from __future__ import annotations

from console.app import serve
from console.settings import ConsoleSettings

if __name__ == "__main__":
    serve(ConsoleSettings())

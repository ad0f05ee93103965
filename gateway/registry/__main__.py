"""Start the admin API: ``python -m gateway.registry`` (`gateway.registry.app`)."""

from __future__ import annotations

from gateway.registry.app import serve
from gateway.registry.settings import AdminSettings

if __name__ == "__main__":
    serve(AdminSettings())

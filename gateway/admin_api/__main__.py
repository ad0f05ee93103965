"""Start the admin API: ``python -m gateway.admin_api`` (`gateway.admin_api.app`)."""

from __future__ import annotations

from gateway.admin_api.app import serve
from gateway.admin_api.settings import AdminSettings

if __name__ == "__main__":
    serve(AdminSettings())

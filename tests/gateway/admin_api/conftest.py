"""The admin API's tests run it on the registry's database fixtures (`tests.gateway.registry.conftest`)."""

from __future__ import annotations

from tests.gateway.registry.conftest import admin_api, maintenance_windows, registry_url

__all__ = ["admin_api", "maintenance_windows", "registry_url"]

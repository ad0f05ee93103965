"""The client's tests run against the gateway fixture of the gateway's tests."""

from tests.gateway.conftest import keys_dir, mesh

__all__ = ["keys_dir", "mesh"]

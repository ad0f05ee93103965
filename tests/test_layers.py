"""The layers show in the tree: runtime below everything, contract below the gateway, providers apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.test_boundaries import imported_modules

REPO = Path(__file__).resolve().parents[1]

# What each package must never import: the layers above it, and the provider services.
FORBIDDEN = {
    "runtime": ("gateway", "services", "contract", "client", "bench", "devstack"),
    "contract": ("gateway", "services", "client", "bench", "devstack"),
    "gateway": ("services", "client", "bench", "console"),
    "client": ("services", "bench", "devstack", "console"),
    # The console reads the mesh through its APIs: no provider, no local stack.
    "console": ("services", "client", "bench", "devstack"),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_no_layer_above_it(package: str) -> None:
    imported = imported_modules(REPO / package)
    assert imported, "no import found: the scan would prove nothing"
    above = sorted(
        module
        for module in imported
        for forbidden in FORBIDDEN[package]
        if module == forbidden or module.startswith(f"{forbidden}.")
    )
    assert above == []

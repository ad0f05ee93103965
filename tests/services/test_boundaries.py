"""Providers share code through services/common/ only: none imports another, and common imports none."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from runtime.providers import PROVIDERS, ProviderService

SERVICES = Path(__file__).resolve().parents[2] / "services"
PROVIDER_PACKAGES = {provider.package for provider in PROVIDERS}


def imported_modules(package: Path) -> set[str]:
    """Every module the package's files import, by absolute name."""
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


def providers_imported(package: Path) -> set[str]:
    """The provider packages the package imports from."""
    return {
        provider
        for module in imported_modules(package)
        for provider in PROVIDER_PACKAGES
        if module == provider or module.startswith(f"{provider}.")
    }


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda provider: provider.name)
def test_a_provider_imports_no_other_provider(provider: ProviderService) -> None:
    """A provider uses its own package, services.common and runtime, never another provider's."""
    assert providers_imported(SERVICES / provider.name) <= {provider.package}


def test_common_imports_no_provider() -> None:
    """services.common is below every provider."""
    assert providers_imported(SERVICES / "common") == set()

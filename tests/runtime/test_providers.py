"""The provider registry guards the places a provider touches: none half-registered, none unregistered."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.run import PROVIDERS as DEVSTACK_PROVIDERS
from gateway.settings import GatewaySettings
from runtime.providers import BY_NAME, PROVIDERS, ProviderService
from services.common.settings import ProviderSettings

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "k8s" / "base"


def _manifest(provider: ProviderService) -> Path:
    return BASE / f"{provider.name.replace('_', '-')}.yaml"


def _deployment(provider: ProviderService) -> dict[str, Any]:
    documents = list(yaml.safe_load_all(_manifest(provider).read_text()))
    deployments = [d for d in documents if d and d.get("kind") == "Deployment"]
    assert len(deployments) == 1, provider.name
    return dict(deployments[0])


def test_names_and_ports_are_unique() -> None:
    assert len(BY_NAME) == len(PROVIDERS)
    ports = [p.grpc_port for p in PROVIDERS] + [p.metrics_port for p in PROVIDERS]
    assert len(set(ports)) == len(ports)


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_every_place_a_provider_touches_knows_it(provider: ProviderService) -> None:
    """Folder, runnable package, contract, settings, gateway address, `make run` and kustomize base."""
    assert (REPO / "services" / provider.name / "__main__.py").is_file()
    settings_module = importlib.import_module(f"{provider.package}.settings")
    settings_classes = [
        value
        for value in vars(settings_module).values()
        if isinstance(value, type)
        and issubclass(value, ProviderSettings)
        and value.__module__ == settings_module.__name__
    ]
    assert [cls.model_fields["grpc_port"].default for cls in settings_classes] == [provider.grpc_port]
    assert provider.service_names(), "the contract declares no service"
    assert provider.address_setting in GatewaySettings.model_fields
    assert GatewaySettings().provider_address(provider.name) == provider.default_address
    assert provider.name in {process.name for process in DEVSTACK_PROVIDERS}
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert _manifest(provider).name in kustomization["resources"]
    container = _deployment(provider)["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-1] == provider.package
    assert {e["name"]: e.get("value") for e in container.get("env", [])}.get("GRPC_PORT") == str(
        provider.grpc_port
    )


def test_every_provider_folder_contract_and_manifest_is_registered() -> None:
    """A provider written but not registered would be served by nobody: each one is in the registry."""
    folders = {p.name for p in (REPO / "services").iterdir() if (p / "__main__.py").is_file()}
    contracts = {
        p.name
        for p in (REPO / "protos" / "apiparticulier").iterdir()
        if p.is_dir() and p.name not in ("common", "gateway", "admin")
    }
    manifests = {
        p.stem.replace("-", "_")
        for p in BASE.glob("*.yaml")
        if p.stem not in ("gateway", "console", "kustomization")
    }
    assert folders == contracts == manifests == set(BY_NAME)

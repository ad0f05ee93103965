"""The france_travail service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.france_travail.v1 import france_travail_pb2_grpc
from runtime.providers import BY_NAME
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind
from services.france_travail.backend import FranceTravailBackend
from services.france_travail.sandbox import SandboxFranceTravailBackend
from services.france_travail.servicer import FranceTravailServicer
from services.france_travail.settings import FranceTravailSettings
from services.france_travail.upstream import UpstreamFranceTravailBackend

FRANCE_TRAVAIL = ProviderAssembly[FranceTravailSettings, FranceTravailBackend, FranceTravailServicer](
    provider=BY_NAME["france_travail"],
    settings=FranceTravailSettings,
    servicer=FranceTravailServicer,
    add_servicer=france_travail_pb2_grpc.add_FranceTravailServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxFranceTravailBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamFranceTravailBackend.from_settings,
    },
)
"""The france_travail service."""

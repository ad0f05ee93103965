"""The ants service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.ants.v1 import ants_pb2_grpc
from runtime.providers import BY_NAME
from services.ants.backend import AntsBackend
from services.ants.sandbox import SandboxAntsBackend
from services.ants.servicer import AntsServicer
from services.ants.settings import AntsSettings
from services.ants.upstream import UpstreamAntsBackend
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind

ANTS = ProviderAssembly[AntsSettings, AntsBackend, AntsServicer](
    provider=BY_NAME["ants"],
    settings=AntsSettings,
    servicer=AntsServicer,
    add_servicer=ants_pb2_grpc.add_AntsServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxAntsBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamAntsBackend.from_settings,
    },
)
"""The ants service."""

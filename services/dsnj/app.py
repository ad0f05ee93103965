"""The dsnj service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.dsnj.v1 import dsnj_pb2_grpc
from runtime.providers import BY_NAME
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind
from services.dsnj.backend import DsnjBackend
from services.dsnj.sandbox import SandboxDsnjBackend
from services.dsnj.servicer import DsnjServicer
from services.dsnj.settings import DsnjSettings
from services.dsnj.upstream import UpstreamDsnjBackend

DSNJ = ProviderAssembly[DsnjSettings, DsnjBackend, DsnjServicer](
    provider=BY_NAME["dsnj"],
    settings=DsnjSettings,
    servicer=DsnjServicer,
    add_servicer=dsnj_pb2_grpc.add_DsnjServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxDsnjBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamDsnjBackend.from_settings,
    },
)
"""The dsnj service."""

"""The mesr service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.mesr.v1 import mesr_pb2_grpc
from runtime.providers import BY_NAME
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind
from services.mesr.backend import MesrBackend
from services.mesr.sandbox import SandboxMesrBackend
from services.mesr.servicer import MesrServicer
from services.mesr.settings import MesrSettings
from services.mesr.upstream import UpstreamMesrBackend

MESR = ProviderAssembly[MesrSettings, MesrBackend, MesrServicer](
    provider=BY_NAME["mesr"],
    settings=MesrSettings,
    servicer=MesrServicer,
    add_servicer=mesr_pb2_grpc.add_MesrServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxMesrBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamMesrBackend.from_settings,
    },
)
"""The mesr service."""

"""The c2s service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.c2s.v1 import c2s_pb2_grpc
from runtime.providers import BY_NAME
from services.c2s.backend import C2sBackend
from services.c2s.sandbox import SandboxC2sBackend
from services.c2s.servicer import C2sServicer
from services.c2s.settings import C2sSettings
from services.c2s.upstream import UpstreamC2sBackend
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind

C2S = ProviderAssembly[C2sSettings, C2sBackend, C2sServicer](
    provider=BY_NAME["c2s"],
    settings=C2sSettings,
    servicer=C2sServicer,
    add_servicer=c2s_pb2_grpc.add_C2sServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxC2sBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamC2sBackend.from_settings,
    },
)
"""The c2s service."""

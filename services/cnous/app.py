"""The cnous service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.cnous.v1 import cnous_pb2_grpc
from runtime.providers import BY_NAME
from services.cnous.backend import CnousBackend
from services.cnous.sandbox import SandboxCnousBackend
from services.cnous.servicer import CnousServicer
from services.cnous.settings import CnousSettings
from services.cnous.upstream import UpstreamCnousBackend
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind

CNOUS = ProviderAssembly[CnousSettings, CnousBackend, CnousServicer](
    provider=BY_NAME["cnous"],
    settings=CnousSettings,
    servicer=CnousServicer,
    add_servicer=cnous_pb2_grpc.add_CnousServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxCnousBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamCnousBackend.from_settings,
    },
)
"""The cnous service."""

"""The sdh service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.sdh.v1 import sdh_pb2_grpc
from runtime.providers import BY_NAME
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind
from services.sdh.backend import SdhBackend
from services.sdh.sandbox import SandboxSdhBackend
from services.sdh.servicer import SdhServicer
from services.sdh.settings import SdhSettings
from services.sdh.upstream import UpstreamSdhBackend

SDH = ProviderAssembly[SdhSettings, SdhBackend, SdhServicer](
    provider=BY_NAME["sdh"],
    settings=SdhSettings,
    servicer=SdhServicer,
    add_servicer=sdh_pb2_grpc.add_SdhServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxSdhBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamSdhBackend.from_settings,
    },
)
"""The sdh service."""

"""The men service's assembly: what `services.common.app` builds and runs."""

from __future__ import annotations

from apiparticulier.men.v1 import men_pb2_grpc
from runtime.providers import BY_NAME
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind
from services.men.backend import MenBackend
from services.men.sandbox import SandboxMenBackend
from services.men.servicer import MenServicer
from services.men.settings import MenSettings
from services.men.upstream import UpstreamMenBackend

MEN = ProviderAssembly[MenSettings, MenBackend, MenServicer](
    provider=BY_NAME["men"],
    settings=MenSettings,
    servicer=MenServicer,
    add_servicer=men_pb2_grpc.add_MenServiceServicer_to_server,
    backends={
        BackendKind.SANDBOX: SandboxMenBackend.from_settings,
        BackendKind.UPSTREAM: UpstreamMenBackend.from_settings,
    },
)
"""The men service."""

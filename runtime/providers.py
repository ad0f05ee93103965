"""The provider registry: every provider service of the mesh, declared once.

The gateway's routes and channels, `make run`, the bench and the deploy tests
derive from `PROVIDERS`; nothing else lists the providers. Adding one is its
folder under ``services/``, its contract under ``protos/``, one entry here and
its kustomize component (docs/ADDING_A_PROVIDER.md).

The module also names the error sources of the real API's codes (the ``PP`` prefix of
``PPKKK`` codes, as the published spec's error examples use them):
a provider service may answer with several (cnaf speaks for CNAV, CNAF, MSA and
CNAF & MSA).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from runtime.errors import ErrorSource

CNAV = ErrorSource("37", "CNAV")
"""The Sécurité sociale gateway run by the CNAV: transport and unknown-answer errors of cnaf and c2s."""
CNAF_MSA = ErrorSource("35", "CNAF & MSA")
"""The caisses behind it: a person registered with neither is not found."""
CNAF = ErrorSource("23", "CNAF")
"""The CNAF, when it answered that it has no file for the person."""
MSA = ErrorSource("10", "MSA")
"""The MSA, when it answered that it has no file for the person."""
RNCPS = ErrorSource("40", "RNCPS")
"""The RNCPS, which answers for the complémentaire santé solidaire."""
FRANCE_TRAVAIL = ErrorSource("24", "France Travail")
"""France Travail."""
MESRI = ErrorSource("25", "MESRI")
"""The ministry of higher education (student status)."""
CNOUS = ErrorSource("26", "CNOUS")
"""The Cnous (scholarship status)."""
MEN = ErrorSource("30", "MEN")
"""The ministry of national education (pupil status)."""
GIP_MDS = ErrorSource("31", "GIP-MDS")
"""The GIP-MDS, which holds the déclarations sociales nominatives (service civique contracts)."""
DSNJ = ErrorSource("39", "DSNJ")
"""The Direction du Service national et de la jeunesse (service national status)."""
SDH = ErrorSource("41", "SDH")
"""The sports ministry's register of high-level sportspeople (statut sportif)."""
ANTS = ErrorSource("42", "ANTS")
"""The Agence nationale des titres sécurisés, which answers from the vehicle register (SIV)."""
FRANCE_CONNECT = ErrorSource("51", "FranceConnect")
"""FranceConnect, whose access tokens the gateway resolves on the FranceConnect methods."""


@dataclass(frozen=True, slots=True)
class ProviderService:
    """One provider service: a process of its own, one proto package, one folder under ``services/``."""

    name: str
    """The proto package segment and folder name: ``apiparticulier.<name>.v1``, ``services/<name>``."""
    display_name: str
    """What operators and the availability pings call it."""
    grpc_port: int
    """The gRPC port it listens on by default (and `make run` starts it on)."""
    metrics_port: int
    """The port of its /metrics under `make run`."""
    error_source: ErrorSource
    """Whom the error model names when the service itself cannot be reached or answers garbage."""

    @property
    def package(self) -> str:
        """The Python package of the service, run with ``python -m``."""
        return f"services.{self.name}"

    @property
    def proto_module(self) -> str:
        """The generated module of its contract."""
        return f"apiparticulier.{self.name}.v1.{self.name}_pb2"

    @property
    def address_setting(self) -> str:
        """The gateway setting (and environment variable, upper-cased) holding its ``host:port``."""
        return f"{self.name}_address"

    @property
    def default_address(self) -> str:
        """Where the gateway looks for it when its address setting is unset."""
        return f"127.0.0.1:{self.grpc_port}"

    def contract(self) -> ModuleType:
        """The generated ``*_pb2`` module of its contract.

        Raises:
            ModuleNotFoundError: the SDK was not generated (``make protos``): a mesh
                without one of its contracts must not start.
        """
        return importlib.import_module(self.proto_module)

    def service_names(self) -> tuple[str, ...]:
        """The full names of the gRPC services its contract declares."""
        return tuple(service.full_name for service in self.contract().DESCRIPTOR.services_by_name.values())


PROVIDERS: tuple[ProviderService, ...] = (
    ProviderService("cnaf", "CNAF & MSA", 50061, 9461, CNAV),
    ProviderService("c2s", "Complémentaire santé solidaire", 50062, 9462, CNAV),
    ProviderService("france_travail", "France Travail", 50063, 9463, FRANCE_TRAVAIL),
    ProviderService("mesr", "MESR (statut étudiant)", 50064, 9464, MESRI),
    ProviderService("cnous", "Cnous", 50065, 9465, CNOUS),
    ProviderService("men", "MEN", 50066, 9466, MEN),
    ProviderService("dsnj", "DSNJ (service national)", 50067, 9467, DSNJ),
    ProviderService("gip_mds", "GIP-MDS (service civique)", 50068, 9468, GIP_MDS),
    ProviderService("sdh", "SDH (statut sportif)", 50069, 9469, SDH),
    ProviderService("ants", "ANTS (immatriculation des véhicules)", 50070, 9470, ANTS),
)
"""Every provider service, in the order the mesh lists them."""

BY_NAME: dict[str, ProviderService] = {provider.name: provider for provider in PROVIDERS}
"""The registry by service name."""

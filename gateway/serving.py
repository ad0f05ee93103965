"""What the gateway's two fronts serve from: its own gRPC API (`gateway.grpc.api`), its REST front."""

from __future__ import annotations

from dataclasses import dataclass

from contract.catalog import ApiCatalog
from gateway.availability_history import AvailabilityHistory
from gateway.call_path import CallPath
from gateway.journal.access_history import AccessHistory
from gateway.pings import PingBoard
from gateway.usage import UsageRecorder


@dataclass(frozen=True, slots=True)
class Serving:
    """The parts of the gateway both fronts answer with, built once by the composition root (`gateway.app`).

    The REST front is `gateway.rest.app.RestFront`.
    """

    call_path: CallPath
    """Every call of a token or of a citizen goes through it."""
    usage: UsageRecorder
    """The usage counters: a token's statistics, the proofs avoided."""
    pings: PingBoard
    """What the real API's pings say."""
    catalog: ApiCatalog
    """The Api enum and the API labels."""
    access_history: AccessHistory
    """The journal's reader of a citizen's accesses."""
    availability_history: AvailabilityHistory | None
    """Each ping's availability over 90 days; None: its REST route answers 00503."""

"""The real API's pings: one per ping name, its label, its check, and the operators' maintenance windows.

The real API names one ping per provider check (``siade/config/pings.yml``,
NEWER-ENDPOINTS §8); the mesh answers each of those names, from one of two checks:

- ``RATIO``: the error ratio of the ping's API over the last 10 minutes, over every gateway
  worker and replica (`gateway.ratios`, through Redis; this process's alone when Redis cannot
  be read). ``bad_gateway``
  when calls answered 502, 503 or 504 (a provider unreachable, too slow or unreadable:
  `gateway.availability.FAILURES`) for 10 % of them or more, or when the mesh's own
  provider service is known down; ``ok`` otherwise, without traffic too, as the real
  CNAV driver;
- ``SERVICE``: the state of the provider service that answers the API, from its health
  stream and the outcomes of the calls sent to it (`gateway.availability`): ``ok``,
  ``bad_gateway``, or ``unknown`` when nothing was learnt of it lately. The real API
  calls the provider with test data; the mesh's health stream is that direct check,
  made continuously instead of on demand.

Inside a maintenance window an operator declared (through the admin API:
`gateway.admin_api.maintenance`),
a ping says ``maintenance`` with ``until``, the window's end; for the 10 minutes after it, a
ratio ping says ``ok`` whatever the ratio, the errors of the window not being the provider's
fault. Windows live in Redis, so every gateway sees them; if Redis cannot be read the
pings answer from their checks alone.

The real ``insee_metadonnees`` and ``franceconnect`` pings have no counterpart (the mesh
calls no INSEE, and FranceConnect is no provider service of its own), and
the label of ``cnav_allocation_rentree_scolaire`` is unknown (only its id is published): the
mesh names it after its siblings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

import redis
import redis.asyncio
import structlog
from redis.exceptions import RedisError

from gateway.availability import Availability, AvailabilityTracker
from gateway.ratios import SharedErrorRatios

_LOG = structlog.get_logger(__name__)

RATIO_WINDOW_SECONDS = 600.0
"""The window of the error ratio, and the grace after a maintenance window."""
RATIO_THRESHOLD = 0.10
"""The error ratio from which a ratio ping says ``bad_gateway``."""
_KEY_PREFIX = "maintenance:"


class PingCheck(Enum):
    """How a ping is checked."""

    RATIO = "ratio"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Ping:
    """One ping of the real API."""

    id: str
    """Its name in ``/api/<id>/ping``."""
    label: str
    """Its status-page label (the real API's text)."""
    provider: str
    """The provider service that answers its API."""
    api: str
    """The API label (``api_route.api``) whose calls it watches."""
    check: PingCheck


def _cnaf(ping_id: str, label: str, api: str) -> Ping:
    return Ping(ping_id, label, "cnaf", f"cnaf.{api}", PingCheck.RATIO)


PINGS: tuple[Ping, ...] = (
    _cnaf("cnaf_msa_quotient_familial", "MSA & CNAV - Quotient familial (v2)", "quotient_familial"),
    Ping(
        "securite_sociale_complementaire_sante_solidaire",
        "Sécurité sociale - Complémentaire santé solidaire",
        "c2s",
        "c2s.complementaire_sante_solidaire",
        PingCheck.RATIO,
    ),
    _cnaf(
        "cnaf_msa_revenu_solidarite_active",
        "MSA & CNAV - Revenu Solidarite Active",
        "revenu_solidarite_active",
    ),
    _cnaf(
        "cnaf_msa_allocation_soutien_familial",
        "MSA & CNAV - Allocation Soutien Familial",
        "allocation_soutien_familial",
    ),
    _cnaf(
        "cnaf_msa_allocation_adulte_handicape",
        "MSA & CNAV - Allocation Adulte Handicape",
        "allocation_adulte_handicape",
    ),
    _cnaf("cnaf_msa_prime_activite", "MSA & CNAV - Prime Activite", "prime_activite"),
    _cnaf(
        "cnaf_msa_participation_familiale_eaje",
        "MSA & CNAV - PSU Participation Familiale EAJE",
        "participation_familiale_eaje",
    ),
    _cnaf(
        "cnav_allocation_enfant_handicape",
        "CNAV - Allocation Enfant Handicapé (AEEH)",
        "allocation_enfant_handicape",
    ),
    _cnaf(
        "cnav_allocation_rentree_scolaire",
        "CNAV - Allocation de Rentrée Scolaire (ARS)",
        "allocation_rentree_scolaire",
    ),
    Ping(
        "men_scolarite",
        "Ministère de l'Éducation nationale - Status élève scolarisé et boursier",
        "men",
        "men.scolarite",
        PingCheck.SERVICE,
    ),
    *(
        Ping(f"cnous_etudiant_boursier_{way}", label, "cnous", "cnous.etudiant_boursier", PingCheck.SERVICE)
        for way, label in (
            ("ine", "CNOUS - Statut étudiant boursier (via le numéro INE)"),
            ("identite", "CNOUS - Statut étudiant boursier (via l'état civil)"),
            ("france_connect", "CNOUS - Statut étudiant boursier (FranceConnecté)"),
        )
    ),
    Ping(
        "mesri_statut_etudiant_ine",
        "MESRI - Statut étudiant (via le numéro INE)",
        "mesr",
        "mesr.statut_etudiant",
        PingCheck.SERVICE,
    ),
    Ping(
        "mesri_statut_etudiant_identite",
        "MESRI - Statut étudiant (via l'état civil et FranceConnect)",
        "mesr",
        "mesr.statut_etudiant",
        PingCheck.SERVICE,
    ),
    Ping(
        "dsnj_service_national", "DSNJ - Service National", "dsnj", "dsnj.service_national", PingCheck.SERVICE
    ),
    Ping(
        "pole_emploi_status",
        "France Travail - Statut demandeur d'emploi",
        "france_travail",
        "france_travail.statut",
        PingCheck.SERVICE,
    ),
    Ping(
        "pole_emploi_indemnites",
        "France Travail - Paiements versés",
        "france_travail",
        "france_travail.indemnites",
        PingCheck.SERVICE,
    ),
    Ping("sdh_statut_sportif", "SDH - Statut sportif", "sdh", "sdh.statut_sportif", PingCheck.SERVICE),
    Ping(
        "ants",
        "ANTS - Extrait Immatriculation Vehicule",
        "ants",
        "ants.extrait_immatriculation_vehicule",
        PingCheck.SERVICE,
    ),
)
"""Every ping, in the real API's order."""

BY_ID: Mapping[str, Ping] = {ping.id: ping for ping in PINGS}


@dataclass(frozen=True, slots=True)
class Window:
    """A maintenance window an operator declared, in Unix epoch seconds."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class PingState:
    """What one ping says at one instant (epoch seconds)."""

    ping: Ping
    status: Availability
    last_update: float
    """When the check was made: now."""
    last_ok: float
    """When the provider was last seen answering; now when that was never recorded, as the real API."""
    until: float | None = None
    """The end of the maintenance window, when in one."""


def window_key(ping_id: str) -> str:
    """The Redis key of a ping's maintenance window."""
    return f"{_KEY_PREFIX}{ping_id}"


def window_value(window: Window) -> str:
    """A window as its Redis key holds it: ``"<start> <end>"``, epoch seconds."""
    return f"{window.start} {window.end}"


def parse_window(value: str | bytes) -> Window:
    """The window of a value of `window_value`."""
    start, end = (float(part) for part in (value.decode() if isinstance(value, bytes) else value).split())
    return Window(start, end)


def window_expiry(window: Window) -> int:
    """When a window's key expires (epoch seconds): 10 minutes after its end, the grace of the ratio check."""
    return int(window.end + RATIO_WINDOW_SECONDS) + 1


def declare_window(client: redis.Redis, ping_id: str, window: Window, now: float) -> None:
    """Store a ping's window, replacing any other (synchronous; the admin API writes them asynchronously).

    The key expires as `window_expiry` says.

    Raises:
        KeyError: no ping has this id.
        ValueError: the window ends before it starts, or is over at ``now``.
    """
    if ping_id not in BY_ID:
        raise KeyError(ping_id)
    if window.end <= window.start or window.end <= now:
        raise ValueError("a maintenance window must end after it starts, in the future")
    client.set(window_key(ping_id), window_value(window), exat=window_expiry(window))


def clear_window(client: redis.Redis, ping_id: str) -> bool:
    """Remove a ping's window; whether there was one."""
    return bool(client.delete(window_key(ping_id)))


class PingBoard:
    """Answers the pings from the availability tracker and the declared windows.

    Args:
        tracker: The providers' availability and this process's API error ratios.
        redis_client: The gateway's Redis, where operators declare windows.
        clock: Wall clock, epoch seconds.
        ratios: The API error ratios of every gateway process (`gateway.ratios`); None, or Redis
            unreadable: this process's.
    """

    def __init__(
        self,
        tracker: AvailabilityTracker,
        redis_client: redis.asyncio.Redis,
        clock: Callable[[], float] = time.time,
        ratios: SharedErrorRatios | None = None,
    ) -> None:
        self._tracker = tracker
        self._redis = redis_client
        self._clock = clock
        self._ratios = ratios

    async def states(self, pings: tuple[Ping, ...] = PINGS) -> list[PingState]:
        """What each of ``pings`` says now (one Redis read for all)."""
        windows = await self._windows(pings)
        shared = await self._shared_ratios(pings)
        providers = {state.provider: state for state in self._tracker.snapshot()}
        now = self._clock()
        states = []
        for ping in pings:
            window = windows.get(ping.id)
            provider = providers.get(ping.provider)
            last_ok = provider.last_ok if provider is not None and provider.last_ok is not None else now
            if window is not None and window.start <= now < window.end:
                states.append(PingState(ping, Availability.MAINTENANCE, now, last_ok, window.end))
                continue
            if ping.check is PingCheck.RATIO:
                ratio = (
                    shared[ping.api]
                    if shared is not None
                    else self._tracker.error_ratio(ping.api, RATIO_WINDOW_SECONDS)
                )
                after_window = window is not None and window.end <= now
                failing = ratio is not None and ratio >= RATIO_THRESHOLD and not after_window
                down = provider is not None and provider.status is Availability.BAD_GATEWAY
                status = Availability.BAD_GATEWAY if failing or down else Availability.OK
            else:
                status = provider.status if provider is not None else Availability.UNKNOWN
            states.append(PingState(ping, status, now, now if status is Availability.OK else last_ok))
        return states

    async def state(self, ping_id: str) -> PingState | None:
        """What the ping ``ping_id`` says now; None for no such ping."""
        ping = BY_ID.get(ping_id)
        if ping is None:
            return None
        (state,) = await self.states((ping,))
        return state

    async def _shared_ratios(self, pings: tuple[Ping, ...]) -> dict[str, float | None] | None:
        """The ratio pings' APIs' error ratios over every gateway; None: read this process's."""
        apis = [ping.api for ping in pings if ping.check is PingCheck.RATIO]
        if self._ratios is None or not apis:
            return None
        return await self._ratios.error_ratios(apis, RATIO_WINDOW_SECONDS)

    async def windows(self) -> list[tuple[Ping, Window]]:
        """Every window open now or scheduled (not over), by start then ping order (one Redis read).

        What the public status page lists; a visitor has no operator credential to read the admin
        API's list.

        Raises:
            RedisError, OSError, TimeoutError: Redis did not answer.
        """
        now = self._clock()
        declared = await self._read_windows(PINGS)
        ahead = [(BY_ID[ping_id], window) for ping_id, window in declared.items() if window.end > now]
        return sorted(ahead, key=lambda item: item[1].start)

    async def _windows(self, pings: tuple[Ping, ...]) -> dict[str, Window]:
        try:
            return await self._read_windows(pings)
        except (RedisError, OSError, TimeoutError) as exc:
            _LOG.warning("maintenance_windows_unread", error=type(exc).__name__)
            return {}

    async def _read_windows(self, pings: tuple[Ping, ...]) -> dict[str, Window]:
        values = await self._redis.mget([window_key(ping.id) for ping in pings])
        return {
            ping.id: parse_window(value)
            for ping, value in zip(pings, values, strict=True)
            if value is not None
        }

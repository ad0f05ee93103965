"""Each gateway's copy of the registry in memory: what the hot path reads, with no I/O.

A `RegistrySnapshot` loads every habilitation and every token that works or stopped
lately (`gateway.registry.store.load`, one consistent read), then keeps a connection that
``LISTEN``s on ``registry_changes``: each change the admin API commits is announced
there, and the snapshot reloads within ``REGISTRY_CHANGE_DELAY_SECONDS`` (changes
arriving together are taken in one reload), so a change reaches every gateway process
within about a second. A full reload also runs every ``REGISTRY_RELOAD_SECONDS``
whatever was announced, and at once on reconnection, so a notice lost with a broken
connection delays a change by that long at most.

While PostgreSQL cannot be reached the gateway keeps serving from its last snapshot,
retrying every ``REGISTRY_RETRY_SECONDS``; ``gateway_registry_snapshot_age_seconds``
says how old it is (seconds since the last load that succeeded: at most
``REGISTRY_RELOAD_SECONDS`` plus a load's time while PostgreSQL answers). A revocation
does not wait for it: it is read from Redis with every call's rate decision. A ban from
a date, a rotation's grace and an expiry are decided per call against the snapshot's
dates, so they need no reload to take effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from prometheus_client import Counter, Gauge

from gateway.registry import store
from gateway.registry.model import Environment, Habilitation, Status, TokenRecord
from gateway.registry.schema import CHANNEL

_LOG = structlog.get_logger(__name__)

SNAPSHOT_AGE = Gauge(
    "gateway_registry_snapshot_age_seconds",
    "Seconds since this process last loaded the registry from PostgreSQL (its habilitations and tokens); "
    "it grows while PostgreSQL is away, the gateway serving from the last snapshot meanwhile.",
)
EXPIRY_WINDOWS_DAYS = (7, 30)
"""The windows of `TOKENS_EXPIRING`, in days (the operator kit's alert reads the 30-day one)."""
TOKENS_EXPIRING = Gauge(
    "gateway_registry_tokens_expiring",
    "Tokens of the registry that work now and expire within the window (within_days: 7, 30), by "
    "environment; counted, never named (their contacts get the notices).",
    ["within_days", "environment"],
)
RELOADS = Counter("gateway_registry_reloads", "Loads of the registry, by outcome (ok, error).", ["outcome"])
_RELOADED, _FAILED = RELOADS.labels("ok"), RELOADS.labels("error")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Rights:
    """What a call of a habilitation's token may do, as the hot path reads it."""

    habilitation_id: str
    label: str
    siret: str
    scopes: frozenset[str]
    networks: tuple[Network, ...]
    """Allowed networks; empty: every address."""
    rate_per_second: int | None
    """None: the gateway's default."""
    rate_per_minute: int | None
    """None: no per-minute limit."""
    validated: bool

    @property
    def restricted(self) -> bool:
        """Whether a list restricts the caller's address: only then is `allows` asked (the address read)."""
        return bool(self.networks)

    def allows(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        """Whether a caller at ``address`` (None: unknown) may call; an empty list allows everybody."""
        if not self.networks:
            return True
        if address is None:
            return False
        return any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """A token as the hot path reads it."""

    token_id: str
    rights: Rights
    environment: Environment
    expires_at: float
    """Epoch seconds: the registry's expiry, the one that counts."""
    ends_at: float | None
    """Epoch seconds from which it is refused (a ban from a date, a rotation's grace); None: never."""


def _rights(habilitation: Habilitation) -> Rights:
    return Rights(
        habilitation_id=habilitation.id,
        label=habilitation.label,
        siret=habilitation.siret,
        scopes=frozenset(habilitation.scopes),
        networks=tuple(ipaddress.ip_network(cidr) for cidr in habilitation.allowed_ips),
        rate_per_second=habilitation.rate_per_second,
        rate_per_minute=habilitation.rate_per_minute,
        validated=habilitation.status is Status.VALIDATED,
    )


def entries_of(habilitations: list[Habilitation], tokens: list[TokenRecord]) -> dict[str, TokenEntry]:
    """The hot path's view of a load: every token by id, with its habilitation's rights."""
    rights = {habilitation.id: _rights(habilitation) for habilitation in habilitations}
    return {
        token.id: TokenEntry(
            token_id=token.id,
            rights=rights[token.habilitation_id],
            environment=token.environment,
            expires_at=token.expires_at.timestamp(),
            ends_at=None if token.revoked_at is None else token.revoked_at.timestamp(),
        )
        for token in tokens
        if token.habilitation_id in rights
    }


class RegistrySnapshot:
    """The registry in memory, kept current from PostgreSQL (see the module's docstring)."""

    def __init__(
        self,
        database_url: str,
        *,
        reload_seconds: float,
        change_delay_seconds: float,
        retry_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Follow the registry at ``database_url``; nothing is loaded before `start`."""
        self._database_url = database_url
        self._reload_seconds = reload_seconds
        self._change_delay = change_delay_seconds
        self._retry_seconds = retry_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._tokens: Mapping[str, TokenEntry] = {}
        self._loaded_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_load = asyncio.Event()

    @property
    def loaded(self) -> bool:
        """Whether a load ever succeeded (before that, no registry token is known)."""
        return self._loaded_at is not None

    @property
    def age(self) -> float | None:
        """Seconds since the last load that succeeded; None if none did."""
        return None if self._loaded_at is None else self._clock() - self._loaded_at

    def expiring(self, days: int, environment: Environment) -> int:
        """How many tokens of ``environment`` work now and expire within ``days`` days (wall clock)."""
        now = time.time()
        until = now + days * 86_400
        return sum(
            1
            for entry in self._tokens.values()
            if entry.environment is environment
            and now < entry.expires_at <= until
            and (entry.ends_at is None or entry.ends_at > now)
        )

    def token(self, token_id: str) -> TokenEntry | None:
        """The token of this id with its habilitation's rights; None when the registry has none lately."""
        return self._tokens.get(token_id)

    async def start(self, first_load_timeout: float) -> None:
        """Start following the registry; wait up to ``first_load_timeout`` for the first load.

        The gateway starts even when PostgreSQL is away (its calls with registry tokens are then
        refused until the first load): it logs it and keeps trying.
        """
        SNAPSHOT_AGE.set_function(lambda: self.age if self.age is not None else float("inf"))
        for days in EXPIRY_WINDOWS_DAYS:
            for environment in Environment:
                TOKENS_EXPIRING.labels(str(days), environment.value).set_function(
                    functools.partial(self.expiring, days, environment)
                )
        self._task = asyncio.create_task(self._follow(), name="registry-snapshot")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(first_load_timeout):
                await self._first_load.wait()
        if not self.loaded:
            _LOG.warning("registry_not_loaded_at_start")

    async def close(self) -> None:
        """Stop following the registry."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with asyncio.timeout(self._timeout):
            habilitations, tokens = await store.load(conn)
        self._tokens = entries_of(habilitations, tokens)
        self._loaded_at = self._clock()
        self._first_load.set()
        _RELOADED.inc()

    async def _follow(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    conn = await psycopg.AsyncConnection.connect(self._database_url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await self._load(conn)
                    _LOG.info("registry_loaded", tokens=len(self._tokens))
                    await self._listen(conn)
            except (psycopg.Error, OSError, TimeoutError) as error:
                _FAILED.inc()
                _LOG.warning("registry_unreachable", error_type=type(error).__name__, age=self.age)
                await asyncio.sleep(self._retry_seconds)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Reload on each change announced (grouped) and every ``reload_seconds``, until the link breaks."""
        while True:
            announced = [n async for n in conn.notifies(timeout=self._reload_seconds, stop_after=1)]
            if announced:
                # Changes committed together come together: one reload takes them all.
                await asyncio.sleep(self._change_delay)
                _ = [n async for n in conn.notifies(timeout=0)]
            await self._load(conn)

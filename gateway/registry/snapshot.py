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

An editor token's entry carries its editor's active delegations by holder SIRET, each
with its habilitation's rights and the editor's and token's IP ranges
(`gateway.delegations` picks one per call), and the editor's delegations as its editor
API lists them. A delegation revoked reaches the gateways as any change: on the reload
its announcement starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import structlog
from prometheus_client import Counter, Gauge

from gateway.registry import store
from gateway.registry.model import (
    Delegation,
    DelegationState,
    Editor,
    Environment,
    Habilitation,
    Status,
    TokenKind,
    TokenRecord,
)
from gateway.registry.schema import CHANNEL
from runtime.tasks import BackgroundTask

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
    also_within: tuple[tuple[Network, ...], ...] = ()
    """Other lists the address must be in too, each that is not empty: an editor token's call takes
    its editor's ranges and its own beside the habilitation's (ACCESS-MODEL.md §6)."""

    @property
    def restricted(self) -> bool:
        """Whether a list restricts the caller's address: only then is `allows` asked (the address read)."""
        return bool(self.networks) or any(self.also_within)

    def allows(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        """Whether a caller at ``address`` (None: unknown) may call.

        Every list that is not empty (``networks`` and each of ``also_within``) must hold it.
        """
        if not self.networks and not self.also_within:
            return True
        for networks in (self.networks, *self.also_within):
            if networks and (address is None or not any(address in network for network in networks)):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Purpose:
    """What a citizen is told of a habilitation their data went to (`gateway.journal.access_history`)."""

    organisation_name: str
    """The holder's name; empty when the registry has none."""
    use_case: str
    """What the habilitation is for, as DataPass gave it; empty when not given."""


@dataclass(frozen=True, slots=True)
class DelegationEntry:
    """An active delegation as the hot path reads it: its id, and the rights of an editor token's call."""

    delegation_id: str
    rights: Rights
    """The habilitation's, with the editor's and the token's ranges in ``also_within``."""


@dataclass(frozen=True, slots=True)
class ListedDelegation:
    """A delegation as the editor API lists it (PLATFORM.md §3), revoked ones included."""

    delegation_id: str
    datapass_id: str
    siret: str
    label: str
    scopes: tuple[str, ...]
    state: DelegationState
    created_at: float
    """Epoch seconds."""


@dataclass(frozen=True, slots=True)
class EditorGrants:
    """What an editor token reaches: its editor, the active delegations by holder SIRET, and the list."""

    editor_id: str
    delegations: Mapping[str, tuple[DelegationEntry, ...]]
    """By the holder's SIRET (the call's recipient): the active delegations of validated habilitations."""
    listed: tuple[ListedDelegation, ...]
    """Every delegation of the editor, newest first."""


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
    grants: EditorGrants | None = None
    """An editor token's delegations; None for a classic token (``rights`` are then its habilitation's)."""


def _rights(habilitation: Habilitation) -> Rights:
    return Rights(
        habilitation_id=habilitation.id,
        label=habilitation.label,
        siret=habilitation.siret,
        scopes=frozenset(habilitation.scopes),
        networks=_networks(habilitation.allowed_ips),
        rate_per_second=habilitation.rate_per_second,
        rate_per_minute=habilitation.rate_per_minute,
        validated=habilitation.status is Status.VALIDATED,
    )


def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


def _editor_rights(editor: Editor, token: TokenRecord) -> Rights:
    """An editor token's rights before a delegation is picked: no scopes, its editor's ranges and its own."""
    return Rights(
        habilitation_id="",
        label=editor.name,
        siret=editor.siret,
        scopes=frozenset(),
        networks=_networks(editor.allowed_ips),
        rate_per_second=None,
        rate_per_minute=None,
        validated=True,
        also_within=(_networks(token.allowed_ips),),
    )


def _grants(
    editor: Editor,
    token_rights: Rights,
    delegations: list[Delegation],
    habilitations: Mapping[str, Habilitation],
    rights: Mapping[str, Rights],
) -> EditorGrants:
    by_siret: dict[str, list[DelegationEntry]] = defaultdict(list)
    listed = []
    for delegation in delegations:  # newest first (store.list_delegations)
        habilitation = habilitations[delegation.habilitation_id]
        listed.append(
            ListedDelegation(
                delegation_id=delegation.id,
                datapass_id=habilitation.datapass_id,
                siret=habilitation.siret,
                label=habilitation.label,
                scopes=habilitation.scopes,
                state=delegation.state,
                created_at=delegation.created_at.timestamp(),
            )
        )
        if delegation.revoked_at is None and habilitation.status is Status.VALIDATED:
            delegated = replace(
                rights[habilitation.id], also_within=(token_rights.networks, *token_rights.also_within)
            )
            by_siret[habilitation.siret].append(DelegationEntry(delegation.id, delegated))
    return EditorGrants(
        editor.id, {siret: tuple(entries) for siret, entries in by_siret.items()}, tuple(listed)
    )


def clients_of(loaded: store.Loaded) -> dict[str, Rights]:
    """Each FranceConnect client mapped, with its habilitation's rights."""
    rights = {habilitation.id: _rights(habilitation) for habilitation in loaded.habilitations}
    return {client.client_id: rights[client.habilitation_id] for client in loaded.france_connect_clients}


def purposes_of(loaded: store.Loaded) -> dict[str, Purpose]:
    """Each habilitation's holder name and use case, by habilitation id."""
    return {
        habilitation.id: Purpose(habilitation.organisation_name, habilitation.use_case)
        for habilitation in loaded.habilitations
    }


def entries_of(loaded: store.Loaded) -> dict[str, TokenEntry]:
    """The hot path's view of a load: every token by id, with its rights.

    A classic token's are its habilitation's; an editor token's its editor's ranges, with its delegations.
    """
    habilitations = {habilitation.id: habilitation for habilitation in loaded.habilitations}
    rights = {habilitation.id: _rights(habilitation) for habilitation in loaded.habilitations}
    editors = {editor.id: editor for editor in loaded.editors}
    delegations: dict[str, list[Delegation]] = defaultdict(list)
    for delegation in loaded.delegations:
        delegations[delegation.editor_id].append(delegation)
    entries = {}
    for token in loaded.tokens:
        grants = None
        if token.kind is TokenKind.EDITOR and token.editor_id in editors:
            editor = editors[token.editor_id]
            token_rights = _editor_rights(editor, token)
            grants = _grants(editor, token_rights, delegations[editor.id], habilitations, rights)
        elif token.habilitation_id in rights:
            token_rights = rights[token.habilitation_id]
        else:
            continue
        entries[token.id] = TokenEntry(
            token_id=token.id,
            rights=token_rights,
            environment=token.environment,
            expires_at=token.expires_at.timestamp(),
            ends_at=None if token.revoked_at is None else token.revoked_at.timestamp(),
            grants=grants,
        )
    return entries


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
        self._clients: Mapping[str, Rights] = {}
        self._purposes: Mapping[str, Purpose] = {}
        self._loaded_at: float | None = None
        self._task = BackgroundTask(self._follow, "registry-snapshot")
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

    def france_connect_client(self, client_id: str) -> Rights | None:
        """The rights of the habilitation a FranceConnect client is mapped to; None: mapped to none."""
        return self._clients.get(client_id)

    def purpose(self, habilitation_id: str) -> Purpose | None:
        """The holder's name and the use case of this habilitation; None: the registry has none of this id."""
        return self._purposes.get(habilitation_id)

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
        self._task.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(first_load_timeout):
                await self._first_load.wait()
        if not self.loaded:
            _LOG.warning("registry_not_loaded_at_start")

    async def close(self) -> None:
        """Stop following the registry."""
        await self._task.close()

    async def _load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with asyncio.timeout(self._timeout):
            loaded = await store.load(conn)
        self._tokens = entries_of(loaded)
        self._clients = clients_of(loaded)
        self._purposes = purposes_of(loaded)
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

"""The gateway's call path: the steps of every call, written once, in their order.

Transport-neutral: an adapter (the gRPC handlers of `gateway.grpc.proxy` and
`gateway.grpc.api`, the REST front of `gateway.rest`) hands in the caller's metadata
and deadline as an `Inbound`, and gets back the answer, or an `ApiError`; the
response metadata goes into the call's `CallContext`. Every call, a provider
method's or the gateway's own, goes through the same frame:

1. **authenticate**: the ``authorization`` bearer token (00101 invalid, 00103 expired);
   on a FranceConnect method called without one, the FranceConnect access token of
   the request alone, as the real API takes it: introspected (51501, 51502), the
   call then counts against the habilitation linked to the FranceConnect client
   the token was issued to (`gateway.france_connect.clients`: 00101 when none, 00103
   when its token expired), and, in the same round trip of step 4, against a bucket
   of that access token's own (`Exchange.session`); step 5 reuses that introspection;
2. **authorize**: the token holds one of the method's scopes (00100; a provider
   method whose contract names no scope is refused to everybody; the gateway's
   own methods are open to every token);
3. **recipient**: ``x-recipient`` is present (00203) and a valid SIRET (00210); an
   editor token's call then takes the delegation it picks (`gateway.delegations`: 00213,
   00212) and is authorized here, on that habilitation's scopes (00100);
   3b. **address**: the caller's address (`gateway.client_address`) is in its
   habilitation's IP allowlist, when it has one (00107);
4. **rate limit and revocation**, one Redis round trip (00105 revoked, 00429 over
   the limit) that also takes a provider call's duplicate-call lock (`gateway.call_lock`:
   00015 while an identical call runs; released by the frame once answered); from
   here on, the rate-limit metadata of the tightest decision the call made goes back
   with its answer (a call refused at step 2 or 3 spent nothing; its answer says
   where the token stands all the same);
5. **resolve a FranceConnect subject** (`gateway.france_connect.resolver`): the call then
   needs, and is masked with, the scopes both the token and the FranceConnect
   token hold;
6. **forward** to the provider, with the caller's deadline bounded by
   ``DEFAULT_DEADLINE_SECONDS`` and the metadata ``x-request-id``, ``x-recipient``,
   ``x-token-id`` (and ``traceparent`` when tracing is on); a provider's error
   comes back unchanged, an unreachable provider is its error source's PP001; on the DSS
   routes the answer the response cache kept, when it has one (`gateway.response_cache`);
7. **mask** the fields the scopes do not unlock (the bytes go back untouched when
   they unlock every field);
8. **journal and usage**: one journal record per call whatever its outcome, handed
   to the journal before the answer leaves (no I/O: `gateway.journal`), and one
   usage count per provider call once the token is known; the journal's log event
   and the count are written after the answer has left, with those of the other
   calls that ended within ``ACCOUNT_BATCH_SECONDS``. When the journal cannot
   keep the row, the caller gets 00503 instead of the answer, and a call is refused
   before any work while that lasts (`Journal.admit`).

Each step is one method, named as above: steps 1 to 3b, who calls and for whom, of `Admission`
(`authenticate`, `authorize`, `name_recipient`, `admit_address`), the others of `CallPath`
(`_limit`, `_resolve_subject`, `_forward`, `_mask`, `account_later`). Each reads and writes the
call's `Exchange`, which one frame (`CallPath._framed`) opens for every entry point: the timer,
the outcome, the journal's admission, the rate-limit metadata and step 8. Steps 6 and 7 hand
the provider's side to `gateway.forwarding`.
The request and the answer travel as a `Payload`, decoded and encoded at most once
whichever transport brought them.

A Lookup is one call of this frame whose body makes provider calls with
`CallPath.call_within`, each a child `Exchange` of the Lookup's: steps 4, 6, 7 and 8
for each, under the Lookup's token, recipient, scopes and deadline. A method the
citizen's FranceConnect token alone opens (`CallPath.call_citizen`: the access
history) has no token nor recipient: step 5 first, then step 4 per citizen, the
body, and step 8.

Load-bearing for speed (measured with ``make bench``): the token cache by its text
(`gateway.auth`), step 8 in batches (`ACCOUNT_BATCH_SECONDS`), the limiter's
pipelined connection (`gateway.redis.pipeline`), the metadata read once by the call
boundary, and the bytes passed through untouched when nothing is masked.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf.message import Message

from contract.routes import RouteTable
from gateway.auth import AUTHORIZATION_KEY, Token, TokenVerifier
from gateway.availability import AvailabilityTracker
from gateway.call_lock import CallLocks, lock_milliseconds
from gateway.client_address import ClientAddresses, grpc_peer_host
from gateway.delegations import delegated
from gateway.forwarding import Forwarder, Method, Payload, Target, targets_of
from gateway.france_connect.clients import FranceConnectClients
from gateway.france_connect.resolver import FranceConnect, FranceConnectIdentity, missing_france_connect_token
from gateway.journal import Call, Journal, Record
from gateway.ratelimit import RateDecision, RateLimiter
from gateway.recipient import recipient_from
from gateway.response_cache import ResponseCache
from gateway.usage import Details, UsageRecorder
from runtime.caller import Caller
from runtime.context import CallContext, current_call
from runtime.errors import (
    ApiError,
    address_not_allowed,
    insufficient_scopes,
    server_stopping,
)
from runtime.interceptors import Outcome

_LOG = structlog.get_logger(__name__)

ACCOUNT_BATCH_SECONDS = 0.01
"""Step 8 of the calls that end within this time runs in one batch. The journal's and the
usage's code then stays in the processor's caches from one call to the next: measured
under load, the gateway's CPU per call fell by a tenth against a step 8 of its own per call."""

Answer = TypeVar("Answer")


@dataclass(frozen=True, slots=True)
class Inbound:
    """What a transport read from the caller."""

    metadata: Sequence[tuple[str, str | bytes]]
    """The call's metadata (gRPC) or its equivalent (HTTP headers and query parameters)."""
    time_remaining: float | None
    """Seconds before the caller's deadline; None when it set none."""
    peer: str | None = None
    """The connection's remote host, an IP address as text; None when the transport tells none."""

    @classmethod
    def of_grpc(cls, context: grpc.aio.ServicerContext[Any, Any]) -> Inbound:
        """A gRPC call's: its metadata (as the call boundary read it), deadline and peer."""
        return cls(current_call().metadata, context.time_remaining(), grpc_peer_host(context.peer()))


@dataclass(slots=True)
class Exchange:
    """One call as its steps learn it, in their order; each step writes what it learned here.

    Opened by the frame (`CallPath._framed`); a call made inside another (a Lookup's
    provider call) is its `child`.
    """

    method: Method
    request_id: str
    deadline: float
    """Event-loop time by which the answer must leave: the caller's deadline bounded by the default."""
    started: float
    """`time.perf_counter` at the frame's opening, for the journal's latency."""
    metadata: Sequence[tuple[str, str | bytes]] = ()
    """The caller's metadata (step 1 reads the token there, step 3 the recipient)."""
    peer: str | None = None
    """The connection's remote host (`Inbound.peer`), for step 3b."""
    outcome: Outcome = field(default_factory=Outcome)
    token: Token | None = None
    """Step 1: the token the call counts against."""
    identity: FranceConnectIdentity | None = None
    """Step 1, on a FranceConnect method called with the FranceConnect token alone: what it certifies."""
    session: str = ""
    """Step 1, likewise: a digest of the FranceConnect access token, its own rate bucket's key (step 4)."""
    scopes: frozenset[str] = frozenset()
    """Steps 1 and 5: the scopes that open and unmask the call (the token's, and the FranceConnect's)."""
    recipient: str = ""
    """Step 3: the recipient SIRET ("" for a method that needs none)."""
    editor_id: str = ""
    """Step 3, for an editor token: its editor."""
    delegation_id: str = ""
    """Step 3, for an editor token: the delegation its recipient picked."""
    decisions: list[RateDecision] = field(default_factory=list)
    """Step 4: the rate-limit decisions that admitted the call (and its children)."""
    lock: str = ""
    """Step 4: the duplicate-call lock the call holds, released once it is answered; "" none."""
    subject: Message | None = None
    """Step 5: the message naming the person asked about, for the journal."""
    parent: Exchange | None = None
    """The call this one was made inside."""

    @property
    def holder(self) -> Token:
        """The token, once step 1 has passed.

        Raises:
            RuntimeError: before step 1 (a defect of the call path).
        """
        if self.token is None:
            raise RuntimeError("no token before step 1")
        return self.token

    def time_left(self) -> float:
        """Seconds left before the answer must leave (0 when spent)."""
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def caller(self) -> Caller:
        """The caller, as upstream clients (FranceConnect) are told of it."""
        token_id = self.token.jti if self.token is not None else ""
        return Caller(self.recipient, self.request_id, self.time_left(), token_id)

    def child(self, method: Method, request: Message, margin: float) -> Exchange:
        """A call made inside this one: its own method and subject (``request``), ``margin`` s less to answer.

        It adds to this call only its rate decision (`decided`); token, scopes and recipient are this call's.
        """
        return Exchange(
            method,
            self.request_id,
            self.deadline - margin,
            time.perf_counter(),
            token=self.token,
            scopes=self.scopes,
            recipient=self.recipient,
            editor_id=self.editor_id,
            delegation_id=self.delegation_id,
            subject=request,
            parent=self,
        )

    def decided(self, decision: RateDecision) -> None:
        """Step 4 decided: a refusal is raised; an admission counts in the answer of the outermost call.

        Raises:
            ApiError: the decision's refusal (00105 revoked, 00429 over the limit).
        """
        if not decision.allowed:
            raise decision.refusal()
        if self.parent is not None:
            self.parent.decided(decision)
        else:
            self.decisions.append(decision)


def tightest(decisions: Sequence[RateDecision]) -> tuple[tuple[str, str], ...]:
    """The metadata of the decision that left the fewest calls: what the caller may still send."""
    # A revoked token's decision has none (and the call was refused anyway).
    counted = [decision for decision in decisions if not decision.revoked]
    if not counted:
        return ()
    return min(counted, key=lambda decision: decision.remaining).metadata


class _Framed:
    """The frame of every call, around its steps: timer, outcome, journal admission, rate metadata, step 8.

    An async context manager written as a class: `contextlib.asynccontextmanager`'s
    generator costs a few microseconds a call more on the hot path.
    """

    __slots__ = ("_context", "_path", "call")

    def __init__(self, path: CallPath, call: Exchange, context: CallContext) -> None:
        self._path, self.call, self._context = path, call, context

    async def __aenter__(self) -> Exchange:
        try:
            self._admit()
        except BaseException as error:
            await self._close(error)
            raise
        return self.call

    async def __aexit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        await self._close(error)

    def _admit(self) -> None:
        """Refuse the call before any work: the server stops (00504), the journal cannot keep it (00503)."""
        if self._context.stopping:  # held while the server stops: refused, and journalled as such
            raise server_stopping()
        self._path.journal.admit()  # 8

    async def _close(self, error: BaseException | None) -> None:
        """Classify the outcome, tell the caller where its token stands, and account for the call.

        Raises:
            ApiError: 00503 instead of the answer, the journal could not keep its row.
        """
        call = self.call
        call.outcome.classify(error)
        if call.parent is None and call.decisions:
            self._context.response_metadata.extend(tightest(call.decisions))
        if call.lock:
            self._path.limiter.release(call.lock)
        await self._path.account_later(call)  # 8


class Accounts:
    """Step 8 of every call: its journal record before the answer leaves, the rest after, in batches.

    Args:
        journal: The journal.
        usage: Counts a call of a token (and of its habilitation) to an API with its outcome.
    """

    def __init__(self, journal: Journal, usage: UsageRecorder) -> None:
        self._journal, self._count = journal, usage.count
        self._unaccounted: list[Callable[[], None]] = []

    async def account_later(self, call: Exchange) -> None:
        """Step 8: the journal's record before the answer leaves (on disk: write-ahead file); the rest after.

        The journal's log event and the usage count go with those of the calls that end
        within ``ACCOUNT_BATCH_SECONDS``.

        Raises:
            ApiError: 00503 instead of the answer, the journal could not keep its row.
        """
        route, token = call.method.route, call.token
        record = self._journal.record(
            Call(
                request_id=call.request_id,
                token_id=token.jti if token is not None else "",
                habilitation=token.habilitation if token is not None else "",
                recipient=call.recipient,
                method=call.method.path,
                api=route.api_label if route is not None else "",
                provider=route.provider if route is not None else "",
                status=call.outcome.status,
                code=call.outcome.code,
                latency_ms=(time.perf_counter() - call.started) * 1000,
                subject=call.subject,
                habilitation_id=token.habilitation_id if token is not None else "",
                editor_id=call.editor_id,
                delegation_id=call.delegation_id,
            )
        )
        if not self._unaccounted:
            # In a context of its own: the batch belongs to no call in particular.
            asyncio.get_running_loop().call_later(
                ACCOUNT_BATCH_SECONDS, self.account_ended, context=contextvars.Context()
            )
        self._unaccounted.append(functools.partial(self._account, record, token))
        await self._journal.durable(record)
        if record.refusal is not None:
            raise record.refusal

    def account_ended(self) -> None:
        """Step 8 of the calls that ended and are not accounted for yet: journal events, usage counts."""
        batch, self._unaccounted = self._unaccounted, []
        for account in batch:
            try:
                account()
            except Exception as exc:  # one call's accounting must not lose the others'
                _LOG.error("accounting_failed", error_type=type(exc).__name__)

    def _account(self, record: Record, token: Token | None) -> None:
        self._journal.log(record)
        call = record.call
        if token is not None and call.api:
            # A gateway without registry knows the habilitation by the token's `sub`, its id when
            # the admin API issued it: its holder's pages show its activity all the same.
            details = Details(
                token.habilitation_id or token.habilitation,
                token.delegation_id,
                record.code,
                call.latency_ms,
                call.request_id,
            )
            self._count(token.jti, call.api, record.status, token.habilitation_id, details=details)


@dataclass(frozen=True, slots=True)
class Admission:
    """Steps 1 to 3b of every call: who calls, holding which rights, for which recipient, from where.

    What they use is the `CallPath`'s; each step reads and writes the call's `Exchange`.
    """

    verifier: TokenVerifier
    france_connect: FranceConnect
    france_connect_clients: FranceConnectClients
    addresses: ClientAddresses
    limiter: RateLimiter
    """Tells where a token stands, for the metadata of a call refused before step 4."""

    async def authenticate(
        self, call: Exchange, target: Target | None = None, request: Payload | None = None
    ) -> None:
        """Step 1: the API token; on a FranceConnect method called without one, the FranceConnect token alone.

        Raises:
            ApiError: 00101, 00103 for the API token; without one, 51504 without an access token,
                the introspection's refusals (51501, 51502, 51001…), 00101 or 00103 for the
                habilitation of the FranceConnect token's client.
        """
        if (
            target is not None
            and request is not None
            and target.france_connect
            and all(key != AUTHORIZATION_KEY for key, _ in call.metadata)
        ):
            await self._by_france_connect(call, target, request)
        else:
            call.token = self.verifier.authenticate(call.metadata)
            call.scopes = call.token.scopes

    async def _by_france_connect(self, call: Exchange, target: Target, request: Payload) -> None:
        """Step 1 by the request's FranceConnect access token alone, as the real API takes it."""
        access_token = getattr(request.message(), target.route.subject.name).access_token
        if not access_token:
            raise missing_france_connect_token()
        call.identity = await self.france_connect.resolve(access_token, call.caller())
        call.token = await self.france_connect_clients.token_of(call.identity.client_id)
        # Each citizen's token a bucket of its own, as the real API keys one by the token (ACCESS-MODEL §9).
        call.session = hashlib.sha256(access_token.encode()).hexdigest()[:32]
        # The call holds what both tokens hold: step 2 refuses it before the limiter counts it.
        call.scopes = call.token.scopes & call.identity.scopes

    async def authorize(self, call: Exchange) -> None:
        """Step 2: the call holds one of the method's scopes.

        Raises:
            ApiError: 00100, it holds none.
        """
        if call.holder.grants is not None and call.method.needs_recipient:
            return  # an editor token holds no scope before its recipient picks a delegation: step 3
        if not call.method.opens_to(call.scopes):
            await self._tell_rate(call.holder)
            raise insufficient_scopes()

    async def name_recipient(self, call: Exchange) -> None:
        """Step 3: the recipient, for a method that needs one.

        Raises:
            ApiError: 00203 none named, 00210 not a SIRET; for an editor token 00213, 00212
                (`gateway.delegations`), then 00100.
        """
        if not call.method.needs_recipient:
            return
        editor = call.holder.grants is not None
        try:
            call.recipient = recipient_from(call.metadata)
            if editor:
                call.token = delegated(call.holder, call.recipient, call.metadata)
                call.scopes = call.token.scopes
                call.editor_id, call.delegation_id = call.token.editor_id, call.token.delegation_id
        except ApiError:
            await self._tell_rate(call.holder)
            raise
        if editor:
            await self.authorize(call)

    def admit_address(self, call: Exchange) -> None:
        """Step 3b: the caller's address is one its habilitation allows (`gateway.client_address`).

        Refused without rate-limit metadata, before the limiter, as the real API's blocklist does.

        Raises:
            ApiError: 00107, it is not.
        """
        rights = call.holder.rights
        if (
            rights is not None
            and rights.restricted
            and not rights.allows(self.addresses.of(call.peer, call.metadata))
        ):
            raise address_not_allowed()

    async def _tell_rate(self, token: Token) -> None:
        """Where the token stands, for the metadata of a call refused before step 4 (which spent nothing)."""
        state = await self.limiter.peek(
            token.jti,
            token.rate_limit_per_second or 0,
            key=token.rate_key,
            per_minute=token.rate_limit_per_minute or 0,
        )
        if state is not None:
            current_call().response_metadata.extend(state.metadata)


@dataclass(eq=False, kw_only=True)
class CallPath:
    """The steps of every call of the gateway (see the module's docstring), and what they use."""

    routes: InitVar[RouteTable]
    """The route table: a `Target` is prepared for each route."""
    channels: InitVar[Mapping[str, Sequence[grpc.aio.Channel]]]
    """The channels to each provider service, used in turn."""
    default_deadline_seconds: float
    """The longest a call may take, and its deadline when the caller sets none."""
    verifier: TokenVerifier
    limiter: RateLimiter
    journal: Journal
    usage: UsageRecorder
    """Counts a call of a token to an API with its outcome, for its habilitation too when it has one,
    and keeps its activity (`UsageRecorder.count`)."""
    france_connect: FranceConnect
    france_connect_clients: FranceConnectClients
    """The habilitations of FranceConnect clients, for calls authorized by a FranceConnect token alone."""
    availability: AvailabilityTracker
    """Learns from the outcome of every provider call."""
    locks: CallLocks | None
    """Names the duplicate-call lock of a provider call (step 4); None: no lock (``DUPLICATE_CALL_LOCK``)."""
    addresses: ClientAddresses = field(default_factory=lambda: ClientAddresses(()))
    """Tells the caller's address, for the habilitations' IP allowlists (step 3b)."""
    response_cache: ResponseCache = field(default_factory=ResponseCache.off)
    """The DSS routes' answers (`gateway.response_cache`), before step 6."""
    targets: dict[str, Target] = field(init=False)
    """Every provider route's target, by gRPC path."""
    _admission: Admission = field(init=False)
    _accounts: Accounts = field(init=False)
    _forwarder: Forwarder = field(init=False)

    def __post_init__(self, routes: RouteTable, channels: Mapping[str, Sequence[grpc.aio.Channel]]) -> None:
        self._admission = Admission(
            self.verifier, self.france_connect, self.france_connect_clients, self.addresses, self.limiter
        )
        self._accounts = Accounts(self.journal, self.usage)
        self._forwarder = Forwarder(self.availability)
        self.targets = targets_of(routes, channels)

    # -- the entry points -----------------------------------------------------------------------------

    async def call_provider(self, target: Target, request: Payload, inbound: Inbound) -> Payload:
        """Serve one provider method, every step.

        Args:
            target: The method.
            request: The request; bytes that are no request are refused at step 5, after the
                token, scope, recipient and rate limit.
            inbound: The caller's metadata and deadline.

        Returns:
            The masked answer.

        Raises:
            ApiError: any step's refusal, the provider's own error, or the transport's.
        """
        async with self._framed(target.method, inbound) as call:
            admission = self._admission
            await admission.authenticate(call, target, request)  # 1
            await admission.authorize(call)  # 2
            await admission.name_recipient(call)  # 3
            admission.admit_address(call)  # 3b
            await self._limit(call, request)  # 4
            await self._resolve_subject(call, target, request)  # 5
            answer = await self.response_cache.through(  # 6, or the DSS routes' cached answer
                target.route,
                habilitation=call.holder.habilitation,
                metadata=call.metadata,
                request=request.message(),
                fetch=lambda: self._forward(call, target, request),
                response_metadata=current_call().response_metadata,
            )
            return self._mask(call, target, answer)  # 7

    async def call_own(
        self,
        method: str,
        inbound: Inbound,
        body: Callable[[Exchange], Awaitable[Answer]],
        *,
        needs_recipient: bool,
    ) -> Answer:
        """Serve one method of the gateway's own API open to every token, every step.

        Args:
            method: The full gRPC path, for the journal.
            inbound: The caller's metadata and deadline.
            body: What the method does once the caller is admitted (steps 5 to 7, if any).
            needs_recipient: The method forwards data to a recipient, who must be named.

        Raises:
            ApiError: any step's refusal, or the body's.
        """
        async with self._framed(Method(method, None, None, needs_recipient), inbound) as call:
            admission = self._admission
            await admission.authenticate(call)  # 1
            await admission.authorize(call)  # 2
            await admission.name_recipient(call)  # 3
            admission.admit_address(call)  # 3b
            await self._limit(call)  # 4
            return await body(call)

    async def call_within(self, call: Exchange, target: Target, request: Message) -> Payload:
        """One provider call inside an admitted call (a Lookup's): steps 4, 6, 7 and 8.

        Args:
            call: The call, a `Exchange.child` of the enclosing call.
            target: The method called.
            request: Its request, subject filled.

        Returns:
            The masked answer.

        Raises:
            ApiError: 00105 or 00429 from the limiter, the provider's error or the transport's.
        """
        async with _Framed(self, call, current_call()):
            await self._limit(call)  # 4
            sent = Payload(target.route.request_class, message=request)
            answer = await self._forward(call, target, sent)  # 6
            return self._mask(call, target, answer)  # 7

    async def call_citizen(
        self,
        method: str,
        inbound: Inbound,
        request: Message,
        rate_per_second: int,
        body: Callable[[Message], Awaitable[Answer]],
    ) -> Answer:
        """Serve a method the citizen's FranceConnect access token alone opens (no API token, no recipient).

        Args:
            method: The full gRPC path, for the journal.
            inbound: The caller's metadata and deadline.
            request: The request; its FranceConnect subject (``france_connect``) is resolved in place.
            rate_per_second: The citizen's rate limit (its bucket as the limiter sizes it for that rate).
            body: What the method does with the resolved request.

        Raises:
            ApiError: the FranceConnect token is refused (51501, 51502, 51504) or cannot be checked, the
                citizen is over the limit (00429), the journal cannot keep the row (00503), or the body's.
        """
        async with self._framed(Method(method, None, None, needs_recipient=False), inbound) as call:
            await self.resolve_france_connect(call, request, "france_connect")  # 5
            await self._limit_citizen(call, rate_per_second)  # 4
            return await body(request)

    # -- the frame ------------------------------------------------------------------------------------

    def _framed(self, method: Method, inbound: Inbound) -> _Framed:
        """Open a call: its request id, its one deadline, its timer (`_Framed` does the rest)."""
        context = current_call()
        timeout = self.default_deadline_seconds
        if inbound.time_remaining is not None:
            timeout = min(inbound.time_remaining, timeout)
        deadline = asyncio.get_running_loop().time() + timeout
        call = Exchange(
            method, context.request_id, deadline, time.perf_counter(), inbound.metadata, inbound.peer
        )
        return _Framed(self, call, context)

    # -- the steps, in their order --------------------------------------------------------------------

    async def _limit(self, call: Exchange, request: Payload | None = None) -> None:
        """Step 4: the token's revocation and its habilitation's rate limits, one Redis round trip.

        The counters are the habilitation's (`Token.rate_key`), per second and, when it has one,
        per minute (`gateway.ratelimit`). With the ``request`` of a provider call, the same round
        trip takes the call's duplicate-call lock (`gateway.call_lock`).

        Raises:
            ApiError: 00105 revoked, 00213 an editor token's delegation revoked, 00429 over the limit,
                00015 an identical call still runs.
        """
        token = call.holder
        lock = ""
        if request is not None and self.locks is not None:
            lock = self.locks.key(
                token.rate_key, token.jti, call.method.path, call.recipient, request.serialized()
            )
        decision: RateDecision = await self.limiter.check(
            token.jti,
            token.rate_limit_per_second or 0,
            key=token.rate_key,
            per_minute=token.rate_limit_per_minute or 0,
            session=call.session,
            lock=lock,
            lock_ms=lock_milliseconds(call.time_left()),
            delegation=call.delegation_id,
        )
        call.decided(decision)
        call.lock = lock

    async def _limit_citizen(self, call: Exchange, rate_per_second: int) -> None:
        """Step 4 of a citizen's call: the limit of the citizen the resolved subject names.

        Raises:
            ApiError: 00429 over the limit.
        """
        # Keyed by a hash of the subject's digest: the key says nothing to whoever reads Redis.
        digest = self.journal.subject_digest(call.subject) if call.subject is not None else ""
        citizen = hashlib.sha256(digest.encode()).hexdigest()[:32]
        decision = await self.limiter.check(f"citizen-{citizen}", rate_per_second)
        call.decided(decision)

    async def _resolve_subject(self, call: Exchange, target: Target, request: Payload) -> None:
        """Step 5: read the request's subject; resolve a FranceConnect one.

        Raises:
            ApiError: the request's bytes are no request (00400); on a FranceConnect method,
                the FranceConnect token's refusals, or 00100 when the scopes both tokens hold
                open none of the method's.
        """
        message = call.subject = request.message()
        if not target.france_connect:
            return
        await self.resolve_france_connect(call, message, target.route.subject.name)
        if not target.method.opens_to(call.scopes):
            raise insufficient_scopes()
        request.rewritten()

    async def resolve_france_connect(self, call: Exchange, request: Message, field: str) -> None:
        """Step 5 for a FranceConnect subject: write what its token certifies into the request, in place.

        The identity step 1 resolved is reused; otherwise the token is introspected. The call's
        scopes become those both its tokens hold, and the request its subject.

        Raises:
            ApiError: the FranceConnect token is refused (51501, 51502, 51504) or cannot be checked.
        """
        if call.identity is not None:
            call.scopes = FranceConnect.write(request, field, call.identity, call.scopes)
        else:
            call.scopes = await self.france_connect.fill(request, field, call.scopes, call.caller())
        call.subject = request

    async def _forward(self, call: Exchange, target: Target, request: Payload) -> bytes:
        """Step 6 (`Forwarder.forward`), within the call's deadline, told of its recipient and token.

        Raises:
            ApiError: the provider's own error, passed through; PP001, PP002 or PP003 of its source.
        """
        return await self._forwarder.forward(target, request, call.caller())

    def _mask(self, call: Exchange, target: Target, answer: bytes) -> Payload:
        """Step 7 (`Forwarder.mask`) with the call's scopes.

        Raises:
            ApiError: PP003, the answer is no answer of the method.
        """
        return self._forwarder.mask(target, answer, call.scopes)

    async def account_later(self, call: Exchange) -> None:
        """Step 8 (`Accounts.account_later`).

        Raises:
            ApiError: 00503 instead of the answer, the journal could not keep its row.
        """
        await self._accounts.account_later(call)

    async def close(self) -> None:
        """Account for the calls that ended, once the server has drained: nothing ends after."""
        self._accounts.account_ended()

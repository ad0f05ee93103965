"""FranceConnect subjects: the gateway turns a citizen's FranceConnect access token into an identity.

A caller that holds the FranceConnect access token of a citizen's session sends
it in ``france_connect.access_token``. The gateway introspects it (RFC 7662, the
shape of ``france-connect-introspection.schema.json``: ``token_introspection``
with ``active``, ``exp``, ``scope`` and the identity claims), then:

- refuses it when it is malformed (51501), not active or past its ``exp`` (51502), or
  grants no identity pivot (51503: neither ``identite_pivot`` nor every claim's scope), all
  UNAUTHENTICATED (and the call path refuses a method called without one, 51504); refuses
  an identity the pivot cannot be made of (no family name, no first name, no gender, a
  birth date not ``YYYY-MM-DD``, a country or commune not a COG code) with 51564 (422);
- maps the identity pivot as the real API does: ``family_name`` → birth name,
  ``given_name`` split on spaces → first names, ``birthdate`` → year, month and
  day (a ``00`` part is unknown), ``gender`` ``male``/``female`` → ``M``/``F``,
  ``birthplace`` → birth commune, ``birthcountry`` → birth country;
- keeps, of the token's ``scope``, the API Particulier scopes (``openid`` and the
  identity claims are FranceConnect's own), and the call is then allowed and
  masked with the scopes both the caller's token and the FranceConnect token hold;
- writes the identity and those scopes into the request's FranceConnect subject,
  overwriting whatever the caller put there, before the request goes on.

Codes: the real API numbers FranceConnect's errors with the provider prefix 51
("FranceConnect" in its nomenclature). A refused token takes the newest real codes
(VALIDATION §8: 51501 malformed, 51502 unknown, inactive or expired, 51503 without the
pivot's scopes, 51504 missing, 51564 unusable identity),
not the 00101/00103 of the 2026-03 spec, which the real API never gave FranceConnect
tokens; the endpoint's failures take the generic provider subcodes (51001
unavailable, 51002 timeout, 51008 rate-limited, 51999 unreadable answer).

Two sources answer the introspection: the sandbox (the default), a fixed table of
fake tokens mapped to sandbox persons (`gateway.france_connect.sandbox`, listed in the README),
and upstream, FranceConnect's endpoint over a pooled HTTP client. Both give the
same JSON to the same checks and mapping. Neither the access token nor the
identity ever reaches a log or an error message.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
import pydantic
import structlog
from google.protobuf.message import Message

from apiparticulier.common.v1 import identity_pb2
from gateway.france_connect.sandbox import SandboxIntrospection
from gateway.settings import FranceConnectMode, GatewaySettings
from runtime.caller import Caller
from runtime.error_catalogue import entry_of
from runtime.errors import ApiError, api_error, provider_unknown_answer
from runtime.providers import FRANCE_CONNECT
from runtime.upstream import UpstreamClient

_LOG = structlog.get_logger(__name__)

ACCESS_TOKEN_MAX_CHARS = 4096
"""Longest FranceConnect access token accepted; anything longer is refused before any call."""

# Visible ASCII only: an access token is opaque, but never holds spaces or control characters.
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]+")
_BIRTHDATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_COG = re.compile(r"[0-9AB]{5}")
_SEXES = {"male": "M", "female": "F"}
_SCOPE_SHAPE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")

PIVOT_SCOPES = frozenset({"given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry"})
"""The FranceConnect scopes of the identity pivot's claims: a token must grant them all (or
``identite_pivot``, which grants them together), else 51503."""
IDENTITE_PIVOT_SCOPE = "identite_pivot"


def missing_france_connect_token() -> ApiError:
    """A FranceConnect method called without a FranceConnect access token (51504)."""
    return api_error("51504", source=FRANCE_CONNECT)


def malformed_france_connect_token() -> ApiError:
    """The FranceConnect access token is not one: too long, or not visible ASCII (51501)."""
    return api_error("51501", source=FRANCE_CONNECT)


def france_connect_token_without_pivot(scopes: Sequence[str]) -> ApiError:
    """The FranceConnect token does not grant the identity pivot's claims (51503).

    The detail ends with the token's scopes, as the real API lists them (VALIDATION §8): scope
    names, FranceConnect's and API Particulier's, never a claim's value.
    """
    listed = ", ".join(scope for scope in scopes if _SCOPE_SHAPE.fullmatch(scope))
    return api_error("51503", source=FRANCE_CONNECT, detail=entry_of("51503").detail + listed)


def unusable_france_connect_identity() -> ApiError:
    """FranceConnect certified an identity the pivot cannot be made of (51564, HTTP 422)."""
    return api_error("51564", source=FRANCE_CONNECT)


def refused_france_connect_token() -> ApiError:
    """FranceConnect does not know the access token, or it is no longer active or past its expiry (51502)."""
    return api_error("51502", source=FRANCE_CONNECT)


@dataclass(frozen=True, slots=True)
class FranceConnectIdentity:
    """What FranceConnect certified about the holder of an access token."""

    pivot: identity_pb2.IdentityPivot
    """The identity pivot, mapped from the identity claims."""
    scopes: frozenset[str]
    """The API Particulier scopes the token carries."""
    client_id: str
    """The FranceConnect client the token was issued to (``aud``): whose habilitation a call
    authorized by this token alone uses (`gateway.france_connect.clients`); empty if not told."""


class IntrospectionSource(Protocol):
    """Where the introspection answer of an access token comes from."""

    async def introspect(self, access_token: str, caller: Caller) -> bytes:
        """The JSON body of the introspection answer.

        Raises:
            ApiError: the endpoint could not be asked (51001, 51002, 51008, 51999).
        """

    async def close(self) -> None:
        """Release the connections."""


class _Claims(pydantic.BaseModel):
    """The part of ``token_introspection`` the gateway reads; the identity is checked once active."""

    model_config = pydantic.ConfigDict(extra="ignore")

    active: pydantic.StrictBool
    aud: pydantic.StrictStr | None = None
    exp: pydantic.StrictInt | None = None
    scope: pydantic.StrictStr | None = None
    gender: Literal["male", "female"] | None = None
    family_name: pydantic.StrictStr | None = None
    given_name: pydantic.StrictStr | None = None
    given_name_array: list[pydantic.StrictStr] | None = None
    birthdate: pydantic.StrictStr | None = None
    birthplace: pydantic.StrictStr | None = None
    birthcountry: pydantic.StrictStr | None = None


class _Introspection(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")

    token_introspection: _Claims


def pivot_of(claims: Mapping[str, Any]) -> identity_pb2.IdentityPivot | None:
    """The identity pivot of active ``token_introspection`` claims, or None when they are unusable.

    Args:
        claims: The claims, as FranceConnect sends them.
    """
    try:
        parsed = _Claims.model_validate(claims)
    except pydantic.ValidationError:
        return None
    return _pivot(parsed)


def _pivot(claims: _Claims) -> identity_pb2.IdentityPivot | None:
    family_name = (claims.family_name or "").strip()
    first_names = (claims.given_name or "").split() or [
        name.strip() for name in claims.given_name_array or () if name.strip()
    ]
    country = (claims.birthcountry or "").strip()
    birthplace = (claims.birthplace or "").strip()
    date = _BIRTHDATE.fullmatch(claims.birthdate or "")
    if (
        not family_name
        or not first_names
        or claims.gender is None
        or date is None
        or not _COG.fullmatch(country)
        or (birthplace and not _COG.fullmatch(birthplace))
    ):
        return None
    pivot = identity_pb2.IdentityPivot(
        nom_naissance=family_name,
        prenoms=first_names,
        sexe_etat_civil=_SEXES[claims.gender],
        code_cog_insee_pays_naissance=country,
        code_cog_insee_commune_naissance=birthplace,
    )
    # FranceConnect writes an unknown month or day as 00; the pivot leaves it unset.
    year, month, day = (int(part) for part in date.groups())
    if year:
        pivot.annee_date_naissance = year
        if month:
            pivot.mois_date_naissance = month
            if day:
                pivot.jour_date_naissance = day
    return pivot


class FranceConnect:
    """Resolves FranceConnect access tokens and fills the subjects of requests with what they certify.

    Args:
        source: Where introspection answers come from (sandbox or upstream).
        contract_scopes: The API Particulier scopes; the others of a FranceConnect token are dropped.
        clock: Wall clock in epoch seconds, against which ``exp`` is checked.
    """

    def __init__(
        self,
        source: IntrospectionSource,
        contract_scopes: Iterable[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._contract_scopes = frozenset(contract_scopes)
        self._clock = clock

    async def resolve(self, access_token: str, caller: Caller) -> FranceConnectIdentity:
        """Introspect an access token and map what it certifies.

        Args:
            access_token: The citizen's FranceConnect access token.
            caller: The call it is resolved for (deadline, request id).

        Raises:
            ApiError: 51501, 51502 or 51503 (UNAUTHENTICATED) when the token is refused; 51564
                (INVALID_ARGUMENT) when its identity is unusable; 51001, 51002, 51008 or 51999
                when FranceConnect cannot tell.
        """
        if not access_token:
            raise missing_france_connect_token()
        if len(access_token) > ACCESS_TOKEN_MAX_CHARS or not _TOKEN_SHAPE.fullmatch(access_token):
            _LOG.info("france_connect_refused", reason="malformed")
            raise malformed_france_connect_token()
        body = await self._source.introspect(access_token, caller)
        try:
            claims = _Introspection.model_validate_json(body).token_introspection
        except pydantic.ValidationError:
            _LOG.warning("france_connect_unexpected_body", part="envelope")
            raise provider_unknown_answer(FRANCE_CONNECT) from None
        if not claims.active:
            _LOG.info("france_connect_refused", reason="inactive")
            raise refused_france_connect_token()
        if claims.exp is None:
            _LOG.warning("france_connect_unexpected_body", part="exp")
            raise provider_unknown_answer(FRANCE_CONNECT)
        if claims.exp <= self._clock():
            _LOG.info("france_connect_refused", reason="expired")
            raise refused_france_connect_token()
        held = (claims.scope or "").split()
        if IDENTITE_PIVOT_SCOPE not in held and not set(held) >= PIVOT_SCOPES:
            _LOG.info("france_connect_refused", reason="no_pivot_scopes")
            raise france_connect_token_without_pivot(held)
        pivot = _pivot(claims)
        if pivot is None:
            _LOG.info("france_connect_refused", reason="unusable_identity")
            raise unusable_france_connect_identity()
        scopes = frozenset(held) & self._contract_scopes
        return FranceConnectIdentity(pivot, scopes, claims.aud or "")

    async def fill(
        self, request: Message, field: str, granted: frozenset[str], caller: Caller
    ) -> frozenset[str]:
        """Resolve the FranceConnect subject of a request and write what it certifies into it.

        Args:
            request: A request with a FranceConnect subject; modified in place.
            field: The name of the subject's field (`france_connect_field`).
            granted: The scopes of the caller's API Particulier token.
            caller: The call it is resolved for.

        Returns:
            The scopes that open and unmask the call: those of both tokens.

        Raises:
            ApiError: as `resolve`.
        """
        subject: identity_pb2.FranceConnectSubject = getattr(request, field)
        identity = await self.resolve(subject.access_token, caller)
        return self.write(request, field, identity, granted)

    @staticmethod
    def write(
        request: Message, field: str, identity: FranceConnectIdentity, granted: frozenset[str]
    ) -> frozenset[str]:
        """Write a resolved identity into a request's FranceConnect subject, as `fill` does.

        Returns:
            The scopes that open and unmask the call: ``granted`` and the identity's.
        """
        subject: identity_pb2.FranceConnectSubject = getattr(request, field)
        # The caller's own identite_pivot and scopes, if any, never go further.
        subject.identite_pivot.Clear()
        subject.identite_pivot.CopyFrom(identity.pivot)
        del subject.scopes[:]
        subject.scopes.extend(sorted(identity.scopes))
        return granted & identity.scopes

    async def close(self) -> None:
        """Close the source's connections."""
        await self._source.close()


# -- the upstream source (the sandbox one is `gateway.france_connect.sandbox`) ----------------


class UpstreamIntrospection:
    """FranceConnect's token introspection endpoint, over a pooled HTTP client.

    The request is a form POST of ``token``, ``client_id`` and ``client_secret``,
    as FranceConnect's checktoken endpoint takes it. Transport failures and
    statuses other than 200 become the generic FranceConnect errors (51001,
    51002, 51008, 51999).

    Args:
        url: The introspection endpoint.
        client_id: The gateway's FranceConnect client id.
        client_secret: Its secret.
        timeout_seconds: Longest wait, before the caller's deadline cuts it shorter.
        verify: TLS verification: an SSL context with a CA bundle, or True for the system store.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout_seconds: float,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._url = url
        self._client_id = client_id
        self._client_secret = client_secret
        self._client = UpstreamClient(FRANCE_CONNECT, url, timeout_seconds=timeout_seconds, verify=verify)

    async def introspect(self, access_token: str, caller: Caller) -> bytes:
        """Ask FranceConnect about the token; the body of its 200 answer."""
        response = await self._client.send(
            "POST",
            self._url,
            caller,
            data={"token": access_token, "client_id": self._client_id, "client_secret": self._client_secret},
            headers={"Accept": "application/json"},
        )
        if response.status_code != httpx.codes.OK:
            raise self._client.error_for_status(response)
        return response.content

    async def close(self) -> None:
        """Close the pooled connections."""
        await self._client.close()


def build_france_connect(settings: GatewaySettings, contract_scopes: Iterable[str]) -> FranceConnect:
    """The FranceConnect resolver ``FRANCE_CONNECT_MODE`` asks for.

    Raises:
        ValueError: upstream mode without the client credentials.
    """
    if settings.france_connect_mode is FranceConnectMode.SANDBOX:
        return FranceConnect(SandboxIntrospection(), contract_scopes)
    secret = settings.france_connect_client_secret.get_secret_value()
    if not settings.france_connect_client_id or not secret:
        raise ValueError(
            "FRANCE_CONNECT_MODE=upstream needs FRANCE_CONNECT_CLIENT_ID and FRANCE_CONNECT_CLIENT_SECRET"
        )
    verify: ssl.SSLContext | bool = True
    if settings.france_connect_ca_file is not None:
        verify = ssl.create_default_context(cafile=str(settings.france_connect_ca_file))
    source = UpstreamIntrospection(
        settings.france_connect_introspection_url,
        settings.france_connect_client_id,
        secret,
        timeout_seconds=settings.france_connect_timeout_seconds,
        verify=verify,
    )
    return FranceConnect(source, contract_scopes)

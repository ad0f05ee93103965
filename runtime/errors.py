"""The error model of the mesh.

Every refusal is a gRPC status whose details carry:

- ``google.rpc.ErrorInfo``: reason, domain, and metadata with the API Particulier
  5-digit ``code`` and, for provider errors, the ``provider``;
- ``google.rpc.LocalizedMessage`` in French, with the real API's title and detail;
- ``google.rpc.BadRequest`` field violations for invalid parameters;
- ``google.rpc.RetryInfo`` where waiting and retrying helps;
- ``google.rpc.QuotaFailure`` when the rate limit refuses a call.

Code raises `ApiError`, built by `api_error` from the catalogue
(`runtime.error_catalogue`, where every code is defined once) or by the factories
below; the call boundary turns it into the status. Messages never carry the
citizen's data: they are fixed texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from runtime.error_catalogue import entry_of, rule_entry

DOMAIN = "particulier.api.gouv.fr"
_LOCALE = "fr-FR"


DETAILS_KEY = "grpc-status-details-bin"
"""The trailer that carries a call's rich status: a serialized ``google.rpc.Status``."""


def details_of(trailers: Any) -> bytes | None:
    """The rich status among a call's trailing metadata (``(key, value)`` pairs); None without one."""
    for key, value in trailers or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            return value
    return None


def error_info_of(details: bytes) -> error_details_pb2.ErrorInfo | None:
    """The ``ErrorInfo`` of a serialized ``google.rpc.Status``; None when it has none or does not decode."""
    try:
        status = status_pb2.Status.FromString(details)
    except DecodeError:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field: its proto3 JSON path and what is wrong, without its value.

    ``code`` is the API Particulier code of the request rule it breaks (its texts in the
    catalogue, `runtime.error_catalogue.rule_entry`), sent over gRPC as the violation's
    ``reason``; empty for a violation that only explains its refusal's code.
    """

    field: str
    description: str
    code: str = ""


@dataclass(frozen=True, slots=True)
class ErrorSource:
    """A data provider as the error model names it: its 2-digit code prefix and label."""

    code: str
    name: str


# Not frozen: Python assigns __traceback__ on exceptions passing through context managers.
@dataclass(eq=False)
class ApiError(Exception):
    """A refusal in the API Particulier error model, raised anywhere and rendered once."""

    status: grpc.StatusCode
    code: str
    reason: str
    title: str
    detail: str
    provider: ErrorSource | None = None
    """Whom the error names as its source (provider codes only)."""
    violations: tuple[FieldViolation, ...] = ()
    retry_after_seconds: float | None = None
    quota: error_details_pb2.QuotaFailure | None = None
    extra_metadata: tuple[tuple[str, str], ...] = field(default=())

    def __str__(self) -> str:
        return f"{self.code} {self.title}"

    def to_status_proto(self) -> status_pb2.Status:
        """The ``google.rpc.Status`` carrying this error and its details."""
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)
        info.metadata["code"] = self.code
        # Apart, so that a REST body renders them as its own title and detail.
        info.metadata["title"] = self.title
        info.metadata["detail"] = self.detail
        if self.provider is not None:
            info.metadata["provider"] = self.provider.name
        details: list[object] = [
            info,
            error_details_pb2.LocalizedMessage(locale=_LOCALE, message=f"{self.title} : {self.detail}"),
        ]
        if self.violations:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description, reason=v.code
                        )
                        for v in self.violations
                    ]
                )
            )
        if self.retry_after_seconds is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after_seconds * 1e9))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        if self.quota is not None:
            details.append(self.quota)
        packed = []
        for detail in details:
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)  # type: ignore[arg-type]
            packed.append(any_detail)
        return status_pb2.Status(code=self.status.value[0], message=str(self), details=packed)

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """Trailers that carry the rich status, plus any extra metadata of the error."""
        return (
            (DETAILS_KEY, self.to_status_proto().SerializeToString()),
            *self.extra_metadata,
        )


def api_error(
    code: str,
    *,
    source: ErrorSource | None = None,
    detail: str | None = None,
    violations: Sequence[FieldViolation] = (),
    retry_after_seconds: float | None = None,
    quota: error_details_pb2.QuotaFailure | None = None,
    extra_metadata: Sequence[tuple[str, str]] = (),
) -> ApiError:
    """The refusal of a catalogue code, with its status, reason, title and detail.

    Args:
        code: A full code of the catalogue; for a provider code, the source's prefix and the suffix.
        source: The error source a provider code names.
        detail: A more precise detail than the catalogue's, for codes whose real texts vary by
            provider (not-found answers).
        violations: The bad request fields.
        retry_after_seconds: Overrides the catalogue's retry delay.
        quota: The quota a rate-limit refusal reports.
        extra_metadata: Response metadata the refusal carries (rate-limit headers).

    Raises:
        KeyError: the code is not in the catalogue.
    """
    entry = entry_of(code)
    return ApiError(
        entry.status,
        code,
        entry.reason,
        entry.title,
        detail or entry.detail,
        source,
        violations=tuple(violations),
        retry_after_seconds=retry_after_seconds
        if retry_after_seconds is not None
        else entry.retry_after_seconds,
        quota=quota,
        extra_metadata=tuple(extra_metadata),
    )


# -- shorthands for the codes raised in many places ----------------------------------------------


def invalid_parameters(violations: Sequence[FieldViolation], source: ErrorSource | None = None) -> ApiError:
    """The refusal of a request that breaks rules of its route, every broken rule one violation.

    The refusal's code, status and texts are those of the first violation's rule
    (`runtime.error_catalogue.rule_entry`); every violation carries its own code, in the
    order the route's rules are checked (`services.common.validation.Chain`).

    Args:
        violations: The broken rules, each with its ``code``; at least one.
        source: The provider whose rules they are, when one of them is a provider's code (39400).
    """
    entry = rule_entry(violations[0].code)
    return ApiError(
        entry.status,
        violations[0].code,
        entry.reason,
        entry.title,
        entry.detail,
        source,
        violations=tuple(violations),
    )


def bad_request(violations: Sequence[FieldViolation]) -> ApiError:
    """A request the mesh cannot read or serve as sent (00400); the violations say what."""
    return api_error("00400", violations=violations)


def malformed_request() -> ApiError:
    """The request bytes are not a message of the method (00400)."""
    return bad_request([FieldViolation("request", "must be a serialized request message of the method")])


def invalid_civility(violations: Sequence[FieldViolation]) -> ApiError:
    """The identity pivot is badly formed (00366)."""
    return api_error("00366", violations=violations)


def invalid_ine(violations: Sequence[FieldViolation]) -> ApiError:
    """The INE is badly formed (00360)."""
    return api_error("00360", violations=violations)


def missing_recipient() -> ApiError:
    """No recipient SIRET (00203)."""
    return api_error(
        "00203",
        violations=[
            FieldViolation("x-recipient", "required: the SIRET of the public body receiving the data")
        ],
    )


def invalid_recipient() -> ApiError:
    """The recipient is not a valid SIRET (00210)."""
    return api_error(
        "00210",
        violations=[FieldViolation("x-recipient", "must be a valid SIRET: 14 digits passing the Luhn check")],
    )


def invalid_token() -> ApiError:
    """Missing, malformed or badly signed token (00101)."""
    return api_error("00101")


def expired_token() -> ApiError:
    """Token past its expiry (00103)."""
    return api_error("00103")


def revoked_token() -> ApiError:
    """Revoked token (00105)."""
    return api_error("00105")


def address_not_allowed() -> ApiError:
    """The caller's address is outside its habilitation's IP allowlist (00107)."""
    return api_error("00107")


def production_token_on_staging() -> ApiError:
    """A production token used on the sandbox (00108)."""
    return api_error("00108")


def staging_token_on_production() -> ApiError:
    """A sandbox token used in production (00109)."""
    return api_error("00109")


DELEGATION_ID_FIELD = "delegation_id"
"""The parameter naming an editor token's delegation (ACCESS-MODEL.md §4.4)."""


def recipient_not_delegated() -> ApiError:
    """An editor token's call whose recipient delegated nothing to its editor, or not the one named: 00213."""
    return api_error("00213")


def delegation_ambiguous() -> ApiError:
    """An editor token's call whose recipient has several delegations and no ``delegation_id`` (00212)."""
    return api_error(
        "00212",
        violations=[FieldViolation(DELEGATION_ID_FIELD, "required: the recipient has several delegations")],
    )


def insufficient_scopes() -> ApiError:
    """Valid token without any scope that opens the method (00100)."""
    return api_error("00100")


def too_many_requests(
    retry_after_seconds: float,
    quota: error_details_pb2.QuotaFailure,
    metadata: Sequence[tuple[str, str]] = (),
) -> ApiError:
    """The token is over its rate limit (00429)."""
    return api_error("00429", retry_after_seconds=retry_after_seconds, quota=quota, extra_metadata=metadata)


def duplicate_call(metadata: Sequence[tuple[str, str]] = ()) -> ApiError:
    """An identical call of the same token is still running (00015), with the rate-limit metadata."""
    return api_error("00015", extra_metadata=metadata)


def store_unavailable() -> ApiError:
    """The gateway's own store (Redis) cannot be reached right now (00503)."""
    return api_error("00503")


def internal_error() -> ApiError:
    """Something broke inside the mesh; nothing about it is told to the caller."""
    return api_error("00000")


def server_stopping() -> ApiError:
    """The process is shutting down and takes no new call (00504, UNAVAILABLE): retry elsewhere.

    UNAVAILABLE tells a gRPC client that the call was not handled and may be sent
    again, to another replica.
    """
    return api_error("00504")


# -- provider errors (code prefix = the error source's) ------------------------------------------


def provider_not_found(
    provider: ErrorSource, detail: str | None = None, title: str | None = None
) -> ApiError:
    """The provider knows nobody matching the subject (PP003), with the provider's own texts if given."""
    error = api_error(f"{provider.code}003", source=provider, detail=detail)
    if title is not None:
        error.title = title
    return error


def provider_unavailable(provider: ErrorSource) -> ApiError:
    """The provider refused the connection or is in maintenance (PP001)."""
    return api_error(f"{provider.code}001", source=provider)


def provider_timeout(provider: ErrorSource) -> ApiError:
    """The provider did not answer in time (PP002)."""
    return api_error(f"{provider.code}002", source=provider)


def provider_dns_failure(provider: ErrorSource) -> ApiError:
    """The provider's host name did not resolve (PP004)."""
    return api_error(f"{provider.code}004", source=provider)


def provider_rate_limited(provider: ErrorSource, retry_after_seconds: float | None = None) -> ApiError:
    """The provider itself refused for too many requests (PP008)."""
    return api_error(f"{provider.code}008", source=provider, retry_after_seconds=retry_after_seconds)


def provider_unknown_answer(provider: ErrorSource) -> ApiError:
    """The provider answered something that does not parse or match (PP999)."""
    return api_error(f"{provider.code}999", source=provider)

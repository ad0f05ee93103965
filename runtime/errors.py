"""The error model of the mesh (DESIGN §5).

Every refusal is a gRPC status whose details carry:

- ``google.rpc.ErrorInfo``: reason, domain, and metadata with the API Particulier
  5-digit ``code`` and, for provider errors, the ``provider``;
- ``google.rpc.LocalizedMessage`` in French, with the real API's title and detail;
- ``google.rpc.BadRequest`` field violations for invalid parameters;
- ``google.rpc.RetryInfo`` where waiting and retrying helps;
- ``google.rpc.QuotaFailure`` when the rate limit refuses a call.

Code raises `ApiError` (built by the factories below); the call boundary turns it
into the status. Messages never carry the citizen's data: they are fixed texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "particulier.api.gouv.fr"
_LOCALE = "fr-FR"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field: its proto3 JSON path and what is wrong, without its value."""

    field: str
    description: str


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
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
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
            ("grpc-status-details-bin", self.to_status_proto().SerializeToString()),
            *self.extra_metadata,
        )


# -- the API's own refusals (code prefix 00) -------------------------------------------------

_UNPROCESSABLE = "Entité non traitable"


def invalid_argument(code: str, detail: str, violations: Sequence[FieldViolation]) -> ApiError:
    """A parameter refused by validation (HTTP 422 in the v3 API)."""
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        code,
        "INVALID_PARAMETERS",
        _UNPROCESSABLE,
        detail,
        violations=tuple(violations),
    )


def invalid_civility(violations: Sequence[FieldViolation]) -> ApiError:
    """The identity pivot is badly formed (00366)."""
    return invalid_argument(
        "00366", "Un ou plusieurs paramètres de civilité ne sont pas correctement formatés", violations
    )


def invalid_ine(violations: Sequence[FieldViolation]) -> ApiError:
    """The INE is badly formed (00360)."""
    return invalid_argument("00360", "Le numéro d'INE n'est pas correctement formatté", violations)


def missing_identifiant(violations: Sequence[FieldViolation]) -> ApiError:
    """The France Travail identifiant is missing (00380)."""
    return invalid_argument("00380", "L'identifiant est manquant", violations)


def exclusive_men_filters(violations: Sequence[FieldViolation]) -> ApiError:
    """Establishment and perimeter filters given together (00419)."""
    return invalid_argument(
        "00419",
        "Les paramètres codeEtablissement et périmètre (codesBcnRegions/codesBcnDepartements) "
        "sont mutuellement exclusifs",
        violations,
    )


def missing_recipient() -> ApiError:
    """No recipient SIRET (00203)."""
    return invalid_argument(
        "00203",
        "Le paramètre recipient est obligatoire",
        [FieldViolation("x-recipient", "required: the SIRET of the public body receiving the data")],
    )


def invalid_recipient() -> ApiError:
    """The recipient is not a valid SIRET (00210)."""
    return invalid_argument(
        "00210",
        "Le paramètre recipient n'est pas un siret valide",
        [FieldViolation("x-recipient", "must be a valid SIRET: 14 digits passing the Luhn check")],
    )


def invalid_token() -> ApiError:
    """Missing, malformed or badly signed token (00101)."""
    return ApiError(
        grpc.StatusCode.UNAUTHENTICATED,
        "00101",
        "INVALID_TOKEN",
        "Interdit",
        "Votre token n'est pas valide ou n'est pas renseigné",
    )


def expired_token() -> ApiError:
    """Token past its expiry (00103)."""
    return ApiError(
        grpc.StatusCode.UNAUTHENTICATED,
        "00103",
        "EXPIRED_TOKEN",
        "Jeton expiré",
        "Votre token est expiré. Vous devez refaire une demande",
    )


def revoked_token() -> ApiError:
    """Revoked token (00105)."""
    return ApiError(
        grpc.StatusCode.UNAUTHENTICATED,
        "00105",
        "REVOKED_TOKEN",
        "Jeton sur liste noire",
        "Votre jeton est sur liste noire, celui-ci a certainement été divulgué sur un canal "
        "non-sécurisé. Vous pouvez trouver un jeton valide sur votre espace personnel.",
    )


def insufficient_scopes() -> ApiError:
    """Valid token without any scope that opens the method (00100)."""
    return ApiError(
        grpc.StatusCode.PERMISSION_DENIED,
        "00100",
        "INSUFFICIENT_SCOPES",
        "Privilèges insuffisants",
        "Votre token est valide mais vos privilèges sont insuffisants. "
        "Listez vos privilèges avec l'introspection du jeton",
    )


def too_many_requests(
    retry_after_seconds: float,
    quota: error_details_pb2.QuotaFailure,
    metadata: Sequence[tuple[str, str]] = (),
) -> ApiError:
    """The token is over its rate limit (00429)."""
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "00429",
        "RATE_LIMITED",
        "Trop de requêtes",
        "Vous avez effectué trop de requêtes",
        retry_after_seconds=retry_after_seconds,
        quota=quota,
        extra_metadata=tuple(metadata),
    )


def internal_error() -> ApiError:
    """Something broke inside the mesh; nothing about it is told to the caller."""
    return ApiError(
        grpc.StatusCode.INTERNAL,
        "00000",
        "INTERNAL",
        "Erreur interne",
        "Une erreur interne est survenue. L'équipe technique a été notifiée.",
    )


def server_stopping() -> ApiError:
    """The process is shutting down and takes no new call (00503, UNAVAILABLE): retry elsewhere.

    ``503`` is what a REST front answers for it; UNAVAILABLE tells a gRPC client
    that the call was not handled and may be sent again, to another replica.
    """
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        "00503",
        "SERVER_STOPPING",
        "Service non disponible",
        "Ce serveur s'arrête. Veuillez réessayer : un autre serveur traitera la requête.",
        retry_after_seconds=0.0,
    )


# -- provider errors (code prefix = the provider's) ------------------------------------------

_RETRY_SECONDS = 10.0


def provider_not_found(provider: ErrorSource, detail: str, title: str = "Entité non trouvée") -> ApiError:
    """The provider knows nobody matching the subject (PP003)."""
    return ApiError(grpc.StatusCode.NOT_FOUND, f"{provider.code}003", "NOT_FOUND", title, detail, provider)


def provider_unavailable(provider: ErrorSource) -> ApiError:
    """The provider refused the connection or is in maintenance (PP001)."""
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        f"{provider.code}001",
        "PROVIDER_UNAVAILABLE",
        "Service non disponible",
        "Service du fournisseur de données temporairement indisponible ou en maintenance.",
        provider,
        retry_after_seconds=_RETRY_SECONDS,
    )


def provider_timeout(provider: ErrorSource) -> ApiError:
    """The provider did not answer in time (PP002)."""
    return ApiError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"{provider.code}002",
        "PROVIDER_TIMEOUT",
        "Intermédiaire hors-délai",
        "Temps d'attente d'une réponse du fournisseur de données écoulé.",
        provider,
        retry_after_seconds=_RETRY_SECONDS,
    )


def provider_dns_failure(provider: ErrorSource) -> ApiError:
    """The provider's host name did not resolve (PP004)."""
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        f"{provider.code}004",
        "PROVIDER_DNS_FAILURE",
        "Erreur de résolution DNS",
        "Problème de résolution DNS de l'adresse du serveur",
        provider,
        retry_after_seconds=_RETRY_SECONDS,
    )


def provider_rate_limited(provider: ErrorSource, retry_after_seconds: float = _RETRY_SECONDS) -> ApiError:
    """The provider itself refused for too many requests (PP008)."""
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        f"{provider.code}008",
        "PROVIDER_RATE_LIMITED",
        "Erreur auprès du fournisseur de données : trop de requêtes",
        "Erreur de fournisseur de donnée : Trop de requêtes effectuées, veuillez réessayer plus tard.",
        provider,
        retry_after_seconds=retry_after_seconds,
    )


def provider_unknown_answer(provider: ErrorSource) -> ApiError:
    """The provider answered something that does not parse or match (PP999)."""
    return ApiError(
        grpc.StatusCode.UNKNOWN,
        f"{provider.code}999",
        "PROVIDER_UNKNOWN_ANSWER",
        "Erreur inconnue du fournisseur de données",
        "La réponse retournée par le fournisseur de données est invalide et inconnue de notre "
        "service. L'équipe technique a été notifiée de cette erreur pour investigation.",
        provider,
    )

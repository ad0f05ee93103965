"""The error catalogue: every code the mesh answers with, defined once.

Each entry gives the gRPC status, the HTTP status the v3 REST API gives the code,
the ``ErrorInfo`` reason, and the French title and detail of the real API. The
HTTP statuses follow the error examples of the published spec
(``contract/spec/openapi-v3.yaml``): 401 for tokens, 403 for scopes, 422 for
parameters, 404 not found, 429, 502 for unknown provider answers, 504 for
unavailable or slow providers. Codes of the real API's nomenclature keep its
texts; the mesh's own codes, which the real API does not have, are marked ``own``.

Provider codes are ``PPKKK``: ``PP`` the error source's prefix (`runtime.errors.ErrorSource`),
``KKK`` a suffix of `PROVIDER_CODES`. A full code of `CODES` overrides the
provider template of its suffix (FranceConnect's refusals, 51501 to 51504 and 51564).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

PROVIDER_RETRY_SECONDS = 10.0
"""How long a caller should wait before asking an unavailable provider again."""
STORE_RETRY_SECONDS = 1.0
"""How long a caller should wait before asking again when the gateway's own store (Redis) is unreachable."""


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One code of the catalogue."""

    status: grpc.StatusCode
    """The gRPC status of a call refused with it."""
    http_status: int
    """The HTTP status the v3 REST API answers with."""
    reason: str
    """The ``google.rpc.ErrorInfo`` reason."""
    title: str
    """The real API's French title."""
    detail: str
    """The real API's French detail (field violations say what precisely is wrong)."""
    own: bool = False
    """A code of the mesh's own, which the real API does not have."""
    retry_after_seconds: float | None = None
    """Seconds to wait before retrying, when retrying helps."""


_INVALID_PARAMETERS = "INVALID_PARAMETERS"
_UNPROCESSABLE = "Entité non traitable"


def _parameter(detail: str) -> ErrorCode:
    """A parameter refused by validation: INVALID_ARGUMENT, HTTP 422."""
    return ErrorCode(grpc.StatusCode.INVALID_ARGUMENT, 422, _INVALID_PARAMETERS, _UNPROCESSABLE, detail)


CODES: dict[str, ErrorCode] = {
    # -- the mesh itself -----------------------------------------------------------------------------
    "00000": ErrorCode(
        grpc.StatusCode.INTERNAL,
        500,
        "INTERNAL",
        "Erreur interne",
        "Une erreur interne est survenue. L'équipe technique a été notifiée.",
        own=True,
    ),
    "00400": ErrorCode(
        grpc.StatusCode.INVALID_ARGUMENT,
        400,
        "BAD_REQUEST",
        "Requête mal formée",
        "La requête n'est pas valide : les violations de champ disent ce qui ne va pas.",
        own=True,
    ),
    "00404": ErrorCode(
        grpc.StatusCode.UNIMPLEMENTED,
        404,
        "ROUTE_NOT_FOUND",
        "Route inconnue",
        "Aucune route de l'API ne correspond à ce chemin. "
        "Les routes servies sont listées dans /openapi.yaml.",
        own=True,
    ),
    "00405": ErrorCode(
        grpc.StatusCode.UNIMPLEMENTED,
        405,
        "METHOD_NOT_ALLOWED",
        "Méthode non autorisée",
        "Cette route de l'API ne répond pas à cette méthode HTTP ; l'en-tête Allow dit lesquelles.",
        own=True,
    ),
    # -- the REST front's transport, before any call (gateway/rest/protocol.py) ---------------------
    "00440": ErrorCode(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        408,
        "REQUEST_TIMEOUT",
        "Requête trop lente",
        "La requête n'est pas arrivée entière dans le temps imparti ; la connexion est fermée.",
        own=True,
    ),
    "00441": ErrorCode(
        grpc.StatusCode.INVALID_ARGUMENT,
        413,
        "BODY_TOO_LARGE",
        "Corps de requête trop grand",
        "Le corps de la requête dépasse la taille admise ; les routes de l'API n'en prennent pas.",
        own=True,
    ),
    "00442": ErrorCode(
        grpc.StatusCode.INVALID_ARGUMENT,
        414,
        "REQUEST_LINE_TOO_LONG",
        "Ligne de requête trop longue",
        "La ligne de requête (chemin et paramètres) dépasse la longueur admise.",
        own=True,
    ),
    "00443": ErrorCode(
        grpc.StatusCode.INVALID_ARGUMENT,
        431,
        "HEADERS_TOO_LARGE",
        "En-têtes trop grands",
        "Un en-tête, leur nombre ou leur taille totale dépasse ce qui est admis.",
        own=True,
    ),
    "00505": ErrorCode(
        grpc.StatusCode.UNAVAILABLE,
        503,
        "TOO_MANY_CONNECTIONS",
        "Service non disponible",
        "Ce serveur tient déjà son nombre maximal de connexions. Veuillez réessayer dans quelques instants.",
        own=True,
        retry_after_seconds=STORE_RETRY_SECONDS,
    ),
    "00503": ErrorCode(
        grpc.StatusCode.UNAVAILABLE,
        503,
        "STORE_UNAVAILABLE",
        "Service non disponible",
        "Le service est temporairement indisponible. Veuillez réessayer dans quelques instants.",
        own=True,
        retry_after_seconds=STORE_RETRY_SECONDS,
    ),
    "00504": ErrorCode(
        grpc.StatusCode.UNAVAILABLE,
        503,
        "SERVER_STOPPING",
        "Service non disponible",
        "Ce serveur s'arrête. Veuillez réessayer : un autre serveur traitera la requête.",
        own=True,
        retry_after_seconds=0.0,
    ),
    # -- tokens and scopes -----------------------------------------------------------------------
    "00100": ErrorCode(
        grpc.StatusCode.PERMISSION_DENIED,
        403,
        "INSUFFICIENT_SCOPES",
        "Privilèges insuffisants",
        "Votre token est valide mais vos privilèges sont insuffisants. "
        "Listez vos privilèges sur /api/introspect",
    ),
    "00101": ErrorCode(
        grpc.StatusCode.UNAUTHENTICATED,
        401,
        "INVALID_TOKEN",
        "Interdit",
        "Votre token n'est pas valide ou n'est pas renseigné",
    ),
    "00103": ErrorCode(
        grpc.StatusCode.UNAUTHENTICATED,
        401,
        "EXPIRED_TOKEN",
        "Jeton expiré",
        "Votre token est expiré. Vous devez refaire une demande à API Particulier, un guide est "
        "disponible sur https://particulier.api.gouv.fr/faq#comment-renouveler-mon-jeton-arrivant-a-expiration",
    ),
    "00105": ErrorCode(
        grpc.StatusCode.UNAUTHENTICATED,
        401,
        "REVOKED_TOKEN",
        "Jeton sur liste noire",
        "Votre jeton est sur liste noire, celui-ci a certainement été divulgué sur un canal "
        "non-sécurisé. Vous pouvez trouver un jeton valide sur votre espace personnel: "
        "https://particulier.api.gouv.fr/compte",
    ),
    "00107": ErrorCode(
        grpc.StatusCode.PERMISSION_DENIED,
        403,
        "IP_NOT_ALLOWED",
        "Adresse IP non autorisée",
        "Votre adresse IP n'est pas autorisée à utiliser ce jeton.",
    ),
    # The real wording of 00108 and 00109 is not public (ACCESS-MODEL.md §12): these say the same thing.
    "00108": ErrorCode(
        grpc.StatusCode.UNAUTHENTICATED,
        401,
        "PRODUCTION_TOKEN_ON_STAGING",
        "Jeton de production",
        "Votre jeton est un jeton de production : il ne peut pas être utilisé sur l'environnement de "
        "test (bac à sable). Utilisez un jeton de test.",
    ),
    "00109": ErrorCode(
        grpc.StatusCode.UNAUTHENTICATED,
        401,
        "STAGING_TOKEN_ON_PRODUCTION",
        "Jeton de test",
        "Votre jeton est un jeton de l'environnement de test (bac à sable) : il ne peut pas être utilisé "
        "en production. Utilisez le jeton de production de votre habilitation.",
    ),
    "00015": ErrorCode(
        grpc.StatusCode.ABORTED,
        409,
        "DUPLICATE_CALL",
        "Conflit",
        "Une requête associé à votre jeton est déjà en cours de traitement pour ces paramètres. "
        "Veuillez attendre la fin du traitement avant d'effectuer une nouvelle requête.",
    ),
    # Editor tokens' delegations (ACCESS-MODEL.md §4.3): the real title of 00213 is public
    # (NEWER-ENDPOINTS.md), its detail is not: this one says the same thing.
    "00213": ErrorCode(
        grpc.StatusCode.PERMISSION_DENIED,
        403,
        "RECIPIENT_NOT_DELEGATED",
        "Accès refusé",
        "Le destinataire (recipient) n'a délégué aucune habilitation active à votre éditeur, ou "
        "l'identifiant de délégation (delegation_id) ne correspond à aucune de ses délégations.",
    ),
    "00429": ErrorCode(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        429,
        "RATE_LIMITED",
        "Trop de requêtes",
        "Vous avez effectué trop de requêtes",
    ),
    # -- parameters (HTTP 422): one per rule of a route's parameter chain (services.common.validation)
    "00203": _parameter("Le paramètre recipient est obligatoire"),
    "00210": _parameter("Le paramètre recipient n'est pas un siret valide"),
    "00212": _parameter(
        "Plusieurs délégations actives correspondent à ce destinataire : précisez laquelle avec le "
        "paramètre delegation_id."
    ),
    "00354": _parameter("Le mois demandé est incorrect ou est dans le futur."),
    "00355": _parameter(
        "La période demandée est antérieure de plus de 23 mois. Le quotient familial n'est disponible "
        "que pour le mois en cours et les 23 mois précédents."
    ),
    "00356": _parameter("L'année demandée doit être l'année en cours (N), N-1 ou N-2."),
    "00360": _parameter("Le numéro d'INE n'est pas correctement formatté"),
    "00363": _parameter("La date de naissance n'est pas correctement formatté"),
    "00365": _parameter("Le lieu de naissance n'est pas correctement formaté"),
    "00366": _parameter("Un ou plusieurs paramètres de civilité ne sont pas correctement formatés"),
    "00367": _parameter("Le ou les prénoms sont manquants."),
    "00368": _parameter(
        "L'année de campagne (campaignYear) n'est pas correctement formatée: doit être une année sur "
        "4 chiffres supérieure ou égale à 2021"
    ),
    "00380": _parameter("L'identifiant est manquant"),
    "00391": _parameter(
        "Les paramètres d'identité correspondent à plusieurs personnes. Nous ne pouvons pas fournir "
        "les informations de service civique pour cet individu."
    ),
    "00410": _parameter(
        "Le code établissement n'est pas correctement formaté: "
        "celui doit être composé de 7 chiffres et 1 lettre"
    ),
    "00411": _parameter(
        "L'année scolaire n'est pas correctement formatée: doit être sur le format YYYY ou YYYY-YYYY)"
    ),
    "00412": _parameter("Le degré d'établissement n'est pas correctement formaté: doit être 1D ou 2D"),
    "00413": _parameter(
        "Le périmètre géographique est invalide: exactement un type de périmètre doit être fourni"
    ),
    "00414": _parameter("Les valeurs du périmètre sont invalides: doit être un tableau non vide"),
    "00415": _parameter(
        "Au moins un critère de recherche géographique est requis: renseignez soit le paramètre "
        "codeEtablissement, soit un périmètre géographique (codesBcnDepartements ou codesBcnRegions "
        "avec degreEtablissement)"
    ),
    "00416": _parameter("Le code département BCN MEN est invalide: valeur non reconnue"),
    "00417": _parameter("Le code région BCN MEN est invalide: valeur non reconnue"),
    "00419": _parameter(
        "Les paramètres codeEtablissement et périmètre (codesBcnRegions/codesBcnDepartements) "
        "sont mutuellement exclusifs"
    ),
    "00420": _parameter("Le nom de naissance est manquant"),
    "00421": _parameter("Le(s) prenom(s) est manquant"),
    "00422": _parameter("L'annee de naissance est manquante"),
    "00423": _parameter("Le mois de naissance est manquant"),
    "00424": _parameter("Le jour de naissance est manquant"),
    "00425": _parameter("La date de naissance n'est pas valide"),
    # The real API's text of 00426 for the usage name is unknown (VALIDATION.md §5.1): the mesh's own.
    "00426": _parameter("Le nom d'usage n'est pas correctement formaté"),
    "00427": _parameter("Le sexe de l'état civil est manquant"),
    "00428": _parameter("Le code cog du département de naissance est manquant ou invalide"),
    "00430": _parameter("L'immatriculation du véhicule est manquante"),
    # -- provider refusals of their own ----------------------------------------------------------------
    "39400": ErrorCode(
        grpc.StatusCode.INVALID_ARGUMENT,
        422,
        "AGE_OUT_OF_SCOPE",
        "Age non pertinent pour le Service National",
        "L'age renseigné n'est pas compris entre 16 et 25 ans incluts, et n'est donc pas concerné par "
        "le Service National.",
    ),
    "42005": ErrorCode(
        grpc.StatusCode.NOT_FOUND,
        404,
        "IDENTITY_NOT_FOUND",
        "Identité non trouvée",
        "Immatriculation trouvée mais aucune identité ne correspond",
    ),
    # -- FranceConnect access tokens (error source 51) ----------------------------------------------
    # The newest real codes (nomenclature, VALIDATION §8), not the spec's 00101/00103, which the
    # real API gives FranceConnect tokens at no date.
    "51501": ErrorCode(
        grpc.StatusCode.UNAUTHENTICATED,
        401,
        "MALFORMED_FRANCE_CONNECT_TOKEN",
        "Accès non autorisé",
        "Le jeton d'accès est mal formaté.",
    ),
    "51502": ErrorCode(
        grpc.StatusCode.UNAUTHENTICATED,
        401,
        "INVALID_FRANCE_CONNECT_TOKEN",
        "Accès non autorisé",
        "Le jeton d'accès n'a pas été trouvé ou est expiré.",
    ),
    "51503": ErrorCode(
        grpc.StatusCode.UNAUTHENTICATED,
        401,
        "FRANCE_CONNECT_TOKEN_WITHOUT_PIVOT",
        "Accès non autorisé",
        # The real API appends the token's scopes after the colon (`france_connect_token_without_pivot`).
        "Le jeton d'accès ne possède pas les données pivot requises pour effectuer cet appel. Le jeton "
        "possède les scopes suivants: ",
    ),
    "51504": ErrorCode(
        grpc.StatusCode.UNAUTHENTICATED,
        401,
        "MISSING_FRANCE_CONNECT_TOKEN",
        "Accès non autorisé",
        "Le jeton d'accès FranceConnect est manquant. Cet endpoint requiert un jeton d'accès "
        "FranceConnect transmis via l'en-tête Authorization: Bearer.",
    ),
    "51564": ErrorCode(
        grpc.StatusCode.INVALID_ARGUMENT,
        422,
        "UNUSABLE_FRANCE_CONNECT_IDENTITY",
        "Identité inexploitable renvoyée par le fournisseur de données",
        "L'identité renvoyée par le fournisseur de données est incomplète ou invalide.",
    ),
}
"""Every full code, by code."""

RULE_CODES: dict[str, ErrorCode] = {
    "00400": _parameter("Le code pays INSEE n'est pas correctement formaté"),
    "00401": _parameter("Le request_id n'est pas correctement formaté"),
}
"""Request rules whose code the real API also gives a refusal of the whole request, by code.

The real API answers ``00400`` both for a birth country code (422) and, in the mesh, a request it
cannot read (400, `CODES`); ``00401`` both for a CNAV request id (422) and a malformed request
(400, "Mauvaise requête"). A field violation names the rule it breaks (`rule_entry`); a refusal
without violations, the whole request (`entry_of`).
"""

PROVIDER_CODES: dict[str, ErrorCode] = {
    "001": ErrorCode(
        grpc.StatusCode.UNAVAILABLE,
        504,
        "PROVIDER_UNAVAILABLE",
        "Service non disponible",
        "Service du fournisseur de données temporairement indisponible ou en maintenance.",
        retry_after_seconds=PROVIDER_RETRY_SECONDS,
    ),
    "002": ErrorCode(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        504,
        "PROVIDER_TIMEOUT",
        "Intermédiaire hors-délai",
        "Temps d’attente d’une réponse du fournisseur de données écoulé.",  # noqa: RUF001 - the real text
        retry_after_seconds=PROVIDER_RETRY_SECONDS,
    ),
    "003": ErrorCode(
        grpc.StatusCode.NOT_FOUND,
        404,
        "NOT_FOUND",
        "Entité non trouvée",
        "Le ou les paramètre(s) d'entrée n'existent pas, ne sont pas connus, ou ne comportent aucune "
        "information pour cet appel. Veuillez vérifier que votre recherche est couverte par le "
        "périmètre de l'API.",
    ),
    "004": ErrorCode(
        grpc.StatusCode.UNAVAILABLE,
        504,
        "PROVIDER_DNS_FAILURE",
        "Erreur de résolution DNS",
        "Problème de résolution DNS de l'adresse du serveur",
        retry_after_seconds=PROVIDER_RETRY_SECONDS,
    ),
    "008": ErrorCode(
        grpc.StatusCode.UNAVAILABLE,
        504,
        "PROVIDER_RATE_LIMITED",
        "Erreur auprès du fournisseur de données : trop de requêtes",
        "Erreur de fournisseur de donnée : Trop de requêtes effectuées, veuillez réessayer plus tard.",
        retry_after_seconds=PROVIDER_RETRY_SECONDS,
    ),
    "999": ErrorCode(
        grpc.StatusCode.UNKNOWN,
        502,
        "PROVIDER_UNKNOWN_ANSWER",
        "Erreur inconnue du fournisseur de données",
        "La réponse retournée par le fournisseur de données est invalide et inconnue de notre "
        "service. L'équipe technique a été notifiée de cette erreur pour investigation.",
    ),
}
"""The provider codes, by suffix; the prefix is the error source's."""


def rule_entry(code: str) -> ErrorCode:
    """The catalogue entry of a request rule's code: a field violation's (`RULE_CODES` first).

    Raises:
        KeyError: the catalogue has no such code.
    """
    return RULE_CODES.get(code) or entry_of(code)


def entry_of(code: str) -> ErrorCode:
    """The catalogue entry of a full code.

    Raises:
        KeyError: the catalogue has no such code (a mistake in the mesh, caught by its tests).
    """
    entry = CODES.get(code)
    if entry is not None:
        return entry
    if code[:2] != "00" and code[2:] in PROVIDER_CODES:
        return PROVIDER_CODES[code[2:]]
    raise KeyError(f"error code {code} is not in the catalogue")

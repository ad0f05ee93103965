"""Validation of the subjects the provider services receive, per the v3 contract.

Validators return every violation at once (one per bad field) so a caller fixes
its request in one go. Violations name the field by its proto3 JSON path and say
what is expected; they never repeat the value, which may be personal data.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from apiparticulier.common.v1 import identity_pb2
from runtime.errors import FieldViolation, invalid_civility, invalid_ine

_MAX_NAME_LENGTH = 100
_COG_COMMUNE = re.compile(r"(?:[0-9]{2}|2[AB])[0-9]{3}")
_COG_COUNTRY = re.compile(r"[0-9]{5}")
_COG_DEPARTEMENT = re.compile(r"[0-9]{2,3}|2[AB]")
_INE = re.compile(r"[0-9a-zA-Z]{11}")
_OLDEST_BIRTH_YEAR = 1900


@dataclass(frozen=True, slots=True)
class IdentityRules:
    """What one API demands of the identity pivot."""

    max_first_names: int = 3
    full_birth_date_required: bool = False
    sex_required: bool = True
    birth_country_required: bool = False


DSS_IDENTITY = IdentityRules(birth_country_required=True)
"""CNAF/MSA benefits and C2S: birth country required, partial birth dates allowed."""
MESR_IDENTITY = IdentityRules(max_first_names=1, full_birth_date_required=True)
"""MESR: exactly one first name and a full birth date."""
CNOUS_IDENTITY = IdentityRules(full_birth_date_required=True, sex_required=False)
"""Cnous v4: full birth date; sex optional."""
MEN_IDENTITY = IdentityRules(full_birth_date_required=True)
"""MEN v4: full birth date and sex."""
DSNJ_IDENTITY = IdentityRules(full_birth_date_required=True, birth_country_required=True)
"""DSNJ service national: full birth date, sex and birth country."""
GIP_MDS_IDENTITY = IdentityRules(full_birth_date_required=True, sex_required=False)
"""GIP-MDS service civique: full birth date; sex and birthplace are not asked."""
ANTS_IDENTITY = IdentityRules(full_birth_date_required=True, sex_required=False)
"""ANTS (FranceConnect only): the certified name, first names and full birth date."""


def _is_name(value: str) -> bool:
    stripped = value.strip()
    return (
        0 < len(stripped) <= _MAX_NAME_LENGTH
        and any(ch.isalpha() for ch in stripped)
        and not any(unicodedata.category(ch).startswith("C") for ch in stripped)
    )


def validate_identity(
    identity: identity_pb2.IdentityPivot,
    rules: IdentityRules,
    today: dt.date,
    prefix: str = "identite",
) -> list[FieldViolation]:
    """Check an identity pivot against one API's rules.

    Args:
        identity: The pivot as received.
        rules: The API's demands.
        today: The current date, for births in the future.
        prefix: JSON path of the pivot in the request.

    Returns:
        One violation per bad field; empty when the pivot is acceptable.
    """
    violations: list[FieldViolation] = []

    def bad(field: str, description: str) -> None:
        violations.append(FieldViolation(f"{prefix}.{field}", description))

    if not _is_name(identity.nom_naissance):
        bad("nomNaissance", "required: a name of 1 to 100 characters with at least one letter")
    if identity.nom_usage and not _is_name(identity.nom_usage):
        bad("nomUsage", "a name of 1 to 100 characters with at least one letter")
    count = len(identity.prenoms)
    if not 1 <= count <= rules.max_first_names:
        bad("prenoms", f"required: between 1 and {rules.max_first_names} first names")
    elif not all(_is_name(p) for p in identity.prenoms):
        bad("prenoms", "each first name has 1 to 100 characters with at least one letter")
    violations.extend(_birth_date_violations(identity, rules, today, prefix))
    if identity.sexe_etat_civil:
        if identity.sexe_etat_civil.upper() not in ("M", "F"):
            bad("sexeEtatCivil", "must be M or F")
    elif rules.sex_required:
        bad("sexeEtatCivil", "required: M or F")
    if identity.code_cog_insee_pays_naissance:
        if not _COG_COUNTRY.fullmatch(identity.code_cog_insee_pays_naissance):
            bad("codeCogInseePaysNaissance", "must be a COG country code of 5 digits (99100 for France)")
    elif rules.birth_country_required:
        bad("codeCogInseePaysNaissance", "required: COG country code of 5 digits (99100 for France)")
    violations.extend(_birthplace_violations(identity, prefix))
    return violations


def _birth_date_violations(
    identity: identity_pb2.IdentityPivot, rules: IdentityRules, today: dt.date, prefix: str
) -> list[FieldViolation]:
    has_year = identity.HasField("annee_date_naissance")
    has_month = identity.HasField("mois_date_naissance")
    has_day = identity.HasField("jour_date_naissance")
    if rules.full_birth_date_required and not (has_year and has_month and has_day):
        return [
            FieldViolation(f"{prefix}.{name}", "required: the full date of birth")
            for name, present in (
                ("anneeDateNaissance", has_year),
                ("moisDateNaissance", has_month),
                ("jourDateNaissance", has_day),
            )
            if not present
        ]
    if not has_year:
        return []
    year = identity.annee_date_naissance
    if not _OLDEST_BIRTH_YEAR <= year <= today.year:
        return [FieldViolation(f"{prefix}.anneeDateNaissance", "must be a year from 1900 to this year")]
    if not has_month:
        return []
    month = identity.mois_date_naissance
    if not 1 <= month <= 12:
        return [FieldViolation(f"{prefix}.moisDateNaissance", "must be a month from 1 to 12")]
    if (year, month) > (today.year, today.month):
        return [FieldViolation(f"{prefix}.moisDateNaissance", "must not be in the future")]
    if not has_day:
        return []
    try:
        birth = dt.date(year, month, identity.jour_date_naissance)
    except ValueError:
        return [FieldViolation(f"{prefix}.jourDateNaissance", "must make a real calendar date")]
    if birth > today:
        return [FieldViolation(f"{prefix}.jourDateNaissance", "must not be in the future")]
    return []


def _birthplace_violations(identity: identity_pb2.IdentityPivot, prefix: str) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    commune_code = identity.code_cog_insee_commune_naissance
    commune_name = identity.nom_commune_naissance
    departement = identity.code_cog_insee_departement_naissance
    if commune_code and not _COG_COMMUNE.fullmatch(commune_code):
        violations.append(
            FieldViolation(
                f"{prefix}.codeCogInseeCommuneNaissance", "must be a COG commune code of 5 characters"
            )
        )
    if commune_code and commune_name:
        violations.append(
            FieldViolation(
                f"{prefix}.nomCommuneNaissance",
                "give either codeCogInseeCommuneNaissance or nomCommuneNaissance, not both",
            )
        )
    if commune_name:
        if not _is_name(commune_name):
            violations.append(
                FieldViolation(f"{prefix}.nomCommuneNaissance", "a name of 1 to 100 characters")
            )
        if not departement:
            violations.append(
                FieldViolation(
                    f"{prefix}.codeCogInseeDepartementNaissance",
                    "required with nomCommuneNaissance: COG code of the département",
                )
            )
        if not identity.HasField("annee_date_naissance"):
            violations.append(
                FieldViolation(f"{prefix}.anneeDateNaissance", "required with nomCommuneNaissance")
            )
    if departement and not _COG_DEPARTEMENT.fullmatch(departement):
        violations.append(
            FieldViolation(
                f"{prefix}.codeCogInseeDepartementNaissance",
                "must be a COG département code of 2 or 3 characters",
            )
        )
    return violations


def validate_ine(ine: str, field: str = "ine") -> list[FieldViolation]:
    """Check an INE (identifiant national étudiant): 11 letters or digits."""
    if _INE.fullmatch(ine):
        return []
    return [FieldViolation(field, "required: 11 letters or digits")]


def validate_reference_month(
    year: int | None, month: int | None, today: dt.date, history_years: int = 2
) -> list[FieldViolation]:
    """Check the month a quotient familial is asked for: both or neither, not future, not too old.

    Args:
        year: The year asked, if any.
        month: The month asked, if any.
        today: The current date.
        history_years: How far back the provider keeps history.
    """
    if year is None and month is None:
        return []
    if year is None or month is None:
        missing = "annee" if year is None else "mois"
        return [FieldViolation(missing, "annee and mois are given together or not at all")]
    if not 1 <= month <= 12:
        return [FieldViolation("mois", "must be a month from 1 to 12")]
    asked = year * 12 + month - 1
    current = today.year * 12 + today.month - 1
    if asked > current:
        return [FieldViolation("mois", "must not be in the future")]
    if asked < current - 12 * history_years:
        return [FieldViolation("annee", f"must be at most {history_years} years back")]
    return []


FRANCE_CONNECT_PREFIX = "franceConnect.identitePivot"
"""The JSON path of the identity the gateway resolved from a FranceConnect token."""


def resolved_france_connect_identity(
    subject: identity_pb2.FranceConnectSubject,
) -> tuple[identity_pb2.IdentityPivot, str]:
    """The identity the gateway resolved from a FranceConnect token, with its JSON path.

    Provider services never see FranceConnect themselves: the gateway introspects
    the token and fills ``identite_pivot``. A subject without it did not come
    through the gateway.

    Raises:
        ApiError: INVALID_ARGUMENT when the identity was not resolved.
    """
    if not subject.HasField("identite_pivot"):
        raise invalid_civility(
            [
                FieldViolation(
                    FRANCE_CONNECT_PREFIX,
                    "required: resolved by the gateway from the FranceConnect access token",
                )
            ]
        )
    return subject.identite_pivot, FRANCE_CONNECT_PREFIX


def checked_identity(
    identity: identity_pb2.IdentityPivot, rules: IdentityRules, today: dt.date, prefix: str = "identite"
) -> identity_pb2.IdentityPivot:
    """The identity pivot, once it meets the API's rules.

    Raises:
        ApiError: INVALID_ARGUMENT 00366 with one violation per bad field.
    """
    violations = validate_identity(identity, rules, today, prefix)
    if violations:
        raise invalid_civility(violations)
    return identity


def checked_ine(ine: str, field: str = "ine") -> str:
    """The INE in upper case, once well formed.

    Raises:
        ApiError: INVALID_ARGUMENT 00360.
    """
    violations = validate_ine(ine, field)
    if violations:
        raise invalid_ine(violations)
    return ine.upper()


def checked_france_connect_identity(
    subject: identity_pb2.FranceConnectSubject,
    rules: IdentityRules,
    today: dt.date,
    *,
    drop_extra_first_names: bool = False,
) -> identity_pb2.IdentityPivot:
    """The identity the gateway resolved from a FranceConnect token, once it meets the API's rules.

    Args:
        subject: The FranceConnect subject as received.
        rules: The API's demands.
        today: The current date, for births in the future.
        drop_extra_first_names: Keep the first ``rules.max_first_names`` first names
            instead of refusing more. FranceConnect certifies every first name a
            person has, which the citizen cannot change; where the provider is
            searched with fewer, the first ones are those that identify them.

    Raises:
        ApiError: INVALID_ARGUMENT 00366 when unresolved or when a field breaks the rules.
    """
    identity, prefix = resolved_france_connect_identity(subject)
    if drop_extra_first_names and len(identity.prenoms) > rules.max_first_names:
        trimmed = identity_pb2.IdentityPivot()
        trimmed.CopyFrom(identity)
        del trimmed.prenoms[rules.max_first_names :]
        identity = trimmed
    return checked_identity(identity, rules, today, prefix)

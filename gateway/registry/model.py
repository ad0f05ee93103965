"""What the registry holds: habilitations, editors, tokens, delegations, and the checks on what is written.

A **habilitation** (a DataPass authorization, ACCESS-MODEL.md §1.2) holds the rights:
scopes, allowed IPs or CIDRs, per-second and per-minute limits. Its **tokens** are keys
to it, several at once (a classic and an editor token, or an old and a new one during a
rotation's grace); they share its limits, and a change of its scopes needs no new token.

A token's life (ACCESS-MODEL.md §8): issued for ``TOKEN_DEFAULT_DAYS`` (18 months) unless
told otherwise; prolonged (a later expiry, same token); rotated (a new token, the old
one ending after a grace); banned from a date, with a replacement; revoked now, with a
reason. ``revoked_at`` is when it stops working, whichever of these set it.

A software **editor** (ACCESS-MODEL.md §1.7, §4) holds **editor tokens**: a token of an
editor, not of a habilitation, with no scopes of its own. Each public body **delegates**
its habilitation to the editor; on a call the recipient SIRET (and, when the body has
several delegations, their id) picks the delegation whose habilitation's scopes, IPs and
limits apply (`gateway.registry.delegations`). A delegation is active until revoked; a
habilitation revoked or archived revokes its delegations.

A **FranceConnect client** (ACCESS-MODEL.md §9) is mapped to the habilitation its
citizens' calls count against.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum, StrEnum
from typing import Any

from contract.routes import contract_scopes
from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND, TOKEN_LIFETIME_MAX_DAYS
from gateway.recipient import is_valid_siret

TOKEN_DEFAULT_DAYS = 548
"""18 months, the lifetime of a token of the real API (ACCESS-MODEL.md §8.1)."""
RATE_LIMIT_MAX_PER_MINUTE = RATE_LIMIT_MAX_PER_SECOND * 60
"""Highest per-minute limit of a habilitation."""
LABEL_MAX = 200
TEXT_MAX = 2000
CONTACTS_MAX = 20
ALLOWED_IPS_MAX = 100
REASON_MAX = 500
CLIENT_ID_SHAPE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""What a FranceConnect client id may be: FranceConnect's are hexadecimal; nothing here may break a key."""
_PHONE = re.compile(r"\+?[0-9][0-9 .()-]{5,30}")
INVITATION_DAYS = 30
"""How long an invitation may be accepted (the mesh's choice: the real link's lifetime is not known)."""
_EMAIL = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")


class InvalidInputError(ValueError):
    """A value the registry refuses; ``field`` names it and the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Status(StrEnum):
    """A habilitation's status, as DataPass's that matter to calls (ACCESS-MODEL.md §1.1)."""

    VALIDATED = "validated"
    REVOKED = "revoked"
    ARCHIVED = "archived"


class TokenKind(StrEnum):
    """A token's kind (ACCESS-MODEL.md §3)."""

    CLASSIC = "classic"
    EDITOR = "editor"


class Environment(StrEnum):
    """Where a token may be used: a token of one is refused by the other (401 00108 / 00109)."""

    PRODUCTION = "production"
    SANDBOX = "sandbox"


class DelegationState(StrEnum):
    """A delegation's state: the editor API's ``statut`` (PLATFORM.md §3)."""

    ACTIVE = "active"
    REVOKED = "revoked"


class DelegationOrigin(StrEnum):
    """How a delegation came to exist (ACCESS-MODEL.md §4.1, ``created_via``)."""

    MANUAL = "manual"
    """By an operator, or the habilitation's holder."""
    DATAPASS_AUTO = "datapass_auto"
    """On DataPass's validation of a habilitation made through the editor's form."""
    EDITOR_DELEGATION_REQUEST = "editor_delegation_request"
    """Through the editor's invitation of the body."""


class TokenState(StrEnum):
    """A token's state at a given time."""

    ACTIVE = "active"
    ENDING = "ending"
    """Works until its ``revoked_at`` (a ban from a later date, a rotation's grace)."""
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Habilitation:
    """One habilitation, as stored."""

    id: str
    label: str
    siret: str
    organisation_name: str
    """The holder's name as the citizens' page shows it; empty: unknown (the SIRET is shown)."""
    datapass_id: str
    use_case: str
    legal_basis: str
    scopes: tuple[str, ...]
    allowed_ips: tuple[str, ...]
    """CIDRs, normalised (a bare address is its /32 or /128); empty: every address."""
    rate_per_second: int | None
    """None: the gateway's ``RATE_LIMIT_PER_SECOND``."""
    rate_per_minute: int | None
    """None: no per-minute limit."""
    contacts: tuple[str, ...]
    """E-mail addresses the expiry notices go to."""
    status: Status
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """The habilitation as JSON values (the audit trail's before and after, the REST API)."""
        return _json_fields(self)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One token, as stored (never the JWT itself: the registry cannot show it again)."""

    id: str
    """The JWT's ``jti``."""
    habilitation_id: str | None
    """The habilitation of a classic token; None for an editor token."""
    kind: TokenKind
    environment: Environment
    issued_at: dt.datetime
    expires_at: dt.datetime
    """The expiry that counts: the JWT's own ``exp`` is only a bound (a prolongation keeps the JWT)."""
    revoked_at: dt.datetime | None
    """When it stops working (revocation, ban, end of a rotation's grace); None: never before expiry."""
    revoked_reason: str
    replaces: str | None
    replaced_by: str | None
    editor_id: str | None = None
    """The editor of an editor token; None for a classic token."""
    allowed_ips: tuple[str, ...] = ()
    """An editor token's own CIDRs (within its editor's); empty: every address."""

    @property
    def holder_id(self) -> str:
        """The habilitation or editor it belongs to: what the registry announces a change of."""
        holder = self.habilitation_id or self.editor_id
        if holder is None:
            raise RuntimeError("a token has a habilitation or an editor by construction")
        return holder

    def state(self, now: dt.datetime) -> TokenState:
        """The token's state at ``now``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return TokenState.REVOKED
        if self.expires_at <= now:
            return TokenState.EXPIRED
        return TokenState.ACTIVE if self.revoked_at is None else TokenState.ENDING

    def as_json(self) -> dict[str, Any]:
        """The token as JSON values (the audit trail's before and after, the REST API)."""
        return _json_fields(self)


@dataclass(frozen=True, slots=True)
class Editor:
    """A software editor, as stored."""

    id: str
    siret: str
    name: str
    allowed_ips: tuple[str, ...]
    """Its declared ranges (CIDRs): every call of its tokens must come from one; empty: every address."""
    contacts: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """The editor as JSON values (the audit trail's before and after, the REST API)."""
        return _json_fields(self)


@dataclass(frozen=True, slots=True)
class Delegation:
    """A habilitation delegated to an editor, as stored."""

    id: str
    editor_id: str
    habilitation_id: str
    origin: DelegationOrigin
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    """None: active."""

    @property
    def state(self) -> DelegationState:
        """Active until revoked."""
        return DelegationState.ACTIVE if self.revoked_at is None else DelegationState.REVOKED

    def as_json(self) -> dict[str, Any]:
        """The delegation as JSON values (the audit trail's before and after, the REST API).

        Written out, not derived: ``origin`` goes by the real platform's name, ``created_via``, and
        the ``state`` it derives is given beside the fields.
        """
        return {
            "id": self.id,
            "editor_id": self.editor_id,
            "habilitation_id": self.habilitation_id,
            "created_via": self.origin.value,
            "state": self.state.value,
            "created_at": _iso(self.created_at),
            "revoked_at": _iso(self.revoked_at),
        }


@dataclass(frozen=True, slots=True)
class FranceConnectClient:
    """A FranceConnect client and the habilitation its citizens' calls count against."""

    client_id: str
    habilitation_id: str
    updated_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """The mapping as JSON values."""
        return _json_fields(self)


class InvitationState(StrEnum):
    """Where an editor's invitation of a body stands."""

    PENDING = "pending"
    """Sent; the body's holder has not accepted it yet."""
    ACCEPTED = "accepted"
    """Accepted: its delegation exists."""
    EXPIRED = "expired"
    """Not accepted within `INVITATION_DAYS`."""


@dataclass(frozen=True, slots=True)
class DataProtectionOfficer:
    """The body's data protection officer, as the invitation names them (ACCESS-MODEL.md §1.8)."""

    given_name: str
    family_name: str
    email: str
    """Lower-cased and trimmed, as the real platform stores it."""
    phone: str
    """Lower-cased and trimmed, as the real platform stores it."""
    job_title: str

    def as_json(self) -> dict[str, str]:
        """The officer as JSON values."""
        return _json_fields(self)


DPO_FIELDS = tuple(field.name for field in fields(DataProtectionOfficer))
"""The data protection officer's fields, as every adapter (gRPC, REST, CLI) names them."""


@dataclass(frozen=True, slots=True)
class Invitation:
    """An editor's invitation of a public body to delegate its habilitation (never its secret)."""

    id: str
    editor_id: str
    habilitation_id: str
    contact_email: str
    """Where the invitation is sent: the body's contact."""
    dpo: DataProtectionOfficer
    invited_at: dt.datetime
    expires_at: dt.datetime
    accepted_at: dt.datetime | None
    delegation_id: str | None
    """The delegation its acceptance made; None while pending."""

    def state(self, now: dt.datetime) -> InvitationState:
        """Accepted, else expired from ``expires_at``, else pending."""
        if self.accepted_at is not None:
            return InvitationState.ACCEPTED
        return InvitationState.EXPIRED if now >= self.expires_at else InvitationState.PENDING

    def as_json(self) -> dict[str, Any]:
        """The invitation as JSON values (the audit trail's before and after)."""
        return _json_fields(self)


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()


def _json_fields(record: Any) -> dict[str, Any]:
    """A record's fields as JSON values, by name in their order (`_json_value`)."""
    return {field.name: _json_value(getattr(record, field.name)) for field in fields(record)}


def _json_value(value: object) -> Any:
    """A date as ISO 8601 in UTC, an enum as its value, a tuple as a list, a record as its fields."""
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if is_dataclass(value):
        return _json_fields(value)
    return value


# -- checks of what is written ----------------------------------------------------------------------


def checked_label(label: str, field: str = "label") -> str:
    """A habilitation's label or an editor's name, stripped.

    Raises:
        InvalidInputError: empty or longer than `LABEL_MAX`.
    """
    return _stripped(field, label, LABEL_MAX, required=True)


def checked_organisation_name(name: str) -> str:
    """A holder's organisation name, stripped; empty when not known.

    Raises:
        InvalidInputError: longer than `LABEL_MAX`.
    """
    return _stripped("organisation_name", name, LABEL_MAX, required=False)


def checked_siret(siret: str) -> str:
    """A holder's SIRET.

    Raises:
        InvalidInputError: not 14 digits passing the checksum (`gateway.recipient`).
    """
    if not is_valid_siret(siret):
        raise InvalidInputError("siret", "not a SIRET: 14 digits passing the Luhn check")
    return siret


def checked_text(field: str, text: str) -> str:
    """A free text field (DataPass id, use case, legal basis), stripped.

    Raises:
        InvalidInputError: longer than `TEXT_MAX`.
    """
    return _stripped(field, text, TEXT_MAX, required=False)


def checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes the contracts name, in order, without duplicates.

    Raises:
        InvalidInputError: none given, or a scope no contract names.
    """
    wanted = tuple(dict.fromkeys(scope.strip() for scope in scopes))
    if not wanted:
        raise InvalidInputError("scopes", "at least one scope")
    unknown = sorted(set(wanted) - contract_scopes())
    if unknown:
        raise InvalidInputError("scopes", f"unknown scope(s): {', '.join(unknown)}")
    return wanted


def checked_allowed_ips(entries: Iterable[str]) -> tuple[str, ...]:
    """Addresses or CIDRs, normalised (host bits must be zero), without duplicates.

    Raises:
        InvalidInputError: an entry is neither, or more than `ALLOWED_IPS_MAX`.
    """
    networks: list[str] = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry.strip(), strict=True)
        except ValueError:
            raise InvalidInputError("allowed_ips", f"{entry[:50]!r} is not an IP address or CIDR") from None
        networks.append(str(network))
    unique = tuple(dict.fromkeys(networks))
    if len(unique) > ALLOWED_IPS_MAX:
        raise InvalidInputError("allowed_ips", f"at most {ALLOWED_IPS_MAX} entries")
    return unique


def checked_client_id(client_id: str) -> str:
    """A FranceConnect client id.

    Raises:
        InvalidInputError: not of `CLIENT_ID_SHAPE` (FranceConnect's are hexadecimal).
    """
    if not CLIENT_ID_SHAPE.fullmatch(client_id):
        raise InvalidInputError("client_id", "1 to 128 letters, digits or . _ : -")
    return client_id


def checked_rate(field: str, value: int | None, highest: int) -> int | None:
    """A per-second or per-minute limit, or None.

    Raises:
        InvalidInputError: not from 1 to ``highest``.
    """
    if value is not None and not 1 <= value <= highest:
        raise InvalidInputError(field, f"must be from 1 to {highest}")
    return value


def checked_contacts(contacts: Iterable[str]) -> tuple[str, ...]:
    """E-mail addresses, lower-cased, without duplicates.

    Raises:
        InvalidInputError: one is not an address, or more than `CONTACTS_MAX`.
    """
    found: list[str] = []
    for contact in contacts:
        try:
            found.append(checked_email("contacts", contact))
        except InvalidInputError:
            # The address is personal data: the message does not repeat it.
            raise InvalidInputError("contacts", "a contact is not an e-mail address") from None
    unique = tuple(dict.fromkeys(found))
    if len(unique) > CONTACTS_MAX:
        raise InvalidInputError("contacts", f"at most {CONTACTS_MAX} addresses")
    return unique


def checked_email(field: str, address: str) -> str:
    """One e-mail address, trimmed and lower-cased.

    Raises:
        InvalidInputError: not an address (the message does not repeat it: personal data).
    """
    address = address.strip().lower()
    if not _EMAIL.fullmatch(address):
        raise InvalidInputError(field, "not an e-mail address")
    return address


def checked_dpo(dpo: DataProtectionOfficer) -> DataProtectionOfficer:
    """A data protection officer with every field given, the e-mail and phone trimmed and lower-cased.

    Raises:
        InvalidInputError: a field empty or too long, the e-mail no address, the phone no number.
    """
    phone = dpo.phone.strip().lower()
    if not _PHONE.fullmatch(phone):
        raise InvalidInputError("dpo.phone", "not a telephone number")
    return DataProtectionOfficer(
        given_name=checked_label(dpo.given_name, "dpo.given_name"),
        family_name=checked_label(dpo.family_name, "dpo.family_name"),
        email=checked_email("dpo.email", dpo.email),
        phone=phone,
        job_title=checked_label(dpo.job_title, "dpo.job_title"),
    )


def checked_days(days: int) -> int:
    """A token lifetime or prolongation, in days.

    Raises:
        InvalidInputError: not from 1 to `TOKEN_LIFETIME_MAX_DAYS`.
    """
    if not 1 <= days <= TOKEN_LIFETIME_MAX_DAYS:
        raise InvalidInputError("days", f"must be from 1 to {TOKEN_LIFETIME_MAX_DAYS}")
    return days


def checked_reason(reason: str) -> str:
    """A revocation or ban reason, stripped.

    Raises:
        InvalidInputError: empty or longer than `REASON_MAX`.
    """
    return _stripped("reason", reason, REASON_MAX, required=True)


def _stripped(field: str, text: str, longest: int, *, required: bool) -> str:
    """``text`` stripped, of at most ``longest`` characters, and not empty when ``required``.

    Raises:
        InvalidInputError: empty though required, or too long.
    """
    text = text.strip()
    if required and not 1 <= len(text) <= longest:
        raise InvalidInputError(field, f"must be 1 to {longest} characters")
    if len(text) > longest:
        raise InvalidInputError(field, f"at most {longest} characters")
    return text

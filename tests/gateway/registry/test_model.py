"""What the registry holds, as JSON: the audit trail's before and after and the REST API's records."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

import pytest

from gateway.registry.model import (
    LABEL_MAX,
    REASON_MAX,
    TEXT_MAX,
    DataProtectionOfficer,
    Environment,
    InvalidInputError,
    Invitation,
    TokenKind,
    TokenRecord,
    checked_label,
    checked_organisation_name,
    checked_reason,
    checked_text,
)

_PARIS_SUMMER = dt.timezone(dt.timedelta(hours=2))


def test_a_record_as_json_has_its_fields_in_order_dates_in_utc_enums_as_values_tuples_as_lists() -> None:
    issued = dt.datetime(2026, 6, 1, 14, 0, tzinfo=_PARIS_SUMMER)
    token = TokenRecord(
        id="t-1",
        habilitation_id=None,
        kind=TokenKind.EDITOR,
        environment=Environment.SANDBOX,
        issued_at=issued,
        expires_at=issued + dt.timedelta(days=10),
        revoked_at=None,
        revoked_reason="",
        replaces="t-0",
        replaced_by=None,
        editor_id="e-1",
        allowed_ips=("10.0.0.0/8",),
    )

    assert list(token.as_json().items()) == [
        ("id", "t-1"),
        ("habilitation_id", None),
        ("kind", "editor"),
        ("environment", "sandbox"),
        ("issued_at", "2026-06-01T12:00:00+00:00"),
        ("expires_at", "2026-06-11T12:00:00+00:00"),
        ("revoked_at", None),
        ("revoked_reason", ""),
        ("replaces", "t-0"),
        ("replaced_by", None),
        ("editor_id", "e-1"),
        ("allowed_ips", ["10.0.0.0/8"]),
    ]
    assert type(token.as_json()["kind"]) is str


def test_an_invitation_as_json_holds_its_officer_as_json() -> None:
    invited = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    officer = DataProtectionOfficer(
        "Responsable", "Conformité", "dpd@mairie.example", "01 02 03 04 05", "DPD"
    )
    invitation = Invitation("i-1", "e-1", "h-1", "contact@example.fr", officer, invited, invited, None, None)

    assert invitation.as_json()["dpo"] == {
        "given_name": "Responsable",
        "family_name": "Conformité",
        "email": "dpd@mairie.example",
        "phone": "01 02 03 04 05",
        "job_title": "DPD",
    }
    assert invitation.as_json()["accepted_at"] is None


@pytest.mark.parametrize(
    ("check", "longest", "required", "field"),
    [
        (checked_label, LABEL_MAX, True, "label"),
        (checked_organisation_name, LABEL_MAX, False, "organisation_name"),
        (functools.partial(checked_text, "use_case"), TEXT_MAX, False, "use_case"),
        (checked_reason, REASON_MAX, True, "reason"),
    ],
)
def test_a_text_is_stripped_and_bounded(
    check: Callable[[str], str], longest: int, required: bool, field: str
) -> None:
    assert check(f"  {'x' * longest}\n") == "x" * longest
    with pytest.raises(InvalidInputError, match=f"^{field}: ") as too_long:
        check("x" * (longest + 1))
    if required:
        assert str(too_long.value) == f"{field}: must be 1 to {longest} characters"
        with pytest.raises(InvalidInputError, match=f"^{field}: must be 1 to {longest} characters$"):
            check("   ")
    else:
        assert str(too_long.value) == f"{field}: at most {longest} characters"
        assert check("   ") == ""

"""The scholarship campaign a caller may ask for (``campaignYear``), on every version and modality.

A campaign is named by its starting year (2025 for 2025-2026). The Cnous holds
files from the 2021-2022 campaign on; the newest real rule has no upper bound
(an earlier one stopped the year before the current one), so a campaign not yet open is
asked and simply not found. Source: NEWER-ENDPOINTS §3, VALIDATION §6.2.
"""

from __future__ import annotations

from google.protobuf.message import Message

from runtime.errors import ApiError, FieldViolation, invalid_parameters

FIRST_CAMPAIGN = 2021
"""The first campaign the Cnous holds files for."""
_LAST_FOUR_DIGIT_YEAR = 9999
_FIELD = "campaign_year"


def invalid_campaign_year() -> ApiError:
    """The campaign year is not a four-digit year from 2021 (00368)."""
    return invalid_parameters(
        [FieldViolation("campaignYear", f"must be a four-digit year from {FIRST_CAMPAIGN}", "00368")]
    )


def checked_campaign_year(request: Message) -> int | None:
    """The campaign a request of the service asks (its ``campaign_year``), None when it asks none.

    Raises:
        ApiError: INVALID_ARGUMENT 00368.
    """
    field = request.DESCRIPTOR.fields_by_name[_FIELD]
    if not request.HasField(field.name):
        return None
    campaign_year: int = getattr(request, field.name)
    if not FIRST_CAMPAIGN <= campaign_year <= _LAST_FOUR_DIGIT_YEAR:
        raise invalid_campaign_year()
    return campaign_year

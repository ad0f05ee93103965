"""What an upstream adapter decodes a provider's answer into.

Every expected answer, and each of its parts, is an `AnswerShape`: types are
checked strictly (a number sent as a string is a wrong answer, not one to
coerce), required fields must be there, and fields the adapter does not know
are ignored, so that a provider adding one does not stop the service.
`runtime.upstream.UpstreamClient.decode` turns a body of the wrong shape into
the provider's unknown-answer error.
"""

from __future__ import annotations

from typing import Annotated

import pydantic


class AnswerShape(pydantic.BaseModel):
    """The base of every answer shape: strict, frozen, blind to unknown fields."""

    model_config = pydantic.ConfigDict(strict=True, extra="ignore", frozen=True)


IsoDate = Annotated[str, pydantic.StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
"""A date, ``YYYY-MM-DD``."""

IsoDateOrDateTime = Annotated[str, pydantic.StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}(T[0-9:.+\-Z]*)?$")]
"""A date, or an ISO date-time of which the caller keeps the date (its first ten characters)."""

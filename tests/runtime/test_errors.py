"""The error model renders every refusal as a rich status, and behaves as an exception should."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2

from runtime.errors import (
    ApiError,
    ErrorSource,
    FieldViolation,
    invalid_civility,
    provider_timeout,
    revoked_token,
)


def unpack(error: ApiError) -> dict[str, object]:
    found: dict[str, object] = {}
    for detail in error.to_status_proto().details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.LocalizedMessage,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.DESCRIPTOR.name] = message
    return found


def test_provider_error_names_code_and_provider_and_says_when_to_retry() -> None:
    """A provider timeout carries its code, the provider, a French message and a 10 s RetryInfo."""
    error = provider_timeout(ErrorSource("24", "France Travail"))
    details = unpack(error)
    info = details["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert dict(info.metadata) == {
        "code": "24002",
        "provider": "France Travail",
        "title": "Intermédiaire hors-délai",
        "detail": "Temps d\u2019attente d\u2019une réponse du fournisseur de données écoulé.",
    }
    assert info.domain == "particulier.api.gouv.fr"
    retry = details["RetryInfo"]
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 10
    assert error.to_status_proto().code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


def test_validation_error_lists_each_field() -> None:
    """Each violation becomes one BadRequest entry; the status has no RetryInfo."""
    error = invalid_civility([FieldViolation("identite.prenoms", "required"), FieldViolation("x", "y")])
    details = unpack(error)
    bad = details["BadRequest"]
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert [v.field for v in bad.field_violations] == ["identite.prenoms", "x"]
    assert "RetryInfo" not in details


def test_api_error_passes_through_a_context_manager() -> None:
    """Raised inside a context manager, the error arrives intact (Python sets its traceback)."""

    @contextlib.contextmanager
    def guarded() -> Iterator[None]:
        yield

    with pytest.raises(ApiError) as caught, guarded():
        raise revoked_token()
    assert caught.value.code == "00105"

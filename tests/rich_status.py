"""Reading the rich error details of a failed call, as a client of the mesh would."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2


@dataclass
class RichStatus:
    """The decoded details of one error status."""

    code: grpc.StatusCode
    message: str
    error_info: error_details_pb2.ErrorInfo
    localized: error_details_pb2.LocalizedMessage | None
    bad_request: error_details_pb2.BadRequest | None
    retry: error_details_pb2.RetryInfo | None
    quota: error_details_pb2.QuotaFailure | None

    @property
    def api_code(self) -> str:
        """The API Particulier code."""
        return str(self.error_info.metadata["code"])

    @property
    def broken_rules(self) -> list[tuple[str, str]]:
        """The (field, code) of each violation, in order: the request rules the call broke."""
        return [(v.field, v.reason) for v in self.bad_request.field_violations] if self.bad_request else []

    @property
    def violated_fields(self) -> set[str]:
        """The fields the BadRequest names."""
        return {v.field for v in self.bad_request.field_violations} if self.bad_request else set()


def rich_status(error: grpc.aio.AioRpcError) -> RichStatus:
    """Decode grpc-status-details-bin; fails the test if it is missing."""
    raw: object = None
    trailers = cast("Iterable[tuple[str, object]]", error.trailing_metadata() or ())
    for key, value in trailers:
        if key == "grpc-status-details-bin":
            raw = value
    assert isinstance(raw, bytes), "the error carries no rich status"
    status = status_pb2.Status.FromString(raw)
    assert status.code == error.code().value[0]
    found: dict[type, object] = {}
    for detail in status.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.LocalizedMessage,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
            error_details_pb2.QuotaFailure,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind] = message
    info = found.get(error_details_pb2.ErrorInfo)
    assert isinstance(info, error_details_pb2.ErrorInfo), "the error carries no ErrorInfo"
    return RichStatus(
        code=error.code(),
        message=error.details() or "",
        error_info=info,
        localized=found.get(error_details_pb2.LocalizedMessage),
        bad_request=found.get(error_details_pb2.BadRequest),
        retry=found.get(error_details_pb2.RetryInfo),
        quota=found.get(error_details_pb2.QuotaFailure),
    )

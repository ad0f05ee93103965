"""How the client shows answers and errors to a person, or to a script with ``--json``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format, timestamp_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from contract.v3_json import data_object, withheld_of
from runtime.errors import details_of


def answer_of(response: Message) -> dict[str, Any]:
    """A provider answer for scripts: its exact v3 ``data`` object and the paths withheld from it."""
    return {"data": data_object(response), "withheld": withheld_of(response)}


def answer_lines(response: Message, indent: int = 0) -> list[str]:
    """A provider answer for a person: its v3 ``data`` as a tree, then what was withheld, if anything."""
    lines = tree(data_object(response), indent)
    paths = withheld_of(response)
    if paths:
        lines.append(f"{'  ' * indent}(withheld: {', '.join(paths)})")
    return lines


def to_json(message: Message) -> str:
    """The proto3 JSON of a message, with the contract's original field names."""
    return json_format.MessageToJson(message, preserving_proto_field_name=True, ensure_ascii=False, indent=2)


def tree(value: Any, indent: int = 0) -> list[str]:
    """A readable, indented rendering of a JSON value: one ``key: value`` per line, lists as ``-``."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        if not value:
            return [f"{pad}(empty)"]
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(tree(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return lines
    if isinstance(value, list):
        for item in value:
            sub = tree(item, indent + 1)
            first = sub[0].lstrip() if sub else ""
            lines.append(f"{pad}- {first}")
            lines.extend(sub[1:])
        return lines
    return [f"{pad}{_scalar(value)}"]


def _scalar(value: Any) -> str:
    if value is True:
        return "oui"
    if value is False:
        return "non"
    if value is None or value in ([], {}):
        return "-"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A plain text table, columns aligned."""
    body = [list(row) for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *body, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=False)).rstrip()

    return [line(headers), line(["-" * width for width in widths]), *(line(row) for row in body)]


def timestamp(stamp: timestamp_pb2.Timestamp, present: bool) -> str:
    """An ISO 8601 UTC time, or ``-`` when unset."""
    if not present:
        return "-"
    return stamp.ToDatetime(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Problem:
    """An error status as the mesh's error model details it."""

    status: str
    message: str
    code: str = ""
    provider: str = ""
    localized: str = ""
    violations: list[tuple[str, str]] = field(default_factory=list)
    retry_seconds: float | None = None
    detailed: bool = False
    """Whether the status carried the API's details (else it came from the transport)."""

    def line(self) -> str:
        """One line a person reads: status, code, title and detail, fields, retry delay."""
        parts = [self.status]
        if self.code:
            parts.append(self.code)
        parts.append(self.localized or self.message or "(no message)")
        text = " ".join(parts)
        if self.provider:
            text += f" [fournisseur : {self.provider}]"
        if self.violations:
            text += "; champs : " + ", ".join(f"{name} ({why})" for name, why in self.violations)
        if self.retry_seconds is not None:
            text += f"; réessayer dans {self.retry_seconds:g} s"
        return text

    def as_dict(self) -> dict[str, Any]:
        """The problem for ``--json`` output."""
        found: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.code:
            found["code"] = self.code
        if self.provider:
            found["provider"] = self.provider
        if self.localized:
            found["localized_message"] = self.localized
        if self.violations:
            found["field_violations"] = [{"field": f, "description": d} for f, d in self.violations]
        if self.retry_seconds is not None:
            found["retry_delay_seconds"] = self.retry_seconds
        return found


def problem_of(status: str, message: str, details: Iterable[any_pb2.Any]) -> Problem:
    """Read the error model's details (ErrorInfo, LocalizedMessage, BadRequest, RetryInfo)."""
    problem = Problem(status, message)
    for detail in details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            problem.code = info.metadata.get("code", "")
            problem.provider = info.metadata.get("provider", "")
            problem.detailed = True
        elif detail.Is(error_details_pb2.LocalizedMessage.DESCRIPTOR):
            localized = error_details_pb2.LocalizedMessage()
            detail.Unpack(localized)
            problem.localized = localized.message
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            problem.violations = [(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            problem.retry_seconds = retry.retry_delay.ToNanoseconds() / 1e9
    return problem


def problem_of_rpc(error: grpc.RpcError) -> Problem:
    """The problem of a failed call, from its status and trailing metadata."""
    call: Any = error
    code: grpc.StatusCode = call.code()
    message = call.details() or ""
    raw = details_of(call.trailing_metadata())
    details: Sequence[any_pb2.Any] = ()
    if raw is not None:
        try:
            details = status_pb2.Status.FromString(raw).details
        except DecodeError:
            details = ()
    problem = problem_of(code.name, message, details)
    if not problem.retry_seconds:
        for key, value in call.trailing_metadata() or ():
            if key == "retry-after" and isinstance(value, str) and value.isdigit():
                problem.retry_seconds = float(value)
    return problem


def status_name(code: int) -> str:
    """The name of a gRPC status code number."""
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return str(status.name)
    return str(code)


def dumps(value: Any) -> str:
    """JSON for scripts, UTF-8 kept readable."""
    return json.dumps(value, ensure_ascii=False, indent=2)

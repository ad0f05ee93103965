"""The journal's write-ahead file: each row on local disk, fsynced, before its call's answer leaves.

The spool of `gateway.journal.writer` lives in memory, so a process killed (SIGKILL, OOM, a
node's power) would take with it the rows of the answers it had sent and not yet written to
PostgreSQL. With ``JOURNAL_WAL_DIR`` set, every row put in the spool is also appended to a file
of that directory, and its call's answer waits until the file is on disk:

- **group commit**: the rows appended while the event loop runs are written together, and one
  ``fdatasync`` in a thread covers them all; the rows appended meanwhile wait for the next one.
  At most one write is in flight per process; the loop never blocks on the disk.
- **order**: the file holds the rows in spool order, each with its ordinal (its position since
  the process started), and the writer's markers: an *intent* (fsynced) before each
  transaction that writes rows (the ordinals it covers, its first row's chain, position and
  entry id, the chain heads it leaves unsigned whether it commits or not, its backend), a
  *done* after the commit. The writer takes only settled rows (durable, or voided below).
- **segments**: ``<process>-<n>.wal`` files, one process's only, started anew past
  ``JOURNAL_WAL_MAX_BYTES`` / 16; a segment whose every row PostgreSQL holds is deleted once
  another one is current. A process holds ``flock`` on ``<process>.lock`` while it lives.
- **bound**: the live segments take at most ``JOURNAL_WAL_MAX_BYTES``; past it, calls are refused
  (00503, ``gateway_journal_refused_calls_total{reason="wal_full"}``), as with a full spool.
- **disk failure**: the rows of a write that fails are voided (their calls get 00503 instead of
  the answer, their rows say so) and the next write starts a new segment, with a *void* marker
  first; calls are refused for ``JOURNAL_RETRY_SECONDS`` after (``reason="wal_unwritable"``).

Replay (`Orphan`): at start and whenever PostgreSQL comes back, the writer takes over the
segments of every dead process (its lock free) that wrote to the same database (host, port and
database name of ``JOURNAL_DATABASE_URL``). What PostgreSQL holds is a prefix of each process's
rows: up to its last *done*, or up to its last intent's end if that intent's first row is in
PostgreSQL (looked up after its backend is terminated), else up to that intent's start. The
rows after it are written again by the live process (same entry ids: each row once, whoever
writes it), and the dead process's unsigned chain heads are signed, each once PostgreSQL is
found to hold that very hash at that position.

The format is derived from `gateway.journal.chain.Content`'s fields, the one declaration of a
row's columns: a segment's first line names its columns, each row is a JSON array of its
values in that order (uuid in hex, time in microseconds since the epoch), so a column added
later flows through, and a segment written before it replays with the column's default (None
for a nullable one). Each line is ``<crc32 hex> <kind><json>``; a torn or corrupt line ends
what is read of its segment (a line not fsynced was never acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import operator
import os
import time
import types
import typing
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg.conninfo
import structlog

from gateway.journal.chain import CONTENT_COLUMNS, Content, Head, microseconds

_LOG = structlog.get_logger(__name__)

FORMAT = 1
"""The segments' format version, in each segment's first line."""
SEGMENTS_PER_BOUND = 16
"""A segment is closed past ``JOURNAL_WAL_MAX_BYTES`` / this: the bound holds a few of them."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_HEADER, _ROW, _INTENT, _DONE, _VOID = b"H", b"R", b"I", b"D", b"V"


class Row(Protocol):
    """A row put in the write-ahead file: its content, and what to do when it cannot be kept."""

    def content(self) -> Content:
        """The row's content (the same every time it is asked, until `void`)."""

    def void(self) -> None:
        """The row could not be made durable: its call gets the journal's refusal, and the row says so."""


# -- the columns, from Content's declaration ------------------------------------------------------


def _same(value: Any) -> Any:
    return value


def _codec(hint: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """How a value of type ``hint`` goes to JSON and back (None passed through for ``X | None``)."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (inner,) = [arg for arg in args if arg is not type(None)]
        encode, decode = _codec(inner)
        return (lambda v: None if v is None else encode(v)), (lambda v: None if v is None else decode(v))
    if hint is uuid.UUID:
        return (lambda v: v.hex), uuid.UUID
    if hint is dt.datetime:
        return microseconds, (lambda v: _EPOCH + dt.timedelta(microseconds=v))
    if hint in (str, int, float, bool):
        return _same, _same
    raise TypeError(f"no write-ahead encoding for a journal column of type {hint!r}")


_HINTS = typing.get_type_hints(Content)
_CODECS = {column: _codec(_HINTS[column]) for column in CONTENT_COLUMNS}
_VALUES = operator.attrgetter(*CONTENT_COLUMNS)
_CONVERTED = tuple(
    (index, _CODECS[column][0])
    for index, column in enumerate(CONTENT_COLUMNS)
    if _CODECS[column][0] is not _same
)
"""The columns JSON does not take as they are (a row is encoded on every call's path: the rest are copied)."""
_DEFAULTS: dict[str, Any] = {}
for _field in dataclasses.fields(Content):
    if _field.default is not dataclasses.MISSING:
        _DEFAULTS[_field.name] = _field.default
    elif type(None) in typing.get_args(_HINTS[_field.name]):
        _DEFAULTS[_field.name] = None


def encode_row(content: Content) -> list[Any]:
    """The content's values in `CONTENT_COLUMNS` order, as JSON takes them."""
    values = list(_VALUES(content))
    for index, encode in _CONVERTED:
        values[index] = encode(values[index])
    return values


def decoder(columns: list[str]) -> Callable[[list[Any]], Content]:
    """Reads rows written with ``columns`` (a segment's header) back into `Content`.

    Raises:
        ValueError: a column of `Content` is missing and has no default, or ``columns`` names one it lacks.
    """
    unknown = set(columns) - set(CONTENT_COLUMNS)
    missing = set(CONTENT_COLUMNS) - set(columns) - set(_DEFAULTS)
    if unknown or missing:
        raise ValueError(f"segment columns unknown {sorted(unknown)}, missing {sorted(missing)}")
    decoders = [_CODECS[column][1] for column in columns]
    absent = {column: _DEFAULTS[column] for column in CONTENT_COLUMNS if column not in columns}

    def decode(values: list[Any]) -> Content:
        if len(values) != len(columns):
            raise ValueError("a row of the wrong width")
        named = {column: read(value) for column, read, value in zip(columns, decoders, values, strict=True)}
        return Content(**named, **absent)

    return decode


def database_of(url: str) -> str:
    """Which database a ``postgresql://`` URL names (host, port, database), as a short digest.

    Segments are replayed only into the database they were written for; the password and
    options play no part.
    """
    info = psycopg.conninfo.conninfo_to_dict(url)
    named = "\0".join(str(info.get(key, "")) for key in ("host", "hostaddr", "port", "dbname"))
    return hashlib.sha256(named.encode()).hexdigest()[:32]


_JSON = json.JSONEncoder(separators=(",", ":"))
"""One encoder for every line: ``json.dumps`` with options builds one per call."""


def _line(kind: bytes, body: object) -> bytes:
    payload = kind + _JSON.encode(body).encode()
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _lines(data: bytes) -> Iterator[tuple[bytes, Any]]:
    """The intact lines of a segment, in order, up to the first torn or corrupt one."""
    for raw in data.split(b"\n")[:-1]:  # the last piece is "" or a torn line
        crc, _, payload = raw.partition(b" ")
        if len(crc) != 8 or not payload or crc != b"%08x" % zlib.crc32(payload):
            return
        yield payload[:1], json.loads(payload[1:])


def _heads(heads: dict[Any, Head]) -> dict[str, list[Any]]:
    return {head.chain_id.hex: [head.month.isoformat(), head.seq, head.hash.hex()] for head in heads.values()}


def _read_heads(body: dict[str, list[Any]]) -> dict[uuid.UUID, Head]:
    return {
        uuid.UUID(chain): Head(uuid.UUID(chain), dt.date.fromisoformat(month), seq, bytes.fromhex(digest))
        for chain, (month, seq, digest) in body.items()
    }


# -- the live process's file ----------------------------------------------------------------------


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    first: int
    """Ordinal of its first row (the rows before it are in earlier segments)."""
    size: int = 0
    fd: int = -1


@dataclass(slots=True)
class _Group:
    """What one write and fsync cover."""

    data: list[bytes] = field(default_factory=list)
    size: int = 0
    """The bytes of ``data``."""
    rows: list[Row] = field(default_factory=list)
    done: asyncio.Future[None] | None = None

    def add(self, line: bytes) -> None:
        self.data.append(line)
        self.size += len(line)


@dataclass(frozen=True, slots=True)
class Intent:
    """The writer is about to write ordinals ``start`` to ``end`` (excluded) in one transaction."""

    start: int
    end: int
    first: tuple[uuid.UUID, int, uuid.UUID]
    """Its first row's chain, position and entry id."""
    unsigned: dict[Any, Head]
    """The committed, unsigned heads should it not commit."""
    then: dict[Any, Head]
    """The unsigned heads once it commits."""
    backend: int
    """The PostgreSQL backend that runs it."""


class WriteAhead:
    """One process's write-ahead file (see the module's docstring).

    Args:
        directory: ``JOURNAL_WAL_DIR``, created if missing; on local disk, kept across a
            container's restart.
        database: `database_of` the journal's URL.
        max_bytes: ``JOURNAL_WAL_MAX_BYTES``: the most the live segments may take.
        retry_seconds: How long calls are refused after a failed write.
        settled: Called (in the loop) after each write, once `settled` has moved on.
    """

    def __init__(
        self,
        directory: Path,
        database: str,
        *,
        max_bytes: int,
        retry_seconds: float,
        settled: Callable[[], None] = lambda: None,
    ) -> None:
        self.directory = directory
        self.database = database
        self.process = ""
        """This process's name in the directory, drawn by `open` (in the process that writes)."""
        self._max_bytes = max_bytes
        self._segment_bytes = max(1, max_bytes // SEGMENTS_PER_BOUND)
        self._retry_seconds = retry_seconds
        self._on_settled = settled
        self._lock_fd = -1
        self._segments: list[_Segment] = []
        self._next_number = 0
        self._group = _Group()
        self._flushing: asyncio.Task[None] | None = None
        self._last: asyncio.Future[None] | None = None
        """The future of the last group scheduled."""
        self._broken = False
        """The last write failed: the next starts a new segment."""
        self._voids: list[tuple[int, int]] = []
        """Voided ordinal ranges not yet recorded in a segment."""
        self._failed_at: float | None = None
        self.appended = 0
        """Ordinal of the next row."""
        self.settled = 0
        """Every row before this ordinal is durable or voided."""
        self.committed = 0
        """Every row before this ordinal is in PostgreSQL."""

    # -- life ----------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory and take this process's lock; blocking (call it in a thread).

        Raises:
            OSError: the directory cannot be written.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = uuid.uuid4().hex
        self._lock_fd = os.open(self.directory / f"{self.process}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    async def drain(self) -> None:
        """Wait until everything appended is settled."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)

    def close(self) -> None:
        """Close the files (blocking); delete them if PostgreSQL holds every row, else keep them to replay."""
        empty = self.committed == self.appended
        for segment in self._segments:
            if segment.fd >= 0:
                os.close(segment.fd)
            if empty:
                segment.path.unlink(missing_ok=True)
        self._segments = []
        if self._lock_fd >= 0:
            if empty:
                (self.directory / f"{self.process}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = -1

    @property
    def size(self) -> int:
        """What the live segments take, and what waits to be written."""
        return sum(segment.size for segment in self._segments) + self._group.size

    def full(self) -> bool:
        """The live segments have reached ``JOURNAL_WAL_MAX_BYTES``."""
        return self.size >= self._max_bytes

    def unwritable(self) -> bool:
        """A write failed less than ``JOURNAL_RETRY_SECONDS`` ago."""
        failed = self._failed_at
        return failed is not None and time.monotonic() - failed < self._retry_seconds

    # -- appending -----------------------------------------------------------------------------

    def append(self, row: Row) -> asyncio.Future[None]:
        """Append a row (no I/O); the future is done once the row is durable or voided (never fails)."""
        self.appended += 1
        group = self._group
        group.rows.append(row)
        group.add(_line(_ROW, encode_row(row.content())))
        return self._schedule(group)

    async def intend(self, intent: Intent) -> None:
        """Record an intent and wait until it is durable.

        Raises:
            OSError: it could not be written: the transaction must not run.
        """
        line = {
            "start": intent.start,
            "end": intent.end,
            "first": [intent.first[0].hex, intent.first[1], intent.first[2].hex],
            "unsigned": _heads(intent.unsigned),
            "then": _heads(intent.then),
            "backend": intent.backend,
            "at": time.time(),
        }
        group = self._group
        group.add(_line(_INTENT, line))
        failed_before = self._failed_at
        await self._schedule(group)
        if self._failed_at != failed_before:
            raise OSError("the journal's write-ahead file could not record an intent")

    def pending(self) -> asyncio.Future[None]:
        """Done once everything appended so far is durable or voided."""
        if self._group.data:
            return self._schedule(self._group)
        if self._last is None:
            self._last = asyncio.get_running_loop().create_future()
            self._last.set_result(None)
        return self._last

    def done(self, end: int) -> list[Path]:
        """PostgreSQL holds every row before ordinal ``end``; returns the segments now deletable.

        The *done* marker goes with the next write (no wait: replay looks the intent up without it).
        """
        self.committed = end
        self._group.add(_line(_DONE, {"end": end}))
        self._schedule(self._group)
        current = self._segments[-1] if self._segments else None
        old = []
        while self._segments and self._segments[0] is not current:
            following = self._segments[1].first
            if following > end:
                break
            old.append(self._segments.pop(0))
        for segment in old:
            if segment.fd >= 0:
                os.close(segment.fd)
        return [segment.path for segment in old]

    def _schedule(self, group: _Group) -> asyncio.Future[None]:
        if group.done is None:
            group.done = self._last = asyncio.get_running_loop().create_future()
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="journal-wal")
        return group.done

    async def _flush(self) -> None:
        try:
            while self._group.data:
                group, self._group = self._group, _Group()
                ended = self.appended
                try:
                    await asyncio.to_thread(self._write, group.data, ended - len(group.rows))
                except OSError as exc:
                    self._failed(group, ended, exc)
                self.settled = ended
                if group.done is not None and not group.done.done():
                    group.done.set_result(None)
                self._on_settled()
        finally:
            self._flushing = None

    def _failed(self, group: _Group, end: int, exc: OSError) -> None:
        _LOG.error("journal_wal_write_failed", error=type(exc).__name__, rows=len(group.rows))
        self._failed_at = time.monotonic()
        self._broken = True
        if group.rows:
            self._voids.append((end - len(group.rows), end))
        for row in group.rows:
            row.void()

    # -- in the thread -------------------------------------------------------------------------

    def _write(self, data: list[bytes], first: int) -> None:
        """Write and fsync ``data`` (its first row being ordinal ``first``), in a new segment if due."""
        current = self._segments[-1] if self._segments else None
        if current is None or self._broken or current.size >= self._segment_bytes:
            current = self._start_segment(first)
        body = b"".join(data)
        written = 0
        while written < len(body):
            written += os.write(current.fd, body[written:])
        current.size += len(body)
        os.fdatasync(current.fd)

    def _start_segment(self, first: int) -> _Segment:
        previous = self._segments[-1] if self._segments else None
        if previous is not None and not self._broken:
            os.fdatasync(previous.fd)  # its done markers, before a later segment's
        number = self._next_number
        path = self.directory / f"{self.process}-{number:08d}.wal"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        segment = _Segment(number, path, first, fd=fd)
        header = _line(
            _HEADER,
            {
                "format": FORMAT,
                "process": self.process,
                "database": self.database,
                "first": first,
                "columns": list(CONTENT_COLUMNS),
            },
        )
        voids = b"".join(_line(_VOID, {"start": start, "end": end}) for start, end in self._voids)
        os.write(fd, header + voids)
        segment.size = len(header) + len(voids)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._next_number += 1
        self._segments.append(segment)
        self._voids = []
        self._broken = False
        return segment

    # -- dead processes' files -----------------------------------------------------------------

    def orphans(self) -> list[Orphan]:
        """Take over the files of the dead processes that wrote to this database (blocking).

        Each is locked until `Orphan.release`; a process alive (its lock held) is left alone,
        and so are the files of another database.
        """
        found = []
        for lock in sorted(self.directory.glob("*.lock")):
            process = lock.stem
            if process == self.process:
                continue
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                orphan = Orphan.read(self.directory, process, fd)
            except (ValueError, KeyError, TypeError) as exc:
                # Written by a version of another format, or damaged: kept for an operator to look at.
                _LOG.error("journal_wal_unreadable", process=process, error=type(exc).__name__)
                os.close(fd)
                continue
            if orphan.database not in (None, self.database):
                orphan.unlock()
                continue
            found.append(orphan)
        return found


# -- replay ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Orphan:
    """The files of a dead process, locked: its rows in order, its markers."""

    directory: Path
    process: str
    lock_fd: int
    paths: list[Path]
    database: str | None = None
    rows: list[tuple[int, Content]] = field(default_factory=list)
    intent: Intent | None = None
    """Its last intent, if no *done* follows it."""
    intent_at: float = 0.0
    committed: int = 0
    """Every row before this ordinal is known to be in PostgreSQL."""
    unsigned: dict[Any, Head] = field(default_factory=dict)
    """Its committed, unsigned heads as of its last *done*."""
    voids: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def read(cls, directory: Path, process: str, lock_fd: int) -> Orphan:
        """Read a dead process's segments, in order (blocking)."""
        paths = sorted(directory.glob(f"{process}-*.wal"))
        orphan = cls(directory, process, lock_fd, paths)
        last_intent: dict[str, Any] | None = None
        for number, path in enumerate(paths):
            ordinal, decode = 0, None
            for kind, body in _lines(path.read_bytes()):
                if kind == _HEADER:
                    orphan.database = body["database"]
                    ordinal, decode = body["first"], decoder(body["columns"])
                    if number == 0:  # the rows of the segments deleted before it were all committed
                        orphan.committed = max(orphan.committed, ordinal)
                elif kind == _ROW and decode is not None:
                    orphan.rows.append((ordinal, decode(body)))
                    ordinal += 1
                elif kind == _INTENT:
                    last_intent = body
                elif kind == _DONE:
                    orphan.committed = max(orphan.committed, body["end"])
                    if last_intent is not None and last_intent["end"] == body["end"]:
                        orphan.unsigned = _read_heads(last_intent["then"])
                        last_intent = None
                elif kind == _VOID:
                    orphan.voids.append((body["start"], body["end"]))
        if last_intent is not None and last_intent["end"] > orphan.committed:
            chain, seq, entry = last_intent["first"]
            orphan.intent = Intent(
                last_intent["start"],
                last_intent["end"],
                (uuid.UUID(chain), seq, uuid.UUID(entry)),
                _read_heads(last_intent["unsigned"]),
                _read_heads(last_intent["then"]),
                last_intent["backend"],
            )
            orphan.intent_at = last_intent["at"]
        return orphan

    def settle(self, landed: bool) -> tuple[list[Content], dict[Any, Head]]:
        """The rows PostgreSQL lacks and the heads left to sign, given whether its last intent landed."""
        committed, heads = self.committed, self.unsigned
        if self.intent is not None:
            committed = self.intent.end if landed else self.intent.start
            heads = self.intent.then if landed else self.intent.unsigned
        voided = self.voids
        rows = [
            content
            for ordinal, content in self.rows
            if ordinal >= committed and not any(start <= ordinal < end for start, end in voided)
        ]
        return rows, heads

    def release(self) -> None:
        """Delete its files (blocking): their rows are in PostgreSQL or in a live process's file."""
        for path in self.paths:
            path.unlink(missing_ok=True)
        (self.directory / f"{self.process}.lock").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)

    def unlock(self) -> None:
        """Leave its files as they are."""
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)

"""Stream NDJSON inputs as numbered Arrow batches of lines, hashing the bytes as stored.

A line ends at LF (a CR before it is dropped); text after the last LF is a line too. Every
line is a record, a blank one included (the rules reject it), so counts match the manifest's.
A UTF-8 byte order mark at the start of a file is not part of its first line (the hash still
covers the bytes as stored).
Splitting, numbering and UTF-8 checks run in Arrow's C++ kernels: no Python work per line
unless a chunk holds invalid UTF-8.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from company_activity.errors import DataError

#: Bytes read per chunk; one chunk becomes one batch (memory stays flat however big a day).
CHUNK_BYTES = 8 * 1024 * 1024

BATCH_SCHEMA = pa.schema(
    [
        pa.field("src_line_number", pa.int32()),
        pa.field("raw", pa.string()),
        pa.field("pre_reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class InputFile:
    """One NDJSON input: its provenance name and how to open its bytes as stored."""

    name: str
    open: Callable[[], BinaryIO]
    gzipped: bool = False
    expected_records: int | None = None
    expected_sha256: str | None = None


class HashingReader:
    """Wrap a binary stream: every byte read updates the hashers and the byte count."""

    def __init__(self, raw: IO[bytes], *hashers: Any) -> None:
        self.raw = raw
        self.hashers = hashers
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if data:
            self.bytes += len(data)
            for hasher in self.hashers:
                hasher.update(data)
        return data

    # GzipFile asks for these of its file object.
    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()


class FileReader:
    """Read one input as batches; lines, bytes and sha256 are complete once batches() ends.

    `overall` is the load's running sha256, fed the same stored bytes in order.
    """

    def __init__(self, source: InputFile, overall: Any, chunk_bytes: int | None = None) -> None:
        self.source = source
        self.overall = overall
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self.lines = 0
        self.bytes = 0
        self.sha256 = ""

    def batches(self) -> Iterator[pa.Table]:
        own = hashlib.sha256()
        with self.source.open() as stored:
            hashing = HashingReader(stored, own, self.overall)
            stream: IO[bytes] = hashing  # type: ignore[assignment]
            if self.source.gzipped:
                stream = gzip.GzipFile(fileobj=hashing, mode="rb")  # type: ignore[call-overload]
            try:
                for batch in line_batches(stream, self.chunk_bytes):
                    self.lines += batch.num_rows
                    yield batch
            except (OSError, EOFError) as exc:  # a damaged gzip stream
                raise DataError(f"cannot read {self.source.name}: {exc}") from None
            # Drain what the decompressor left unread (gzip trailer) so the hash covers it all.
            while hashing.read(self.chunk_bytes):
                pass
            self.bytes = hashing.bytes
        self.sha256 = own.hexdigest()


_BOM = b"\xef\xbb\xbf"


def line_batches(stream: IO[bytes], chunk_bytes: int) -> Iterator[pa.Table]:
    """Split a byte stream into batches of numbered lines (BATCH_SCHEMA)."""
    carry = _skip_bom(stream)
    next_line = 1
    while chunk := stream.read(chunk_bytes):
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data  # one long line: keep reading until it ends
            continue
        carry = data[cut + 1 :]
        batch = _batch(data[:cut], next_line)
        next_line += batch.num_rows
        yield batch
    if carry:
        yield _batch(carry, next_line)


def _skip_bom(stream: IO[bytes]) -> bytes:
    """Read the stream's first bytes; return them without a leading UTF-8 BOM."""
    head = b""
    while len(head) < len(_BOM) and (more := stream.read(len(_BOM) - len(head))):
        head += more
    return head[len(_BOM) :] if head == _BOM else head


def _batch(body: bytes, first_line: int) -> pa.Table:
    """Lines of `body` (LF-separated, no final LF) as a numbered batch."""
    pieces = pc.split_pattern(pa.array([body], pa.binary()), b"\n").flatten()
    count = len(pieces)
    try:
        text = pieces.cast(pa.string())
        pre_reason = pa.nulls(count, pa.string())
    except pa.ArrowInvalid:
        text, pre_reason = _decode_each(pieces)
    text = pc.utf8_rtrim(text, characters="\r")
    numbers = pc.cumulative_sum(pa.nulls(count, pa.int32()).fill_null(1), start=first_line - 1)
    return pa.Table.from_arrays([numbers.cast(pa.int32()), text, pre_reason], schema=BATCH_SCHEMA)


def _decode_each(pieces: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The slow path for a chunk holding invalid UTF-8: decode line by line."""
    texts: list[str] = []
    reasons: list[str | None] = []
    for raw in pieces.to_pylist():
        try:
            texts.append(raw.decode("utf-8"))
            reasons.append(None)
        except UnicodeDecodeError as exc:
            texts.append(raw.decode("utf-8", errors="replace"))
            reasons.append(f"not valid UTF-8 (byte {exc.start + 1})")
    return pa.array(texts, pa.string()), pa.array(reasons, pa.string())

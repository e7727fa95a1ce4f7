"""The CSV reader's fast paths give exactly what the csv module gives.

A plain export (no quotes, NULs or stray CRs) is split in Arrow's kernels and a plain line
is split without the csv module (docs/performance.md, round 3), and a file in another encoding
that decodes cleanly is transcoded to UTF-8 first; all must yield the same header, records,
fields and reasons as the csv module's line-by-line path over the file's own encoding, which
these tests force by disabling the fast paths. The inputs vary the delimiter (`,` `;` tab `|`,
detected or forced), the encoding (UTF-8 with or without a BOM, UTF-16 with a BOM, cp1252),
short and long records, and bytes the encoding cannot decode.
"""

from __future__ import annotations

import io
import random
from typing import Any

import pyarrow as pa
import pytest

from company_activity.errors import DataError
from company_activity.staging import csvfile
from company_activity.staging.csvformat import CrmFormat

HEADERS = (
    "company_id,company_name,country,industry_tag,last_contact_at",
    " Last_Contact_At , COMPANY_ID,extra,company_name,country,industry_tag",
    "company_id,company_name,country,industry_tag,last_contact_at,",
    "company_id,company_name",
    "",
)
PIECES = ("a", "Zb", " ", ",", ",,", "\t", "é", "日本", "\u2003", "\x1c", "\xa0", "1", "-", ":")
DELIMITERS = (",", ";", "\t", "|")
CP1252 = CrmFormat(encoding="cp1252")


def _read(data: bytes, fmt: CrmFormat | None = None) -> tuple[Any, ...]:
    try:
        header, batches = csvfile.record_batches(io.BytesIO(data), "f.csv", fmt)
        tables = list(batches)
    except DataError as exc:
        return ("error", str(exc))
    rows = pa.concat_tables(tables).to_pylist() if tables else []
    return ("ok", header, [t.num_rows for t in tables], rows)


def _slow(
    monkeypatch: pytest.MonkeyPatch, data: bytes, fmt: CrmFormat | None = None
) -> tuple[Any, ...]:
    with monkeypatch.context() as patched:
        patched.setattr(csvfile, "_plain_lines", lambda *_args: None)
        patched.setattr(csvfile, "_simple_fields", lambda *_args: None)
        patched.setattr(csvfile, "_transcoded", lambda body, codec: (body, codec))
        return _read(data, fmt)


def _inputs(count: int) -> list[bytes]:
    rng = random.Random(20251126)
    inputs = []
    for _ in range(count):
        delimiter = rng.choice(DELIMITERS)
        pieces = (*PIECES, delimiter, delimiter * 2)
        lines = [rng.choice(HEADERS).replace(",", delimiter)]
        for _ in range(rng.randint(0, 8)):
            lines.append("".join(rng.choice(pieces) for _ in range(rng.randint(0, 20))))
        ending = rng.choice(("\n", "\r\n"))
        text = ending.join(lines) + rng.choice(("", ending))
        if rng.random() < 0.1:
            text = "\n" + text
        if rng.random() < 0.1:
            text = f"sep={rng.choice(DELIMITERS)}{ending}" + text  # Excel's delimiter line
        if rng.random() < 0.1:
            text = text.replace("a", '"', 1)  # a quote: the csv module's path
        if rng.random() < 0.1:
            text = text.replace("b", "\r", 1)  # a stray CR: the csv module's path
        if rng.random() < 0.05:
            text = text.replace("\r\n", "\n").replace("\n", "\r")  # CR endings (old Mac)
        data = text.encode()
        if rng.random() < 0.1:
            data = b"\xef\xbb\xbf" + data
        if rng.random() < 0.05:
            data = data.replace("é".encode(), b"\xe9", 1)  # invalid UTF-8
        inputs.append(data)
    return inputs


@pytest.mark.parametrize("batch_records", [2, 50_000])
def test_fast_paths_match_the_csv_module(
    monkeypatch: pytest.MonkeyPatch, batch_records: int
) -> None:
    monkeypatch.setattr(csvfile, "BATCH_RECORDS", batch_records)
    for data in _inputs(400):
        assert _read(data) == _slow(monkeypatch, data), data


def _encoded(rng: random.Random, data: bytes) -> tuple[bytes, CrmFormat | None]:
    """The same text in UTF-16 (with a BOM) or cp1252, sometimes with a byte it cannot hold."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if rng.random() < 0.5:
        encoded = text.encode(rng.choice(("utf-16", "utf-16-be")))
        if not encoded.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoded = b"\xfe\xff" + encoded
        if rng.random() < 0.2 and len(encoded) > 6:
            at = rng.randrange(2, len(encoded) - 2, 2)
            surrogate = b"\xd8\x00" if encoded.startswith(b"\xfe\xff") else b"\x00\xd8"
            encoded = encoded[:at] + surrogate + encoded[at:]  # a lone surrogate
        if rng.random() < 0.1:
            encoded = encoded[:-1]  # an odd byte at the end
        return encoded, None
    encoded = text.encode("cp1252", errors="replace")
    if rng.random() < 0.2 and encoded:
        at = rng.randrange(len(encoded))
        encoded = encoded[:at] + b"\x81" + encoded[at:]  # no character in cp1252
    return encoded, CP1252


@pytest.mark.parametrize("batch_records", [3, 50_000])
def test_other_encodings_match_the_csv_module_over_their_own_lines(
    monkeypatch: pytest.MonkeyPatch, batch_records: int
) -> None:
    monkeypatch.setattr(csvfile, "BATCH_RECORDS", batch_records)
    rng = random.Random(20251130)
    for utf8 in _inputs(200):
        data, fmt = _encoded(rng, utf8)
        assert _read(data, fmt) == _slow(monkeypatch, data, fmt), data


@pytest.mark.parametrize("delimiter", DELIMITERS)
def test_a_forced_delimiter_gives_the_same_records_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, delimiter: str
) -> None:
    fmt = CrmFormat(delimiter=delimiter)
    for data in _inputs(100):
        assert _read(data, fmt) == _slow(monkeypatch, data, fmt), data


def test_a_plain_export_takes_the_arrow_path() -> None:
    data = (
        b"\xef\xbb\xbfcompany_id, company_name,country,industry_tag,last_contact_at\r\n"
        b" c1 , Acme,DE,retail,2025-01-02\r\n"
        b"\r\n"
        b"c2,Beta\r\n"
        b"c3,Gamma,FR,media,2025-01-03,extra\r\n"
    )
    assert csvfile._plain_lines(data.removeprefix(b"\xef\xbb\xbf")) is not None
    _kind, header, _sizes, rows = _read(data)
    assert (header.width, header.line) == (5, 1)
    assert [(r["src_line_number"], r["n_fields"], r["f_company_id"]) for r in rows] == [
        (2, 5, "c1 "),
        (4, 2, "c2"),
        (5, 6, "c3"),
    ]
    assert rows[1]["f_country"] is None and rows[0]["f_company_name"] == "Acme"


@pytest.mark.parametrize(
    "data",
    [
        b'id,"name"\n',  # a quote
        b"a,b\x00\n",  # a NUL
        b"a\rb\n",  # a CR outside a CRLF ending
        b"a,\xe9\n",  # not UTF-8
        b"\n \n",  # blank only
        b"",
    ],
)
def test_other_files_take_the_csv_module_path(data: bytes) -> None:
    assert csvfile._plain_lines(data) is None


def test_a_line_over_the_field_limit_takes_the_csv_module_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    long = b"company_id,company_name,country,industry_tag,last_contact_at\n" + b"x" * 200 + b"\n"
    monkeypatch.setattr(csvfile.csv, "field_size_limit", lambda: 100)
    assert csvfile._plain_lines(long) is None
    assert csvfile._simple_fields("x" * 200 + "\n") is None

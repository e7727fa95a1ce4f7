"""API pages: what one page of the usage API holds, and how its body is split into items.

A page is `{"items": [...], "next_page": ...}` (docs/api_contract.md). Each item is kept
verbatim: the exact text the API sent for it (line breaks inside an item become spaces so that
it fits on one NDJSON line), so the raw zone can always show the original. Checking the items'
fields is staging's job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

from company_activity.errors import DataError


@dataclass(frozen=True)
class Page:
    """One page of a day: its 1-based position and its items as verbatim JSON lines."""

    number: int
    lines: list[bytes]


@dataclass
class FetchStats:
    """Counters for one day's fetch (pages received, retries made)."""

    pages: int = 0
    retries: int = 0


_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")
_WS_CHARS = frozenset(" \t\n\r")
_ITEM_ENDS = frozenset(",]")


class PageNotJson(DataError):
    """The body is not JSON at all (empty, not UTF-8, an HTML page, cut short).

    From the API this is usually a proxy's or a gateway's page, or a body cut in transit:
    the API client treats it as transient and retries.
    """


class _Malformed(ValueError):
    """The body is JSON but not a page of the contract."""


def parse_page(body: bytes, day: date, number: int) -> tuple[list[bytes], int | str | None]:
    """Split a page into its items' verbatim text and its next_page.

    Raises PageNotJson when the body is not JSON (empty, not UTF-8 text, not JSON syntax), and
    DataError when it has no `items` list, an item is not an object, or next_page is neither a
    number, a string nor null; both name the date and page. A UTF-8 BOM is not part of the body.
    """
    where = f"date {day} page {number}"
    try:
        text = body.decode("utf-8-sig")
        if not text.strip():
            raise PageNotJson(f"malformed API response for {where}: the body is empty")
        items, next_page = _scan_page(text)
    except UnicodeDecodeError:
        raise PageNotJson(f"malformed API response for {where}: not UTF-8 text") from None
    except _Malformed as exc:
        raise DataError(
            f"malformed API response for {where}: {exc}. Nothing was stored for "
            "that date; report it to the API's owners and re-run it."
        ) from None
    except json.JSONDecodeError as exc:
        raise PageNotJson(
            f"malformed API response for {where}: not JSON ({exc.msg} at character {exc.pos}). "
            "Nothing was stored for that date; re-run it, and report it if it persists."
        ) from None
    # Raw line breaks inside an item can only be whitespace between tokens (JSON escapes them
    # in strings), so spaces keep the item's meaning and put it on one line.
    if "\n" in text or "\r" in text:  # rare in the items of a compact page: look only then
        items = [item.replace("\r", " ").replace("\n", " ") for item in items]
    lines = [item.encode("utf-8") for item in items]
    if next_page is not None and (
        isinstance(next_page, bool)
        or not isinstance(next_page, int | str)
        or (isinstance(next_page, str) and not next_page)
    ):
        raise DataError(
            f"malformed API response for {where}: next_page must be a page number, a cursor "
            f"or null, got {str(next_page)[:80]!r}. Nothing was stored for that date."
        )
    return lines, next_page


def _skip(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _expect(text: str, pos: int, chars: str) -> str:
    found = text[pos : pos + 1]
    if not found or found not in chars:
        raise json.JSONDecodeError(f"expected one of {chars!r}", text, pos)
    return found


def _scan_page(text: str) -> tuple[list[str], object]:
    """Walk the top-level object, keeping each item's source text (json parses the values)."""
    pos = _skip(text, 0)
    if text[pos : pos + 1] != "{":
        _DECODER.decode(text)  # raises JSONDecodeError if it is not JSON at all
        raise _Malformed("the body is not a JSON object")
    pos = _skip(text, pos + 1)
    items: list[str] | None = None
    items_bad = False
    next_page: object = None
    if text[pos : pos + 1] == "}":
        pos += 1
    else:
        while True:
            _expect(text, pos, '"')
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            _expect(text, pos, ":")
            pos = _skip(text, pos + 1)
            if key == "items" and text[pos : pos + 1] == "[":
                items, pos = _scan_items(text, pos)
                items_bad = False
            else:
                value, pos = _DECODER.raw_decode(text, pos)
                if key == "items":
                    items, items_bad = None, True
                elif key == "next_page":
                    next_page = value
            pos = _skip(text, pos)
            if _expect(text, pos, ",}") == "}":
                pos += 1
                break
            pos = _skip(text, pos + 1)
    pos = _skip(text, pos)
    if pos != len(text):
        raise json.JSONDecodeError("extra data after the page", text, pos)
    if items is None:
        raise _Malformed("'items' is not a list" if items_bad else "no 'items' list")
    return items, next_page


def _scan_items(text: str, pos: int) -> tuple[list[str], int]:
    """The items of the list at text[pos] ('['), each as its source text, and the end.

    Called for every item of every page: whitespace is looked for only where the next
    character is not the one a compact page has there.
    """
    spans: list[str] = []
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "]":
        return spans, pos + 1
    while True:
        value, end = _DECODER.raw_decode(text, pos)
        if type(value) is not dict:
            raise _Malformed(f"item {len(spans) + 1} is not a JSON object")
        spans.append(text[pos:end])
        after = text[end : end + 1]
        if after not in _ITEM_ENDS:
            end = _skip(text, end)
            after = _expect(text, end, ",]")
        if after == "]":
            return spans, end + 1
        pos = end + 1
        if text[pos : pos + 1] in _WS_CHARS:
            pos = _skip(text, pos)

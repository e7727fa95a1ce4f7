"""The one canonical form of a company id, written once as DuckDB SQL.

Canonical: trimmed of every Unicode space at both ends (the White_Space property: tab, LF, CR,
no-break space U+00A0, figure space U+2007, narrow no-break space U+202F, ideographic space
U+3000 and the rest), lower case, then Unicode NFC (so a precomposed and a decomposed accent are
one id). An id that still holds a control character (Unicode category Cc: NUL, ESC...), a line
or paragraph separator (U+2028, U+2029: a line break, like LF), an invisible format character
(category Cf: zero-width space U+200B, U+FEFF, soft hyphen...) or another invisible one (the
rest of Default_Ignorable_Code_Point: U+034F, Hangul fillers, variation selectors...) is not an
id anyone can type or see: staging quarantines it with a reason naming the character.

Every reader uses this definition: the staging rules of both sources (on DuckDB, and for Azure
SQL in a private DuckDB), and canonical_ids() for the Python checks (validation). Python's own
str.lower() differs from DuckDB's lower() for a few letters (a final sigma, a dotted capital I),
so the Python side runs the same SQL rather than a twin.
Sources: Unicode PropList.txt (White_Space), DerivedCoreProperties.txt
(Default_Ignorable_Code_Point), UAX #15 (NFC), Unicode general categories.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

#: Unicode's White_Space code points (PropList.txt), trimmed from ids and attributes.
WHITE_SPACE = "".join(
    chr(code)
    for code in (
        *range(0x09, 0x0E),  # tab, LF, VT, FF, CR
        0x20,
        0x85,  # next line
        0xA0,  # no-break space
        0x1680,
        *range(0x2000, 0x200B),  # en quad .. hair space (figure space U+2007 among them)
        0x2028,
        0x2029,
        0x202F,  # narrow no-break space
        0x205F,
        0x3000,  # ideographic space
    )
)

#: Invisible code points outside category Cf: the rest of Unicode's Default_Ignorable_Code_Point
#: (DerivedCoreProperties.txt): combining grapheme joiner, Hangul fillers, Khmer inherent
#: vowels, Mongolian and other variation selectors, and the reserved ignorable ranges.
_IGNORABLE = (
    r"\x{034F}\x{115F}-\x{1160}\x{17B4}-\x{17B5}\x{180B}-\x{180F}\x{2065}\x{3164}"
    r"\x{FE00}-\x{FE0F}\x{FFA0}\x{FFF0}-\x{FFF8}\x{E0000}-\x{E0FFF}"
)
#: A character no id may hold once trimmed (RE2 classes): a control character (Cc), a line or
#: paragraph separator (Zl, Zp: U+2028 inside an id breaks a line like LF does), a format
#: character (Cf) or another default-ignorable, invisible one.
_DEFECT = rf"[\p{{Cc}}\p{{Zl}}\p{{Zp}}\p{{Cf}}{_IGNORABLE}]"


def trimmed_sql(expr: str) -> str:
    """`expr` trimmed of WHITE_SPACE at both ends (bound as $trim_chars).

    trim() with a character set costs its set-up on every row, and most values have nothing
    to trim: looking at the two end characters first is the same result at a fraction of the
    cost (left/right count code points, like trim).
    """
    ends = f"contains($trim_chars, left({expr}, 1)) OR contains($trim_chars, right({expr}, 1))"
    return f"CASE WHEN NOT ({ends}) THEN {expr} ELSE trim({expr}, $trim_chars) END"


def canonical_sql(expr: str) -> str:
    """The canonical id of the text `expr`: trimmed, lower case, NFC (see the module doc)."""
    return f"nfc_normalize(lower({trimmed_sql(expr)}))"


def defect_sql(canonical: str) -> str:
    """TRUE when a canonical id holds a control or format character."""
    return f"regexp_matches({canonical}, '{_DEFECT}')"


def visible_sql(expr: str) -> str:
    """`expr` with every character defect_sql flags written as <U+XXXX>, for a reason that
    quotes a value: `got 2026-11-05<U+0000>`, not a value that reads as valid. Values without
    such a character (nearly all) are returned as they are, without the per-character walk."""
    marked = (
        f"array_to_string(list_transform(string_split({expr}, ''), lambda ch: "
        f"CASE WHEN regexp_matches(ch, '{_DEFECT}') THEN printf('<U+%04X>', unicode(ch)) "
        "ELSE ch END), '')"
    )
    return f"CASE WHEN regexp_matches({expr}, '{_DEFECT}') THEN {marked} ELSE {expr} END"


def defect_reason_sql(canonical: str, field: str = "company_id") -> str:
    """The reason for an id defect_sql flags, naming the first such character (U+XXXX)."""
    char = f"regexp_extract({canonical}, '{_DEFECT}')"
    return (
        f"'{field} holds ' || CASE WHEN regexp_matches({char}, '\\p{{Cc}}') "
        "THEN 'a control character' "
        f"WHEN regexp_matches({char}, '[\\p{{Zl}}\\p{{Zp}}]') THEN 'a line break' "
        f"WHEN regexp_matches({char}, '\\p{{Cf}}') THEN 'an invisible format character' "
        "ELSE 'an invisible character' END "
        f"|| printf(' (U+%04X)', unicode({char}))"
    )


def canonical_ids(values: Sequence[str]) -> list[str | None]:
    """The canonical form of each id, by the staging SQL; None for one staging would reject
    (empty once trimmed, or holding a control or format character).

    Runs in a private in-memory DuckDB, so it works beside any warehouse.
    """
    data = pa.table(
        {"n": pa.array(range(len(values)), pa.int64()), "id": pa.array(list(values), pa.string())}
    )
    canonical = canonical_sql("id")
    con = duckdb.connect()
    try:
        con.register("_ids", data)
        rows = con.execute(
            f"SELECT CASE WHEN c = '' OR {defect_sql('c')} THEN NULL ELSE c END "
            f"FROM (SELECT n, {canonical} AS c FROM _ids) ORDER BY n",
            {"trim_chars": WHITE_SPACE},
        ).fetchall()
    finally:
        con.close()
    return [row[0] for row in rows]

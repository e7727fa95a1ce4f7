"""Find the NDJSON files of a local folder and the date each belongs to (the seed's --path).

A file's date comes from its path: the nearest `date=YYYY-MM-DD` folder above it (the raw
zone's layout), else a YYYY-MM-DD in its file name (`usage_2025-11-23.ndjson`). A file with
neither is an error naming it: the date decides which staging rows the load replaces, so it is
never guessed from the records. Files are *.ndjson and *.jsonl, optionally gzipped; within a
date they are read in path order.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from company_activity.errors import DataError
from company_activity.staging.lines import InputFile
from company_activity.staging.usage import local_file

SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")


def file_date(path: Path, root: Path) -> date | None:
    """The date a file belongs to, from its folders (nearest first) or its name."""
    relative = path.relative_to(root)
    for folder in reversed(relative.parts[:-1]):
        match = _PARTITION.match(folder)
        if match:
            return _parse(match.group(1), path)
    match = _DATE_IN_NAME.search(path.name)
    return _parse(match.group(1), path) if match else None


def _parse(text: str, path: Path) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DataError(
            f"{path}: {text} is not a valid date; fix the folder or file name."
        ) from None


def dated_files(root: Path) -> dict[date, list[InputFile]]:
    """The folder's NDJSON files grouped by date, dates ascending, files in path order."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass --path a folder of NDJSON files.")
    found = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith(SUFFIXES) and not p.name.startswith(".")
    )
    if not found:
        raise DataError(f"no NDJSON files ({', '.join('*' + s for s in SUFFIXES)}) under {root}.")
    dated = [(path, file_date(path, root)) for path in found]
    undated = [str(path) for path, day in dated if day is None]
    if undated:
        raise DataError(
            f"cannot tell the date of {len(undated)} file(s) ({', '.join(undated[:5])}); put "
            "each under a date=YYYY-MM-DD folder or put YYYY-MM-DD in its name."
        )
    groups: dict[date, list[InputFile]] = {}
    for path, day in dated:
        if day is not None:
            name = path.relative_to(root).as_posix()
            groups.setdefault(day, []).append(local_file(path, name))
    return dict(sorted(groups.items()))

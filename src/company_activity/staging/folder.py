"""Find the NDJSON files of a local folder and the date each belongs to (the seed's --path).

A `date=YYYY-MM-DD` folder holding a `_manifest.json` is a raw-zone partition: it is read
through its manifest like the raw zone is (exactly the parts it lists, checked against their
counts and sha256), so a stale part left beside it is never staged. For other files the date
comes from the path: the nearest `date=YYYY-MM-DD` folder above it, else a YYYY-MM-DD in its
file name (`usage_2025-11-23.ndjson`). A file with
neither is an error naming it: the date decides which staging rows the load replaces, so it is
never guessed from the records. Files are *.ndjson and *.jsonl, optionally gzipped; within a
date they are read in path order.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from company_activity.errors import DataError
from company_activity.ingest.rawzone import MANIFEST_NAME
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


def manifest_partitions(root: Path) -> dict[date, Path]:
    """Raw-zone partitions under root (date=... folders with a manifest): date -> folder."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass --path a folder of NDJSON files.")
    partitions: dict[date, Path] = {}
    for manifest in sorted(root.rglob(MANIFEST_NAME)):
        match = _PARTITION.match(manifest.parent.name)
        if match:
            day = _parse(match.group(1), manifest)
            if day in partitions:
                raise DataError(
                    f"two partitions for {day} under {root} ({partitions[day]}, "
                    f"{manifest.parent}); pass --path one of them."
                )
            partitions[day] = manifest.parent
    return dict(sorted(partitions.items()))


def dated_files(
    root: Path, skip: set[Path] | frozenset[Path] = frozenset()
) -> dict[date, list[InputFile]]:
    """The folder's NDJSON files grouped by date, dates ascending, files in path order.

    Files inside the folders in `skip` (partitions read through their manifests) are left out.
    """
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass --path a folder of NDJSON files.")
    found = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.name.endswith(SUFFIXES)
        and not p.name.startswith(".")
        and not any(p.is_relative_to(folder) for folder in skip)
    )
    if not found and skip:
        return {}
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

"""Fetch product usage for a date range into the raw zone (the seed's interface).

    python scripts/fetch_product_usage.py --start 2025-01-06 --end 2025-01-12 [--mock]

The same as `company-activity fetch`, whose options all work here too (--concurrency K,
--sample, --companies, --seed, ...). Exits non-zero if any date failed.
"""

from __future__ import annotations

import sys

from company_activity.cli import main

_GLOBAL_FLAGS = ("-v", "--verbose")


def _argv(args: list[str]) -> list[str]:
    # The CLI takes its global options before the command name; accept them anywhere here.
    front = [a for a in args if a in _GLOBAL_FLAGS]
    rest = [a for a in args if a not in _GLOBAL_FLAGS]
    if "--env-file" in rest:
        at = rest.index("--env-file")
        front += rest[at : at + 2]
        del rest[at : at + 2]
    return [*front, "fetch", *rest]


if __name__ == "__main__":
    sys.exit(main(_argv(sys.argv[1:])))

"""Fetch product usage for a date range into the raw zone (the seed's interface).

    python scripts/fetch_product_usage.py --start 2025-01-06 --end 2025-01-12 [--mock]

The same as `company-activity fetch`, whose options all work here too (--concurrency K,
--sample, --companies, --seed, ...). Exits non-zero if any date failed.
"""

from __future__ import annotations

import sys

from company_activity.cli import main

if __name__ == "__main__":
    sys.exit(main(["fetch", *sys.argv[1:]]))

"""Stage a folder of product-usage NDJSON files (the seed's interface).

    python scripts/load_samples_to_sql.py --path DIR

The same as `company-activity load-usage --path DIR`. Each file's date comes from its path: a
`date=YYYY-MM-DD` folder above it, else a YYYY-MM-DD in its name (a file with neither is an
error). Each date's usage rows are replaced in one transaction, so a rerun adds nothing.
Prints what each date read, staged and rejected; exits non-zero if any date failed.
"""

from __future__ import annotations

import argparse
import sys

from company_activity.cli import main


def _argv(args: list[str]) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="folder of *.ndjson / *.jsonl files")
    parser.add_argument("--env-file", help="dotenv file to read (default: .env when it exists)")
    parser.add_argument("--verbose", "-v", action="store_true", help="tracebacks on errors")
    parsed = parser.parse_args(args)
    front = ["--env-file", parsed.env_file] if parsed.env_file else []
    front += ["--verbose"] if parsed.verbose else []
    return [*front, "load-usage", "--path", parsed.path]


if __name__ == "__main__":
    sys.exit(main(_argv(sys.argv[1:])))

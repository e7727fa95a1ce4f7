"""Run the performance benchmark (the same as `company-activity bench`).

python scripts/bench.py --quick
python scripts/bench.py --companies 20000 --days 365 --history 30 --wide-companies 100000
"""

from __future__ import annotations

import sys

from company_activity.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))

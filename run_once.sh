#!/usr/bin/env bash
# The local end-to-end demo: ./run_once.sh [DATE]  (DATE defaults to yesterday, UTC).
# Sets up .venv on first use, then runs the pipeline on the embedded engine
# (DuckDB + a local folder for Blob Storage). Needs no cloud account and no configuration.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh runtime
. .venv/bin/activate
run_date="${1:-$(date -u -d yesterday +%F)}"
echo "== company-activity demo for $run_date"
company-activity init-db
company-activity status

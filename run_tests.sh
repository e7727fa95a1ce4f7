#!/usr/bin/env bash
# The one test command: set up (venv, pip, npm) and run every lint and test.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh dev
. .venv/bin/activate
echo "== ruff";      ruff check .
echo "== format";    ruff format --check .
echo "== mypy";      mypy
echo "== layers";    lint-imports --no-logo --no-cache
echo "== sqlfluff";  sqlfluff lint sql/
echo "== sql contract"; company-activity lint-sql
echo "== pytest";    python -m pytest "$@"

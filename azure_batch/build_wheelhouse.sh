#!/usr/bin/env bash
# Build the wheelhouse the Batch start task installs from (azure_batch/start_task.sh):
# dist/company-activity-wheelhouse.tar.gz holding the package's wheel (with sql/ inside),
# a wheel for every pinned dependency in requirements.txt, pip's wheel, and requirements.txt.
#
# Build it on the pool's platform, so the binary wheels (pyodbc, duckdb, pyarrow) match:
# Ubuntu 24.04 with its Python 3.12, x86_64, e.g. the CI workflow's ubuntu-24.04 runner
# (.github/workflows/ci.yml uploads it as an artifact) or `docker run ubuntu:24.04`.
# It needs a package index (this is the one place that does); the pool never does.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
OUT="dist/wheelhouse"
rm -rf "$OUT"
mkdir -p "$OUT"
"$PYTHON" -m pip wheel --quiet --wheel-dir "$OUT" -r requirements.txt pip
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$OUT" .
cp requirements.txt "$OUT/requirements.txt"
tar -czf dist/company-activity-wheelhouse.tar.gz -C "$OUT" .
echo "built dist/company-activity-wheelhouse.tar.gz for $("$PYTHON" -V 2>&1) on $(uname -m):"
ls "$OUT"

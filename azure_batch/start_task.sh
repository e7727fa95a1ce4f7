#!/usr/bin/env bash
# Azure Batch pool start task: installs the release where the pipeline's Custom activities
# expect it (adf/pipeline/*.json run "$VENV/bin/python -m company_activity.batch_entry").
#
# Configure it on the pool (docs/deploy.md, "Batch pool"): run elevated (admin, pool scope),
# wait for success, with two resource files: this script and company-activity-wheelhouse.tar.gz,
# the wheelhouse azure_batch/build_wheelhouse.sh builds for the release (the package's wheel,
# every pinned dependency's wheel, pip's wheel and requirements.txt). Nothing is fetched from
# a package index: every node start installs the same files, even with no outbound access.
# Rerunning it (node reboot, reimage) replaces the install.
set -euo pipefail

PREFIX="${COMPANY_ACTIVITY_PREFIX:-/opt/company-activity}"
VENV="$PREFIX/venv"
WHEELHOUSE="$PREFIX/wheelhouse"
ARCHIVE="${AZ_BATCH_TASK_WORKING_DIR:-.}/company-activity-wheelhouse.tar.gz"
PYTHON="${PYTHON:-python3}"
IMAGE_HINT="use a pool image that has it (docs/deploy.md: Ubuntu Server 24.04 LTS ships Python 3.12)"

fail() {
    echo "start task: $*" >&2
    exit 2
}

if [[ ! -f "$ARCHIVE" ]]; then
    fail "$ARCHIVE is missing; add the release's wheelhouse as the start task's resource file"
fi

# The package needs Python 3.11 or later (pyproject.toml, requires-python).
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    fail "$PYTHON not found: company-activity needs Python 3.11 or later; $IMAGE_HINT"
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    fail "$("$PYTHON" -V 2>&1) is too old: company-activity needs Python 3.11 or later; $IMAGE_HINT"
fi
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    fail "$PYTHON cannot create virtual environments (Ubuntu: the python3-venv package); $IMAGE_HINT and python3-venv"
fi

# pyodbc needs unixODBC and Microsoft's ODBC Driver 18 for SQL Server. Bake them into the
# pool's image (docs/deploy.md); installing them here on every node start is slow and fragile.
if ! odbcinst -q -d -n "ODBC Driver 18 for SQL Server" >/dev/null 2>&1; then
    fail "ODBC Driver 18 for SQL Server is not installed on this image (docs/deploy.md)"
fi

mkdir -p "$PREFIX"
rm -rf "$WHEELHOUSE.new"
mkdir -p "$WHEELHOUSE.new"
tar -xzf "$ARCHIVE" -C "$WHEELHOUSE.new"
if [[ ! -f "$WHEELHOUSE.new/requirements.txt" ]] || ! ls "$WHEELHOUSE.new"/company_activity-*.whl >/dev/null 2>&1; then
    fail "$ARCHIVE is not a wheelhouse (no requirements.txt or company_activity wheel); build it with azure_batch/build_wheelhouse.sh"
fi
rm -rf "$WHEELHOUSE"
mv "$WHEELHOUSE.new" "$WHEELHOUSE"

"$PYTHON" -m venv --clear "$VENV"
# From the wheelhouse only (--no-index): the pinned set, then the package itself, not editable.
"$VENV/bin/python" -m pip install --no-input --quiet --no-index --find-links "$WHEELHOUSE" \
    --upgrade pip
"$VENV/bin/python" -m pip install --no-input --quiet --no-index --find-links "$WHEELHOUSE" \
    -r "$WHEELHOUSE/requirements.txt" company-activity
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -m company_activity --version
chmod -R a+rX "$PREFIX"
echo "start task: company-activity installed in $VENV"

#!/usr/bin/env bash
# Azure Batch pool start task: installs this repository where the pipeline's Custom
# activities expect it (adf/pipeline/*.json run "$VENV/bin/python -m company_activity.batch_entry").
#
# Configure it on the pool (docs/deploy.md, "Batch pool"): run elevated (admin, pool scope),
# wait for success, with one resource file: company-activity.tar.gz, a `git archive` of the
# release being deployed. Rerunning it (node reboot, reimage) replaces the install.
set -euo pipefail

PREFIX=/opt/company-activity
VENV="$PREFIX/venv"
SRC="$PREFIX/src"
ARCHIVE="${AZ_BATCH_TASK_WORKING_DIR:-.}/company-activity.tar.gz"

if [[ ! -f "$ARCHIVE" ]]; then
    echo "start task: $ARCHIVE is missing; add it as the start task's resource file" >&2
    exit 2
fi

# pyodbc needs unixODBC and Microsoft's ODBC Driver 18 for SQL Server. Bake them into the
# pool's image (docs/deploy.md); installing them here on every node start is slow and fragile.
if ! odbcinst -q -d -n "ODBC Driver 18 for SQL Server" >/dev/null 2>&1; then
    echo "start task: ODBC Driver 18 for SQL Server is not installed on this image" >&2
    exit 2
fi

rm -rf "$SRC.new"
mkdir -p "$SRC.new"
tar -xzf "$ARCHIVE" -C "$SRC.new"
rm -rf "$SRC"
mv "$SRC.new" "$SRC"

python3 -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install --no-input --quiet -r "$SRC/requirements.txt"
# Editable, like a checkout: the transform files stay in $SRC/sql where the package reads them.
"$VENV/bin/python" -m pip install --no-input --quiet --no-deps -e "$SRC"
"$VENV/bin/python" -m company_activity --help >/dev/null
chmod -R a+rX "$PREFIX"
echo "start task: company-activity installed in $VENV"

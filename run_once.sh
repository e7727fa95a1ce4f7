#!/usr/bin/env bash
# The local end-to-end demo:  ./run_once.sh [DATE]   (DATE: YYYY-MM-DD, default yesterday UTC)
#
# On a fresh machine with nothing configured: sets up .venv, creates the warehouse (DuckDB in
# .local/), starts the built-in mock product-usage API on loopback with a few faults switched
# on (the retries show in the log), runs the pipeline for the 30 days ending at DATE, and
# prints a summary plus a Markdown report with a chart. The mock API lives inside the run
# command, so it stops with it: on success, on failure and on Ctrl-C. Running it again skips
# the dates already completed and succeeds too.
set -euo pipefail
cd "$(dirname "$0")"

run_date="${1:-$(date -u -d yesterday +%F)}"
if ! [[ "$run_date" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || ! date -u -d "$run_date" +%F >/dev/null 2>&1; then
  echo "usage: ./run_once.sh [YYYY-MM-DD]  ('$run_date' is not a date)" >&2
  exit 2
fi
start_date=$(date -u -d "$run_date -29 days" +%F)

scripts/bootstrap.sh runtime
. .venv/bin/activate
mkdir -p .local
log=.local/demo.log

echo "== 1/4 warehouse"
company-activity init-db

echo "== 2/4 pipeline for $start_date .. $run_date (mock API with faults; log: $log)"
if ! company-activity run --mock --start "$start_date" --end "$run_date" --companies 200 \
  --faults "429=0.08,503=0.05,duplicate=0.01,case=0.01,malformed=0.005" 2>"$log"; then
  echo "the pipeline failed; the end of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
echo "retries the faults caused (from $log):"
grep -E "retrying" "$log" | sed -E 's/^[0-9-]+ [0-9:,]+ //' | head -n 8 || echo "  none this time"

echo "== 3/4 summary"
company-activity report --start "$start_date" --end "$run_date" --out .local/report

echo "== 4/4 where things are"
echo "  warehouse (DuckDB):   .local/warehouse.duckdb   (company-activity status)"
echo "  raw zone (blob):      .local/blob/              (product-api-raw/, raw/crm/)"
echo "  report:               .local/report/report.md   (+ activity.png)"
echo "  run log:              $log; in the warehouse: ops.pipeline_runs, ops.step_runs"

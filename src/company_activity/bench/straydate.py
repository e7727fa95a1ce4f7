"""The stray-date figure: a daily merge before a stray date, while it is loaded, and after its
rollback (issue 14).

A date far ahead (`run --date 2099-12-31 --allow-future`, a typo) is loaded and merged, then
undone with `rollback --staging`. The analytics merge of the scenario's last day is timed
before, while the stray date is in effect, and after the rollback: after equals before because
the merges take their grid from the loads in effect, and while it is in effect the stray day
adds one window (44 days), not the decades up to it. A figure, not a target: the ratio is
printed and kept in the report.
"""

from __future__ import annotations

import statistics
import time
from datetime import date
from typing import Any

from company_activity.bench.workspace import Workspace, run_pipeline, write_crm
from company_activity.dates import utc_now
from company_activity.mock.source import GeneratorSource
from company_activity.model.merge import merge_analytics
from company_activity.model.rollback import rollback

STRAY = date(2099, 12, 31)
RUNS = 3  # each merge is timed this often; the figure is the median


def _merge_seconds(env: Workspace, day: date) -> float:
    """The median analytics merge of `day` (a re-merge: the same grid as the daily run's)."""
    seconds = []
    for _ in range(RUNS):
        started = time.perf_counter()
        merge_analytics(env.wh, day, day, "bench-stray", utc_now())
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def stray_date_figure(env: Workspace, companies: int, seed: int, last: date) -> dict[str, Any]:
    """Time the merge of `last` around loading and rolling back STRAY in env's warehouse."""
    before = _merge_seconds(env, last)
    write_crm(env, [STRAY], companies, seed)
    run_pipeline(env, GeneratorSource(seed, companies), [STRAY])
    during = _merge_seconds(env, last)
    rollback(env.wh, STRAY, "bench-stray", utc_now(), staging=True)
    after = _merge_seconds(env, last)
    return {
        "seconds": round(after, 4),
        "merge_before_s": round(before, 4),
        "merge_with_stray_loaded_s": round(during, 4),
        "merge_after_rollback_s": round(after, 4),
        "after_over_before": round(after / before, 2) if before else None,
        "stray_date": STRAY.isoformat(),
        "day": last.isoformat(),
    }

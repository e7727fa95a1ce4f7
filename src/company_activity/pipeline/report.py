"""The demo report: what the analytics table says over a date range, as text and Markdown+PNG."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from company_activity.dates import as_date, date_range
from company_activity.pipeline.coverage import date_warnings
from company_activity.warehouse.base import Warehouse

TOP_AT_RISK = 10
_MISSING_SHOWN = 5  # unmerged dates a warning names
LAYERS_NOTE = "the range's dates (dim.companies: first seen by the end)"
_IN_RANGE = "BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)"
# Each layer's rows for the range, by the date each row belongs to; the dimension has one row
# per company, so it counts the companies first seen by the range's end.
_LAYER_DATES = (
    ("stg.crm_companies", "snapshot_date", False),
    ("stg.product_usage", "file_date", False),
    ("stg.quarantine", "file_date", False),
    ("dim.companies", "first_seen_date", True),
    ("analytics.company_activity_daily", "activity_date", False),
)


@dataclass(frozen=True)
class DaySummary:
    day: date
    companies: int
    active_companies: int
    churn_risk: int
    rejects: int
    flagged_rows: int


@dataclass(frozen=True)
class Report:
    start: date
    end: date
    layers: dict[str, int]
    days: list[DaySummary]
    flags: dict[str, int]
    at_risk: list[dict[str, Any]]
    rejected: int = 0  # quarantined input rows of every date in the range, merged or not
    unmerged: tuple[date, ...] = ()  # the range's dates without analytics rows

    def warning(self) -> str | None:
        """What the figures leave out: the range's dates that have no analytics rows."""
        if not self.unmerged:
            return None
        total = (self.end - self.start).days + 1
        if len(self.unmerged) == total:
            what = "no date in the range has analytics rows"
        else:
            shown = ", ".join(str(day) for day in self.unmerged[:_MISSING_SHOWN])
            more = ", ..." if len(self.unmerged) > _MISSING_SHOWN else ""
            what = f"{len(self.unmerged)} of {total} dates have no analytics rows ({shown}{more})"
        return (
            f"Warning: {what}; they are not loaded and merged yet "
            "(`company-activity status`, docs/runbook.md)"
        )

    # Data-quality warnings of each date's latest run ('check: message'), from
    # ops.check_results.
    warnings: dict[date, list[str]] = field(default_factory=dict)


def build_report(wh: Warehouse, start: date, end: date) -> Report:
    """Collect the figures for [start, end] from the warehouse."""
    params = {"start_date": start, "end_date": end}
    layers = {
        name: int(
            wh.scalar(
                f"SELECT COUNT(*) FROM {name} WHERE {column} "
                + ("<= CAST(@end_date AS DATE)" if upto else _IN_RANGE),
                params,
            )
        )
        for name, column, upto in _LAYER_DATES
    }
    rows = wh.query(
        "SELECT a.activity_date, COUNT(*) AS companies,"
        " SUM(CASE WHEN a.active_users > 0 OR a.events > 0 THEN 1 ELSE 0 END) AS active,"
        " SUM(CAST(a.is_churn_risk AS BIGINT)) AS churn_risk,"
        " SUM(CASE WHEN a.data_quality_flag = 'ok' THEN 0 ELSE 1 END) AS flagged"
        " FROM analytics.company_activity_daily AS a"
        " WHERE a.activity_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)"
        " GROUP BY a.activity_date ORDER BY a.activity_date",
        params,
    )
    rejects: dict[date, int] = dict(
        wh.query(
            "SELECT q.file_date, COUNT(*) FROM stg.quarantine AS q"
            " WHERE q.file_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)"
            " GROUP BY q.file_date",
            params,
        )
    )
    days = [
        DaySummary(
            r[0],
            int(r[1]),
            int(r[2] or 0),
            int(r[3] or 0),
            int(rejects.get(r[0], 0)),
            int(r[4] or 0),
        )
        for r in rows
    ]
    flags: dict[str, int] = {}
    for flag_list, count in wh.query(
        "SELECT a.data_quality_flag, COUNT(*) FROM analytics.company_activity_daily AS a"
        " WHERE a.activity_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)"
        " GROUP BY a.data_quality_flag",
        params,
    ):
        for flag in str(flag_list).split(","):
            flags[flag] = flags.get(flag, 0) + int(count)
    at_risk = wh.query_dicts(
        "SELECT TOP 10 a.company_id, a.company_name, a.churn_risk_reasons, a.engagement_score,"
        " a.rolling_7d_active_users, a.days_since_last_activity"
        " FROM analytics.company_activity_daily AS a"
        " WHERE a.activity_date = CAST(@end_date AS DATE) AND a.is_churn_risk = 1"
        " ORDER BY a.engagement_score, a.company_id",
        {"end_date": end},
    )
    merged = {as_date(d.day) for d in days}
    unmerged = tuple(day for day in date_range(start, end) if day not in merged)
    return Report(
        start,
        end,
        layers,
        days,
        dict(sorted(flags.items())),
        at_risk,
        sum(int(count) for count in rejects.values()),
        unmerged,
        date_warnings(wh, start, end),
    )


def render_text(report: Report) -> str:
    """A readable console summary."""
    lines = [
        f"Company activity {report.start} .. {report.end}",
        "",
    ]
    warning = report.warning()
    if warning:
        lines += [warning, ""]
    lines += [f"Rows per layer, {LAYERS_NOTE}:"]
    lines += [f"  {name:<36} {count:>10,}" for name, count in report.layers.items()]
    lines += ["", f"Rejected input rows in the range: {report.rejected:,} (see stg.quarantine)"]
    lines += ["", f"Dates with data-quality warnings: {len(report.warnings)}"]
    lines += [f"  {d} WARN {w}" for d, found in sorted(report.warnings.items()) for w in found]
    lines += ["", "Data-quality flags (company-days):"]
    lines += [f"  {flag:<28} {count:>10,}" for flag, count in report.flags.items()]
    if report.days:
        last = report.days[-1]
        lines += [
            "",
            f"On {last.day}: {last.companies:,} companies, {last.active_companies:,} active, "
            f"{last.churn_risk:,} at churn risk",
        ]
    lines += ["", f"Most at churn risk on {report.end}:"]
    if not report.at_risk:
        lines.append("  none")
    for row in report.at_risk:
        name = row["company_name"] or "(not in CRM yet)"
        lines.append(
            f"  {row['company_id']:<14} {name[:28]:<28} score {row['engagement_score']!s:>5}  "
            f"{row['churn_risk_reasons']}"
        )
    return "\n".join(lines)


def write_markdown(report: Report, folder: Path) -> Path:
    """Write report.md and the activity.png chart it shows; return the Markdown path."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    chart = folder / "activity.png"
    figure, axis = plt.subplots(figsize=(9, 4), dpi=100)
    days: Any = [d.day for d in report.days]  # matplotlib plots dates; its stubs say otherwise
    axis.plot(days, [d.active_companies for d in report.days], label="active companies")
    axis.plot(days, [d.churn_risk for d in report.days], label="at churn risk")
    axis.bar(days, [d.rejects for d in report.days], label="rejected rows", alpha=0.4, color="grey")
    axis.set_title(f"Company activity {report.start} .. {report.end}")
    axis.legend(loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(chart)
    plt.close(figure)

    table = [
        "| date | companies | active | churn risk | rejects | flagged rows |",
        "|---|---|---|---|---|---|",
    ]
    table += [
        "| "
        + " | ".join(
            str(v)
            for v in (
                d.day,
                d.companies,
                d.active_companies,
                d.churn_risk,
                d.rejects,
                d.flagged_rows,
            )
        )
        + " |"
        for d in report.days
    ]
    risk = ["| company | name | reasons | engagement |", "|---|---|---|---|"]
    risk += [
        f"| {r['company_id']} | {r['company_name'] or ''} | {r['churn_risk_reasons']} "
        f"| {r['engagement_score']} |"
        for r in report.at_risk
    ]
    text = "\n".join(
        [
            f"# Company activity report, {report.start} .. {report.end}",
            "",
            "![active companies, churn risk and rejects](activity.png)",
            "",
            *([f"**{report.warning()}**", ""] if report.unmerged else []),
            "## Rows per layer",
            "",
            f"Rows of {LAYERS_NOTE}.",
            "",
            *(f"- `{name}`: {count:,}" for name, count in report.layers.items()),
            "",
            "## Data-quality warnings",
            "",
            *(
                [f"- {d}: {w}" for d, found in sorted(report.warnings.items()) for w in found]
                or ["- none"]
            ),
            "",
            "## Data-quality flags (company-days)",
            "",
            *(f"- `{flag}`: {count:,}" for flag, count in report.flags.items()),
            "",
            f"## Most at churn risk on {report.end}",
            "",
            *risk,
            "",
            "## Per day",
            "",
            *table,
            "",
        ]
    )
    path = folder / "report.md"
    path.write_text(text, encoding="utf-8")
    return path

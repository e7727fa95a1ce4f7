"""The benchmark's scale, its targets and its report (`company-activity bench`).

The targets are issue 8's: each a ratio measured in one run (so they hold on a noisy
machine) or, at the full scale only, a wall time or peak RSS. docs/performance.md has the
figures and how to read them.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from company_activity.errors import ConfigError
from company_activity.settings import load_settings

SEED = 42


@dataclass(frozen=True)
class Scale:
    """How big the benchmark runs."""

    companies: int = 20_000
    days: int = 365  # backfill length (the long history)
    history: int = 30  # the short history, for the daily-cost ratio
    wide_companies: int = 100_000  # the one-day run
    seed: int = SEED

    def check(self) -> None:
        if min(self.companies, self.wide_companies) < 1:
            raise ConfigError("--companies and --wide-companies must be at least 1")
        if not 1 <= self.history <= self.days:
            raise ConfigError("--history must be between 1 and --days")


FULL = Scale()
QUICK = Scale(companies=2_000, days=45, history=10, wide_companies=10_000)


@dataclass(frozen=True)
class Target:
    """One target of issue 8: a measured value against its limit."""

    name: str
    value: float
    limit: float
    unit: str
    higher_is_better: bool = False
    at_full_scale_only: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def line(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        verdict = "met" if self.met else "MISSED"
        if self.at_full_scale_only:
            verdict += " (target is for the full scale)"
        return (
            f"{self.name:<58} {self.value:>9.2f} {sign} {self.limit:<6g} {self.unit:<8} {verdict}"
        )


@dataclass
class BenchReport:
    """Everything one benchmark run measured."""

    scale: dict[str, int]
    machine: dict[str, Any]
    started_at: str
    seconds: float
    scenarios: dict[str, dict[str, Any]]
    targets: list[Target] = field(default_factory=list)

    def to_json(self) -> str:
        body = asdict(self)
        body["targets"] = [{**asdict(t), "met": t.met} for t in self.targets]
        return json.dumps(body, indent=2, sort_keys=True, default=str)

    def table_lines(self) -> list[str]:
        lines = [f"benchmark: {self.scale} on {self.machine['cpus']} CPU(s), {self.seconds:.0f} s"]
        for name, scenario in self.scenarios.items():
            lines.append(f"-- {name}: peak RSS {scenario['peak_rss_mb']:.0f} MB")
            for stage, value in scenario["stages"].items():
                lines.append(f"   {stage:<44} {value['seconds']:>9.3f} s  {_extra(value)}")
            for ceiling, value in scenario.get("ceilings", {}).items():
                lines.append(
                    f"   ceiling: {ceiling:<35} {value['seconds']:>9.3f} s  {_extra(value)}"
                )
        lines.append("-- targets")
        lines.extend("   " + t.line() for t in self.targets)
        return lines


def _extra(value: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in value.items() if k != "seconds")


def machine() -> dict[str, Any]:
    return {
        "duckdb_memory_limit": load_settings(
            environ=caller_settings(), dotenv_path=None
        ).duckdb_memory_limit,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "memory_gb": _memory_gb(),
    }


def caller_settings() -> dict[str, str]:
    """The one setting taken from the caller: the memory limit trades peak RSS for time."""
    limit = os.environ.get("DUCKDB_MEMORY_LIMIT")
    return {"DUCKDB_MEMORY_LIMIT": limit} if limit else {}


def _memory_gb() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
    return round(pages / 2**30, 1)


def targets(report: BenchReport, full: bool) -> list[Target]:
    """The targets of issue 8 from the measured figures."""
    long = report.scenarios["long"]
    short = report.scenarios["short"]
    wide = report.scenarios["wide"]
    stages, ceilings = long["stages"], long["ceilings"]
    return [
        Target(
            "staging load of a day / load ceiling (read_json)",
            stages["staging_load"]["seconds"] / ceilings["load_read_json"]["seconds"],
            2.0,
            "x",
        ),
        Target(
            "fetch+write pages/s over loopback / client ceiling",
            stages["fetch_loopback"]["pages_per_s"] / ceilings["client_requests"]["pages_per_s"],
            0.6,
            "x",
            higher_is_better=True,
        ),
        Target(
            "analytics merge of one day / window ceiling",
            stages["daily.merge_analytics"]["seconds"] / ceilings["window_query"]["seconds"],
            2.0,
            "x",
        ),
        Target(
            f"daily run, {report.scale['days']}d history / {report.scale['history']}d history",
            stages["daily_run"]["seconds"] / short["stages"]["daily_run"]["seconds"],
            1.5,
            "x",
        ),
        Target(
            "backfill end to end (generator source), wall",
            stages["backfill"]["seconds"],
            60.0,
            "s",
            at_full_scale_only=not full,
        ),
        Target(
            "backfill peak RSS",
            long["backfill_peak_rss_mb"],
            1024.0,
            "MB",
            at_full_scale_only=not full,
        ),
        Target(
            "one wide day end to end (loopback API), wall",
            wide["stages"]["daily_run"]["seconds"],
            15.0,
            "s",
            at_full_scale_only=not full,
        ),
    ]


def write_report(report: BenchReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_json() + "\n", encoding="utf-8")

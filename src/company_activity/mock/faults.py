"""The mock API's faults: the kinds it knows, rates read from a spec, scripted faults, and the
data faults it mixes into valid pages (deterministic per seed, date and page)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date

from company_activity.errors import ConfigError

STATUS_FAULTS = ("429", "500", "502", "503", "504")
TRANSPORT_FAULTS = (*STATUS_FAULTS, "slow", "truncate")
DATA_FAULTS = ("duplicate", "case", "malformed")
PAGE_FAULTS = ("badjson", "noitems", "baditem", "loop", "empty")
RATE_FAULTS = (*TRANSPORT_FAULTS, *DATA_FAULTS)
SCRIPTED_FAULTS = (*TRANSPORT_FAULTS, *PAGE_FAULTS)


def parse_fault_rates(spec: str) -> dict[str, float]:
    """'429=0.05,slow=0.1,duplicate=0.01' -> {'429': 0.05, ...}; ConfigError when unreadable."""
    rates: dict[str, float] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        kind, sep, value = entry.partition("=")
        kind = kind.strip()
        if kind not in RATE_FAULTS or not sep:
            raise ConfigError(
                f"unknown fault {entry!r}: write kind=rate, comma-separated, with kind one of "
                f"{', '.join(RATE_FAULTS)} (e.g. 429=0.05,slow=0.1)"
            )
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"fault rate for {kind} must be between 0 and 1, got {value!r}")
        rates[kind] = rate
    return rates


@dataclass
class ScriptedFault:
    """A fault for the next `times` requests matching day and page (None: any; times None:
    every matching request from now on)."""

    kind: str
    times: int | None = 1
    day: date | None = None
    page: int | None = None
    retry_after: str | None = None


def data_faults(
    lines: list[bytes], rates_by_kind: dict[str, float], seed: int, day: date, start: int
) -> list[bytes]:
    """The page's lines with the data faults of `rates_by_kind` applied, deterministically per
    (seed, date, first company)."""
    rates = [rates_by_kind.get(kind, 0.0) for kind in DATA_FAULTS]
    if not any(rates):
        return lines
    duplicate, case, malformed = rates
    rng = random.Random(f"{seed}:{day.isoformat()}:{start}:data")
    out: list[bytes] = []
    for line in lines:
        roll_case, roll_dup, roll_bad, variant = (rng.random() for _ in range(4))
        sent = line.replace(b'"company_id":"c', b'"company_id":"C', 1) if roll_case < case else line
        out.append(sent)
        if roll_dup < duplicate:
            out.append(sent)
        if roll_bad < malformed:
            out.append(malformed_item(line, variant))
    return out


def malformed_item(line: bytes, variant: float) -> bytes:
    """An object the API might really send, that staging must reject."""
    item = json.loads(line)
    choice = int(variant * 5)
    if choice == 0:
        item["company_id"] = None
    elif choice == 1:
        item["active_users"] = "n/a"
    elif choice == 2:
        item["events"] = -abs(int(item["events"])) - 1
    elif choice == 3:
        item["ts"] = "yesterday"
    else:
        del item["company_id"]
    return json.dumps(item, separators=(",", ":")).encode()

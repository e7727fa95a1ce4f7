"""The package's layers (pyproject.toml, [tool.importlinter]) name every module it has.

`lint-imports` (run_tests.sh) checks that no layer imports a higher one; a module the contract
does not name would escape that check, so a new module must take its place in the order.
"""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path

import company_activity

REPO = Path(__file__).resolve().parents[1]


def _layers() -> list[list[str]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    assert contract["type"] == "layers"
    assert contract["containers"] == ["company_activity"]
    return [re.split(r"\s*[:|]\s*", layer.strip()) for layer in contract["layers"]]


def test_every_module_of_the_package_has_a_layer() -> None:
    named = [name for layer in _layers() for name in layer]
    assert len(named) == len(set(named)), "a module is named in two layers"
    modules = {m.name for m in pkgutil.iter_modules(company_activity.__path__)}
    assert modules == set(named)


def test_the_layers_run_from_the_shared_ground_up_to_the_command_line() -> None:
    layers = _layers()
    assert {"settings", "errors", "redact", "secrets", "dates"} <= set(layers[-1])
    assert "cli" in layers[0] and "commands" in layers[0]
    order = [layer[0] for layer in layers[1:-1]]
    assert order == [
        "bench",
        "azure",
        "pipeline",
        "model",
        "staging",
        "mock",
        "ingest",
        "warehouse",
        "storage",
    ]

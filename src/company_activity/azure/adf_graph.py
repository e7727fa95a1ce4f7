"""The Data Factory JSON under adf/, read as a graph: load, order, simulate, draw.

adf/ mirrors Data Factory's git integration (factory/, pipeline/, dataset/, linkedService/,
trigger/), one resource per JSON file. This module reads it without any Azure SDK, so the
tests and the `adf-diagram` command share one reading of the graph:

- activities in dependency order, and the pipeline steps they carry (each activity names its
  step in a `step` user property, the same names as company_activity.pipeline.names);
- a simulation of which activities run, are skipped or fail for a given set of failing
  activities, and the pipeline status Data Factory then reports (its documented rule: look
  at every leaf; a skipped leaf stands for its parents; the run succeeds only if all do);
- the references an expression makes (parameters, global parameters, activities);
- the Mermaid picture in adf/diagram.mmd.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from company_activity.errors import ConfigError

JsonObject = dict[str, Any]

FOLDERS = ("factory", "pipeline", "dataset", "linkedService", "trigger")

SUCCEEDED = "Succeeded"
FAILED = "Failed"
SKIPPED = "Skipped"
COMPLETED = "Completed"

STEP_PROPERTY = "step"


@dataclass
class Factory:
    """Every resource under adf/, by folder and resource name."""

    root: Path
    resources: dict[str, dict[str, JsonObject]] = field(default_factory=dict)
    paths: dict[tuple[str, str], Path] = field(default_factory=dict)

    def folder(self, name: str) -> dict[str, JsonObject]:
        return self.resources.get(name, {})

    @property
    def pipelines(self) -> dict[str, JsonObject]:
        return self.folder("pipeline")

    @property
    def datasets(self) -> dict[str, JsonObject]:
        return self.folder("dataset")

    @property
    def linked_services(self) -> dict[str, JsonObject]:
        return self.folder("linkedService")

    @property
    def triggers(self) -> dict[str, JsonObject]:
        return self.folder("trigger")

    @property
    def factories(self) -> dict[str, JsonObject]:
        return self.folder("factory")

    def pipeline(self, name: str) -> JsonObject:
        try:
            return self.pipelines[name]
        except KeyError:
            raise ConfigError(
                f"no pipeline {name!r} under {self.root}/pipeline; check the name or the folder"
            ) from None

    def global_parameters(self) -> dict[str, JsonObject]:
        """The factory's global parameters (factory/<name>.json, properties.globalParameters)."""
        found: dict[str, JsonObject] = {}
        for factory in self.factories.values():
            found.update(factory.get("properties", {}).get("globalParameters", {}))
        return found


def load_factory(root: str | Path = "adf") -> Factory:
    """Read every JSON resource under root; raise ConfigError for unreadable or misnamed files."""
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"no Data Factory folder at {base}; run from the repository root")
    factory = Factory(base)
    for folder in FOLDERS:
        for path in sorted((base / folder).glob("*.json")):
            try:
                resource = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ConfigError(f"{path} is not valid JSON ({exc}); fix the file") from None
            name = resource.get("name") if isinstance(resource, dict) else None
            if name != path.stem:
                raise ConfigError(
                    f"{path} holds resource {name!r}; Data Factory's git layout names each file "
                    "after its resource"
                )
            factory.resources.setdefault(folder, {})[name] = resource
            factory.paths[(folder, name)] = path
    return factory


# Activities -------------------------------------------------------------------------------

# Where container activities keep their inner activities.
_NESTED_KEYS = ("ifTrueActivities", "ifFalseActivities", "activities", "defaultActivities")


def activities(pipeline: Mapping[str, Any]) -> list[JsonObject]:
    """The pipeline's top-level activities."""
    return list(pipeline.get("properties", {}).get("activities", []))


def nested(activity: Mapping[str, Any]) -> list[tuple[str, JsonObject]]:
    """(branch, activity) for each activity directly inside a container activity."""
    props = activity.get("typeProperties", {})
    found: list[tuple[str, JsonObject]] = []
    for key in _NESTED_KEYS:
        found.extend((key, inner) for inner in props.get(key) or [])
    for case in props.get("cases") or []:
        found.extend((f"case {case.get('value')}", inner) for inner in case.get("activities", []))
    return found


def walk(pipeline: Mapping[str, Any]) -> Iterator[tuple[JsonObject, str | None]]:
    """Every activity, nested ones included, with the name of its container (None at top)."""

    def visit(
        items: list[JsonObject], parent: str | None
    ) -> Iterator[tuple[JsonObject, str | None]]:
        for item in items:
            yield item, parent
            yield from visit([inner for _, inner in nested(item)], item["name"])

    yield from visit(activities(pipeline), None)


def dependencies(activity: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(upstream activity, conditions) for each dependsOn entry."""
    return [
        (d["activity"], list(d.get("dependencyConditions", [])))
        for d in activity.get("dependsOn", [])
    ]


def dependency_order(items: list[JsonObject]) -> list[str]:
    """Names in dependency order; ties keep the order of the JSON (a stable topological sort)."""
    names = [a["name"] for a in items]
    upstream = {a["name"]: {dep for dep, _ in dependencies(a)} for a in items}
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(names):
        ready = [n for n in names if n not in placed and upstream[n] <= placed]
        if not ready:
            stuck = sorted(set(names) - placed)
            raise ConfigError(f"activities {', '.join(stuck)} depend on each other in a cycle")
        ordered.append(ready[0])
        placed.add(ready[0])
    return ordered


def step_of(activity: Mapping[str, Any]) -> str | None:
    """The pipeline step an activity belongs to (its `step` user property), if any."""
    for prop in activity.get("userProperties", []):
        if prop.get("name") == STEP_PROPERTY:
            value = prop.get("value")
            return str(value) if value is not None else None
    return None


def step_sequence(pipeline: Mapping[str, Any]) -> list[str]:
    """The steps the top-level activities carry, in dependency order, repeats collapsed."""
    by_name = {a["name"]: a for a in activities(pipeline)}
    sequence: list[str] = []
    for name in dependency_order(activities(pipeline)):
        step = step_of(by_name[name])
        if step is not None and (not sequence or sequence[-1] != step):
            sequence.append(step)
    return sequence


def ancestors(pipeline: Mapping[str, Any], name: str) -> set[str]:
    """Activities that have finished before `name` starts (for nested ones: its container's)."""
    parent_of = {a["name"]: parent for a, parent in walk(pipeline)}
    by_name = {a["name"]: a for a, _ in walk(pipeline)}
    found: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        ups = [dep for dep, _ in dependencies(by_name[current])]
        container = parent_of.get(current)
        if container is not None:
            ups.append(container)
        for up in ups:
            if up not in found:
                found.add(up)
                pending.append(up)
    # A container is running, not finished, while its inner activities run.
    container = parent_of.get(name)
    while container is not None:
        found.discard(container)
        container = parent_of.get(container)
    return found


# Simulation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    """What a simulated run did: each top-level activity's status and the run's status."""

    statuses: dict[str, str]
    status: str


def _satisfied(upstream_status: str, conditions: list[str]) -> bool:
    if upstream_status in conditions:
        return True
    return COMPLETED in conditions and upstream_status in (SUCCEEDED, FAILED)


def simulate(
    pipeline: Mapping[str, Any], failing: set[str] | frozenset[str] = frozenset()
) -> RunOutcome:
    """Run the graph with the named activities (nested ones too) failing when they run.

    A top-level Fail activity fails whenever it runs. A container activity fails when it or
    any activity inside it is named: naming the Fail inside an If Condition stands for the
    branch that holds it being taken.
    """
    items = activities(pipeline)
    by_name = {a["name"]: a for a in items}
    inner_names = {
        a["name"]: {i["name"] for i, _ in walk({"properties": {"activities": [a]}})} for a in items
    }
    statuses: dict[str, str] = {}
    for name in dependency_order(items):
        runs = all(_satisfied(statuses[dep], conds) for dep, conds in dependencies(by_name[name]))
        if not runs:
            statuses[name] = SKIPPED
        else:
            # A Fail activity fails whenever it runs; that is its purpose.
            fails = by_name[name].get("type") == "Fail" or bool(inner_names[name] & set(failing))
            statuses[name] = FAILED if fails else SUCCEEDED

    downstream = {dep for a in items for dep, _ in dependencies(a)}
    leaves = [a["name"] for a in items if a["name"] not in downstream]

    def good(name: str) -> bool:
        if statuses[name] == SKIPPED:
            return all(good(dep) for dep, _ in dependencies(by_name[name]))
        return statuses[name] == SUCCEEDED

    return RunOutcome(statuses, SUCCEEDED if all(good(leaf) for leaf in leaves) else FAILED)


# Expressions ------------------------------------------------------------------------------

_REFERENCES = {
    "parameter": re.compile(r"pipeline\(\)\s*\.\s*parameters\s*\.\s*([A-Za-z_]\w*)"),
    "global": re.compile(r"pipeline\(\)\s*\.\s*globalParameters\s*\.\s*([A-Za-z_]\w*)"),
    "activity": re.compile(r"activity\(\s*'([^']+)'\s*\)"),
    "dataset": re.compile(r"dataset\(\)\s*\.\s*([A-Za-z_]\w*)"),
    "linkedService": re.compile(r"linkedService\(\)\s*\.\s*([A-Za-z_]\w*)"),
}


def is_expression(text: str) -> bool:
    """Data Factory evaluates a string that starts with @ (not @@) or holds @{...}."""
    return (text.startswith("@") and not text.startswith("@@")) or "@{" in text


def strings(obj: Any) -> Iterator[str]:
    """Every string value inside a JSON value."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from strings(value)


def references(obj: Any) -> set[tuple[str, str]]:
    """(kind, name) for every parameter, global parameter, activity, dataset or linked-service
    parameter that an expression inside obj refers to."""
    found: set[tuple[str, str]] = set()
    for text in strings(obj):
        if not is_expression(text):
            continue
        for kind, pattern in _REFERENCES.items():
            found.update((kind, m.group(1)) for m in pattern.finditer(text))
    return found


# Mermaid ----------------------------------------------------------------------------------

_ID = re.compile(r"[^A-Za-z0-9_]")


def _node_id(name: str) -> str:
    return _ID.sub("_", name)


def _label(activity: Mapping[str, Any], branch: str | None = None) -> str:
    kind = activity.get("type", "?")
    extra = f" - {branch}" if branch else ""
    return f'"{activity["name"]}<br/><small>{kind}{extra}</small>"'


def _edge(upstream: str, downstream: str, conditions: list[str]) -> str:
    if conditions == [SUCCEEDED]:
        return f"    {_node_id(upstream)} --> {_node_id(downstream)}"
    return f"    {_node_id(upstream)} -.->|{' or '.join(conditions)}| {_node_id(downstream)}"


def render_mermaid(pipeline: Mapping[str, Any], source: str) -> str:
    """The pipeline as a Mermaid flowchart: containers as subgraphs, failure paths dotted."""
    items = activities(pipeline)
    by_name = {a["name"]: a for a in items}
    lines = [
        f"%% Generated from {source} by `company-activity adf-diagram`; do not edit by hand.",
        f"%% Pipeline {pipeline.get('name')}: solid arrows run on success, dotted ones on the",
        "%% conditions they name; red boxes are the failure path (not pipeline steps).",
        "flowchart TD",
    ]
    failure_path: list[str] = []
    for name in dependency_order(items):
        activity = by_name[name]
        inner = nested(activity)
        if inner:
            lines.append(f"    subgraph {_node_id(name)}[{_label(activity)}]")
            lines.append("        direction TB")
            for branch, child in inner:
                branch_name = {"ifTrueActivities": "if true", "ifFalseActivities": "if false"}.get(
                    branch, branch
                )
                lines.append(f"        {_node_id(child['name'])}[{_label(child, branch_name)}]")
            lines.append("    end")
        else:
            lines.append(f"    {_node_id(name)}[{_label(activity)}]")
        if step_of(activity) is None:
            failure_path.append(_node_id(name))
    for name in dependency_order(items):
        for upstream, conditions in dependencies(by_name[name]):
            lines.append(_edge(upstream, name, conditions))
    if failure_path:
        lines.append("    classDef failurePath stroke:#c00,stroke-width:2px")
        lines.append(f"    class {','.join(failure_path)} failurePath")
    return "\n".join(lines) + "\n"


DIAGRAM_NAME = "diagram.mmd"


def diagram_for(factory: Factory, pipeline_name: str) -> str:
    """The diagram text for one pipeline of the factory, as adf/diagram.mmd holds it."""
    pipeline = factory.pipeline(pipeline_name)
    path = factory.paths[("pipeline", pipeline_name)]
    return render_mermaid(pipeline, f"{factory.root.name}/pipeline/{path.name}")

"""The Data Factory JSON under adf/: Microsoft's models accept it, and the graph is sound.

Nothing here talks to Azure. The resource shapes are checked against azure-mgmt-datafactory's
models; the run behaviour (which activities run, the run's final status) is checked with
company_activity.azure.adf_graph's simulation of Data Factory's documented dependency rules.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import azure.mgmt.datafactory.models as adf_models
import pytest
from azure.mgmt.datafactory._utils.model_base import Model

from company_activity.azure import adf_graph, procedures
from company_activity.cli import main as cli_main
from company_activity.pipeline import names as steps
from company_activity.pipeline.notify import RunMessage

REPO = Path(__file__).resolve().parents[1]
ADF = REPO / "adf"

RESOURCE_MODELS = {
    "pipeline": adf_models.PipelineResource,
    "dataset": adf_models.DatasetResource,
    "linkedService": adf_models.LinkedServiceResource,
    "trigger": adf_models.TriggerResource,
    "factory": adf_models.Factory,
}


@pytest.fixture(scope="module")
def factory() -> adf_graph.Factory:
    return adf_graph.load_factory(ADF)


@pytest.fixture(scope="module")
def pipeline(factory: adf_graph.Factory) -> dict[str, Any]:
    return factory.pipeline(steps.PIPELINE_NAME)


def all_resources() -> list[tuple[str, Path]]:
    return [
        (folder, path)
        for folder in adf_graph.FOLDERS
        for path in sorted((ADF / folder).glob("*.json"))
    ]


# Microsoft's models ------------------------------------------------------------------------


def _concrete(cls: type[Model], data: Any) -> type[Model]:
    """The model class a JSON object stands for, following nested discriminators.

    azure-mgmt-datafactory 10 maps Activity's discriminator in two levels (Execution,
    Container), so a plain `Activity` does not resolve "Custom"; search every level.
    """
    if not isinstance(data, dict):
        return cls
    kind = data.get("type")
    pending, seen = [cls], {cls}
    while pending:
        current = pending.pop()
        # Only a class's own mapping: subclasses inherit their parent's attribute.
        mapping: dict[str, type[Model]] = current.__dict__.get("__mapping__", {})
        if kind in mapping:
            return mapping[kind]
        for sub in mapping.values():
            if sub not in seen:
                seen.add(sub)
                pending.append(sub)
    return cls


def _rest_fields(cls: type[Model]) -> dict[str, str]:
    cls.__new__(cls)  # the SDK computes the field table on first construction
    return {rf._rest_name: attr for attr, rf in cls._attr_to_rest_field.items()}


def undeclared_fields(value: Any, path: str) -> list[str]:
    """Paths of JSON keys that the (concrete) model class does not declare."""
    problems: list[str] = []
    if isinstance(value, Model):
        cls = _concrete(type(value), value.as_dict())
        if cls is not type(value):
            value = cls(value.as_dict())
        fields = _rest_fields(cls)
        for key in value:
            if key not in fields:
                problems.append(f"{path}.{key} (not a field of {cls.__name__})")
            else:
                problems.extend(undeclared_fields(getattr(value, fields[key]), f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems.extend(undeclared_fields(item, f"{path}[{index}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            problems.extend(undeclared_fields(item, f"{path}.{key}"))
    return problems


@pytest.mark.parametrize(("folder", "path"), all_resources(), ids=lambda v: getattr(v, "name", v))
def test_resource_deserializes_through_microsofts_models_without_losing_fields(
    folder: str, path: Path
) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    model = RESOURCE_MODELS[folder](data)
    assert json.loads(json.dumps(model.as_dict())) == data
    assert undeclared_fields(model, path.stem) == []


def test_activity_types_resolve_to_their_own_models(pipeline: dict[str, Any]) -> None:
    for activity, _ in adf_graph.walk(pipeline):
        cls = _concrete(adf_models.Activity, activity)
        assert cls.__name__ != "Activity", f"{activity['name']}: type {activity['type']} unknown"


def test_the_strict_check_notices_a_misspelt_field(pipeline: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(pipeline))
    broken["properties"]["activities"][0]["policy"]["retries"] = 3
    model = adf_models.PipelineResource(broken)
    assert any("retries" in p for p in undeclared_fields(model, "x"))


def test_the_factory_has_all_five_git_folders() -> None:
    for folder in adf_graph.FOLDERS:
        assert list((ADF / folder).glob("*.json")), f"adf/{folder} is empty"


# References --------------------------------------------------------------------------------


def _references_of_type(obj: Any, ref_type: str) -> list[dict[str, Any]]:
    found = []
    if isinstance(obj, dict):
        if obj.get("type") == ref_type and "referenceName" in obj:
            found.append(obj)
        for value in obj.values():
            found.extend(_references_of_type(value, ref_type))
    elif isinstance(obj, list):
        for value in obj:
            found.extend(_references_of_type(value, ref_type))
    return found


def test_every_referenced_resource_exists(factory: adf_graph.Factory) -> None:
    everything = [r for folder in adf_graph.FOLDERS for r in factory.folder(folder).values()]
    for ref in _references_of_type(everything, "LinkedServiceReference"):
        assert ref["referenceName"] in factory.linked_services
    for ref in _references_of_type(everything, "DatasetReference"):
        dataset = factory.datasets[ref["referenceName"]]
        declared = set(dataset["properties"].get("parameters", {}))
        assert set(ref.get("parameters", {})) == declared, ref["referenceName"]
    for ref in _references_of_type(everything, "PipelineReference"):
        assert ref["referenceName"] in factory.pipelines


def test_every_dependency_names_an_activity_in_the_same_scope(pipeline: dict[str, Any]) -> None:
    def check(items: list[dict[str, Any]]) -> None:
        names = {a["name"] for a in items}
        for activity in items:
            for upstream, conditions in adf_graph.dependencies(activity):
                assert upstream in names, f"{activity['name']} depends on unknown {upstream}"
                assert conditions, f"{activity['name']} -> {upstream} has no condition"
                assert set(conditions) <= {"Succeeded", "Failed", "Skipped", "Completed"}
            for _, inner in adf_graph.nested(activity):
                check([inner])

    check(adf_graph.activities(pipeline))
    names = [a["name"] for a, _ in adf_graph.walk(pipeline)]
    assert len(names) == len(set(names)), "activity names must be unique in a pipeline"


def test_completed_never_shares_an_activity_with_succeeded_or_failed(
    pipeline: dict[str, Any],
) -> None:
    """Data Factory: an Upon Completion path cannot coexist with Upon Success or Upon Failure."""
    outgoing: dict[str, set[str]] = {}
    for activity in adf_graph.activities(pipeline):
        for upstream, conditions in adf_graph.dependencies(activity):
            outgoing.setdefault(upstream, set()).update(conditions)
    for name, conditions in outgoing.items():
        if "Completed" in conditions:
            assert not conditions & {"Succeeded", "Failed"}, name


def test_expressions_reference_only_what_is_defined(
    factory: adf_graph.Factory, pipeline: dict[str, Any]
) -> None:
    params = set(pipeline["properties"].get("parameters", {}))
    globals_ = set(factory.global_parameters())
    for activity, _ in adf_graph.walk(pipeline):
        before = adf_graph.ancestors(pipeline, activity["name"])
        for kind, name in adf_graph.references(activity):
            if kind == "parameter":
                assert name in params, f"{activity['name']}: pipeline parameter {name}"
            elif kind == "global":
                assert name in globals_, f"{activity['name']}: global parameter {name}"
            elif kind == "activity":
                assert name in before, f"{activity['name']} reads {name}, which has not run yet"
            else:
                pytest.fail(f"{activity['name']}: {kind}().{name} is not available in a pipeline")
    for name, dataset in factory.datasets.items():
        declared = set(dataset["properties"].get("parameters", {}))
        for kind, ref in adf_graph.references(dataset):
            assert kind == "dataset" and ref in declared, f"{name}: {kind} {ref}"
    for name, trigger in factory.triggers.items():
        assert not adf_graph.references(trigger), f"{name} may only use trigger() values"


def test_text_that_looks_like_an_expression_is_one(factory: adf_graph.Factory) -> None:
    calls = re.compile(r"\b(pipeline|activity|dataset|trigger|linkedService)\(")
    for folder in adf_graph.FOLDERS:
        for name, resource in factory.folder(folder).items():
            for text in adf_graph.strings(resource):
                if calls.search(text):
                    assert adf_graph.is_expression(text), f"{folder}/{name}: {text!r} is a literal"


# Policies ----------------------------------------------------------------------------------

ADF_DEFAULT_TIMEOUT = "7.00:00:00"
_TIMESPAN = re.compile(r"^(\d+\.)?\d{2}:\d{2}:\d{2}$")


def test_every_activity_with_a_policy_sets_retry_interval_and_timeout(
    pipeline: dict[str, Any],
) -> None:
    """Control activities (If Condition, Fail) have no policy in Data Factory's model."""
    checked = 0
    for activity, _ in adf_graph.walk(pipeline):
        cls = _concrete(adf_models.Activity, activity)
        if "policy" not in _rest_fields(cls):
            assert "policy" not in activity
            continue
        policy = activity.get("policy", {})
        for key in ("retry", "retryIntervalInSeconds", "timeout", "secureInput", "secureOutput"):
            assert key in policy, f"{activity['name']}: policy.{key} must be explicit"
        assert policy["retry"] >= 1, f"{activity['name']}: ADF's default of 0 retries"
        assert 30 <= policy["retryIntervalInSeconds"] <= 3600
        assert _TIMESPAN.match(policy["timeout"]) and policy["timeout"] != ADF_DEFAULT_TIMEOUT
        checked += 1
    assert checked >= 10


def test_secrets_passing_through_web_activities_are_secured(pipeline: dict[str, Any]) -> None:
    by_name = {a["name"]: a for a, _ in adf_graph.walk(pipeline)}
    for activity in by_name.values():
        url = json.dumps(activity.get("typeProperties", {}).get("url", ""))
        if "vault.azure.net" in json.dumps(
            activity.get("typeProperties", {}).get("authentication", {})
        ):
            assert activity["policy"]["secureOutput"] is True, (
                f"{activity['name']} returns a secret"
            )
        for kind, source in adf_graph.references(url):
            if kind == "activity" and by_name[source]["policy"]["secureOutput"]:
                assert activity["policy"]["secureInput"] is True, (
                    f"{activity['name']} gets a secret"
                )


# Failure handling --------------------------------------------------------------------------

FAILURE_NOTIFICATION = "notify_failure"


def _failure_path(pipeline: dict[str, Any]) -> set[str]:
    return {a["name"] for a in adf_graph.activities(pipeline) if adf_graph.step_of(a) is None}


def test_a_clean_run_succeeds_and_sends_no_failure_notification(pipeline: dict[str, Any]) -> None:
    outcome = adf_graph.simulate(pipeline)
    assert outcome.status == "Succeeded"
    assert outcome.statuses["notify"] == "Succeeded"
    assert all(outcome.statuses[n] == "Skipped" for n in _failure_path(pipeline))


def test_every_failure_reaches_the_one_failure_notification_and_the_run_ends_failed(
    pipeline: dict[str, Any],
) -> None:
    failure_path = _failure_path(pipeline)
    candidates = [a["name"] for a, _ in adf_graph.walk(pipeline) if a["name"] not in failure_path]
    assert "crm_file_missing" in candidates
    for name in candidates:
        outcome = adf_graph.simulate(pipeline, {name})
        assert outcome.statuses[FAILURE_NOTIFICATION] == "Succeeded", f"{name} fails silently"
        assert outcome.status == "Failed", f"a failing {name} leaves the run Succeeded"


def test_a_failing_failure_path_still_ends_the_run_failed(pipeline: dict[str, Any]) -> None:
    for handler in sorted(_failure_path(pipeline)):
        outcome = adf_graph.simulate(pipeline, {"load_crm", handler})
        assert outcome.status == "Failed", handler


def test_there_is_one_failure_notification_and_the_run_ends_on_a_fail_activity(
    pipeline: dict[str, Any],
) -> None:
    top = adf_graph.activities(pipeline)
    posts_failed = [
        a["name"]
        for a, _ in adf_graph.walk(pipeline)
        if a["type"] == "WebActivity"
        and a["typeProperties"].get("body", {}).get("status") == "failed"
    ]
    assert posts_failed == [FAILURE_NOTIFICATION]
    downstream = {dep for a in top for dep, _ in adf_graph.dependencies(a)}
    leaves = [a for a in top if a["name"] not in downstream]
    assert [a["type"] for a in leaves] == ["Fail"]


def test_a_missing_crm_file_fails_with_a_message_naming_the_file(pipeline: dict[str, Any]) -> None:
    gate = next(a for a in adf_graph.activities(pipeline) if a["type"] == "IfCondition")
    assert (
        gate["typeProperties"]["expression"]["value"] == "@activity('check_crm_file').output.exists"
    )
    (fail,) = gate["typeProperties"]["ifFalseActivities"]
    assert fail["type"] == "Fail"
    message = fail["typeProperties"]["message"]["value"]
    assert "crm_companies_" in message and "pipeline().parameters.run_date" in message


# Steps -------------------------------------------------------------------------------------


def test_activities_in_dependency_order_are_the_local_runners_steps(
    pipeline: dict[str, Any],
) -> None:
    assert adf_graph.step_sequence(pipeline) == list(steps.STEP_NAMES)
    names = {a["name"] for a in adf_graph.activities(pipeline)}
    assert set(steps.STEP_NAMES) <= names, "each step has an activity of the same name"
    assert pipeline["name"] == steps.PIPELINE_NAME


def test_merges_call_the_procedures_rendered_from_sql_in_the_runners_order(
    pipeline: dict[str, Any],
) -> None:
    from company_activity.model import merge as model

    rendered = {p.qualified_name: p for p in procedures.render_all(REPO / "sql")}
    by_name = {a["name"]: a for a in adf_graph.activities(pipeline)}
    calls = [
        by_name[n]
        for n in adf_graph.dependency_order(adf_graph.activities(pipeline))
        if by_name[n]["type"] == "SqlServerStoredProcedure"
    ]
    expected = [
        (steps.MERGE_DIMENSION, f"ops.usp_{Path(f).stem}") for f in model.DIMENSION_FILES
    ] + [(steps.MERGE_ANALYTICS, f"ops.usp_{Path(f).stem}") for f in model.ANALYTICS_FILES]
    assert [
        (adf_graph.step_of(a), a["typeProperties"]["storedProcedureName"]) for a in calls
    ] == expected
    assert {name for _, name in expected} == set(rendered), "every transform file is called"
    for activity in calls:
        name = activity["typeProperties"]["storedProcedureName"]
        given = activity["typeProperties"]["storedProcedureParameters"]
        assert set(given) == set(rendered[name].parameters), name
        for param, spec in given.items():
            assert spec["type"] == "String", f"{name}.{param}: ISO text converts exactly"


# Triggers ----------------------------------------------------------------------------------


def test_triggers_are_committed_stopped_and_pass_run_date(
    factory: adf_graph.Factory, pipeline: dict[str, Any]
) -> None:
    kinds = set()
    for name, trigger in factory.triggers.items():
        props = trigger["properties"]
        kinds.add(props["type"])
        assert props["runtimeState"] == "Stopped", name
        refs = props.get("pipelines") or [props["pipeline"]]
        for ref in refs:
            assert ref["pipelineReference"]["referenceName"] == steps.PIPELINE_NAME
            assert set(ref["parameters"]) == set(pipeline["properties"]["parameters"])
            assert all(v.startswith("@") and "trigger()" in v for v in ref["parameters"].values())
    assert kinds == {"ScheduleTrigger", "TumblingWindowTrigger"}


def test_the_backfill_window_runs_one_day_at_a_time(factory: adf_graph.Factory) -> None:
    (window,) = [
        t for t in factory.triggers.values() if t["properties"]["type"] == "TumblingWindowTrigger"
    ]
    props = window["properties"]["typeProperties"]
    assert props["maxConcurrency"] == 1
    assert (props["frequency"], props["interval"]) == ("Hour", 24)


# Secrets -----------------------------------------------------------------------------------

_SECRET_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"AccountKey\s*=",
        r"SharedAccessSignature\s*=",
        r"[?&]sig=",
        r"\b(password|pwd)\s*=",
        r"\bBearer\s+[A-Za-z0-9._-]{10,}",
        r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",  # a JWT
        r"DefaultEndpointsProtocol=",
        r"logic\.azure\.com",
        r"webhook\.office\.com",
    )
]
_SECRET_KEYS = {
    "password",
    "accountkey",
    "accesskey",
    "sastoken",
    "sasuri",
    "serviceprincipalkey",
    "connectionstring",
    "encryptedcredential",
    "clientsecret",
    "key",
}


def _secret_fields(obj: Any, path: str) -> list[str]:
    problems: list[str] = []
    if isinstance(obj, dict):
        if obj.get("type") == "SecureString":
            problems.append(f"{path}: SecureString literal")
        for key, value in obj.items():
            if key.lower() in _SECRET_KEYS and not (
                isinstance(value, dict) and value.get("type") == "AzureKeyVaultSecret"
            ):
                problems.append(f"{path}.{key} is not a Key Vault reference")
            problems.extend(_secret_fields(value, f"{path}.{key}"))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            problems.extend(_secret_fields(value, f"{path}[{index}]"))
    return problems


def test_no_secret_literal_anywhere_under_adf() -> None:
    files = [p for p in ADF.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern in _SECRET_PATTERNS:
            assert not pattern.search(text), f"{path}: matches {pattern.pattern}"
        if path.suffix == ".json":
            assert _secret_fields(json.loads(text), path.stem) == []


def test_the_secret_scan_catches_a_literal_key() -> None:
    leaked = {
        "typeProperties": {"connectionString": "DefaultEndpointsProtocol=https;AccountKey=abc"}
    }
    assert _secret_fields(leaked, "x")
    assert any(p.search(json.dumps(leaked)) for p in _SECRET_PATTERNS)


# Diagram -----------------------------------------------------------------------------------


def test_diagram_is_current(factory: adf_graph.Factory) -> None:
    expected = adf_graph.diagram_for(factory, steps.PIPELINE_NAME)
    assert (ADF / adf_graph.DIAGRAM_NAME).read_text(encoding="utf-8") == expected, (
        "adf/diagram.mmd is stale: run `company-activity adf-diagram`"
    )
    for activity, _ in adf_graph.walk(factory.pipeline(steps.PIPELINE_NAME)):
        assert activity["name"] in expected


def test_adf_diagram_command_writes_and_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "adf"
    for folder, path in all_resources():
        (copy / folder).mkdir(parents=True, exist_ok=True)
        (copy / folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    env_file = os.devnull
    assert cli_main(["--env-file", env_file, "adf-diagram", "--adf-dir", str(copy), "--check"]) == 1
    assert cli_main(["--env-file", env_file, "adf-diagram", "--adf-dir", str(copy)]) == 0
    assert cli_main(["--env-file", env_file, "adf-diagram", "--adf-dir", str(copy), "--check"]) == 0
    assert (copy / "diagram.mmd").read_text(encoding="utf-8") == (ADF / "diagram.mmd").read_text(
        encoding="utf-8"
    )
    capsys.readouterr()


def test_a_dependency_cycle_is_reported() -> None:
    items = [
        {"name": "a", "dependsOn": [{"activity": "b", "dependencyConditions": ["Succeeded"]}]},
        {"name": "b", "dependsOn": [{"activity": "a", "dependencyConditions": ["Succeeded"]}]},
    ]
    with pytest.raises(adf_graph.ConfigError, match="cycle"):
        adf_graph.dependency_order(items)


def test_notifications_send_the_teams_workflows_envelope_the_cli_sends(
    pipeline: dict[str, Any],
) -> None:
    """Workflows accept a bare {"text": ...} with 202 and drop it: both notify activities post
    the message-with-Adaptive-Card envelope of the local notifier, plain fields beside it."""
    local = RunMessage("p", "r", "failed", "2025-01-01", "2025-01-01", "step", "2025-01-01", "e")
    local_payload = local.payload()
    local_card = local_payload["attachments"][0]["content"]
    by_name = {a["name"]: a for a in adf_graph.activities(pipeline)}
    for name in ("notify", FAILURE_NOTIFICATION):
        body = by_name[name]["typeProperties"]["body"]
        assert body["type"] == "message", name
        plain = {"pipeline", "run_id", "status", "start_date", "end_date", "failing_step", "error"}
        assert plain <= set(body) and plain <= set(local_payload), name
        [attachment] = body["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive", name
        assert attachment["contentUrl"] is None
        card = attachment["content"]
        for key in ("$schema", "type", "version"):
            assert card[key] == local_card[key], (name, key)
        assert [b["type"] for b in card["body"]][:2] == ["TextBlock", "FactSet"], name
        assert adf_graph.is_expression(card["body"][0]["text"]), name
        facts = {f["title"] for f in card["body"][1]["facts"]}
        assert {"Run id", "Status", "Dates"} <= facts, name
    failure_facts = by_name[FAILURE_NOTIFICATION]["typeProperties"]["body"]["attachments"][0]
    assert {"Failing step", "Error"} <= {
        f["title"] for f in failure_facts["content"]["body"][1]["facts"]
    }

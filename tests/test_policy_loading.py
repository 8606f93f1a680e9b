"""Policy YAML: every error at once, with path, line, expectation and a fix."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from policies import InputError, check_policy_text, default_policy, json_schema, load_policy
from tests.builders import BROKEN

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(ROOT.glob("policies/*.yaml"))


def issues_of(text: str):
    try:
        _, issues = check_policy_text(text, "p.yaml")
    except InputError as exc:
        return exc.issues
    return issues


def test_reports_every_schema_error_at_once_with_lines():
    issues = {i.path: i for i in issues_of(BROKEN)}
    # The unknown instance type is a check against the catalog, not the schema; it is reported beside
    # the schema errors, not after they are fixed.
    assert set(issues) == {"spec.local.maxWaitSecond", "spec.local.hotUtilizationPercent", "spec.sageMaker.emit",
                           "spec.budgets.default.dailyUsd", "spec.sageMaker.quotas.ml.p4d.24xlarg"}
    assert issues["spec.sageMaker.quotas.ml.p4d.24xlarg"].line == 10
    assert issues["spec.local.maxWaitSecond"].line == 5
    assert issues["spec.local.maxWaitSecond"].fix == "did you mean 'maxWaitSeconds'?"
    assert issues["spec.local.hotUtilizationPercent"].line == 6
    assert "250" in issues["spec.local.hotUtilizationPercent"].problem
    assert issues["spec.sageMaker.emit"].line == 8
    assert "'ack', 'legacy' or 'api'" in issues["spec.sageMaker.emit"].fix
    assert issues["spec.budgets.default.dailyUsd"].line == 12


def test_semantic_errors_name_the_type_and_suggest_the_right_one():
    text = BROKEN.replace("maxWaitSecond:", "maxWaitSeconds:").replace("250", "95").replace("helm", "ack")
    text = text.replace("-5", "5")
    errors = [i for i in issues_of(text) if i.severity == "error"]
    assert len(errors) == 1
    assert errors[0].path == "spec.sageMaker.quotas.ml.p4d.24xlarg"
    assert errors[0].line == 10
    assert errors[0].fix == "did you mean 'ml.p4d.24xlarge'?"


def test_a_bad_region_is_reported_beside_other_errors():
    text = BROKEN.replace("emit: helm", "emit: helm\n    region: mars-1")
    issues = {i.path: i for i in issues_of(text)}
    assert "spec.sageMaker.region" in issues and "mars-1" in issues["spec.sageMaker.region"].problem
    assert "spec.sageMaker.emit" in issues


@pytest.mark.parametrize("value", ["1e400", ".inf", "-.inf", ".nan"])
def test_an_infinite_number_is_refused_not_read_as_no_limit(value):
    issues = issues_of(BROKEN.replace("dailyUsd: -5", f"dailyUsd: {value}"))
    daily = next(i for i in issues if i.path == "spec.budgets.default.dailyUsd")
    assert "finite" in daily.problem and "leave the key out" in daily.fix


def test_unknown_top_level_section_lists_the_allowed_keys_when_nothing_is_close():
    issues = issues_of("apiVersion: spillway.io/v1alpha1\nkind: BurstPolicy\nspec:\n  zzz: 1\n")
    assert issues[0].path == "spec.zzz" and "managedJobs" in issues[0].fix


@pytest.mark.parametrize("text, expect", [
    ("spec: [1, 2\n", "not valid YAML"),
    ("", "empty"),
    ("- a\n- b\n", "expected a mapping at the top level"),
    ("kind: ClusterSnapshot\n", "expected kind BurstPolicy"),
])
def test_unparseable_documents_get_one_clear_issue(text, expect):
    with pytest.raises(InputError) as exc:
        load_policy(text, "p.yaml")
    assert expect in str(exc.value)
    assert str(exc.value).startswith("p.yaml")


def test_budget_daily_above_monthly_is_refused():
    text = "kind: BurstPolicy\nspec:\n  budgets:\n    namespaces:\n      ml: {dailyUsd: 900, monthlyUsd: 100}\n"
    with pytest.raises(InputError, match="dailyUsd 900.0 exceeds monthlyUsd 100.0"):
        load_policy(text)


def test_warnings_do_not_fail_validation():
    policy, issues = check_policy_text("kind: BurstPolicy\nspec: {}\n")
    assert [i.severity for i in issues] == ["warning"]
    assert "no namespace may burst" in issues[0].problem
    assert policy.spec.local.max_wait_seconds == 10_000_000


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_shipped_examples_validate_without_errors(path):
    _, issues = check_policy_text(path.read_text(), str(path))
    assert not [i for i in issues if i.severity == "error"]


def test_there_are_default_cost_first_and_deadline_first_examples():
    assert {p.name for p in EXAMPLES} >= {"default.yaml", "cost-first.yaml", "deadline-first.yaml"}


def test_examples_differ_along_the_tradeoff_knob():
    rates = {p.stem: load_policy(p.read_text()).spec.tradeoff.wait_usd_per_hour for p in EXAMPLES}
    assert rates["cost-first"] < rates["default"] < rates["deadline-first"]


def test_json_schema_validates_the_examples_and_rejects_a_typo():
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text())))
    bad = yaml.safe_load(BROKEN)
    assert list(validator.iter_errors(bad))
    json.dumps(schema)


def test_show_round_trips_the_effective_policy():
    policy = default_policy()
    again = load_policy(yaml.safe_dump(policy.to_yaml_dict()))
    assert again == policy


def test_default_policy_is_package_data():
    assert resources.files("policies").joinpath("default.yaml").is_file()

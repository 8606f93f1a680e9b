"""The spillway command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scheduler.cli import main
from tests.builders import BROKEN

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "policies" / "examples"


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_explain_with_no_arguments_uses_the_bundled_examples(capsys):
    code, out, _ = run(capsys, "explain")
    assert code == 0
    assert "bundled example" in out
    # 1.75 h of waiting is worth $26.25 at $15 an hour; the spot burst scores $36.18: it waits.
    assert "Placement  Wait" in out and "Reason     WaitingForLocalCapacity" in out
    assert "value of waiting          $15.00 per hour" in out and "forecast local start" in out
    code, out, _ = run(capsys, "explain", "--policy", str(ROOT / "policies" / "deadline-first.yaml"))
    assert "Placement  SageMakerSpot" in out and "Reason     SpotSafeWithinDeadline" in out
    assert "MaxWaitTimeInSeconds" in out


def test_explain_json_feeds_other_tools(capsys):
    code, out, _ = run(capsys, "explain", str(EXAMPLES / "job.yaml"), "--cluster", str(EXAMPLES / "cluster.yaml"),
                       "--policy", str(ROOT / "policies" / "deadline-first.yaml"), "-o", "json")
    data = json.loads(out)
    assert code == 0 and data["placement"] == "SageMakerSpot"
    assert {o["placement"] for o in data["evidence"]["options"]} == {"Local", "SageMakerOnDemand", "SageMakerSpot"}


def test_explain_yaml_and_now_override(capsys):
    code, out, _ = run(capsys, "explain", "--now", "2026-11-28T14:41:00Z", "-o", "yaml")
    data = yaml.safe_load(out)
    assert code == 0 and data["evidence"]["now"] == "2026-11-28T14:41:00Z"


def test_explain_reports_a_broken_job_with_field_and_fix(capsys, tmp_path):
    job = yaml.safe_load((EXAMPLES / "job.yaml").read_text())
    job["metadata"]["annotations"]["spillway.io/deadline"] = "tomorrow"
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    code, _, err = run(capsys, "explain", str(path))
    assert code == 1
    assert 'metadata.annotations["spillway.io/deadline"]' in err and "RFC 3339" in err
    assert "Traceback" not in err


def test_missing_file_is_a_message_not_a_traceback(capsys):
    code, _, err = run(capsys, "explain", "nope.yaml")
    assert code == 1 and "nope.yaml: error: (document): file not found" in err


def test_plan_table_and_json(capsys, tmp_path):
    snap = yaml.safe_load((EXAMPLES / "cluster.yaml").read_text())
    snap["pending"] = [yaml.safe_load((EXAMPLES / "job.yaml").read_text())]
    path = tmp_path / "snapshot.yaml"
    path.write_text(yaml.safe_dump(snap))
    code, out, _ = run(capsys, "plan", "--cluster", str(path))
    assert code == 0 and "ml-research/finetune-llama-7b" in out and "planner: greedy" in out
    code, out, _ = run(capsys, "plan", "--cluster", str(path), "--optimizer", "cpsat", "-o", "json")
    data = json.loads(out)
    assert data["solver"]["optimizer"] == "cpsat" and len(data["decisions"]) == 1


def test_plan_with_no_arguments_plans_the_bundled_queue_in_queue_order(capsys, tmp_path):
    code, out, _ = run(capsys, "plan")
    assert code == 0 and "bundled example" in out
    rows = [line.split()[0] for line in out.splitlines() if line.startswith("default/finetune-")]
    assert rows == [f"default/finetune-{i}" for i in range(1, 6)]
    # Rows follow the queue (creation time), not the names: the last-created Job comes last.
    later = tmp_path / "later.yaml"
    first = tmp_path / "first.yaml"
    job = yaml.safe_load((EXAMPLES / "job.yaml").read_text())
    for path, name, created in ((later, "a-created-last", "2026-11-28T14:59:00Z"),
                                (first, "z-created-first", "2026-11-28T10:00:00Z")):
        job["metadata"].update(name=name, creationTimestamp=created)
        path.write_text(yaml.safe_dump(job))
    code, out, _ = run(capsys, "plan", str(later), str(first), "-o", "json")
    assert [d["job"] for d in json.loads(out)["decisions"]] == ["ml-research/z-created-first",
                                                               "ml-research/a-created-last"]


def test_plan_of_an_empty_queue_says_what_to_give(capsys):
    code, _, err = run(capsys, "plan", "--cluster", str(EXAMPLES / "cluster.yaml"))
    assert code == 1 and "nothing to plan" in err and "spillway plan jobs.yaml" in err


def test_policy_validate_exit_codes(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    code, out, _ = run(capsys, "policy", "validate", str(ROOT / "policies" / "default.yaml"), str(bad))
    assert code == 1
    assert "default.yaml: valid" in out and "bad.yaml: INVALID (5 error(s)" in out
    assert f"{bad}:5: error: spec.local.maxWaitSecond: unknown key 'maxWaitSecond' (fix: did you mean 'maxWaitSeconds'?)" in out
    code, out, _ = run(capsys, "policy", "validate", str(bad), "-o", "json")
    assert json.loads(out)[0]["valid"] is False


def test_policy_show_and_schema(capsys):
    code, out, _ = run(capsys, "policy", "show")
    assert code == 0 and yaml.safe_load(out)["spec"]["local"]["maxWaitSeconds"] == 10_000_000
    code, out, _ = run(capsys, "policy", "schema")
    assert code == 0 and json.loads(out)["title"].startswith("Spillway BurstPolicy")


def test_catalog_lists_every_required_family(capsys):
    code, out, _ = run(capsys, "catalog", "-o", "json")
    names = {row["instanceType"].split(".")[1] for row in json.loads(out)}
    assert code == 0 and {"p3", "p3dn", "p4d", "p4de", "p5", "g4dn", "g5", "g6", "g6e", "trn1"} <= names


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--cluster" in out


SCRIPT = Path(sys.executable).parent / "spillway"


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is installed by `pip install -e .`")
def test_console_script_runs_the_readme_main_command():
    proc = subprocess.run([str(SCRIPT), "explain"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Placement  Wait" in proc.stdout and "value of waiting          $15.00 per hour" in proc.stdout


@pytest.mark.slow
def test_demo_runs_the_controller_on_the_sandbox_and_accounts_for_every_job():
    out = subprocess.run([str(Path(sys.executable).parent / "spillway"), "demo", "--jobs", "12", "--time-scale",
                          "3000", "-o", "json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    summary, rows = data["summary"], data["jobs"]
    assert summary["jobs"] == summary["finished"] == len(rows) == 12
    assert summary["local"] >= 1 and summary["sagemaker"] >= 1, "the burst overflows the 32-GPU cluster"
    cloud = [r for r in rows if r["placement"].startswith("SageMaker")]
    assert all(r["outcome"] == "Complete" and r["cost_usd"] > 0 for r in cloud), "a burst completes as a Job"
    assert summary["cloud_usd"] == pytest.approx(sum(r["cost_usd"] for r in cloud), abs=0.01)
    assert all(r["outcome"] == "Complete" and r["cost_usd"] == 0 for r in rows if r["placement"] == "Local")
    assert "arrived 12/12" in out.stderr  # the live view

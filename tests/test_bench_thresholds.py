"""bench/thresholds.yaml: each bench's goals as ranges, checked by the bench after its run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import thresholds  # noqa: E402

GOALS = yaml.safe_load((BENCH / "thresholds.yaml").read_text())
SCRIPTS = sorted(p.stem for p in BENCH.glob("bench_*.py"))


def test_every_bench_has_goals_and_checks_them():
    assert sorted(GOALS) == SCRIPTS
    for name in SCRIPTS:
        source = (BENCH / f"{name}.py").read_text()
        assert f'thresholds.report("{name}", ' in source, f"{name}.py does not check its goals"


@pytest.mark.parametrize("bench", sorted(GOALS))
def test_each_goal_is_a_range_with_a_reason_on_a_figure_the_bench_makes(bench):
    source = (BENCH / f"{bench}.py").read_text()
    for path, goal in GOALS[bench].items():
        assert set(goal) <= {"min", "max", "why"} and goal.get("why"), (bench, path)
        low, high = goal.get("min"), goal.get("max")
        assert low is not None or high is not None, (bench, path)
        assert low is None or high is None or low <= high, (bench, path)
        last = path.split("/")[-1]
        # the figure's name is in the script: a key it writes, or the end of one it composes
        # (f"{rule}_deadline_misses", f"plan_{optimizer}_{n}_s")
        suffix = "_s" if last.endswith("_s") else "_" + "_".join(last.split("_")[-2:])
        assert f'"{last}"' in source or f'{suffix}"' in source, (bench, path)


def test_a_figure_is_read_by_its_path_and_judged_against_its_range():
    figures = {"1.5": {"compute-wait": {"savings_pct": 60.0}}, "misses": 0, "ok": True, "slow": 7.5}
    assert thresholds.figure(figures, "1.5/compute-wait/savings_pct") == 60.0
    assert thresholds.figure(figures, "2.0/compute-wait/savings_pct") is None
    assert thresholds.verdict(60.0, {"min": 54, "max": 91}) == "PASS"
    assert thresholds.verdict(53.9, {"min": 54, "max": 91}) == "FAIL"
    assert thresholds.verdict(91.1, {"min": 54, "max": 91}) == "FAIL"
    assert thresholds.verdict(True, {"min": 1}) == "PASS"
    assert thresholds.verdict(False, {"min": 1}) == "FAIL"
    assert thresholds.verdict(None, {"max": 0}) == "SKIP"
    assert thresholds.verdict({"error": "x"}, {"max": 0}) == "SKIP"


def test_report_prints_a_line_per_goal_and_says_whether_all_were_met(capsys):
    met = {"goal1_pass": True, "forecast_pass": True}  # goal 2 not run: skipped, not failed
    assert thresholds.report("bench_quality", met) is True
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["PASS", "PASS", "SKIP"]
    assert thresholds.report("bench_quality", {**met, "forecast_pass": False}) is False
    assert "FAIL bench_quality: forecast_pass = False" in capsys.readouterr().err

"""The simulator with transform and tuning Jobs: the trace columns, the engine's runs of each kind
as the core decides them, and the report's rows per kind, against figures worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import InputError
from policies.model import SageMakerKind, Strategy
from sim.traces import load_user_csv

H = 3600.0
EXAMPLE = Path(__file__).resolve().parent.parent / "policies" / "examples" / "mixed-kinds-trace.csv"
TUNING, TRANSFORM = SageMakerKind.TUNING, SageMakerKind.TRANSFORM


# --- the trace ------------------------------------------------------------------------------------


def test_the_example_trace_has_all_three_kinds_with_their_shapes():
    jobs = {j.name: j for j in load_user_csv(EXAMPLE)}
    assert {j.kind for j in jobs.values()} == set(SageMakerKind)
    sweep = jobs["sweep-lr"]
    assert (sweep.kind, sweep.trials, sweep.pods, sweep.strategy, sweep.waves) == (TUNING, 8, 4, Strategy.RANDOM, 2)
    assert sweep.run_seconds == 2 * H and sweep.gpu_seconds == 8 * H  # 2 waves of 1 h; 8 trials x 1 GPU x 1 h
    assert jobs["sweep-grid"].strategy == Strategy.GRID and jobs["sweep-arch"].strategy == Strategy.BAYESIAN
    assert (jobs["score-batch"].kind, jobs["score-batch"].pods, jobs["score-batch"].trials) == (TRANSFORM, 2, 1)
    assert jobs["finetune-a"].kind == SageMakerKind.TRAINING  # an empty kind is training


def row_problems(tmp_path, rows: str) -> dict[int, tuple[str, str]]:
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,gpus,duration_s,pods,kind,trials,strategy\n" + rows)
    with pytest.raises(InputError) as exc:
        load_user_csv(path)
    return {i.line: (i.problem, i.fix) for i in exc.value.issues if i.line is not None}


def test_bad_kind_values_name_the_row_the_column_and_the_fix(tmp_path):
    problems = row_problems(tmp_path, "0,1,60,1,Tune,,\n0,1,60,2,transform,3,\n0,1,60,2,tuning,,\n"
                                      "0,1,60,2,tuning,0,\n0,1,60,2,tuning,4,Sobol\n0,1,60,2,tuning,4,grid\n")
    assert set(problems) == {2, 3, 4, 5, 6}  # line 7 (grid, any case) is good
    assert problems[2] == ("kind='Tune' is not a kind of Job", "write training, transform or tuning (empty: training)")
    assert problems[3][0] == "trials given on a transform row; only a tuning sweep has them"
    assert "trials is empty" in problems[4][0] and "pods is how many run at once" in problems[4][1]
    assert problems[5][0] == "trials='0' must be at least 1"
    assert problems[6] == ("strategy='Sobol' is not a tuning strategy",
                           "write one of Random, Grid, Bayesian, Hyperband (empty: Random)")

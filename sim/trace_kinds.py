"""The columns of a user's CSV trace that say what kind of SageMaker work a Job is, read per row.

A row is a training Job unless its `kind` says otherwise. A batch transform row is priced by its
instances (`pods`, the Job's parallelism) at the transform price; a tuning row is a sweep: its
`duration_s` is one trial's run time, `pods` the trials run at once and `trials` how many in all
(the Indexed Job's parallelism and completions, as the core reads them from a manifest).
"""

from __future__ import annotations

from typing import Callable

from policies.model import SageMakerKind, Strategy

KIND_COLUMNS = {
    "kind": "training (default) | transform | tuning: what it runs as if it bursts",
    "trials": "tuning: trials in the sweep (required); duration_s is one trial's",
    "strategy": "tuning: Random (default) | Grid | Bayesian | Hyperband (the last only bursts)",
}
_COLUMNS_FIX = "see the column list in `spillway sim --help`"


class RowProblem(ValueError):
    """A bad value in a trace row, with the fix that goes with it."""

    def __init__(self, problem: str, fix: str = _COLUMNS_FIX):
        super().__init__(problem)
        self.fix = fix


def kind_fields(row: dict, whole: Callable[[str], int | None]) -> tuple[SageMakerKind, int, Strategy]:
    """(kind, trials, strategy) of a row; whole(column) reads a whole number >= 1, or None when empty.
    A tuning field on a row of another kind is refused rather than ignored: the row meant something."""
    raw = (row.get("kind") or "").strip()
    kind = next((k for k in SageMakerKind if k.value == raw.lower()), None) if raw else SageMakerKind.TRAINING
    if kind is None:
        raise RowProblem(f"kind={raw!r} is not a kind of Job", "write training, transform or tuning (empty: training)")
    trials = whole("trials")
    strategy_raw = (row.get("strategy") or "").strip()
    if kind != SageMakerKind.TUNING:
        extra = [col for col, given in (("trials", trials is not None), ("strategy", bool(strategy_raw))) if given]
        if extra:
            raise RowProblem(f"{' and '.join(extra)} given on a {kind.value} row; only a tuning sweep has them",
                             "write kind=tuning, or leave them empty")
        return kind, 1, Strategy.RANDOM
    if trials is None:
        raise RowProblem("trials is empty; a tuning row needs how many trials the sweep runs",
                         "write trials (completions), e.g. 8; pods is how many run at once")
    strategy = next((s for s in Strategy if s.value.lower() == strategy_raw.lower()), None) if strategy_raw \
        else Strategy.RANDOM
    if strategy is None:
        raise RowProblem(f"strategy={strategy_raw!r} is not a tuning strategy",
                         f"write one of {', '.join(s.value for s in Strategy)} (empty: Random)")
    return kind, trials, strategy

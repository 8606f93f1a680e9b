"""Independent simulation runs, spread over the machine's cores.

`spillway sim --compare` and `spillway tune` hand their runs here. Each run is a pure function of
its inputs (the simulator is deterministic), so the results are those of running them one after
the other, in the same order, whatever the number of workers. Progress goes to stderr with an ETA.
With a Ray address, the runs go to that cluster instead (sim/ray_backend.py).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_all(fn: Callable[[T], R], tasks: Sequence[T], *, workers: int, label: str, progress: bool = True,
            ray_address: str | None = None) -> list[R]:
    """fn(task) for every task, results in task order. fn must be a module-level function (it runs
    in worker processes when workers > 1, or as Ray tasks on the cluster at `ray_address`)."""
    from tqdm import tqdm  # the sim extra: `spillway run` builds this parser without it

    if ray_address:
        from .ray_backend import run_on_ray

        return run_on_ray(fn, tasks, address=ray_address, label=label, progress=progress)
    workers = max(1, min(workers, len(tasks)))
    bar = tqdm(total=len(tasks), desc=label, unit="run", file=sys.stderr, disable=not progress or len(tasks) < 2,
               dynamic_ncols=True)
    results: list = [None] * len(tasks)
    try:
        if workers == 1:
            for i, task in enumerate(tasks):
                results[i] = fn(task)
                bar.update()
            return results
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
        return results
    finally:
        bar.close()

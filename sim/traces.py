"""Job traces: the bundled Philly trace, Alibaba OpenB pods, a user's CSV, and generators.

Every loader returns TraceJobs sorted by arrival. Malformed rows are reported with the file, the
line and what was expected (policies.InputError), never as a traceback.
"""

from __future__ import annotations

import csv
import math
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np

from policies import InputError, InputIssue
from policies.model import SageMakerKind, Strategy, value

from .files import text_lines
from .trace_kinds import KIND_COLUMNS, kind_fields

USER_CSV_COLUMNS = {
    "arrival_s": "seconds from the start of the trace (required)",
    "gpus": "GPUs per pod (required)",
    "duration_s": "run time in seconds (required)",
    "pods": "pods in the gang (default 1); transform: instances; tuning: trials at once",
    "gpu_product": "nvidia.com/gpu.product the Job selects (default: any)",
    "deadline_s": "deadline, seconds from the start of the trace (default: none)",
    "namespace": "Kubernetes namespace (default: default)",
    "checkpointable": "true/false: may run on spot (default: false)",
    "name": "Job name (default: job-<row>)",
    **KIND_COLUMNS,
}


@value
class TraceJob:
    id: int
    arrival_s: float
    gpus_per_pod: int
    duration_s: float
    pods: int = 1
    gpu_product: str | None = None
    deadline_s: float | None = None
    namespace: str = "default"
    checkpointable: bool = False
    name: str = ""
    kind: SageMakerKind = SageMakerKind.TRAINING  # what it runs as on SageMaker if it bursts
    trials: int = 1  # tuning: trials in the sweep; duration_s is one trial's, pods the trials at once
    strategy: Strategy = Strategy.RANDOM  # tuning: the search (Hyperband runs only on SageMaker)

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_pod * self.pods

    @property
    def waves(self) -> int:
        """Rounds of `pods` trials a sweep runs in (1 for any other Job), as JobRequest.waves."""
        return -(-self.trials // self.pods) if self.kind == SageMakerKind.TUNING else 1

    @property
    def run_seconds(self) -> float:
        """How long the Job runs on the cluster as the core models it: a sweep holds its pods for
        its waves of trials; any other Job for duration_s."""
        return self.duration_s * self.waves if self.kind == SageMakerKind.TUNING else self.duration_s

    @property
    def gpu_seconds(self) -> float:
        """The work: a sweep's trials x GPUs x trial, not the idle pods of its last wave."""
        if self.kind == SageMakerKind.TUNING:
            return self.trials * self.gpus_per_pod * self.duration_s
        return self.total_gpus * self.duration_s


def bundled_philly_path() -> Path:
    return Path(str(resources.files("sim").joinpath("data/philly_jobs_weeks00-11.csv.gz")))


def _csv_reader(path: Path, what: str, fix: str):
    """The header and a generator of (line number, row). Anything that makes the file unreadable as
    CSV (not text, a NUL byte, an unterminated quote) is an InputError naming the file and line."""
    reader = csv.DictReader(text_lines(path, what))

    def problem(exc: csv.Error) -> InputError:
        return InputError([InputIssue(str(path), f"line {reader.line_num}", f"not a CSV file: {exc}", fix,
                                      reader.line_num or None)])

    try:
        header = list(reader.fieldnames or [])
    except csv.Error as exc:
        raise problem(exc) from None

    def rows():
        try:
            yield from enumerate(reader, start=2)
        except csv.Error as exc:
            raise problem(exc) from None

    return header, rows()


def _ragged(row: dict, header: list[str]) -> str | None:
    """Why a row does not match the header, or None. DictReader files surplus fields under the key
    None and fills missing ones with None; either would otherwise be read as a silent guess."""
    if None in row:
        return f"{len(row[None])} field(s) more than the header's {len(header)} (a stray comma?)"
    if None in row.values():
        return f"fewer fields than the header's {len(header)}"
    return None


def csv_rows(path: Path, required: set[str], header_fix: str, what: str = "a CSV file"):
    """(line number, row) of a CSV file (gzip or plain), after checking the header has `required`."""
    header, rows = _csv_reader(path, what, header_fix)
    missing = required - set(header)
    if missing:
        raise InputError([InputIssue(str(path), "header", f"missing columns {sorted(missing)}", header_fix, 1)])
    for lineno, row in rows:
        ragged = _ragged(row, header)
        if ragged:
            raise InputError([InputIssue(str(path), f"line {lineno}", ragged,
                                         f"give every row the header's {len(header)} columns", lineno)])
        yield lineno, row


def load_philly(path: Path | None = None, weeks: tuple[int, int] | None = None,
                namespace: str = "philly") -> list[TraceJob]:
    """Philly (RFold compact CSV). weeks=(first, last) inclusive, counted from arrival 0."""
    path = path or bundled_philly_path()
    jobs: list[TraceJob] = []
    issues: list[InputIssue] = []
    rows = csv_rows(Path(path), {"job_id", "arrival_s", "num_gpus", "placement", "duration_s"},
                    "use the Philly compact CSV (job_id,arrival_s,num_gpus,placement,duration_s)")
    for lineno, row in rows:
        try:
            arrival = float(row["arrival_s"])
            parts = [int(p) for p in row["placement"].split("+")]
            duration = float(row["duration_s"])
            total = int(row["num_gpus"])
        except (TypeError, ValueError) as exc:
            issues.append(InputIssue(str(path), f"line {lineno}", f"bad value: {exc}",
                                     "numbers for arrival_s, num_gpus, duration_s; placement like 8+8", lineno))
            if len(issues) >= 20:
                break
            continue
        if weeks is not None and not (weeks[0] * 604800 <= arrival < (weeks[1] + 1) * 604800):
            continue
        if duration <= 0 or total <= 0:
            continue  # 6 zero-length jobs in weeks 0-11: nothing to schedule
        pods = len(parts)
        jobs.append(TraceJob(int(row["job_id"]), arrival, max(parts), duration, pods, None, None,
                             namespace, False, f"philly-{row['job_id']}"))
    if issues:
        raise InputError(issues)
    return _rebase(jobs)


OPENB_URL = "https://raw.githubusercontent.com/alibaba/clusterdata/master/cluster-trace-gpu-v2023/csv/"


def load_alibaba(path: Path, namespace: str = "openb") -> list[TraceJob]:
    """Alibaba OpenB pods (clusterdata cluster-trace-gpu-v2023): whole-GPU pods that ran. Reads the
    upstream openb_pod_list_default.csv (name, num_gpu, gpu_milli, creation_time, scheduled_time,
    deletion_time) or its converted form (pod_id, creation_s, duration_s, num_gpu, gpu_milli)."""
    fix = f"use openb_pod_list_default.csv (download it from {OPENB_URL})"
    header, rows = _csv_reader(Path(path), f"Alibaba's openb_pod_list_default.csv ({OPENB_URL})", fix)
    upstream = {"name", "num_gpu", "gpu_milli", "creation_time", "scheduled_time", "deletion_time"}
    converted = {"creation_s", "num_gpu", "gpu_milli", "duration_s"}
    if not (upstream <= set(header) or converted <= set(header)):
        raise InputError([InputIssue(str(path), "header", f"missing columns {sorted(upstream - set(header))}",
                                     fix, 1)])
    is_upstream = upstream <= set(header)
    jobs = []
    for lineno, row in rows:
        ragged = _ragged(row, header)
        if ragged:
            raise InputError([InputIssue(str(path), f"line {lineno}", ragged, fix, lineno)])
        try:
            gpus, milli = int(row["num_gpu"]), int(row["gpu_milli"])
            if is_upstream:
                if gpus <= 0 or not row["scheduled_time"]:
                    continue  # CPU-only, or never scheduled (Pending)
                arrival = float(row["creation_time"])
                duration = float(row["deletion_time"]) - float(row["scheduled_time"])
            else:
                if gpus <= 0 or not row["duration_s"]:
                    continue
                arrival, duration = float(row["creation_s"]), float(row["duration_s"])
        except ValueError as exc:
            raise InputError([InputIssue(str(path), f"line {lineno}", f"bad row: {exc}", fix, lineno)]) from None
        if duration <= 0:
            continue
        # A fractional-GPU pod still needs a whole device under nvidia.com/gpu.
        name = row.get("pod_id") or row.get("name") or f"pod-{lineno}"
        jobs.append(TraceJob(lineno, arrival, gpus if milli >= 1000 else 1, duration, 1, None, None,
                             namespace, False, name))
    return _rebase(jobs)


def load_openb_nodes(path: Path) -> list[tuple[str, int, str | None]]:
    """(name, GPUs, GPU model) of each node of the Alibaba OpenB inventory: the upstream
    openb_node_list_all_node.csv (sn, gpu, model) or its converted form (node_id, num_gpu, gpu_model)."""
    fix = f"use openb_node_list_all_node.csv (download it from {OPENB_URL})"
    header, rows = _csv_reader(Path(path), f"Alibaba's openb_node_list_all_node.csv ({OPENB_URL})", fix)
    names = ("sn", "gpu", "model") if "sn" in header else ("node_id", "num_gpu", "gpu_model")
    if not set(names) <= set(header):
        raise InputError([InputIssue(str(path), "header", f"missing columns {sorted(set(names) - set(header))}",
                                     fix, 1)])
    nodes, issues = [], []
    for lineno, row in rows:
        problem = _ragged(row, header)
        if problem is None:
            try:
                nodes.append((row[names[0]], int(row[names[1]]), (row[names[2]] or "").strip() or None))
                continue
            except ValueError:
                problem = f"{names[1]}={row[names[1]]!r} is not a whole number of GPUs"
        issues.append(InputIssue(str(path), f"line {lineno}", problem, fix, lineno))
    if issues:
        raise InputError(issues[:20])
    return nodes


def load_user_csv(path: Path) -> list[TraceJob]:
    """A user's own trace; the schema is USER_CSV_COLUMNS (spillway sim --help prints it)."""
    issues: list[InputIssue] = []
    jobs: list[TraceJob] = []
    header, rows = _csv_reader(Path(path), "a CSV trace (columns: see `spillway sim --help`)",
                               "see the column list in `spillway sim --help`")
    issues += _header_issues(path, header)
    if any(i.severity == "error" for i in issues):
        raise InputError(issues)
    named: dict[tuple[str, str], int] = {}  # (namespace, name) -> the line that named it first
    for lineno, row in rows:
        try:
            ragged = _ragged(row, header)
            if ragged:
                raise ValueError(ragged)
            job = _user_row(row, lineno)
        except ValueError as exc:
            issues.append(InputIssue(str(path), f"line {lineno}", str(exc),
                                     getattr(exc, "fix", "see the column list in `spillway sim --help`"), lineno))
            if sum(i.severity == "error" for i in issues) >= 20:
                break
            continue
        first = named.setdefault((job.namespace, job.name), lineno)
        if first != lineno:
            issues.append(InputIssue(str(path), f"line {lineno}", f"name {job.name!r} (namespace {job.namespace!r}) "
                                     f"is already the Job of line {first}, and a name identifies one Job",
                                     "rename one, or leave name empty (it becomes job-<row>)", lineno))
            continue
        jobs.append(job)
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise InputError(errors)
    if not jobs:
        raise InputError([InputIssue(str(path), "", "the trace has no jobs", "add rows below the header")])
    return sorted(jobs, key=lambda j: (j.arrival_s, j.id))


def _header_issues(path: Path, header: list[str]) -> list[InputIssue]:
    """A user trace's header: the required columns missing (errors), and unknown ones (warnings)."""
    issues: list[InputIssue] = []
    for col in ("arrival_s", "gpus", "duration_s"):
        if col not in header:
            issues.append(InputIssue(str(path), "header", f"missing column '{col}'",
                                     f"add it: {USER_CSV_COLUMNS[col]}", 1))
    unknown = set(header) - set(USER_CSV_COLUMNS)
    if unknown:
        import difflib

        for col in sorted(unknown):
            close = difflib.get_close_matches(col, list(USER_CSV_COLUMNS), n=1)
            issues.append(InputIssue(str(path), "header", f"unknown column '{col}'",
                                     f"did you mean '{close[0]}'?" if close else "remove it", 1, "warning"))
    return issues


def _user_row(row: dict, lineno: int) -> TraceJob:
    def number(col: str, cast=float, required=True, minimum=0.0):
        raw = (row.get(col) or "").strip()
        if not raw:
            if required:
                raise ValueError(f"{col} is empty; expected {USER_CSV_COLUMNS[col]}")
            return None
        try:
            value = cast(raw)
        except ValueError:
            raise ValueError(f"{col}={raw!r} is not a {'whole ' if cast is int else ''}number") from None
        if not math.isfinite(value) or value < minimum:
            raise ValueError(f"{col}={raw!r} must be at least {minimum:g}")
        return value

    gpus = number("gpus", int, minimum=1)  # a Job without GPUs is not this simulator's business
    duration = number("duration_s", minimum=1e-9)
    deadline = number("deadline_s", required=False)
    flag = (row.get("checkpointable") or "false").strip().lower()
    if flag not in ("true", "false", "1", "0", "yes", "no", ""):
        raise ValueError(f"checkpointable={flag!r}; expected true or false")
    pods = number("pods", int, False, 1) or 1
    return TraceJob(lineno - 1, number("arrival_s"), gpus, duration, pods,
                    (row.get("gpu_product") or "").strip() or None, deadline,
                    (row.get("namespace") or "default").strip() or "default", flag in ("true", "1", "yes"),
                    (row.get("name") or "").strip() or f"job-{lineno - 1}",
                    *kind_fields(row, lambda col: number(col, int, False, 1)))


def synthetic(n: int, rate_per_hour: float, seed: int, *, mean_runtime_hours: float = 1.0,
              gpu_choices=(1, 2, 4, 8), gpu_probs=(0.70, 0.15, 0.10, 0.05), cv: float = 1.0,
              namespace: str = "synthetic", checkpointable_fraction: float = 0.0) -> list[TraceJob]:
    """Gamma inter-arrivals (CV=1 is Poisson), exponential run times, the 'Philly' GPU mix."""
    rng = np.random.default_rng(seed)
    shape = 1.0 / (cv * cv)
    gaps = rng.gamma(shape, 1.0 / (shape * rate_per_hour), n) * 3600
    gaps[0] = 0.0
    arrivals = np.cumsum(gaps)
    runtimes = rng.exponential(mean_runtime_hours * 3600, n)
    gpus = rng.choice(gpu_choices, n, p=gpu_probs)
    ckpt = rng.random(n) < checkpointable_fraction
    return [TraceJob(i, float(arrivals[i]), int(gpus[i]), max(float(runtimes[i]), 1.0), 1, None, None,
                     namespace, bool(ckpt[i]), f"syn-{i}") for i in range(n)]


def starburst_sb1() -> list[TraceJob]:
    """Case SB-1 (Starburst, ATC'24, Table 4): 500 jobs from NumPy's legacy generator, seed 13.

    Drawn in the published order: 499 Gamma(1, 1/16 h) inter-arrivals with a 0 prepended, 500
    Exp(1 h) run times as one vector, then one categorical GPU draw per job."""
    rng = np.random.RandomState(13)  # the legacy stream that np.random.seed(13) gives, without global state
    gaps = np.concatenate([[0.0], rng.gamma(1.0, 1.0 / 16, 499)])
    arrivals = np.cumsum(gaps)
    runtimes = rng.exponential(1.0, 500)
    gpus = [int(rng.choice([1, 2, 4, 8], p=[0.70, 0.15, 0.10, 0.05])) for _ in range(500)]
    return [TraceJob(i, float(arrivals[i] * 3600), gpus[i], float(runtimes[i] * 3600), 1, None, None,
                     "sb1", False, f"sb1-{i}") for i in range(500)]


def scale_arrivals(jobs: Iterable[TraceJob], factor: float) -> list[TraceJob]:
    """factor > 1 compresses time (more load); < 1 stretches it."""
    from dataclasses import replace

    return [replace(j, arrival_s=j.arrival_s / factor,
                    deadline_s=None if j.deadline_s is None else j.deadline_s / factor) for j in jobs]


def sample(jobs: list[TraceJob], fraction: float, seed: int) -> list[TraceJob]:
    rng = np.random.default_rng(seed)
    keep = rng.random(len(jobs)) < fraction
    return [j for j, k in zip(jobs, keep) if k]


def _rebase(jobs: list[TraceJob]) -> list[TraceJob]:
    from dataclasses import replace

    jobs.sort(key=lambda j: (j.arrival_s, j.id))
    if not jobs:
        return jobs
    t0 = jobs[0].arrival_s
    return [replace(j, arrival_s=j.arrival_s - t0) for j in jobs] if t0 else jobs


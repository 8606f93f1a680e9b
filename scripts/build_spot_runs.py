"""Build policies/data/spot_availability_runs.csv.gz: the spot planner's prior.

    python scripts/build_spot_runs.py

One row per availability run (trace_id, available 0/1, seconds) of every bundled real
single-node AWS availability trace (sim/data/spot_segments.csv.gz, from Can't Be Late's
spot-traces), in trace order, so that each trace can be replayed at any tick. The controller
cannot read sim/ (policies/ is pure and ships alone), hence this copy.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

from sim.cloud import spot_traces
from sim.spot_job import single_node_availability_traces

OUT = Path(__file__).resolve().parent.parent / "policies" / "data" / "spot_availability_runs.csv.gz"


def main() -> None:
    traces = spot_traces()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trace_id", "available", "seconds"])
    rows = 0
    for trace_id in sorted(single_node_availability_traces()):
        starts, values, span = traces[trace_id]
        runs: list[list[float]] = []
        for k, (start, value) in enumerate(zip(starts, values)):
            end = starts[k + 1] if k + 1 < len(starts) else span
            if runs and runs[-1][0] == value:
                runs[-1][1] += end - start
            else:
                runs.append([value, end - start])
        for value, seconds in runs:
            writer.writerow([trace_id, int(value), int(round(seconds))])
            rows += 1
    with gzip.GzipFile(OUT, "wb", mtime=0) as fh:  # mtime 0: the same bytes on every build
        fh.write(buf.getvalue().encode())
    print(f"wrote {rows} runs to {OUT}")


if __name__ == "__main__":
    main()

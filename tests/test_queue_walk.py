"""The queue walk every planner shares (policies/queue/queue_walk.py): its order, its dedup, its gate.

plan() and each QueuePlanner mode fill in the walk's steps; these tests hold the walk itself to
what they rely on, with a walk that only records its visits."""

from policies.queue.queue_streams import cursor
from policies.queue.queue_walk import QueueWalk


def entry(t: float, name: str):
    return ((t, "ns", name), f"ns/{name}")


class RecordingWalk(QueueWalk):
    """Wakes the given entries, reads the extra streams too, and records each visit."""

    def __init__(self, jobs, woken, extra=(), gate=None, leave=()):
        super().__init__(snapshot=None, now=0.0, derived=None, jobs=jobs)
        self.woken, self.extra, self.leave = woken, extra, set(leave)
        self.gate = gate
        self.gated = gate is not None
        self.visits: list[str] = []

    def wake_set(self):
        return self.woken

    def merge_streams(self, woken):
        super().merge_streams(woken)
        for stream in self.extra:
            self.streams.add(cursor(stream))

    def reads_on(self, s, entry):
        return self.gate(s, entry)

    def visit(self, entry, job):
        self.visits.append(entry[1])
        for key in self.leave:  # a decision that removes other Jobs from the queue mid-walk
            self.jobs.pop(key, None)


def test_each_job_once_in_queue_order_across_streams():
    a, b, c, d = entry(1, "a"), entry(2, "b"), entry(3, "c"), entry(4, "d")
    jobs = {e[1]: e[1] for e in (a, b, c, d)}
    walk = RecordingWalk(jobs, woken={d, b}, extra=[[a, b, c], [c, d]])
    plan_ = walk.run()
    assert walk.visits == ["ns/a", "ns/b", "ns/c", "ns/d"]
    assert plan_.decisions == () and plan_.review_at is None and plan_.solver.optimizer == "greedy"


def test_jobs_that_left_the_queue_are_not_visited():
    a, b, c = entry(1, "a"), entry(2, "b"), entry(3, "c")
    jobs = {e[1]: e[1] for e in (a, b, c)}
    walk = RecordingWalk(jobs, woken=[a, b, c], leave=["ns/c"])
    walk.run()
    assert walk.visits == ["ns/a", "ns/b"]


def test_a_closed_gate_drops_its_stream_whole_but_not_the_others():
    a, b, c, d = entry(1, "a"), entry(2, "b"), entry(3, "c"), entry(4, "d")
    jobs = {e[1]: e[1] for e in (a, b, c, d)}
    # Stream 1 (the extra one) closes once the walk reaches c: d is read only if woken.
    walk = RecordingWalk(jobs, woken=[a], extra=[[b, c, d]], gate=lambda s, e: s != 1 or e < c)
    walk.run()
    assert walk.visits == ["ns/a", "ns/b"]
    walk = RecordingWalk(dict(jobs), woken=[a, d], extra=[[b, c, d]], gate=lambda s, e: s != 1 or e < c)
    walk.run()
    assert walk.visits == ["ns/a", "ns/b", "ns/d"]

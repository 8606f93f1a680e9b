"""Local capacity over time: when can a Job of G GPUs (one pod, or N pods x g) start?

Each node has a step function of free GPUs from `now` on: running pods release GPUs at their
expected end, and Jobs assumed earlier in the cycle hold reservations. A new Job takes the
earliest slot in which enough GPUs stay free for its whole estimated run on one node (a pod
never spans nodes), without moving any earlier reservation: conservative backfilling, so two
Jobs never claim the same GPUs and a Job is never forecast to jump ahead of one queued before it.

A per-node table of "earliest time at least g GPUs are free" is kept in a numpy array; it is a
lower bound of the exact fit, so a query checks nodes in bound order and stops early.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort

import numpy as np

from ..model import Node, value

INF = math.inf


class NodeTimeline:
    """Free GPUs on one node as a step function: free[i] holds on [times[i], times[i+1])."""

    __slots__ = ("name", "product", "capacity", "times", "free")

    def __init__(self, name: str, product: str | None, capacity: int, times: list[float], free: list[int]):
        self.name, self.product, self.capacity = name, product, capacity
        self.times, self.free = times, free

    def copy(self) -> "NodeTimeline":
        return NodeTimeline(self.name, self.product, self.capacity, self.times[:], self.free[:])

    def min_free(self, start: float, end: float) -> int:
        times, free = self.times, self.free
        i = max(bisect_right(times, start) - 1, 0)
        low = free[i]
        i += 1
        while i < len(times) and times[i] < end:
            low = min(low, free[i])
            i += 1
        return low

    def earliest_fit(self, gpus: int, duration: float, t0: float) -> float:
        """Earliest t >= t0 with at least `gpus` free on [t, t + duration)."""
        times, free = self.times, self.free
        n = len(times)
        i = max(bisect_right(times, t0) - 1, 0)
        cand = t0
        while i < n:
            if free[i] < gpus:
                i += 1
                if i < n:
                    cand = times[i]
                continue
            end = cand + duration
            j = i + 1
            while j < n and times[j] < end and free[j] >= gpus:
                j += 1
            if j >= n or times[j] >= end:
                return cand
            i = j  # free[j] < gpus: restart after it
        return INF

    def free_runs(self, gpus: int, lo: float, hi: float) -> list[tuple[float, float]]:
        """The maximal intervals with at least `gpus` free that meet [lo, hi): any window of
        `gpus` GPUs that overlaps [lo, hi) lies within one of them."""
        times, free = self.times, self.free
        n = len(times)
        i = max(bisect_right(times, lo) - 1, 0)
        runs = []
        while i < n and times[i] < hi:
            if free[i] < gpus:
                i += 1
                continue
            a = i
            while a > 0 and free[a - 1] >= gpus:
                a -= 1
            b = i + 1
            while b < n and free[b] >= gpus:
                b += 1
            runs.append((times[a], times[b] if b < n else INF))
            i = b
        return runs

    def add(self, start: float, end: float, delta: int) -> None:
        """Add `delta` free GPUs on [start, end) (negative to reserve)."""
        times, free = self.times, self.free
        for t in (start, end):
            if t == INF:
                continue
            k = bisect_left(times, t)
            if k < len(times) and times[k] == t:
                continue
            if k == 0:  # before the origin: clamp
                continue
            times.insert(k, t)
            free.insert(k, free[k - 1])
        lo = bisect_left(times, start) if start > times[0] else 0
        hi = bisect_left(times, end) if end != INF else len(times)
        for k in range(lo, hi):
            free[k] += delta
        # merge equal neighbours so timelines stay short
        k = max(lo, 1)
        while k < len(times) and k <= hi + 1:
            if free[k] == free[k - 1]:
                del times[k], free[k]
            else:
                k += 1


_DIGEST_MASK = (1 << 61) - 1


def occupation_digest(digest: int, node: str, gpus: int, until: float) -> int:
    """Fold one occupation into an order-free digest (a sum of hashes)."""
    return (digest + hash((node, gpus, until))) & _DIGEST_MASK


@value
class LocalSlot:
    start: float  # INF when the Job can never run locally
    nodes: tuple[tuple[int, int], ...] = ()  # (node index, pods on it)

    @property
    def feasible(self) -> bool:
        return self.start != INF


class CapacityTimeline:
    """All nodes' timelines, plus a bound table for fast queries. Mutable: copy() per cycle.

    copy() is copy-on-write: both copies share the node step lists until one of them changes a
    node, so a cycle that reserves on three nodes of a thousand copies three."""

    def __init__(self, origin: float, nodes: list[NodeTimeline]):
        self.origin = origin
        self.nodes = nodes
        self.gains = 0  # release() calls: GPUs freed earlier than forecast (QueuePlanner watches it)
        # occupy() calls and a digest of their arguments: the QueuePlanner checks that the pods
        # started since its last cycle are exactly those it decided to start
        self.occupied, self.occupied_digest = 0, 0
        self._owned = [True] * len(nodes)
        self.max_gpus = max([n.capacity for n in nodes] + [1])
        # _bound[g - 1][i]: a lower bound of when node i first has g GPUs free (one row per count,
        # so that a query reads one contiguous row)
        self._bound = np.full((self.max_gpus, len(nodes)), INF)
        self._free_now = np.zeros(len(nodes))
        self._most_free: dict[str | None, int] = {}  # max_free_now() per product
        self._next_step = [INF] * len(nodes)  # the first step after the origin, per node
        self._steps: list[tuple[float, int]] = []  # heap of (next step, node), stale ones skipped
        self._capacity = np.array([n.capacity for n in nodes], dtype=float)
        for i in range(len(nodes)):
            self._refresh(i)
        self._by_product: dict[str | None, np.ndarray] = {None: np.arange(len(nodes))}
        products: dict[str, list[int]] = {}
        for i, n in enumerate(nodes):
            if n.product:
                products.setdefault(n.product, []).append(i)
        for p, idx in products.items():
            self._by_product[p] = np.array(idx, dtype=int)
        self._big: dict[tuple[str | None, int], np.ndarray] = {}  # _big_enough()

    @classmethod
    def from_nodes(cls, origin: float, nodes: tuple[Node, ...], releases: list[tuple[str, int, float]]
                   ) -> CapacityTimeline:
        """releases: (node name, gpus, time the running pod frees them)."""
        by_node: dict[str, list[tuple[float, int]]] = {}
        for name, gpus, end in releases:
            if gpus:
                by_node.setdefault(name, []).append((end, gpus))
        timelines = []
        for n in nodes:
            cap = n.allocatable_gpus if n.schedulable else 0
            held = sorted(by_node.get(n.name, ()))
            # Built in one pass: free GPUs rise at each release time.
            free = cap - sum(g for _, g in held) if n.schedulable else 0
            times, frees = [origin], [free]
            for end, gpus in held:
                if not n.schedulable:
                    break
                free += gpus
                if end <= times[-1]:
                    frees[-1] = free
                else:
                    times.append(end)
                    frees.append(free)
            timelines.append(NodeTimeline(n.name, n.gpu_product, cap, times, frees))
        return cls(origin, timelines)

    # --- incremental upkeep, for adapters that keep one timeline across cycles --------------------
    # Valid for a timeline of running work only (free GPUs never fall as time passes).

    def occupy(self, node: str, gpus: int, until: float) -> None:
        """A pod started now on `node`, expected to hold `gpus` until `until`."""
        i = self._index()[node]
        self._own(i).add(self.origin, until, -gpus)
        self._refresh(i)
        self.occupied += 1
        self.occupied_digest = occupation_digest(self.occupied_digest, node, gpus, until)

    def release(self, node: str, gpus: int, until: float) -> None:
        """A pod ended before `until`, the end it was expected at: its GPUs are free from now."""
        if until > self.origin:
            self.gains += 1
            i = self._index()[node]
            self._own(i).add(self.origin, until, gpus)
            self._refresh(i)

    def advance(self, origin: float) -> None:
        """Move the origin forward: steps in the past fold into the free count at `origin`.
        Only nodes with a step at or before the new origin are touched."""
        if origin <= self.origin:
            return
        next_step = self._next_step
        while self._steps and self._steps[0][0] <= origin:  # (_note_next_step may renew the list)
            t, i = heapq.heappop(self._steps)
            if next_step[i] != t:
                continue  # the node changed since; its newer entry is in the heap
            node = self._own(i)
            k = bisect_right(node.times, origin) - 1
            del node.times[:k], node.free[:k]
            node.times[0] = origin
            self._free_now[i] = node.free[0]
            self._most_free.clear()
            self._note_next_step(i)
        # The other nodes keep a first step before the origin; its count still holds at the
        # origin, so queries are unaffected, and _own() moves it up before any change.
        # _bound may now hold times before the origin; every query clamps them to its
        # own start (t0 >= origin), so they are left as they are rather than rewritten per advance.
        self.origin = origin

    def _own(self, i: int) -> NodeTimeline:
        """Node i, safe to change: copied first if another timeline shares it."""
        if not self._owned[i]:
            self.nodes[i] = self.nodes[i].copy()
            self._owned[i] = True
        node = self.nodes[i]
        if node.times[0] < self.origin:  # changes assume the first step is at the origin
            node.times[0] = self.origin
        return node

    def _index(self) -> dict[str, int]:
        index = getattr(self, "_names", None)
        if index is None:
            index = self._names = {n.name: i for i, n in enumerate(self.nodes)}
        return index

    def copy(self) -> "CapacityTimeline":
        new = object.__new__(CapacityTimeline)
        new.origin, new.max_gpus, new.gains = self.origin, self.max_gpus, self.gains
        new.occupied, new.occupied_digest = self.occupied, self.occupied_digest
        new.nodes = list(self.nodes)
        self._owned = [False] * len(self.nodes)
        new._owned = [False] * len(self.nodes)
        new._bound, new._free_now = self._bound.copy(), self._free_now.copy()
        new._capacity = self._capacity
        new._next_step, new._steps = self._next_step[:], self._steps[:]
        new._most_free = dict(self._most_free)
        new._by_product, new._big = self._by_product, self._big
        return new

    def _refresh(self, i: int) -> None:
        node = self.nodes[i]
        # One pass over the steps: the first time each count of free GPUs is reached (built as a
        # list and stored at once: numpy slice writes cost more than the pass itself).
        row = [INF] * self.max_gpus
        reached, capacity = 0, node.capacity
        for t, free in zip(node.times, node.free):
            if free > reached:
                row[reached:min(free, capacity)] = [t] * (min(free, capacity) - reached)
                reached = free
                if reached >= capacity:
                    break
        self._bound[:, i] = row
        self._free_now[i] = node.free[0]
        self._most_free.clear()
        self._note_next_step(i)

    def _note_next_step(self, i: int) -> None:
        times = self.nodes[i].times
        t = self._next_step[i] = times[1] if len(times) > 1 else INF
        if t != INF:
            heapq.heappush(self._steps, (t, i))
            if len(self._steps) > 4 * len(self.nodes) + 64:  # mostly stale entries: keep the live ones
                self._steps = [(s, k) for k, s in enumerate(self._next_step) if s != INF]
                heapq.heapify(self._steps)

    def candidates(self, product: str | None) -> np.ndarray:
        return self._by_product.get(product, np.empty(0, dtype=int))

    def earliest_fit_on(self, gpus: int, duration: float, product: str | None, nodes: set[int]) -> float:
        """The earliest start of a pod of `gpus` for `duration` on one of these nodes (indices), of
        this product (any: None); inf if none holds it. Where GPUs were given back on some nodes
        only, a start can come sooner only there."""
        t0, best = self.origin, INF
        for i in nodes:
            node = self.nodes[i]
            if (product is None or node.product == product) and node.capacity >= gpus:
                best = min(best, node.earliest_fit(gpus, duration, t0))
        return best

    def windows_within(self, gpus: int, product: str | None, regions: list[tuple[int, float, float]]
                       ) -> list[tuple[float, float]]:
        """(earliest start, longest run from it) of every free interval of `gpus` GPUs, on a node
        of this product, that meets one of these regions (node index, from, to): a pod that GPUs
        given back in those regions let start sooner fits in one of them."""
        t0 = self.origin
        out = []
        for i, lo, hi in regions:
            node = self.nodes[i]
            if (product is None or node.product == product) and node.capacity >= gpus and hi > t0:
                for a, b in node.free_runs(gpus, max(lo, t0), hi):
                    a = max(a, t0)
                    out.append((a, b - a))
        return out

    def max_free_now(self, product: str | None) -> int:
        """The most GPUs free at this instant on one node of this product (any product: None)."""
        most = self._most_free.get(product)
        if most is None:  # kept until a node changes (_refresh, advance)
            idx = self.candidates(product)
            most = self._most_free[product] = int(self._free_now[idx].max()) if idx.size else 0
        return most

    def longest_run_now(self, gpus: int, product: str | None) -> float:
        """The longest a pod of `gpus` GPUs could run from now on one node of this product (any: None):
        until the first step with fewer free on the node where that comes last; inf if one stays
        free; -inf if none has them free now. A pod of `gpus` fits now iff its run is no longer."""
        if gpus <= 0:
            return INF
        if self.max_free_now(product) < gpus:
            return -INF
        origin, longest = self.origin, -INF
        for i in self._big_enough(product, gpus).tolist():
            if self._free_now[i] < gpus:
                continue
            node = self.nodes[i]
            times, free = node.times, node.free
            end = INF
            for j in range(bisect_right(times, origin), len(times)):
                if free[j] < gpus:
                    end = times[j]
                    break
            if end == INF:
                return INF
            longest = max(longest, end - origin)
        return longest

    def may_fit_now(self, gpus_per_pod: int, pods: int, product: str | None) -> bool:
        """A necessary condition for starting now: enough GPUs are free at this instant (they may
        be reserved later on). Cheap, and it only turns false as the cycle takes GPUs."""
        idx = self.candidates(product)
        if gpus_per_pod <= 0:
            return True
        if idx.size == 0:
            return False
        free = self._free_now[idx]
        if pods == 1:
            return bool((free >= gpus_per_pod).any())
        return int((free // gpus_per_pod).sum()) >= pods

    def earliest_start(self, gpus_per_pod: int, pods: int, product: str | None, duration: float,
                       t0: float | None = None) -> LocalSlot:
        t0 = self.origin if t0 is None else max(t0, self.origin)
        idx = self.candidates(product)
        if gpus_per_pod <= 0:
            return LocalSlot(t0)
        if gpus_per_pod > self.max_gpus or idx.size == 0:
            return LocalSlot(INF)
        if pods == 1:
            # Only nodes big enough for the pod: the others' bounds are inf, so they are never read.
            idx = self._big_enough(product, gpus_per_pod)
            if idx.size == 0:
                return LocalSlot(INF)
            row = self._bound[gpus_per_pod - 1]
            return self._single(idx, np.maximum(row if idx.size == len(row) else row[idx], t0), gpus_per_pod,
                                duration, t0)
        return self._gang(idx, np.maximum(self._bound[gpus_per_pod - 1][idx], t0), gpus_per_pod, pods, duration)

    def _big_enough(self, product: str | None, gpus: int) -> np.ndarray:
        """The candidate nodes of this product with at least `gpus` GPUs, in index order (node
        capacities never change, so the answer is kept, and shared by copies)."""
        key = (product, gpus)
        idx = self._big.get(key)
        if idx is None:
            idx = self.candidates(product)
            idx = self._big[key] = idx[self._capacity[idx] >= gpus]
        return idx

    # Both searches below give a slot that stays put while the timeline changes only by time
    # passing (t0 moving up to, but not reaching, the slot's start) or by other Jobs taking GPUs
    # that the slot does not use: the earliest start is exact (such changes cannot make it
    # earlier, nor take it), and a later start goes to the lowest-numbered nodes that can hold
    # the Job then (a single pod: the first node that fits; a gang: nodes in order, as many pods
    # each as fit). So a waiting Job keeps its slot from one cycle to the next while nothing given
    # back or moved lies before it, which the QueuePlanner relies on. A single pod that starts now
    # takes the node with the fewest GPUs free instead (best fit, as Starburst's simulator does;
    # first fit sends 3 % more GPU-hours out on its case SB-1).

    def _single(self, idx: np.ndarray, bounds: np.ndarray, gpus: int, duration: float, t0: float) -> LocalSlot:
        # Nodes in bound order (idx holds only nodes big enough for the pod); among equal bounds,
        # fewer free GPUs now first (best fit for a start now), then the lower index (idx is in
        # index order and the sort is stable). The walk stops at the first bound past the best
        # exact fit so far: every node after it starts later. (It reaches the node that is free
        # for good soonest, if no other fits before; its exact fit is no later than that.)
        whole = idx.size == len(self.nodes)  # every node: read the array as it is
        order = np.lexsort((self._free_now if whole else self._free_now[idx], bounds)).tolist()
        bounds = bounds.tolist()
        best, best_node = INF, -1
        for k in order:
            lb = bounds[k]
            if lb > best or lb == INF:
                break
            i = int(idx[k])
            start = self.nodes[i].earliest_fit(gpus, duration, lb)
            if start < best or (start == best < INF and i < best_node):
                best, best_node = start, i
            if start == lb:
                if lb == self.origin:
                    best_node = i  # starting now: the first that fits in this order is the best fit
                    break
                # No node starts before its bound, so `best` (= lb) is the earliest start; it goes
                # to the lowest-numbered node that fits then, which has this bound too.
                end = best + duration
                for k2 in range(len(bounds)):
                    i2 = int(idx[k2])
                    if i2 >= best_node:
                        break
                    if bounds[k2] == best and self.nodes[i2].min_free(best, end) >= gpus:
                        best_node = i2
                        break
                break
        return LocalSlot(best, ((best_node, 1),)) if best_node >= 0 else LocalSlot(INF)

    def _gang(self, idx: np.ndarray, bounds: np.ndarray, gpus: int, pods: int, duration: float) -> LocalSlot:
        """The exact earliest start of a gang, and its nodes in index order. A node can hold a pod
        at c only from its own earliest single fit f on, so no start comes before L, the first time
        the nodes that fit by then could hold every pod; and the earliest start is L or a time at
        which some node's free GPUs rise (a start just before it would fit as well otherwise). Nodes
        are read in bound order, only as far as the start being checked."""
        if np.isinf(bounds).all() or int((self._capacity[idx] // gpus).sum()) < pods:
            return LocalSlot(INF)
        search = _GangSearch(self, idx, bounds, gpus, pods, duration)
        # L: visit nodes while one not yet read could still lower it (its fit is after its bound).
        search.visit(search.next_bound())
        low = search.lower_bound()
        while search.visited < len(search.order) and search.next_bound() <= low:
            search.visit(search.next_bound())
            low = search.lower_bound()
        c = low
        while c < INF:
            search.visit(c)
            slot = self._fill(c, sorted(i for f, i in search.fits if f <= c), gpus, pods, duration)
            if slot is not None:
                return slot
            c = search.next_start_after(c)
        return LocalSlot(INF)

    def _fill(self, start: float, nodes: list[int], gpus: int, pods: int, duration: float) -> LocalSlot | None:
        """Place `pods` pods of `gpus` GPUs at `start` on these nodes, in order; None if they do not fit."""
        chosen, total = [], 0
        for i in nodes:
            slots = self.nodes[i].min_free(start, start + duration) // gpus
            if slots > 0:
                take = min(slots, pods - total)
                chosen.append((i, take))
                total += take
                if total == pods:
                    return LocalSlot(start, tuple(chosen))
        return None

    def reserve(self, slot: LocalSlot, gpus_per_pod: int, duration: float, sign: int = -1) -> None:
        """Take the slot's GPUs for `duration` from its start (sign=+1 gives them back: unreserve)."""
        if not slot.feasible:
            return
        for i, count in slot.nodes:
            self._own(i).add(slot.start, slot.start + duration, sign * gpus_per_pod * count)
            self._refresh(i)

    def unreserve(self, slot: LocalSlot, gpus_per_pod: int, duration: float) -> None:
        self.reserve(slot, gpus_per_pod, duration, +1)


class _GangSearch:
    """The nodes a gang search has read so far (in bound order), with their earliest single fits
    and the times their free GPUs rise: see CapacityTimeline._gang."""

    __slots__ = ("timeline", "idx", "bounds", "gpus", "pods", "duration", "order", "visited", "fits", "rises")

    def __init__(self, timeline: CapacityTimeline, idx: np.ndarray, bounds: np.ndarray, gpus: int, pods: int,
                 duration: float):
        self.timeline, self.idx, self.bounds = timeline, idx, bounds
        self.gpus, self.pods, self.duration = gpus, pods, duration
        self.order = np.argsort(bounds, kind="stable")
        self.visited = 0
        self.fits: list[tuple[float, int]] = []  # (earliest single fit, node), sorted
        self.rises: list[float] = []  # heap: times at which a fitting node's free GPUs rise

    def next_bound(self) -> float:
        """The bound of the next node to read (inf: every node is read)."""
        return float(self.bounds[self.order[self.visited]]) if self.visited < len(self.order) else INF

    def visit(self, upto: float) -> None:
        """Read the nodes whose bound is at most `upto`."""
        order, bounds, gpus, duration = self.order, self.bounds, self.gpus, self.duration
        while self.visited < len(order) and bounds[order[self.visited]] <= upto:
            k = order[self.visited]
            self.visited += 1
            i = int(self.idx[k])
            node = self.timeline.nodes[i]
            f = node.earliest_fit(gpus, duration, float(bounds[k]))
            if f < INF:
                insort(self.fits, (f, i))
                times, free = node.times, node.free
                for j in range(bisect_right(times, f), len(times)):
                    if free[j] > free[j - 1]:
                        heapq.heappush(self.rises, times[j])
                heapq.heappush(self.rises, f)

    def lower_bound(self) -> float:
        """L: the first time the nodes read so far could hold every pod."""
        held = 0
        capacity = self.timeline._capacity
        for f, i in self.fits:
            held += int(capacity[i]) // self.gpus
            if held >= self.pods:
                return f
        return INF

    def next_start_after(self, c: float) -> float:
        """The next time a start could fit: a free-GPU rise after c, or the next node's bound."""
        rises = self.rises
        while rises and rises[0] <= c:
            heapq.heappop(rises)
        return min(rises[0] if rises else INF, self.next_bound())

"""BackfillIndex: which Job queued behind local.planningDepth is the first that may start now.

After the planned Jobs, plan() looks at the Jobs behind them in queue order and starts each single
pod that fits now for its whole run (decide.backfill_beyond_depth). A queue of tens of thousands
cannot be walked every cycle, so the QueuePlanner keeps those Jobs here, per shape (GPUs per pod,
GPU product), with their run times: a pod of g GPUs fits now iff its run time is at most the
longest run of g free GPUs from now on one node, so the first Job that may fit is the first, in
queue order, whose run time is at most that. A min-tree over each shape's Jobs in queue order
finds it in O(log n).

Run times are the estimate known when the Job joins (annotation or policy); a Job whose estimate
comes from history, which moves, is filed at 0 and so always looked at. The answer is a
candidate: the caller checks it exactly and hides it for the rest of the cycle if it does not start.
"""

from __future__ import annotations

import sys
from bisect import insort

from .queue_streams import Entry

PodShape = tuple[int, "str | None"]  # GPUs per pod, GPU product
INF = float("inf")
_LARGEST = sys.float_info.max  # a limit of inf must not find the removed and hidden (filed as inf)


class _MinTree:
    """Run times of one shape's Jobs at positions in queue order; the first position at most a limit."""

    __slots__ = ("size", "tree", "entries", "used", "last")

    def __init__(self, items: list[tuple[Entry, float]]):
        """items: (entry, run time), sorted by entry."""
        size = 16
        while size < 2 * len(items):
            size *= 2
        self.size = size
        self.tree = [INF] * (2 * size)
        self.entries: list[Entry | None] = [None] * size
        for pos, (entry, runtime) in enumerate(items):
            self.entries[pos] = entry
            self.tree[size + pos] = runtime
        for i in range(size - 1, 0, -1):
            left, right = self.tree[2 * i], self.tree[2 * i + 1]
            self.tree[i] = left if left < right else right
        self.used = len(items)
        self.last = items[-1][0] if items else None  # the last entry placed, removed or not

    def set(self, pos: int, value: float) -> None:
        tree = self.tree
        i = pos + self.size
        tree[i] = value
        i >>= 1
        while i:
            left, right = tree[2 * i], tree[2 * i + 1]
            low = left if left < right else right
            if tree[i] == low:
                break  # the ancestors hold the same minimum
            tree[i] = low
            i >>= 1

    def first_at_most(self, limit: float) -> int | None:
        tree, limit = self.tree, min(limit, _LARGEST)
        if tree[1] > limit:
            return None
        i, size = 1, self.size
        while i < size:
            i = 2 * i if tree[2 * i] <= limit else 2 * i + 1
        return i - size


class BackfillIndex:
    def __init__(self) -> None:
        self._trees: dict[PodShape, _MinTree] = {}
        self._where: dict[str, tuple[PodShape, int]] = {}  # job key -> (shape, position)
        self._runtime: dict[str, float] = {}
        self._hidden: list[str] = []

    def __bool__(self) -> bool:
        return bool(self._where)

    def shapes(self) -> list[PodShape]:
        return [shape for shape, tree in self._trees.items() if tree.tree[1] < INF]

    def add(self, entry: Entry, shape: PodShape, runtime: float) -> None:
        key = entry[1]
        self._runtime[key] = runtime
        tree = self._trees.get(shape)
        if tree is not None and tree.used < tree.size:
            if tree.last is None or entry > tree.last:  # behind every Job of its shape: the common case
                pos = tree.used
                tree.entries[pos] = entry
                tree.used += 1
                tree.last = entry
                tree.set(pos, runtime)
                self._where[key] = (shape, pos)
                return
        # Full, or among the others: rebuild the shape's tree in queue order, leaving out those gone.
        items = [] if tree is None else [(e, self._runtime[e[1]]) for e in tree.entries[:tree.used]
                                         if e is not None and self._where.get(e[1], (None,))[0] == shape]
        insort(items, (entry, runtime))
        self._trees[shape] = tree = _MinTree(items)
        for pos, (e, _) in enumerate(items):
            self._where[e[1]] = (shape, pos)
        for hidden in self._hidden:
            if self._where.get(hidden, (None,))[0] == shape:
                tree.set(self._where[hidden][1], INF)

    def remove(self, key: str) -> None:
        where = self._where.pop(key, None)
        if where is None:
            return
        shape, pos = where
        tree = self._trees[shape]
        tree.entries[pos] = None
        tree.set(pos, INF)
        del self._runtime[key]

    def first(self, shape: PodShape, limit: float) -> Entry | None:
        """The first entry of this shape, in queue order, filed with a run time of at most `limit`."""
        tree = self._trees.get(shape)
        if tree is None:
            return None
        pos = tree.first_at_most(limit)
        return None if pos is None else tree.entries[pos]

    def hide(self, key: str) -> None:
        """Leave this Job out of first() until show_hidden()."""
        shape, pos = self._where[key]
        self._trees[shape].set(pos, INF)
        self._hidden.append(key)

    def show_hidden(self) -> None:
        for key in self._hidden:
            where = self._where.get(key)
            if where is not None:
                self._trees[where[0]].set(where[1], self._runtime[key])
        self._hidden = []

"""AlarmHeap: when something must be looked at again, per Job key, lazily cleaned.

An alarm that no longer holds (the Job left, or was decided again and set another) stays in the
heap until it comes up, and is dropped then: cheaper than finding it. Whether an alarm still
holds is the owner's knowledge, so the owner passes it in (`is_live`).
"""

from __future__ import annotations

import heapq
from typing import Callable

IsLive = Callable[[float, str], bool]


class AlarmHeap:
    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, at: float, key: str) -> None:
        heapq.heappush(self._heap, (at, key))

    def clear(self) -> None:
        self._heap = []

    def pop_due(self, until: float, is_live: IsLive) -> list[str]:
        """The keys whose live alarms come by `until`, in the order they come, each once."""
        heap = self._heap
        if not heap or heap[0][0] > until:
            return []  # most cycles: nothing due
        due: dict[str, None] = {}  # a dict keeps the order they come in
        while heap and heap[0][0] <= until:
            at, key = heapq.heappop(heap)
            if is_live(at, key):
                due[key] = None
        return list(due)

    def next_time(self, is_live: IsLive) -> float | None:
        """When the next live alarm comes (the dead ones ahead of it are dropped); None: none."""
        heap = self._heap
        while heap and not is_live(*heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

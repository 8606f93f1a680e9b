"""Queue entries, read as sorted streams and merged in queue order.

A queue entry is (order key, job key); the order key is (submit time, namespace, name), so sorted
entries are in queue order. A cycle reads several sorted sources at once (new Jobs, woken ones, a
shape's waiting Jobs, the Jobs behind a change) and must decide each Job once, in queue order.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from typing import Iterable, Iterator

OrderKey = tuple[float | str, ...]  # (submit time, namespace, name)
Entry = tuple[OrderKey, str]  # (order key, job key)

BEFORE_EVERY_JOB: Entry = ((-float("inf"),), "")


def find(entries: list[Entry], entry: Entry) -> int | None:
    """Where `entry` is in the sorted list, or None."""
    i = bisect_left(entries, entry)
    return i if i < len(entries) and entries[i] == entry else None


def remove(entries: list[Entry], entry: Entry) -> bool:
    """Take `entry` out of the sorted list; whether it was there."""
    i = find(entries, entry)
    if i is None:
        return False
    del entries[i]
    return True


def cursor(entries: list[Entry]) -> Iterator[Entry]:
    """The entries in order, read while the cycle changes the list: each step looks up the entry
    after the last one given, so Jobs removed or noted waiting meanwhile shift nothing."""
    last = None
    while True:
        i = 0 if last is None else bisect_right(entries, last)
        if i >= len(entries):
            return
        last = entries[i]
        yield last


def cursor_after(entries: list[Entry], after: Entry) -> Iterator[Entry]:
    """The entries after `after`, read as cursor() reads them."""
    last = after
    while True:
        i = bisect_right(entries, last)
        if i >= len(entries):
            return
        last = entries[i]
        yield last


class MergedStreams:
    """Sorted streams of entries read as one, in queue order: a heap of each stream's next entry.
    A stream may be added while it is read (the Jobs behind a change join the walk), and a reader
    may drop one by not advancing it after its entry comes up."""

    __slots__ = ("_streams", "_heap")

    def __init__(self, streams: Iterable[Iterator[Entry]] = ()):
        self._streams: list[Iterator[Entry]] = []
        self._heap: list[tuple[OrderKey, str, int]] = []
        for stream in streams:
            self.add(stream)

    def add(self, stream: Iterator[Entry]) -> None:
        self._streams.append(stream)
        item = next(stream, None)
        if item is not None:
            heapq.heappush(self._heap, (item[0], item[1], len(self._streams) - 1))

    def advance(self, s: int) -> None:
        """Queue stream s's next entry."""
        item = next(self._streams[s], None)
        if item is not None:
            heapq.heappush(self._heap, (item[0], item[1], s))

    def pop(self) -> tuple[OrderKey, str, int] | None:
        """The first entry in queue order, as (order key, job key, the stream it came from: advance
        it to read on); None when every stream is read."""
        return heapq.heappop(self._heap) if self._heap else None

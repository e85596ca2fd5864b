"""A counting resource for SimPy that costs no event when a slot is free.

``simpy.Resource`` schedules a request event even when capacity is available; the model takes a
database connection for every API request, so most acquisitions would cost an extra event. This
pool hands out free slots synchronously and queues only when full (FIFO, or by priority).
"""

from __future__ import annotations

import heapq
import itertools

import simpy


class Pool:
    def __init__(self, env: simpy.Environment, size: int) -> None:
        self.env = env
        self.size = size
        self.in_use = 0
        self._waiters: list[tuple[int, int, simpy.Event]] = []
        self._seq = itertools.count()

    def acquire(self, priority: int = 0) -> simpy.Event | None:
        """None when a slot was taken now; otherwise an event that fires when one is handed over."""
        if self.in_use < self.size:
            self.in_use += 1
            return None
        event = self.env.event()
        heapq.heappush(self._waiters, (priority, next(self._seq), event))
        return event

    def release(self) -> None:
        if self._waiters:
            heapq.heappop(self._waiters)[2].succeed()  # the slot passes to the waiter
        else:
            self.in_use -= 1

    @property
    def queued(self) -> int:
        return len(self._waiters)

"""Runs the simulator's SimPy-style process generators in real time on an asyncio loop.

The payout service's processes (``PayoutService.process_payout``, ``_complete``, the breaker's
wake-ups, the workload's arrival processes) are generators that yield ``env.timeout(delay)``
and pool-hand-over events, and read ``env.now``. :class:`RealtimeEnv` offers exactly that
surface, so live mode runs the same generators as the simulation instead of a copy of them:
a timeout becomes ``asyncio.sleep(delay / speed)`` and ``env.now`` is scenario seconds on a
clock that runs ``speed`` times faster than the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator
from typing import Any, TypeVar, cast

LOG = logging.getLogger("tronsim.live")
T = TypeVar("T")


class Timeout:
    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay


class Signal:
    """``env.event()``: fired once by ``succeed()`` (the pool hands a slot over with it)."""

    __slots__ = ("future",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[Any] = loop.create_future()

    def succeed(self, value: Any = None) -> Signal:
        if not self.future.done():
            self.future.set_result(value)
        return self


class RealtimeEnv:
    """The subset of ``simpy.Environment`` the service uses, on the running asyncio loop.

    ``origin`` is the wall-clock epoch (seconds) at which scenario time 0 falls; ``now`` is
    ``(wall - origin) * speed``. Every method must be called from the loop's thread.
    """

    def __init__(self, speed: float, origin: float | None = None) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        wall = time.time()
        self.origin = wall if origin is None else float(origin)
        # A monotonic base, so that wall-clock steps (NTP) do not move scenario time.
        self._mono0 = time.monotonic() - (wall - self.origin)
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0  # processes that died of an exception (a bug: reported, counted)

    @property
    def now(self) -> float:
        return (time.monotonic() - self._mono0) * self.speed

    def real_delay(self, scenario_seconds: float) -> float:
        return max(0.0, scenario_seconds / self.speed)

    def timeout(self, delay: float) -> Timeout:
        return Timeout(delay)

    def event(self) -> Signal:
        return Signal(asyncio.get_running_loop())

    def process(self, generator: Generator[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``generator`` in the background (``env.process``); a failure is logged and counted."""
        task = asyncio.get_running_loop().create_task(self._background(generator))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self, generator: Generator[Any, Any, T]) -> T:
        """Drive ``generator`` to its end in the calling task and return its value (what a SimPy
        process's event would carry). Exceptions propagate to the caller."""
        value: Any = None
        try:
            while True:
                event = generator.send(value)
                value = None
                if isinstance(event, Timeout):
                    await asyncio.sleep(self.real_delay(event.delay))
                elif isinstance(event, Signal):
                    value = await event.future
                else:
                    raise TypeError(f"process yielded {event!r}, not a timeout or an event")
        except StopIteration as stop:
            return cast(T, stop.value)
        except asyncio.CancelledError:
            generator.close()
            raise

    async def _background(self, generator: Generator[Any, Any, Any]) -> Any:
        try:
            return await self.run(generator)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures += 1
            LOG.exception("a service process failed")
            return None

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

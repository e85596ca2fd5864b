"""Where a sweep's replications run: this process, local worker processes, or a Dask cluster.

Every executor maps a top-level function over picklable tasks and yields ``(task index, result)``
as tasks finish. A task carries its own seed, so results do not depend on the executor, the
number of workers or the order of completion; callers order them by index.

Local workers never outlive the process that started them (see :func:`die_with`): a sweep killed
with SIGKILL leaves no worker, fork server or resource tracker behind, and ``close(abort=True)``
stops running tasks at once instead of waiting for them.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from sloanalysis.errors import UserError

__all__ = ["DaskExecutor", "Executor", "ExecutorError", "LocalExecutor", "die_with", "make_executor"]

_POLL_SECONDS = 0.5  # owner checks where pidfd_open is missing (not Linux, or a kernel before 5.3)


class ExecutorError(UserError):
    """An executor that cannot be used (bad worker count, unreachable scheduler)."""


class Executor(Protocol):
    workers: int

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]: ...

    def close(self, *, abort: bool = False) -> None: ...


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _watch_owner(pid: int) -> None:
    """Block until process ``pid`` has ended, then kill this process."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:  # gone before we looked
        _kill_self()
    except (AttributeError, OSError):
        while True:
            time.sleep(_POLL_SECONDS)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                _kill_self()
            except PermissionError:  # alive, owned by someone else (a reused pid): keep waiting
                pass
    else:
        select.select([fd], [], [])  # a pidfd turns readable when its process exits
        _kill_self()


def die_with(pid: int) -> None:
    """Worker initializer: end this worker when process ``pid`` (the pool's owner) ends.

    Forkserver workers are children of the fork server, not of the owner, so the kernel's
    parent-death signal (``PR_SET_PDEATHSIG``) would fire on the server's death, not the owner's;
    and the server stays up as long as any worker holds its "alive" pipe, workers wait forever on
    a queue whose write end they hold themselves. So a daemon thread waits on a pidfd of the owner
    and sends this worker SIGKILL when the owner is gone, however it ended. With the workers gone,
    the fork server and the resource tracker see EOF on their pipes and exit on their own.
    SIGINT is ignored: Ctrl-C reaches the whole process group, and the owner stops the workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_owner, args=(pid,), name="die-with-owner", daemon=True).start()


class LocalExecutor:
    """``workers`` processes on this machine; one worker runs the tasks in this process."""

    def __init__(self, workers: int | None = None, *, preload: Sequence[str] = ()) -> None:
        if workers is None:
            workers = os.cpu_count() or 1
        if workers < 1:
            raise ExecutorError(f"--workers: must be at least 1, got {workers}")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            # forkserver: workers fork from a clean server that imported the simulator once, so
            # they start fast and never inherit this process's threads (a tqdm monitor, Dask).
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(preload))
            self._pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=ctx, initializer=die_with, initargs=(os.getpid(),)
            )

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if self._pool is None:
            for i, task in enumerate(tasks):
                yield i, fn(task)
            return
        futures: dict[Future[Any], int] = {self._pool.submit(fn, t): i for i, t in enumerate(tasks)}
        try:
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=futures.__getitem__):
                    yield futures.pop(fut), fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self, *, abort: bool = False) -> None:
        """Stop the workers: after their running tasks, or with ``abort`` at once (SIGKILL)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if abort:
            # No public way to stop a running task before Python 3.14 (terminate_workers).
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Tasks on an existing Dask cluster; its workers need this package installed."""

    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ExecutorError(
                "--scheduler: dask.distributed is not installed (pip install 'tron-slo-toolkit[dask]')"
            ) from None
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ExecutorError(
                f"--scheduler {address}: cannot reach the Dask scheduler within {timeout:g} s: {reason}"
            ) from None
        self.workers = len(self.client.scheduler_info().get("workers", {}))

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        futures = [self.client.submit(fn, t, pure=False) for t in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            # This client is not the default one, so as_completed needs its loop.
            for fut, result in as_completed(futures, loop=self.client.loop, with_results=True):
                yield index[fut.key], result
        finally:
            self.client.cancel(futures)

    def close(self, *, abort: bool = False) -> None:
        """Disconnect; tasks of an abandoned map were cancelled when it ended (``abort`` is moot)."""
        self.client.close()


def make_executor(
    workers: int | None = None,
    scheduler: str | None = None,
    *,
    timeout: float = 10.0,
    preload: Sequence[str] = (),
) -> LocalExecutor | DaskExecutor:
    """A Dask executor when ``scheduler`` is given, else local processes."""
    if scheduler:
        return DaskExecutor(scheduler, timeout=timeout)
    return LocalExecutor(workers, preload=preload)

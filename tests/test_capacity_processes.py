"""No process outlives ``tronsim capacity``: killed (SIGKILL), terminated or interrupted, its local
workers, the multiprocessing fork server and the resource tracker all end within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simulator.capacity import LocalExecutor

psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process groups and /proc: Linux"
)

# Replications of six simulated hours take seconds each: workers are busy when the signal comes.
SWEEP = """
name: kill
scenario: {scenario}
duration: 6h
seed: 1
replications: 2
set:
  incidents: []
grid:
  load.payout_rate: [0.1, 0.4, 0.8]
  service.payout_workers: [2, 6]
"""


def _alive(pid: int) -> bool:
    """A process that still exists and is not a zombie (a zombie holds no memory, only a pid)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _session(sid: int) -> set[int]:
    """Live processes of session ``sid`` (children re-parented to init keep their session)."""
    found = set()
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and _alive(proc.pid):
                found.add(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], set[int]]:
    """``tronsim capacity`` with two workers in its own session, once its workers run tasks."""
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP.replace("{scenario}", str(ROOT / "scenarios" / "smoke.yaml")), encoding="utf-8")
    cmd = [sys.executable, "-m", "simulator.cli", "capacity", str(sweep), "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2"],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    parent = psutil.Process(proc.pid)

    def descendants() -> list[int]:
        return [c.pid for c in parent.children(recursive=True)]

    # The fork server's children are the workers: two of them, plus the server and the tracker.
    if not _wait_until(lambda: len(descendants()) >= 4, timeout=60):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        pytest.fail(f"workers did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
    return proc, set(descendants())


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)],
    ids=["kill-9", "term", "int"],
)
def test_signal_to_the_command_leaves_no_process(tmp_path: Path, signum: int, status: int) -> None:
    proc, children = _start(tmp_path)
    try:
        os.kill(proc.pid, signum)  # the command alone, as `kill` would; not its process group
        assert proc.wait(timeout=20) == status
        left = lambda: {p for p in children | _session(proc.pid) if _alive(p)}  # noqa: E731
        assert _wait_until(lambda: not left(), timeout=10), [psutil.Process(p).cmdline() for p in left()]
    finally:
        if _session(proc.pid):  # a failed assertion above must not leave processes either
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def test_abort_stops_running_tasks_at_once() -> None:
    executor = LocalExecutor(2)
    outcome: list[BaseException | None] = []

    def consume() -> None:
        try:
            list(executor.map_unordered(time.sleep, [60.0, 60.0, 60.0]))
            outcome.append(None)
        except BaseException as exc:  # the pool breaks under the consumer: that is the point
            outcome.append(exc)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    pool = executor._pool
    assert pool is not None
    assert _wait_until(lambda: len(pool._processes or {}) == 2, timeout=30)
    workers = [p.pid for p in pool._processes.values() if p.pid is not None]
    started = time.monotonic()
    executor.close(abort=True)
    assert time.monotonic() - started < 20  # not the 60 s each running task would take
    assert _wait_until(lambda: not any(_alive(p) for p in workers), timeout=5)
    consumer.join(timeout=10)
    assert outcome and outcome[0] is not None  # the map ended with an error, not with results

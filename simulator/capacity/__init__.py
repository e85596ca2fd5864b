"""Capacity planning: sweeps over scenario parameters, replications, intervals and executors.

Modules: :mod:`.sweep` (the sweep file, its grid and seeds, input bounds), :mod:`.run` (running
and resuming a sweep, its outputs), :mod:`.metrics` (what a replication measures), :mod:`.stats`
(intervals, sustainable rate, knee), :mod:`.figures` (the plot), :mod:`.executors` (local
processes, Dask), :mod:`.cli` (``tronsim capacity``). The names below are what notebooks use.
"""

from simulator.capacity.executors import DaskExecutor, ExecutorError, LocalExecutor, make_executor
from simulator.capacity.figures import capacity_figure
from simulator.capacity.run import SweepResult, run_sweep
from simulator.capacity.stats import sustainable
from simulator.capacity.sweep import MAX_POINTS, MAX_REPLICATIONS, Sweep, SweepError, load_sweep

__all__ = [
    "MAX_POINTS",
    "MAX_REPLICATIONS",
    "DaskExecutor",
    "ExecutorError",
    "LocalExecutor",
    "Sweep",
    "SweepError",
    "SweepResult",
    "capacity_figure",
    "load_sweep",
    "make_executor",
    "run_sweep",
    "sustainable",
]

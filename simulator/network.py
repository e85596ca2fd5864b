"""The TRON network as the payout service sees it: call latency, errors, blocks and finality.

Facts (docs/tron-network.md): a block every 3 s on absolute 3-second slots, some slots missed; a
broadcast transaction is on chain in the next produced block, final for the seed's purposes at
``confirmation_depth`` blocks (1 = on chain, 19 = solidified); it expires 60 s after it was built
if no block includes it. Latency and failure probabilities are assumptions of the scenario.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from simulator.randomness import Draws
from simulator.scenario import Network
from simulator.workload import Conditions

RETRYABLE = frozenset({"timeout", "node_unavailable", "server_busy", "rate_limited", "expired"})


@dataclass(frozen=True)
class CallResult:
    latency: float
    error: str  # "" on success


class TronNetwork:
    def __init__(
        self, cfg: Network, draws: Draws, start_epoch: float, halts: list[tuple[float, float]]
    ) -> None:
        self.cfg = cfg
        self.draws = draws
        self.start_epoch = start_epoch
        self._halt_starts = [h[0] for h in halts]
        self._halts = halts
        self._latency = {op: (ln.median, ln.sigma) for op, ln in cfg.latency.items()}
        self._errors = {op: tuple(table.items()) for op, table in cfg.errors.items()}

    def call(self, operation: str, c: Conditions) -> CallResult:
        """One request to a node: its latency and error ("" if it succeeded)."""
        d = self.draws
        timeout = self.cfg.client_timeout
        if c.outage_error:
            if c.outage_error == "timeout":
                return CallResult(timeout, "timeout")
            # A dead node refuses quickly; the client still pays a connect round trip.
            return CallResult(min(timeout, d.lognormal(0.05, 0.5)), c.outage_error)
        median, sigma = self._latency[operation]
        latency = d.lognormal(median, sigma) * c.latency_factor
        if latency > timeout:
            return CallResult(timeout, "timeout")
        u = d.uniform()
        if c.rate_limited_probability and u < c.rate_limited_probability:
            return CallResult(latency, "rate_limited")
        extra = c.extra_failure_probability if c.extra_failure_operation == operation else 0.0
        if extra and d.uniform() < extra:
            return CallResult(latency, c.extra_failure_type)
        acc = 0.0
        u = d.uniform()
        for error, p in self._errors.get(operation, ()):
            acc += p
            if u < acc:
                return CallResult(latency, error)
        return CallResult(latency, "")

    def _halted_until(self, t: float) -> float:
        """End of the halt covering ``t`` (seconds from start), or ``t`` itself."""
        i = bisect_right(self._halt_starts, t) - 1
        if i >= 0 and t < self._halts[i][1]:
            return self._halts[i][1]
        return t

    def next_block(self, t: float) -> float:
        """Time (seconds from start) of the first block produced strictly after ``t``."""
        interval = self.cfg.block_interval
        t = self._halted_until(t)
        epoch = self.start_epoch + t
        slot = (math.floor(epoch / interval) + 1) * interval
        slot += interval * self.draws.geometric_failures(self.cfg.missed_slot_probability)
        return slot - self.start_epoch

    def inclusion(self, broadcast_at: float) -> float | None:
        """When the transaction lands in a block, or None if it expires first."""
        at = self.next_block(broadcast_at)
        return at if at <= broadcast_at + self.cfg.expiration else None

    def finality(self, included_at: float) -> float:
        """When ``confirmation_depth`` blocks (counting the including one) exist."""
        t = included_at
        for _ in range(self.cfg.confirmation_depth - 1):
            t = self.next_block(t)
        return t

    def execution_error(self) -> str:
        """Outcome of executing an included transfer: "" (SUCCESS), out_of_energy or reverted."""
        u = self.draws.uniform()
        if u < self.cfg.out_of_energy_probability:
            return "out_of_energy"
        if u < self.cfg.out_of_energy_probability + self.cfg.revert_probability:
            return "reverted"
        return ""

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter before retry number ``attempt`` (1-based)."""
        r = self.cfg.retries
        cap = min(r.backoff_max, r.backoff_base * 2.0 ** (attempt - 1))
        return cap / 2.0 + self.draws.uniform() * cap / 2.0

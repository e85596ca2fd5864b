"""Buffered draws from one ``numpy.random.Generator``.

Scalar calls on a Generator cost about a microsecond each; the model draws several numbers per
request, millions of times. Drawing blocks of standard variates and handing them out one by one
keeps the whole run on the one seeded generator (same seed, same run) at a fraction of the cost.
"""

from __future__ import annotations

import math

import numpy as np

_BLOCK = 1 << 16


class Draws:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._u: list[float] = []
        self._z: list[float] = []
        self._e: list[float] = []

    def uniform(self) -> float:
        """U[0, 1)."""
        if not self._u:
            self._u = self.rng.random(_BLOCK).tolist()
        return self._u.pop()

    def normal(self) -> float:
        if not self._z:
            self._z = self.rng.standard_normal(_BLOCK).tolist()
        return self._z.pop()

    def exponential(self, mean: float) -> float:
        if not self._e:
            self._e = self.rng.standard_exponential(_BLOCK).tolist()
        return self._e.pop() * mean

    def lognormal(self, median: float, sigma: float) -> float:
        if not self._z:
            self._z = self.rng.standard_normal(_BLOCK).tolist()
        return median * math.exp(sigma * self._z.pop())

    def choice(self, cumulative: tuple[float, ...]) -> int:
        """Index drawn from normalised cumulative weights."""
        if not self._u:
            self._u = self.rng.random(_BLOCK).tolist()
        u = self._u.pop()
        for i, c in enumerate(cumulative):
            if u < c:
                return i
        return len(cumulative) - 1

    def geometric_failures(self, p: float) -> int:
        """Number of failures before the first success when each trial fails with ``p``."""
        if p <= 0.0:
            return 0
        return int(math.log(1.0 - self.uniform()) / math.log(p)) if p < 1.0 else 1 << 30


def cumulative(weights: dict[str, float], order: tuple[str, ...]) -> tuple[float, ...]:
    total = sum(weights.get(k, 0.0) for k in order)
    acc, out = 0.0, []
    for k in order:
        acc += weights.get(k, 0.0) / total
        out.append(acc)
    return tuple(out)

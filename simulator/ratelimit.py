"""Token-bucket rate limiting per client (API key), with limits set per role."""

from __future__ import annotations


class RateLimiter:
    """``allow(client, now)`` spends one token of that client's bucket or refuses (HTTP 429)."""

    def __init__(self, limits: dict[str, tuple[float, float]]) -> None:
        self._limits = limits  # role -> (tokens per second, bucket size)
        self._buckets: dict[tuple[str, int], tuple[float, float]] = {}

    def allow(self, role: str, client: int, now: float) -> bool:
        rate, burst = self._limits[role]
        key = (role, client)
        tokens, last = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return True
        self._buckets[key] = (tokens, now)
        return False

"""The seed's structured log events as JSON lines stamped with simulated time.

Event names and fields follow the seed's ``PaymentLogger``: ``payout_request_created``,
``payout_successful``, ``payout_failed``, ``circuit_breaker_event``, ``security_event``. No
secrets are logged: API keys never appear, only a client identifier. Two seed fields clash with
structlog's own ``event`` key (the message) and are renamed: the breaker's ``event`` becomes
``transition`` and the security event's inner ``event_type`` becomes ``security_event`` (the seed
passes ``event_type`` twice, which Python rejects).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import IO, Any

SERVICE = "tron-payment-service"


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventLog:
    """Writes one JSON object per line to ``stream`` (the caller owns the file and its renaming)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.count = 0

    def emit(self, epoch: float, level: str, name: str, **fields: Any) -> None:
        record = {"timestamp": _iso(epoch), "level": level, "event": name, "service": SERVICE, **fields}
        self.stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.count += 1

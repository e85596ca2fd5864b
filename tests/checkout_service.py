"""A second, non-TRON service for end-to-end tests: the ``checkout`` job's HTTP metrics.

Everything is chosen so that each SLI, burn rate and alert time can be worked out by hand:

- two instances (``checkout-a``, ``checkout-b``), scraped every 15 s at a 5 s offset (samples at
  hh:mm:05, :20, :35, :50, so no sample ever sits on a round minute, where Prometheus 2 and 3
  range selectors differ), for three days from :data:`START` (2024-03-04T00:00:00Z);
- ``http_requests_total{job,instance,code}``: each instance serves 10 requests/s, i.e. 150 per
  15 s interval, 300 per interval for the job; normally 0.1 % of them are ``code="500"``, during the
  incident 20 %;
- ``http_request_duration_seconds`` (buckets 0.1, 0.3, 1, +Inf): normally 80 % / 97 % / 99.5 % of
  the requests within each bound, during the incident 20 % / 50 % / 90 %; ``_sum`` grows by 0.08 s
  per request normally, 0.4 s during the incident; ``_count`` equals ``http_requests_total``;
- the incident: the 120 intervals (30 minutes) whose *end* sample lies in
  ``(INCIDENT_START, INCIDENT_END]`` = (2024-03-05T12:00:00Z, 12:30:00Z];
- ``up{job,instance}`` = 1 throughout.

Counters start at large values (1e6 requests) so that Prometheus's extrapolation is never cut at
an assumed zero: ``rate`` then scales every series of a window by the same factor and any ratio of
rates is exactly the ratio of the increments between the first and last sample in the window.

:func:`week_store` is a separate, coarser service (``shop``, 30 s samples, 7 days) whose 1-day SLO
is missed on day 3 and met at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sloanalysis.store import SeriesStore

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "checkout"
SLOTH_SPEC = FIXTURES / "checkout-slos.yaml"
RULES = FIXTURES / "checkout-rules.yml"
WEEK_SPEC = FIXTURES / "shop-1d-slo.yaml"

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
DAY_MS = 86_400_000


def ms(text: str) -> int:
    """Unix milliseconds of an RFC 3339 instant."""
    return int(pd.Timestamp(text).value // 1_000_000)


# -- the checkout service ---------------------------------------------------------------------------

JOB = "checkout"
INSTANCES = ("checkout-a", "checkout-b")
START = ms("2024-03-04T00:00:00Z")
DAYS = 3
END = START + DAYS * DAY_MS
SCRAPE_MS = 15 * SECOND_MS
OFFSET_MS = 5 * SECOND_MS
INCIDENT_START = ms("2024-03-05T12:00:00Z")
INCIDENT_END = ms("2024-03-05T12:30:00Z")
INCIDENT_ID = "checkout-errors-1"

PER_INSTANCE = 150.0
"""Requests per instance per 15 s interval (10/s)."""
REQUESTS = PER_INSTANCE * len(INSTANCES)
"""Requests of the job per interval (20/s)."""
ERROR_RATIO = {"normal": 0.001, "incident": 0.20}
BUCKETS = (0.1, 0.3, 1.0)
BUCKET_SHARE = {"normal": (0.80, 0.97, 0.995), "incident": (0.20, 0.50, 0.90)}
MEAN_LATENCY_S = {"normal": 0.08, "incident": 0.4}
LATENCY_THRESHOLD_S = 0.3

AVAILABILITY_OBJECTIVE = 0.995
LATENCY_OBJECTIVE = 0.95

THRESHOLD_ALERT = "CheckoutHighErrorRate"
BURN_ALERT = "CheckoutErrorBudgetBurn"
"""The page (severity=page) and the ticket (severity=ticket) alert share this name."""


def sample_times(start_ms: int = START, end_ms: int = END) -> np.ndarray:
    """Scrape times in ``[start, end)``: ``start + 5 s + k * 15 s``."""
    return np.arange(start_ms + OFFSET_MS, end_ms, SCRAPE_MS, dtype=np.int64)


def incident_mask(times: np.ndarray) -> np.ndarray:
    """Whether the interval *ending* at each sample time is an incident interval."""
    return (times > INCIDENT_START) & (times <= INCIDENT_END)


def intervals_in_window(start_ms: int, end_ms: int) -> tuple[int, int]:
    """``(n, m)``: the 15 s intervals between the first and the last sample of ``(start, end]`` (what
    a ``rate`` over that window counts), and how many of them are incident intervals."""
    times = sample_times()
    inside = times[(times > start_ms) & (times <= end_ms)]
    ends = inside[1:]  # each interval is named by its end sample
    return int(ends.size), int(incident_mask(ends).sum())


def availability_sli(start_ms: int, end_ms: int) -> float:
    """By hand: 1 - errors / requests = 1 - (0.001 (n - m) + 0.2 m) / n (the request rate cancels)."""
    n, m = intervals_in_window(start_ms, end_ms)
    errors = ERROR_RATIO["normal"] * (n - m) + ERROR_RATIO["incident"] * m
    return 1.0 - errors / n


def latency_sli(start_ms: int, end_ms: int) -> float:
    """By hand: requests within 0.3 s / requests = (0.97 (n - m) + 0.5 m) / n."""
    n, m = intervals_in_window(start_ms, end_ms)
    within = BUCKET_SHARE["normal"][1] * (n - m) + BUCKET_SHARE["incident"][1] * m
    return within / n


def _counter(increments: np.ndarray, initial: float) -> np.ndarray:
    """A counter sampled at each time: ``initial`` at the first sample, then the running sum of
    the increments of the intervals ending at the later samples."""
    steps = increments.copy()
    steps[0] = 0.0
    return initial + np.cumsum(steps)


def checkout_store() -> SeriesStore:
    """The checkout service's samples (see the module docstring)."""
    times = sample_times()
    bad = incident_mask(times)
    store = SeriesStore()
    err = np.where(bad, ERROR_RATIO["incident"], ERROR_RATIO["normal"]) * PER_INSTANCE
    for instance in INSTANCES:
        base = {"job": JOB, "instance": instance}
        store.add({"__name__": "up", **base}, times, np.ones(times.size))
        store.add({"__name__": "http_requests_total", **base, "code": "500"}, times, _counter(err, 1e4))
        store.add(
            {"__name__": "http_requests_total", **base, "code": "200"},
            times,
            _counter(PER_INSTANCE - err, 1e6),
        )
        total0 = 1e6 + 1e4
        for i, le in enumerate(BUCKETS):
            share = np.where(bad, BUCKET_SHARE["incident"][i], BUCKET_SHARE["normal"][i])
            initial = BUCKET_SHARE["normal"][i] * total0
            store.add(
                {"__name__": "http_request_duration_seconds_bucket", **base, "le": repr(le)},
                times,
                _counter(share * PER_INSTANCE, initial),
            )
        flat = np.full(times.size, PER_INSTANCE)
        for name in ("http_request_duration_seconds_bucket", "http_request_duration_seconds_count"):
            labels = {"__name__": name, **base, **({"le": "+Inf"} if name.endswith("_bucket") else {})}
            store.add(labels, times, _counter(flat, total0))
        mean = np.where(bad, MEAN_LATENCY_S["incident"], MEAN_LATENCY_S["normal"])
        store.add(
            {"__name__": "http_request_duration_seconds_sum", **base},
            times,
            _counter(mean * PER_INSTANCE, MEAN_LATENCY_S["normal"] * total0),
        )
    return store


@dataclass(frozen=True)
class Incident:
    id: str
    kind: str
    start_ms: int
    end_ms: int
    expected_alerts: tuple[str, ...]


CHECKOUT_INCIDENTS = (
    Incident(
        INCIDENT_ID,
        "error_spike",
        INCIDENT_START,
        INCIDENT_END,
        (THRESHOLD_ALERT, f"{BURN_ALERT}:page", f"{BURN_ALERT}:ticket"),
    ),
)


def rfc3339(ms_: int) -> str:
    return pd.Timestamp(ms_, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def write_incidents(path: Path, incidents: tuple[Incident, ...] = CHECKOUT_INCIDENTS) -> Path:
    """The documented incidents CSV: ``id,kind,start,end,expected_alerts`` (RFC 3339 times,
    alerts ``;``-separated as ``Name`` or ``Name:severity``)."""
    lines = ["id,kind,start,end,expected_alerts"]
    lines += [
        f"{i.id},{i.kind},{rfc3339(i.start_ms)},{rfc3339(i.end_ms)},{';'.join(i.expected_alerts)}"
        for i in incidents
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- hand-worked alert times (evaluations every minute at offset 0) --------------------------------


def error_ratio(window_ms: int, at_ms: int) -> float:
    """The job's error ratio over ``(at - window, at]`` as ``rate`` gives it: the increments between
    the window's samples, ``(0.001 (n - k) + 0.2 k) / n`` with ``k`` incident intervals among ``n``."""
    n, k = intervals_in_window(at_ms - window_ms, at_ms)
    return (ERROR_RATIO["normal"] * (n - k) + ERROR_RATIO["incident"] * k) / n


def condition_span(*conditions: tuple[int, float]) -> tuple[int, int]:
    """``(first, cleared)``: the first whole-minute evaluation at which every ``(window_ms,
    threshold)`` condition holds (ratio above threshold), and the first evaluation after that at
    which one no longer does. Checked around the incident only (elsewhere the ratio is 0.1 %)."""
    longest = max(w for w, _ in conditions)
    holds = [
        t
        for t in range(INCIDENT_START - MINUTE_MS, INCIDENT_END + longest + MINUTE_MS, MINUTE_MS)
        if all(error_ratio(w, t) > th for w, th in conditions)
    ]
    if not holds:
        raise AssertionError(f"{conditions}: never holds")
    first, last = holds[0], holds[-1]
    assert holds == list(range(first, last + MINUTE_MS, MINUTE_MS)), "expected one stretch"
    return first, last + MINUTE_MS


@dataclass(frozen=True)
class ExpectedAlert:
    """An alert of the checkout rules as worked out by hand: when it fires and resolves."""

    name: str
    severity: str
    for_ms: int
    condition: tuple[tuple[int, float], ...]

    @property
    def firing_ms(self) -> int:
        return condition_span(*self.condition)[0] + self.for_ms

    @property
    def resolved_ms(self) -> int:
        return condition_span(*self.condition)[1]

    @property
    def detection_ms(self) -> int:
        return self.firing_ms - INCIDENT_START

    @property
    def reset_ms(self) -> int:
        return self.resolved_ms - INCIDENT_END


BUDGET = 1 - AVAILABILITY_OBJECTIVE
EXPECTED_ALERTS = (
    ExpectedAlert(THRESHOLD_ALERT, "warning", 2 * MINUTE_MS, ((5 * MINUTE_MS, 0.05),)),
    ExpectedAlert(
        BURN_ALERT, "page", 2 * MINUTE_MS, ((60 * MINUTE_MS, 14.4 * BUDGET), (5 * MINUTE_MS, 14.4 * BUDGET))
    ),
    ExpectedAlert(
        BURN_ALERT, "ticket", 5 * MINUTE_MS, ((360 * MINUTE_MS, 3 * BUDGET), (30 * MINUTE_MS, 3 * BUDGET))
    ),
)


def threshold_alert_with(threshold: float) -> ExpectedAlert:
    """The threshold alert with another threshold (what ``tune`` tries)."""
    return ExpectedAlert(THRESHOLD_ALERT, "warning", 2 * MINUTE_MS, ((5 * MINUTE_MS, threshold),))


def page_alert_with(factor: float) -> ExpectedAlert:
    """The page alert with another burn-rate factor on both of its windows (1 h and 5 m)."""
    bound = factor * BUDGET
    return ExpectedAlert(BURN_ALERT, "page", 2 * MINUTE_MS, ((60 * MINUTE_MS, bound), (5 * MINUTE_MS, bound)))


def max_error_ratio(window_ms: int) -> float:
    """The highest error ratio over ``window_ms`` at any evaluation: the window ending with the incident
    (10.09 % for 1 h: 120 incident intervals of 239)."""
    ends = range(INCIDENT_START, INCIDENT_END + window_ms + MINUTE_MS, MINUTE_MS)
    return max(error_ratio(window_ms, t) for t in ends)


# -- a week of the shop service, for the whole-range compliance gate ------------------------------

WEEK_JOB = "shop"
WEEK_START = ms("2024-04-01T00:00:00Z")
WEEK_END = WEEK_START + 7 * DAY_MS
WEEK_SCRAPE_MS = 30 * SECOND_MS
WEEK_INCIDENT = (ms("2024-04-03T10:00:00Z"), ms("2024-04-03T12:00:00Z"))
WEEK_OBJECTIVE = 0.99
WEEK_ERROR_RATIO = {"normal": 0.001, "incident": 0.5}


def week_store() -> SeriesStore:
    """``http_requests_total{job="shop"}``: 10 requests/s, 0.1 % errors, 50 % for two hours on day 3
    (2024-04-03 10:00-12:00 UTC); samples every 30 s at a 15 s offset."""
    times = np.arange(WEEK_START + 15 * SECOND_MS, WEEK_END, WEEK_SCRAPE_MS, dtype=np.int64)
    bad = (times > WEEK_INCIDENT[0]) & (times <= WEEK_INCIDENT[1])
    per = 10.0 * WEEK_SCRAPE_MS / 1000.0
    err = np.where(bad, WEEK_ERROR_RATIO["incident"], WEEK_ERROR_RATIO["normal"]) * per
    store = SeriesStore()
    base = {"job": WEEK_JOB, "instance": "shop-1"}
    store.add({"__name__": "up", **base}, times, np.ones(times.size))
    store.add({"__name__": "http_requests_total", **base, "code": "500"}, times, _counter(err, 1e4))
    store.add({"__name__": "http_requests_total", **base, "code": "200"}, times, _counter(per - err, 1e6))
    return store


def week_worst_day_sli() -> float:
    """By hand: any 24 h window holding the whole incident (a calendar day, or the worst rolling
    window) has 0.5 errors in 2 h of 24 and 0.1 % in the other 22 h: about 95.74 %."""
    hours_bad = (WEEK_INCIDENT[1] - WEEK_INCIDENT[0]) / 3_600_000
    errors = WEEK_ERROR_RATIO["incident"] * hours_bad + WEEK_ERROR_RATIO["normal"] * (24 - hours_bad)
    return 1.0 - errors / 24

"""Live mode: requests per second the service sustains on one core with P95 < 2 s, and what
``/metrics`` scrapes cost the API's latency.

The service (``tronsim serve``, speed 1) is one asyncio thread: it uses one core at most (with
``--pin`` it is pinned to CPU 0 and the load generator to CPU 1). The load is open-loop (Poisson
arrivals at the scenario's rate, at most 256 in flight); steps go up while P95 stays under 2 s
and nothing is lost. The server's CPU time per request (from /proc) gives the one-core ceiling
even when the load generator, not the server, limits the measured rate. Scrape overhead: the
same moderate load with and without a separate process scraping ``/metrics`` every 100 ms
(150x Prometheus's 15 s), as latency ratios; plus the cost of one scrape on the idle service.

    .venv/bin/python benchmarks/bench_live.py [--steps 250,500,1000,1500,2000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.live.loadgen import LoadGenerator, LoadResult  # noqa: E402
from simulator.live.stack import free_port  # noqa: E402
from simulator.scenario import load_scenario, with_overrides  # noqa: E402

SCENARIO = {
    "name": "bench-live",
    "duration": "2h",
    "seed": 5,
    "load": {
        "api_rate": 100.0,
        "payout_rate": 10.0,
        "bursts": {"per_day": 0},
        "diurnal": {"amplitude": 0.0},
        "clients_per_role": 100,
        "amounts": {"median": 2.0, "sigma": 0.5, "minimum": 1.0, "maximum": 50.0},
    },
    "service": {
        "hourly_limit": 1.0e9,
        "daily_limit": 1.0e10,
        "payout_workers": 256,
        "db_pool": 64,
        "rate_limits": {r: {"rate": 1.0e6, "burst": 1.0e6} for r in ("user", "merchant", "admin")},
    },
}

SCRAPER = """
import sys, time, requests
url, period = sys.argv[1], float(sys.argv[2])
s = requests.Session()
while True:
    t = time.monotonic()
    s.get(url, timeout=10).content
    time.sleep(max(0.0, period - (time.monotonic() - t)))
"""

DRIVER = """
import asyncio, json, sys, time, aiohttp
url, seconds, conc, key, body = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
lat, codes, lost = [], {}, 0
async def worker(session, deadline, i):
    global lost
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        t = time.perf_counter()
        try:
            if n % 10 == 0:
                r = await session.post(url + "/api/payment/payouts", data=body,
                                       headers={"X-API-Key": key, "Content-Type": "application/json"})
            else:
                r = await session.get(url + "/api/payment/payouts/po_00000001", headers={"X-API-Key": key})
            await r.read()
            codes[r.status] = codes.get(r.status, 0) + 1
            lat.append(time.perf_counter() - t)
        except Exception:
            lost += 1
async def main():
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(worker(s, deadline, i) for i in range(conc)))
    print(json.dumps({"lat": lat, "codes": codes, "lost": lost}))
asyncio.run(main())
"""


def closed_loop(url: str, keys: dict, seconds: float, processes: int, concurrency: int) -> dict:
    """``processes`` drivers with ``concurrency`` workers each, sending back to back."""
    from simulator.live.api import encode_address

    body = json.dumps(
        {
            "amount_usdt": 2.5,
            "router_type": "v0",
            "priority": "normal",
            "recipient": encode_address(bytes(20)),
        }
    )
    drivers = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, url, str(seconds), str(concurrency), keys["admin"][i % 10], body],
            stdout=subprocess.PIPE,
        )
        for i in range(processes)
    ]
    lat: list[float] = []
    lost = 0
    for d in drivers:
        out = json.loads(d.communicate(timeout=seconds + 120)[0])
        lat += out["lat"]
        lost += out["lost"]
    lat.sort()
    return {"n": len(lat), "lost": lost, "p50": lat[len(lat) // 2], "p95": lat[int(len(lat) * 0.95)]}


def pin(cmd: list[str], cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if (os.cpu_count() or 1) > 1 and _has_taskset() else cmd


def _has_taskset() -> bool:
    return subprocess.call(["sh", "-c", "command -v taskset"], stdout=subprocess.DEVNULL) == 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_step(scenario_path: Path, url: str, keys: dict, rate: float, seconds: float) -> LoadResult:
    base = load_scenario(scenario_path)
    load = base.load.model_dump()
    load.update(api_rate=rate, payout_rate=rate / 10.0)
    scenario = with_overrides(base, load=load)
    gen = LoadGenerator(
        scenario, url, keys, duration=seconds, max_requests=int(rate * seconds * 2), concurrency=256
    )
    return asyncio.run(gen.run())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="250,500,1000,1500,2000,2500")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--pin", action="store_true", help="pin the service to CPU 0, the load to CPU 1")
    args = parser.parse_args()
    if args.pin and (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        work = Path(tmp)
        scenario_path = work / "scenario.yaml"
        scenario_path.write_text(yaml.safe_dump(SCENARIO))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "simulator.cli", "serve", str(scenario_path), "--port", str(port),
               "--keys", str(work / "keys.json"), "--log-file", os.devnull]  # fmt: skip
        server = subprocess.Popen(
            pin(cmd, 0) if args.pin else cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            for _ in range(200):
                try:
                    requests.get(f"{url}/live", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.05)
            keys = json.loads((work / "keys.json").read_text())

            # 1. One scrape on the idle service.
            session = requests.Session()
            for _ in range(20):
                session.get(f"{url}/metrics").raise_for_status()
            t = time.perf_counter()
            n = 200
            size = 0
            for _ in range(n):
                size = len(session.get(f"{url}/metrics").content)
            scrape_ms = (time.perf_counter() - t) / n * 1000
            print(f"one /metrics scrape (idle, {size} bytes, round trip): {scrape_ms:.2f} ms")

            # 2. Throughput steps.
            print(
                f"{'offered/s':>10} {'answered/s':>11} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'lost':>5} "
                f"{'server CPU':>10} {'CPU ms/req':>10}"
            )
            sustained, per_request = 0.0, []
            for rate in (float(x) for x in args.steps.split(",")):
                cpu0 = cpu_seconds(server.pid)
                r = run_step(scenario_path, url, keys, rate, args.seconds)
                cpu = cpu_seconds(server.pid) - cpu0
                answered_n = sum(r.statuses.values())
                answered = answered_n / r.wall
                lost = sum(r.lost.values())
                per_request.append(cpu / max(1, answered_n))
                print(
                    f"{rate:>10.0f} {answered:>11.0f} {r.quantile(0.5) * 1000:>8.1f} "
                    f"{r.quantile(0.95) * 1000:>8.1f} {r.quantile(0.99) * 1000:>8.1f} {lost:>5} "
                    f"{cpu / r.wall:>10.0%} {per_request[-1] * 1000:>10.2f}",
                    flush=True,
                )
                if r.quantile(0.95) >= 2.0 or lost:
                    break
                sustained = max(sustained, answered)
            print(f"sustained on one core with P95 < 2 s: {sustained:.0f} requests/s (measured)")
            print(
                f"server CPU per request: {min(per_request) * 1000:.2f} ms, i.e. at most "
                f"{1 / min(per_request):.0f} requests per CPU-second"
            )

            # 2b. Closed loop: driver processes send back to back (no arrival process in the way).
            for procs, conc in ((2, 64), (2, 128)):
                cpu0 = cpu_seconds(server.pid)
                t0 = time.perf_counter()
                c = closed_loop(url, keys, args.seconds, procs, conc)
                wall = time.perf_counter() - t0
                cpu = cpu_seconds(server.pid) - cpu0
                print(
                    f"closed loop {procs}x{conc}: {c['n'] / args.seconds:.0f} requests/s, "
                    f"P50 {c['p50'] * 1000:.1f} ms, P95 {c['p95'] * 1000:.1f} ms, lost {c['lost']}, "
                    f"server CPU {cpu / wall:.0%}",
                    flush=True,
                )

            # 3. Scrape overhead at half the sustained rate, alternating runs (3 each).
            rate = max(100.0, round(sustained / 2, -1))
            p50s: dict[bool, list[float]] = {False: [], True: []}
            p95s: dict[bool, list[float]] = {False: [], True: []}
            for _rep in range(3):
                for scraping in (False, True):
                    scraper = None
                    if scraping:
                        scraper = subprocess.Popen(
                            [sys.executable, "-c", SCRAPER, f"{url}/metrics", "0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        )  # fmt: skip
                    try:
                        r = run_step(scenario_path, url, keys, rate, args.seconds)
                    finally:
                        if scraper is not None:
                            scraper.terminate()
                            scraper.wait()
                    p50s[scraping].append(r.quantile(0.5))
                    p95s[scraping].append(r.quantile(0.95))
            ratio50 = median(p50s[True]) / median(p50s[False])
            ratio95 = median(p95s[True]) / median(p95s[False])
            print(
                f"scrape overhead at {rate:.0f} requests/s, scrapes every 100 ms: "
                f"P50 {median(p50s[False]) * 1000:.1f} -> {median(p50s[True]) * 1000:.1f} ms "
                f"(x{ratio50:.2f}), "
                f"P95 {median(p95s[False]) * 1000:.1f} -> {median(p95s[True]) * 1000:.1f} ms (x{ratio95:.2f})"
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

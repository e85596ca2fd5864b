"""Live mode's hardening, each fault reproduced against a real server on 127.0.0.1.

Servers run as ``tronsim serve`` subprocesses (or in-process, where the test must reach inside)
with time-outs configured small: header and body deadlines of 1 s, keep-alive 2 s. Connection
counts are bounded (at most 200 slow connections) and so is every wait (a few seconds each).

The limit rule (documented in simulator/service.py): a payout above the hourly limit can never be
paid, so it is invalid (422, breaker untouched); one that does not fit the window's remaining
budget is refused (422) and opens the breaker only when the window has used 90 % of its limit.
Expectations below are worked by hand from the seed's limits, 1,000 USDT an hour, 10,000 a day.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import requests
import simpy
import yaml

from simulator.live.api import encode_address
from simulator.live.guard import ServerLimits
from simulator.live.serve import LiveServer, run_server
from simulator.live.stack import free_port
from simulator.network import TronNetwork
from simulator.randomness import Draws
from simulator.scenario import scenario_from_dict
from simulator.service import PayoutService
from simulator.workload import halt_windows

ROOT = Path(__file__).resolve().parents[1]
PAYOUTS = "/api/payment/payouts"
SAME_PREFIX = ("tk_merchant_7_aaaaaaaaaaaaaaaaaaaaaaaa", "tk_merchant_7_bbbbbbbbbbbbbbbbbbbbbbbb")
KEYS = {
    "user": ["tk_user_0_uuuuuuuuuuuuuuuuuuuuuuuu"],
    "merchant": [
        *SAME_PREFIX,
        "tk_merchant_2_cccccccccccccccccccccccc",
        "tk_merchant_3_dddddddddddddddddddd",
    ],
    "admin": ["tk_admin_0_zzzzzzzzzzzzzzzzzzzzzzzz"],
}
FAST = {"rate": 1000.0, "burst": 1000}
SCENARIO: dict[str, Any] = {
    "name": "live-security",
    "duration": "2h",
    "seed": 4,
    "load": {"api_rate": 1.0, "payout_rate": 0.5, "clients_per_role": 4},
    "service": {
        "hourly_limit": 1000,
        "daily_limit": 10000,
        "rate_limits": {"user": FAST, "merchant": FAST, "admin": FAST},
    },
}
FLAGS = ["--header-timeout", "1", "--body-timeout", "1", "--keepalive-timeout", "2"]


def _start(work: Path, scenario: dict[str, Any], *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    work.mkdir(parents=True, exist_ok=True)
    (work / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    (work / "keys.json").write_text(json.dumps(KEYS))
    port = free_port()
    with open(work / "service.log", "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "serve", str(work / "scenario.yaml"), "--port", str(port),
             "--keys", str(work / "keys.json"), "--log-file", str(work / "events.jsonl"), *flags],
            stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(f"{url}/live", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError((work / "service.log").read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("live-security")
    proc, url = _start(work, SCENARIO, *FLAGS, "--max-connections", "400")
    try:
        yield {"url": url, "port": int(url.rsplit(":", 1)[1]), "work": work}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _body(amount: Any = 5.0) -> dict[str, Any]:
    return {"amount_usdt": amount, "router_type": "v0", "recipient": encode_address(bytes(range(20)))}


def _post(url: str, key: str, body: Any = None, *, data: bytes | None = None) -> requests.Response:
    payload = data if data is not None else json.dumps(body).encode()
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    return requests.post(f"{url}{PAYOUTS}", data=payload, headers=headers, timeout=10)


def _metric(url: str, name: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def _raw(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send ``data`` on a new connection; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def _clear_of_hour_boundary() -> None:
    """The hourly window must not reset mid-test (speed 1: the epoch clock is the wall clock)."""
    left = 3600 - time.time() % 3600
    if left < 30:
        time.sleep(left + 1)


# -- limits: the shared rule, first in the simulation, then over HTTP -----------------------------
def test_simulation_refuses_oversize_and_opens_breaker_only_when_the_window_is_exhausted() -> None:
    sc = scenario_from_dict(SCENARIO, source="<test>")
    env = simpy.Environment()
    draws = Draws(np.random.default_rng(1))
    svc = PayoutService(
        env, sc, draws, TronNetwork(sc.network, draws, sc.start.timestamp(), halt_windows(sc))
    )
    answers: list[tuple[int, str]] = []

    def submit(amount: float) -> Any:
        payout = svc.submit("v0", "normal", amount, "merchant-0")
        answer = yield from svc.admit_payout(payout, 0.0)
        answers.append((answer.status, answer.error))

    def script() -> Any:
        for amount in (10_000.01, 1000.01, 600.0, 500.0, 300.0, 200.0, 1.0):
            yield from submit(amount)

    env.process(script())
    env.run(until=60)
    assert answers == [
        (422, "amount_above_limit"),  # above the hourly limit: never payable
        (422, "amount_above_limit"),
        (202, ""),  # hourly usage 600
        (422, "hourly_limit_exceeded"),  # 1100 > 1000, but 600 < 900: breaker stays closed
        (202, ""),  # usage 900
        (422, "hourly_limit_exceeded"),  # 1100 > 1000 and 900 >= 90 %: opens the breaker
        (422, "circuit_breaker_open"),  # everyone waits for the next UTC hour
    ]


def test_amounts_above_the_limits_are_422_and_do_not_open_the_breaker(server: dict[str, Any]) -> None:
    url = server["url"]
    _clear_of_hour_boundary()
    attacker, other = KEYS["merchant"][2], KEYS["merchant"][3]
    for amount in (10_000.01, 1000.01, 1_000_000):
        r = _post(url, attacker, _body(amount))
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "amount_usdt"]
    assert _metric(url, "tron_circuit_breaker_status") == 0
    assert _post(url, other, _body(600.0)).status_code == 202  # hourly usage 600
    r = _post(url, attacker, _body(500.0))  # does not fit the 400 left; 600 < 90 % of 1000
    assert (r.status_code, r.json()["status"]) == (422, "rejected")
    assert _metric(url, "tron_circuit_breaker_status") == 0
    assert _post(url, other, _body(5.0)).status_code == 202  # others are still paid
    assert requests.get(f"{url}/health", timeout=5).json()["checks"]["circuit_breaker"]["status"] == "closed"


# -- slow and numerous clients ------------------------------------------------------------------
def test_slow_headers_are_cut_and_do_not_starve_others(server: dict[str, Any]) -> None:
    url, port = server["url"], server["port"]
    slow = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /api/payment/payouts/po_00000001 HTTP/1.1\r\nHost: x\r\n")  # head never ends
        slow.append(s)
    try:
        started = time.monotonic()
        for _ in range(5):  # others are served meanwhile
            t = time.monotonic()
            assert requests.get(f"{url}/live", timeout=5).status_code == 200
            assert time.monotonic() - t < 0.5
        answers = []
        for s in slow:
            s.settimeout(max(0.1, started + 4.0 - time.monotonic()))
            try:
                answers.append(s.recv(1024))
            except TimeoutError:
                answers.append(b"still open")
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:20] for a in answers}
        assert time.monotonic() - started < 4.0
    finally:
        for s in slow:
            s.close()


def test_slow_body_gets_408(server: dict[str, Any]) -> None:
    url, port = server["url"], server["port"]
    before = _metric(url, "slo_total_requests_total")
    head = (
        f"POST {PAYOUTS} HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEYS['merchant'][3]}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    t = time.monotonic()
    answer = _raw(port, head.encode() + b'{"amount_usdt": 5')
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert 0.9 < time.monotonic() - t < 4.5  # 408 after 1 s; closed after at most 2 s of draining
    assert _metric(url, "slo_total_requests_total") == before + 1


def test_connections_beyond_the_cap_get_503(tmp_path: Path) -> None:
    proc, url = _start(tmp_path, SCENARIO, "--header-timeout", "3", "--max-connections", "20")
    port = int(url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    try:
        time.sleep(0.2)
        answer = _raw(port, b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503"), answer[:100]
        for s in idle:
            s.close()
        time.sleep(0.3)
        assert requests.get(f"{url}/live", timeout=5).status_code == 200  # slots are given back
    finally:
        for s in idle:
            s.close()
        proc.terminate()
        proc.wait(timeout=10)


# -- secrets ------------------------------------------------------------------------------------
def test_keys_never_reach_a_log_and_same_prefix_keys_both_work(server: dict[str, Any]) -> None:
    url, port = server["url"], server["port"]
    first, second = SAME_PREFIX
    for key in (first, second):  # the second no longer shadows the first
        r = requests.get(f"{url}{PAYOUTS}/po_00000001", headers={"X-API-Key": key}, timeout=5)
        assert r.status_code in (200, 403, 404), (key, r.status_code)
    assert _post(url, first, _body(1.0)).status_code == 202
    assert _post(url, second, _body(1.0)).status_code == 202
    assert (
        requests.get(f"{url}{PAYOUTS}/po_1", headers={"X-API-Key": first[:-1]}, timeout=5).status_code == 401
    )
    key = KEYS["merchant"][3]
    answer = _raw(port, f"GET {PAYOUTS}/po_1 HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\rX: 1\r\n\r\n".encode())
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request") and key.encode() not in answer
    time.sleep(0.3)
    log = (server["work"] / "service.log").read_text()
    events = (server["work"] / "events.jsonl").read_text()
    assert "BadHttpMessage (HTTP 400; request not shown)" in log  # one line, no traceback
    for keys in KEYS.values():
        for k in keys:
            secret = k.rsplit("_", 1)[1]
            assert secret not in log and secret not in events, k
    assert "Traceback" not in log


def test_bad_amounts_and_ids_are_4xx_and_every_answer_is_counted(server: dict[str, Any]) -> None:
    url, key = server["url"], KEYS["merchant"][3]
    before = _metric(url, "slo_total_requests_total")
    recipient = encode_address(bytes(range(20)))
    sent = 0
    for digits in (310, 5000):
        data = f'{{"amount_usdt": {"1" * digits}, "router_type": "v0", "recipient": "{recipient}"}}'.encode()
        r = _post(url, key, data=data)
        sent += 1
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "amount_usdt"]
    for path in ("po_²", "po_١٢", "po_", "po_" + "9" * 40):
        r = requests.get(f"{url}{PAYOUTS}/{path}", headers={"X-API-Key": key}, timeout=5)
        sent += 1
        assert r.status_code == 404, (path, r.status_code)
    assert requests.get(f"{url}/api/nothing", timeout=5).status_code == 404
    assert requests.delete(f"{url}{PAYOUTS}", timeout=5).status_code == 405
    sent += 2
    assert _metric(url, "slo_total_requests_total") == before + sent


def test_an_exception_answers_500_and_is_counted() -> None:
    """In-process (the test replaces a service method with one that raises), on 127.0.0.1."""
    sc = scenario_from_dict(SCENARIO, source="<test>")

    async def scenario_run() -> tuple[int, float, float]:
        server = LiveServer(sc, KEYS, speed=1.0, log_stream=None, limits=ServerLimits())
        ready, stop = asyncio.Event(), asyncio.Event()
        port = free_port()
        task = asyncio.create_task(
            run_server(server, "127.0.0.1", port, ready=ready, stop=stop, announce=None)
        )
        await ready.wait()

        def broken(operation: str) -> Any:
            raise RuntimeError("a bug")

        server.svc.database = broken  # type: ignore[method-assign]
        try:
            async with aiohttp.ClientSession() as session:
                headers = {"X-API-Key": KEYS["admin"][0]}
                async with session.get(f"http://127.0.0.1:{port}{PAYOUTS}/po_1", headers=headers) as r:
                    status = r.status
        finally:
            stop.set()
            await task
        m = server.svc.metrics
        return status, m.slo_total_requests._value.get(), m.slo_successful_requests._value.get()

    status, total, ok = asyncio.run(scenario_run())
    assert (status, total, ok) == (500, 1.0, 0.0)


# -- crashes and start-up errors ------------------------------------------------------------------
def test_crash_during_slow_insert_leaves_no_payout_received(tmp_path: Path) -> None:
    """Speed 10; database operations take ~20 simulated s (2 wall s); the crash covers simulated
    30-50 s (wall 3-5 s). Payouts submitted at wall ~2 s are mid-insert when it hits."""
    scenario = {
        **SCENARIO,
        "service": {**SCENARIO["service"], "db_latency": {"median": 20.0, "sigma": 0.01}, "db_timeout": 60},
        "incidents": [{"kind": "service_crash", "start": "30s", "duration": "20s"}],
    }
    proc, url = _start(tmp_path, scenario, "--speed", "10")
    try:
        origin = requests.get(f"{url}/admin/timeline", timeout=5).json()["epoch"]
        time.sleep(max(0.0, origin + 1.8 - time.time()))

        def submit(i: int) -> int:
            try:
                return _post(url, KEYS["merchant"][i % 4], _body(2.0)).status_code
            except requests.ConnectionError:
                return 0  # reset by the crash

        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(submit, range(6)))
        assert codes == [0] * 6, codes  # every insert was cut (wall 2 + 2 > 3)
        time.sleep(max(0.0, origin + 5.5 - time.time()))
        stats = requests.get(f"{url}/admin/stats", timeout=5).json()
        assert stats["lost_in_flight"] >= 6
        assert "received" not in stats["by_status"], stats
        assert stats["payouts"] == 0  # none was stored
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_log_file_that_is_a_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    target = tmp_path / "logs"
    target.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "serve", str(tmp_path / "s.yaml"), "--port", "0",
         "--keys", str(tmp_path / "k.json"), "--log-file", str(target)],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert re.search(r"--log-file .*logs: cannot append to it: Is a directory", proc.stderr), proc.stderr
    assert "listen" not in proc.stderr

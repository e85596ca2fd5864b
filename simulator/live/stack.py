"""``make live``: the service, its load, a real Prometheus and Alertmanager on 127.0.0.1.

``python -m simulator.live.stack [SCENARIO] [--speed 1]`` starts ``tronsim serve``, Debian's
``prometheus`` (scraping the service, loading ``monitoring/rules/*.yml``) and
``prometheus-alertmanager`` (``monitoring/alertmanager.yml``, clustering off), then ``tronsim
load``; prints the URLs; and on Ctrl-C stops every process it started (by its own process id).
:func:`running_stack` is the same stack as a context manager, for tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from sloanalysis.files import fresh_directory

ROOT = Path(__file__).resolve().parents[2]  # the source checkout, when run from one
MONITORING = ROOT / "monitoring"
RULE_NAMES = ("tron-payment.yml", "slo-generated.yml")
RULE_FILES = tuple(MONITORING / "rules" / name for name in RULE_NAMES)
PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
ALERTMANAGER = os.environ.get("ALERTMANAGER", "/usr/bin/prometheus-alertmanager")
JOB = "tron-payment-api"


def prometheus_config(
    target: str,
    alertmanager: str,
    rule_files: Sequence[Path] = RULE_FILES,
    *,
    scrape_interval: str = "15s",
    evaluation_interval: str = "15s",
) -> str:
    """monitoring/prometheus.yml with loopback addresses and absolute rule file paths."""
    rules = "".join(f"  - {Path(p).resolve()}\n" for p in rule_files)
    return (
        f"global:\n  scrape_interval: {scrape_interval}\n  scrape_timeout: {scrape_interval}\n"
        f"  evaluation_interval: {evaluation_interval}\n"
        f"rule_files:\n{rules}"
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{target}']\n"
    )


def monitoring_files(monitoring: Path) -> tuple[tuple[Path, ...], Path]:
    """(rule files, alertmanager.yml) under ``monitoring``; RuntimeError naming the first missing."""
    rules = tuple(monitoring / "rules" / name for name in RULE_NAMES)
    alertmanager = monitoring / "alertmanager.yml"
    for path in (*rules, alertmanager):
        if not path.is_file():
            raise RuntimeError(
                f"{path}: not found (run from a source checkout, or pass --monitoring DIR with "
                f"rules/{' and rules/'.join(RULE_NAMES)} and alertmanager.yml)"
            )
    return rules, alertmanager


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    service: str
    prometheus: str
    alertmanager: str
    workdir: Path
    keys: Path
    epoch: float = 0.0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_load(self, scenario: str | Path, *, duration: str, max_requests: int = 1_000_000) -> None:
        cmd = [
            sys.executable, "-m", "simulator.cli", "load", str(scenario), "--target", self.service,
            "--keys", str(self.keys), "--duration", duration, "--max-requests", str(max_requests),
        ]  # fmt: skip
        self.procs["load"] = _spawn(cmd, self.workdir / "load.log")

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        # A new session: Ctrl-C reaches only the supervisor, which stops each child in order.
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1.0).status_code == 200:
                return True
        time.sleep(0.1)
    return False


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in reversed(list(procs.values())):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in reversed(list(procs.values())):
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def running_stack(
    scenario: str | Path,
    *,
    speed: float = 1.0,
    scrape_interval: str = "15s",
    evaluation_interval: str = "15s",
    ports: tuple[int, int, int] | None = None,
    workdir: Path | None = None,
    ready_timeout: float = 30.0,
    monitoring: Path = MONITORING,
) -> Iterator[Stack]:
    """Service, Alertmanager and Prometheus on 127.0.0.1 (free ports unless ``ports`` is given),
    with the rules and Alertmanager configuration under ``monitoring``."""
    rule_files, alertmanager_yml = monitoring_files(monitoring)
    missing = [p for p in (PROMETHEUS, ALERTMANAGER) if not (shutil.which(p) or os.access(p, os.X_OK))]
    if missing:
        raise RuntimeError(
            f"needs {' and '.join(missing)} (apt-get install prometheus prometheus-alertmanager)"
        )
    with contextlib.ExitStack() as exits:
        if workdir is None:
            workdir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="tronsim-live-")))
        workdir.mkdir(parents=True, exist_ok=True)
        svc_port, prom_port, am_port = ports or (free_port(), free_port(), free_port())
        stack = Stack(
            service=f"http://127.0.0.1:{svc_port}",
            prometheus=f"http://127.0.0.1:{prom_port}",
            alertmanager=f"http://127.0.0.1:{am_port}",
            workdir=workdir,
            keys=workdir / "api-keys.json",
        )
        procs = stack.procs
        try:
            stack.epoch = time.time()
            procs["service"] = _spawn(
                [
                    sys.executable, "-m", "simulator.cli", "serve", str(scenario), "--port", str(svc_port),
                    "--speed", str(speed), "--keys", str(stack.keys), "--epoch", f"{stack.epoch:.3f}",
                    "--log-file", str(workdir / "events.jsonl"),
                ],
                workdir / "service.log",
            )  # fmt: skip
            procs["alertmanager"] = _spawn(
                [
                    ALERTMANAGER, f"--config.file={alertmanager_yml}",
                    f"--storage.path={workdir / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=", "--log.level=warn",
                ],
                workdir / "alertmanager.log",
            )  # fmt: skip
            config = workdir / "prometheus.yml"
            config.write_text(
                prometheus_config(
                    f"127.0.0.1:{svc_port}",
                    f"127.0.0.1:{am_port}",
                    rule_files,
                    scrape_interval=scrape_interval,
                    evaluation_interval=evaluation_interval,
                )
            )
            procs["prometheus"] = _spawn(
                [
                    PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'prometheus'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
                ],
                workdir / "prometheus.log",
            )  # fmt: skip
            for name, url in (
                ("service", f"{stack.service}/live"),
                ("alertmanager", f"{stack.alertmanager}/-/ready"),
                ("prometheus", f"{stack.prometheus}/-/ready"),
            ):
                if not _wait_ready(url, procs[name], ready_timeout):
                    raise RuntimeError(f"{name} did not become ready at {url}: {stack.log_tail(name)}")
            yield stack
        finally:
            _stop(procs)


def first_served(base: str, paths: Sequence[str], timeout: float = 2.0) -> str | None:
    """The first of ``base + path`` that answers 200 (loopback only): which UI this build serves."""
    for path in paths:
        try:
            if requests.get(base + path, timeout=timeout).status_code == 200:
                return base + path
        except requests.RequestException:
            continue
    return None


def served_urls(prometheus: str, alertmanager: str) -> list[tuple[str, str]]:
    """URLs that work on the installed builds. Debian's Prometheus 2.42 serves its UI under
    ``/classic/`` (the React UI is not packaged) and Debian's Alertmanager ships no web UI at all, so
    the addresses are probed rather than assumed; the APIs are always there."""
    rows = []
    ui = first_served(prometheus, ("/alerts", "/classic/alerts"))
    rows.append(("prometheus", ui or f"{prometheus}/api/v1/alerts (no web UI in this build)"))
    rows.append(("prometheus API", f"{prometheus}/api/v1/query?query=up"))
    am_ui = first_served(alertmanager, ("/#/alerts",)) if first_served(alertmanager, ("/",)) else None
    rows.append(("alertmanager", am_ui or f"{alertmanager}/api/v2/alerts (no web UI in this build)"))
    rows.append(("amtool", f"amtool --alertmanager.url={alertmanager} alert query"))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulator.live.stack", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "scenario", nargs="?", default=str(ROOT / "scenarios" / "smoke.yaml"), help="scenario (smoke.yaml)"
    )
    parser.add_argument(
        "--monitoring", default=str(MONITORING), help="directory with rules/ and alertmanager.yml"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="scenario seconds per wall second")
    parser.add_argument("--duration", default="", help="load duration (default: the whole scenario)")
    parser.add_argument("--workdir", default=str(ROOT / ".tronsim" / "live"), help="logs and TSDB here")
    parser.add_argument("--ports", default="8090,9090,9093", help="service,prometheus,alertmanager ports")
    args = parser.parse_args(argv)
    from simulator.scenario import load_scenario
    from sloanalysis.errors import UserError

    try:
        if not Path(args.scenario).is_file():
            raise UserError(f"{args.scenario}: scenario file not found")
        monitoring_files(Path(args.monitoring))
        scenario = load_scenario(args.scenario)
        ports = tuple(int(p) for p in args.ports.split(","))
        if len(ports) != 3:
            raise UserError(f"--ports: expected three ports, got {args.ports!r}")
    except (UserError, ValueError, RuntimeError) as exc:
        print(f"live: error: {exc}", file=sys.stderr)
        return 2
    duration = args.duration or f"{max(1, int(scenario.duration / args.speed))}s"
    workdir = Path(args.workdir)
    try:  # emptied only if this command made it: --workdir may name any directory
        fresh_directory(
            workdir, ".tronsim-live", inputs=[args.scenario, args.monitoring], what="live work directory",
            legacy=("api-keys.json", "events.jsonl", "prometheus.yml", "prometheus", "alertmanager", "*.log"),
        )  # fmt: skip
    except UserError as exc:
        print(f"live: error: {exc}", file=sys.stderr)
        return 2
    try:
        with running_stack(
            args.scenario,
            speed=args.speed,
            ports=ports,
            workdir=workdir,
            monitoring=Path(args.monitoring),
        ) as stack:
            stack.start_load(args.scenario, duration=duration)
            rows = [
                ("service", f"{stack.service}/api/payment/payouts  ({stack.service}/health)"),
                ("metrics", f"{stack.service}/metrics"),
                *served_urls(stack.prometheus, stack.alertmanager),
                ("scenario", f"{scenario.name} at speed {args.speed:g}, load for {duration}"),
                ("logs", str(workdir)),
            ]
            width = max(len(k) for k, _ in rows)
            print("\n".join(f"{k:<{width}}  {v}" for k, v in rows), flush=True)
            print("Ctrl-C stops everything.", flush=True)
            while all(p.poll() is None for n, p in stack.procs.items() if n != "load"):
                time.sleep(0.5)
            dead = [n for n, p in stack.procs.items() if n != "load" and p.poll() is not None]
            print(f"live: {', '.join(dead)} exited: {stack.log_tail(dead[0], 500)}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 0
    except RuntimeError as exc:
        print(f"live: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

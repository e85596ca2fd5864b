"""Real Prometheus for tests and benchmarks: promtool backfill plus a throwaway server.

Usage::

    blocks = backfill(openmetrics_path, tmp_path / "blocks")
    with running_prometheus(blocks) as url:
        PrometheusConnect(url).custom_query("up")

Each server gets its own copy of the blocks (Prometheus writes into its data directory), listens
on 127.0.0.1 on a free port, has no scrape targets unless ``config_text`` adds some, keeps data for
100 years (backfilled runs lie in the past) and is killed on exit. Its log is kept next to the
copied data and quoted when it fails to start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

PROMTOOL = os.environ.get("PROMTOOL", "/usr/bin/promtool")
PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
MINIMAL_CONFIG = "global:\n  evaluation_interval: 1m\nscrape_configs: []\n"


def binaries_missing() -> list[str]:
    """Paths of the promtool/prometheus binaries that are not executable here."""
    return [p for p in (PROMTOOL, PROMETHEUS) if not (shutil.which(p) or os.access(p, os.X_OK))]


def backfill(
    openmetrics_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    *,
    max_block_duration: str = "720h",
    timeout: float = 600.0,
) -> Path:
    """Turn an OpenMetrics file into TSDB blocks in ``data_dir`` (created); returns ``data_dir``.

    ``--max-block-duration`` (a hidden flag on 2.42) makes promtool read the file once instead of
    once per 2-hour block.
    """
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        PROMTOOL,
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        f"--max-block-duration={max_block_duration}",
        "--quiet",
        str(openmetrics_path),
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_prometheus(
    data_dir: str | os.PathLike[str] | None,
    *,
    config_text: str | None = None,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 30.0,
) -> Iterator[str]:
    """Start ``/usr/bin/prometheus`` on a copy of ``data_dir``'s blocks; yield its base URL."""
    with tempfile.TemporaryDirectory(prefix="promtest-") as tmp:
        work = Path(tmp)
        data = work / "data"
        if data_dir is not None:
            shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns("wal", "chunks_head", "lock"))
        else:
            data.mkdir()
        config = work / "prometheus.yml"
        config.write_text(config_text if config_text is not None else MINIMAL_CONFIG)
        log_path = work / "prometheus.log"
        for _attempt in range(3):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            cmd = [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                *extra_args,
            ]
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work)
            try:
                if _wait_ready(url, proc, ready_timeout):
                    yield url
                    return
            finally:
                proc.kill()
                proc.wait(timeout=10)
            if "address already in use" not in log_path.read_text(errors="replace"):
                break
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"prometheus did not become ready at {url}: {tail}")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if requests.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return False

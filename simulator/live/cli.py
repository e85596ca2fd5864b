"""The ``tronsim serve`` and ``tronsim load`` subcommands (arguments here; aiohttp loaded on use)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sloanalysis.cli.app import add_command
from sloanalysis.durations import parse_duration_ms
from sloanalysis.errors import UserError

DEFAULT_KEYS = ".tronsim/api-keys.json"


def add_commands(sub: Any) -> None:
    srv = add_command(
        sub,
        "serve",
        "Run the payout service over HTTP in real time (the simulation's own decisions, the seed's API).",
        ("tronsim serve scenarios/live.yaml --port 8090 --speed 10",),
    )
    srv.add_argument("scenario", help="scenario YAML file (its load, service, network and incidents)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8090, help="port (default 8090)")
    srv.add_argument("--speed", type=float, default=1.0, help="scenario seconds per wall second (default 1)")
    srv.add_argument("--epoch", type=float, help="Unix time of scenario time 0 (default: start-up)")
    srv.add_argument(
        "--keys", default=DEFAULT_KEYS, help=f"API keys file, created 0600 if missing ({DEFAULT_KEYS})"
    )
    srv.add_argument("--log-file", help="append the JSON log events here (default: standard output)")
    srv.add_argument("--header-timeout", type=float, default=10.0, help="seconds for a request head (10)")
    srv.add_argument("--body-timeout", type=float, default=10.0, help="seconds for a request body (10)")
    srv.add_argument(
        "--keepalive-timeout", type=float, default=15.0, help="idle seconds before closing a connection (15)"
    )
    srv.add_argument(
        "--max-connections", type=int, default=1024, help="connections served at once; beyond: 503 (1024)"
    )
    srv.set_defaults(_run=cmd_serve)

    load = add_command(
        sub,
        "load",
        "Drive a running service with a scenario's traffic, bounded in count and time (loopback only).",
        ("tronsim load scenarios/live.yaml --target http://127.0.0.1:8090 --max-requests 2000",),
    )
    load.add_argument("scenario", help="scenario YAML file (the one the service plays)")
    load.add_argument("--target", default="http://127.0.0.1:8090", help="service URL (loopback only)")
    load.add_argument("--duration", default="2m", help="stop after this long (default 2m)")
    load.add_argument("--max-requests", type=int, default=100_000, help="stop after this many (100000)")
    load.add_argument("--concurrency", type=int, default=50, help="requests in flight at most (50)")
    load.add_argument("--keys", default=DEFAULT_KEYS, help=f"API keys file written by serve ({DEFAULT_KEYS})")
    load.add_argument("--seed", type=int, help="seed of the request mix (default: scenario seed + 1)")
    load.add_argument("--format", choices=("table", "json"), default="table")
    load.set_defaults(_run=cmd_load)


def cmd_serve(args: argparse.Namespace) -> int:
    from simulator.live.api import load_or_create_keys
    from simulator.live.guard import ServerLimits
    from simulator.live.loadgen import check_loopback
    from simulator.live.serve import serve
    from simulator.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    if not 0 < args.speed <= 10_000:
        raise UserError(f"--speed: expected a number in (0, 10000], got {args.speed!r}")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port: expected 0..65535, got {args.port}")
    for flag in ("header_timeout", "body_timeout", "keepalive_timeout"):
        if not 0 < getattr(args, flag) <= 3600:
            raise UserError(
                f"--{flag.replace('_', '-')}: expected seconds in (0, 3600], got {getattr(args, flag)!r}"
            )
    if not 1 <= args.max_connections <= 100_000:
        raise UserError(f"--max-connections: expected 1..100000, got {args.max_connections}")
    keys = load_or_create_keys(Path(args.keys), scenario.load.clients_per_role)
    limits = ServerLimits(
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keepalive_timeout=args.keepalive_timeout,
        max_connections=args.max_connections,
    )
    check_loopback(f"http://{args.host}:{args.port}", what="--host")  # a simulation never faces a network
    return serve(
        scenario,
        keys,
        host=args.host,
        port=args.port,
        speed=args.speed,
        epoch=args.epoch,
        log_path=Path(args.log_file) if args.log_file else None,
        limits=limits,
    )


def cmd_load(args: argparse.Namespace) -> int:
    from simulator.live.loadgen import check_loopback, run_load
    from simulator.scenario import load_scenario
    from sloanalysis.formatting import render

    check_loopback(args.target)  # before anything else: refuse early, one line
    scenario = load_scenario(args.scenario)
    duration = parse_duration_ms(args.duration, what="--duration") / 1000.0
    if not 0 < duration <= 30 * 86400:
        raise UserError(f"--duration: expected a positive duration up to 30d, got {args.duration!r}")
    if not 0 < args.max_requests <= 10_000_000:
        raise UserError(f"--max-requests: expected 1..10000000, got {args.max_requests}")
    if not 0 < args.concurrency <= 1000:
        raise UserError(f"--concurrency: expected 1..1000, got {args.concurrency}")
    result = run_load(
        scenario,
        args.target,
        Path(args.keys),
        duration=duration,
        max_requests=args.max_requests,
        concurrency=args.concurrency,
        seed=args.seed,
    )
    print(render(result.rows(), args.format), end="" if args.format == "json" else "\n")
    return 0

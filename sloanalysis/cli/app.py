"""What both command lines (``sloanalysis`` and ``tronsim``) share: ``--version``, ``--debug``, examples
under each subcommand's help, and the top-level guard that turns any failure into one line and a status.

Statuses: 0 success, 1 a failed check (gates, lint errors, failing rule tests), 2 bad input or any
other error (one line on stderr, no traceback unless ``--debug``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sloanalysis.errors import UserError

DISTRIBUTION = "tron-slo-toolkit"


def package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def new_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an unexpected error"
    )
    return parser


DEFAULT_TIMEOUT_S = 30.0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 86_400:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, got {text!r}")
    return value


def add_timeout_argument(parser: argparse.ArgumentParser, default: float = DEFAULT_TIMEOUT_S) -> None:
    """``--timeout S``, the same on every command that contacts a Prometheus server."""
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=default,
        metavar="S",
        help=f"seconds to wait for each Prometheus request (default {default:g})",
    )


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    examples: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` shows its one-line summary and, below the options, examples."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars (they only ever show on a terminal)"
    )


def progress_bar(total: float, unit: str, description: str, *, quiet: bool = False) -> Any:
    """A tqdm bar on stderr when it is a terminal and ``--quiet`` was not given, else None: CI logs
    and pipes stay clean."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=description, file=sys.stderr, leave=False)


def run_guarded(prog: str, args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """Run a command; every failure becomes one line on stderr and a status (see the module doc)."""
    command = f"{prog} {getattr(args, 'command', '')}".strip()
    try:
        return int(run(args))
    except UserError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; nothing more to say
        return 0
    except RecursionError:
        if args.debug:
            raise
        print(f"{command}: error: input nested too deeply to process", file=sys.stderr)
        return 2
    except MemoryError:
        if args.debug:
            raise
        print(f"{command}: error: out of memory (narrow the range or raise the step)", file=sys.stderr)
        return 2
    except Exception as exc:  # the top-level guard: a bug must not look like a crash dump to a user
        if args.debug:
            raise
        where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
        detail = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).splitlines()
        print(
            f"{command}: error: {type(exc).__name__}{where}: {detail[0] if detail else ''}"
            " (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 2

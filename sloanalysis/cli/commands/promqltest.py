"""``sloanalysis promqltest``: run promqltest scripts against the embedded PromQL engine."""

from __future__ import annotations

import argparse
from collections import Counter

from sloanalysis.promql.promqltest import run_file, summarize

NAME = "promqltest"
HELP = "Run Prometheus promqltest scripts (*.test) against the embedded PromQL engine."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="promqltest script(s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print the summary lines")


def run(args: argparse.Namespace) -> int:
    total_p = total_f = total_s = 0
    reasons: Counter[str] = Counter()
    for path in args.files:
        results = run_file(path)
        for r in results:
            if r.status == "failed" and not args.quiet:
                print(f"{path}:{r.line}: {r.expr}: {r.detail}")
        passed, failed, skipped, why = summarize(results)
        print(f"{path}: {passed} passed, {failed} failed, {skipped} skipped")
        total_p, total_f, total_s = total_p + passed, total_f + failed, total_s + skipped
        reasons.update(why)
    for reason, count in sorted(reasons.items()):
        print(f"skipped {count}: {reason}")
    print(f"{total_p} passed, {total_f} failed, {total_s} skipped")
    return 1 if total_f else 0

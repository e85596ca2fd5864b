"""Both command lines: plain-text help with a description and examples for every subcommand,
``--version``, and the top-level guard (any failure is one line on stderr and a status)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from sloanalysis.cli.app import run_guarded
from sloanalysis.errors import UserError

TOOLS = {"sloanalysis": "sloanalysis.cli", "tronsim": "simulator.cli"}


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _subcommands(module: str) -> list[str]:
    mod = __import__(module + (".main" if module == "sloanalysis.cli" else ""), fromlist=["build_parser"])
    parser = mod.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_version(tool: str) -> None:
    proc = _run(TOOLS[tool], "--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"{tool} {version('tron-slo-toolkit')}"


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_help_is_plain_text(tool: str) -> None:
    text = _run(TOOLS[tool], "--help").stdout
    assert "exit status" in text
    for markup in ("``", ":mod:", ":class:", ":func:"):
        assert markup not in text


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_subcommand_has_a_description_and_an_example(tool: str) -> None:
    commands = _subcommands(TOOLS[tool])
    assert len(commands) >= 5
    for command in commands:
        text = _run(TOOLS[tool], command, "--help").stdout
        usage_end = text.index("\n\n")
        description = text[usage_end:].strip().split("\n\n")[0]
        assert description and not description.startswith(("positional", "options")), (tool, command)
        assert "examples:" in text, (tool, command)
        assert "``" not in text, (tool, command)


def _args(debug: bool = False) -> argparse.Namespace:
    return argparse.Namespace(command="query", debug=debug)


def _raise(exc: BaseException):  # type: ignore[no-untyped-def]
    def run(_: argparse.Namespace) -> int:
        raise exc

    return run


@pytest.mark.parametrize(
    ("exc", "status", "expected"),
    [
        (UserError("runs/x: no such run"), 2, "sloanalysis query: error: runs/x: no such run\n"),
        (
            ValueError("boom\nsecond line"),
            2,
            "sloanalysis query: error: ValueError: boom (rerun with --debug",
        ),
        (RecursionError(), 2, "sloanalysis query: error: input nested too deeply to process\n"),
        (
            PermissionError(13, "Permission denied", "/root/x"),
            2,
            "sloanalysis query: error: PermissionError (/root/x): Permission denied",
        ),
        (KeyboardInterrupt(), 130, "sloanalysis query: interrupted\n"),
    ],
)
def test_the_guard_turns_every_failure_into_one_line(
    exc: BaseException, status: int, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded("sloanalysis", _args(), _raise(exc)) == status
    err = capsys.readouterr().err
    assert err.startswith(expected)
    assert err.count("\n") == 1


def test_debug_shows_the_traceback() -> None:
    with pytest.raises(ValueError, match="boom"):
        run_guarded("sloanalysis", _args(debug=True), _raise(ValueError("boom")))


def _stderr_on_a_terminal(args: list[str], tmp: Path) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (as a person at a shell has it); return what it showed."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    # A terminal 24 x 100; tqdm draws nothing on a 0-column one (a bare pty's size).
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=secondary, cwd=tmp)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the terminal closed: the child has exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_shows_on_a_terminal_only(tmp_path: Path, quiet: bool) -> None:
    args = [sys.executable, "-m", "simulator.cli", "run", str(ROOT / "scenarios" / "smoke.yaml")]
    args += ["--out", str(tmp_path / "run")] + (["--quiet"] if quiet else [])
    status, shown = _stderr_on_a_terminal(args, tmp_path)
    assert status == 0
    assert ("sim h" in shown) is not quiet
    if not quiet:  # the same command with stderr on a pipe (a CI log) shows no bar either
        piped = [*args[:-1], str(tmp_path / "run2")]
        proc = subprocess.run(piped, capture_output=True, text=True, timeout=120, check=True)
        assert "sim h" not in proc.stderr

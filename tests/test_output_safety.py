"""Output safety: no writer destroys what it did not write, follows a planted link, replaces a
special file, overwrites its own input, leaves a moment without output, or leaves temporaries of
a killed run behind; new outputs are readable by other accounts (umask permissions)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.cli import main as tronsim
from simulator.export import write_run
from simulator.model import simulate
from simulator.scenario import load_scenario, truncated
from sloanalysis import files
from sloanalysis.cli.main import main as sloanalysis
from sloanalysis.errors import UserError
from sloanalysis.files import (
    atomic_write_bytes,
    atomic_write_text,
    atomic_write_with,
    output_directory,
    refuse_overlap,
    remove_stale_temps,
)
from sloanalysis.sources.openmetrics import write_openmetrics
from sloanalysis.sources.rundir import EVENTS, INCIDENTS, MARKER, RUN_JSON, SAMPLES, load_run
from sloanalysis.store import SeriesStore

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
SLOS = ROOT / "slos" / "tron-payment.yaml"
RUN = ["run", str(SMOKE), "--duration", "10m"]


@pytest.fixture(scope="module")
def short_result():
    return simulate(truncated(load_scenario(SMOKE), 600.0))


@pytest.fixture
def run_dir(tmp_path: Path, short_result) -> Path:
    return write_run(short_result, tmp_path / "run")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _killed_inside(code: str, cwd: Path) -> None:
    """Run ``code`` in a child that SIGKILLs itself at the end (inside an unfinished write)."""
    script = code + "\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    proc = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


# -- tronsim run --out -------------------------------------------------------------------------


def test_run_refuses_a_directory_it_did_not_write(tmp_path: Path, capsys) -> None:
    thesis = tmp_path / "work"
    thesis.mkdir()
    (thesis / "thesis.txt").write_text("three years of work\n")
    assert tronsim([*RUN, "--out", str(thesis)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(thesis) in err and "not a run directory" in err, err
    assert _tree(thesis) == {"thesis.txt": b"three years of work\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no temporaries left either


def test_run_refuses_a_regular_file_and_a_fifo(tmp_path: Path, capsys) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_text("keep\n")
    assert tronsim([*RUN, "--out", str(plain)]) == 2
    assert "is a regular file, not a run directory" in capsys.readouterr().err
    assert plain.read_text() == "keep\n"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert tronsim([*RUN, "--out", str(fifo)]) == 2
    assert "a fifo" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_run_refuses_an_out_that_contains_its_scenario(tmp_path: Path, capsys) -> None:
    scenario = tmp_path / "scen" / "smoke.yaml"
    scenario.parent.mkdir()
    scenario.write_bytes(SMOKE.read_bytes())
    (scenario.parent / MARKER).write_text("")  # even a marked directory: the input would go
    assert tronsim(["run", str(scenario), "--duration", "10m", "--out", str(scenario.parent)]) == 2
    assert "contains the input" in capsys.readouterr().err
    assert scenario.read_bytes() == SMOKE.read_bytes()


def test_rerun_over_its_own_run_directory_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert tronsim([*RUN, "--seed", "1", "--logs", "--out", str(out)]) == 0
    assert (out / EVENTS).is_file() and (out / MARKER).is_file()
    assert tronsim([*RUN, "--seed", "2", "--out", str(out)]) == 0
    assert load_run(out).run_json["seed"] == 2
    assert not (out / EVENTS).exists()  # the whole directory was replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_run_accepts_an_empty_directory_and_a_run_from_before_the_marker(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert tronsim([*RUN, "--out", str(empty)]) == 0
    assert (empty / SAMPLES).is_file()
    (empty / MARKER).unlink()  # an earlier version's run: only run files
    assert tronsim([*RUN, "--out", str(empty)]) == 0
    assert (empty / MARKER).is_file()


def test_new_run_directory_is_readable_by_others_under_umask_022(tmp_path: Path, umask_022) -> None:
    out = tmp_path / "runs" / "r"
    assert tronsim([*RUN, "--openmetrics", "--logs", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f.name


def test_a_killed_runs_temporary_directory_is_removed_by_the_next_run(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from sloanalysis.files import output_directory
        cm = output_directory("run", ".tronsim-run")
        tmp = cm.__enter__()
        (tmp / "samples.parquet").write_bytes(b"half")
        """
    )
    _killed_inside(code, tmp_path)
    (left,) = [p for p in tmp_path.iterdir()]
    assert left.name.startswith(".run.") and left.name.endswith(".tmp") and left.is_dir()
    assert tronsim([*RUN, "--out", str(tmp_path / "run")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_interrupted_run_leaves_the_previous_output_and_nothing_else(
    tmp_path: Path, run_dir: Path, short_result
) -> None:
    before = _tree(run_dir)
    with pytest.raises(KeyboardInterrupt), output_directory(run_dir, MARKER) as tmp:
        (tmp / SAMPLES).write_bytes(b"partial")
        raise KeyboardInterrupt
    assert _tree(run_dir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_replacing_a_run_directory_never_leaves_the_path_missing(
    tmp_path: Path, run_dir: Path, short_result, monkeypatch
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    (a / "x").write_text("1")
    b.mkdir()
    (b / "y").write_text("2")
    if not files._exchange(a, b):
        pytest.skip("this filesystem cannot exchange two paths in one step")
    seen: list[bool] = []
    real_rename = os.rename

    def watching_rename(src, dst):  # every step of the swap is observed from outside
        seen.append(run_dir.is_dir())
        try:
            return real_rename(src, dst)
        finally:
            seen.append(run_dir.is_dir())

    monkeypatch.setattr(files.os, "rename", watching_rename)
    write_run(short_result, run_dir)
    assert seen and all(seen)
    assert (run_dir / SAMPLES).is_file()


# -- directory rules, unit level ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "inputs", "fragment"),
    [
        ("run", ["run"], "is the input"),
        (".", ["run/samples.parquet"], "contains the input"),
        ("run/report", ["run"], "lies inside the input"),
    ],
)
def test_overlap_with_an_input_is_refused(tmp_path: Path, out: str, inputs: list[str], fragment: str) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(UserError, match=fragment):
        refuse_overlap(tmp_path / out, [tmp_path / i for i in inputs])
    refuse_overlap(tmp_path / "other", [tmp_path / i for i in inputs])  # unrelated: fine


def test_a_symlinked_output_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep").write_text("k")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(UserError, match="symbolic link"), output_directory(tmp_path / "link", MARKER):
        pass
    assert _tree(real) == {"keep": b"k"}


def test_a_file_left_by_a_live_process_is_kept(tmp_path: Path) -> None:
    live = tmp_path / f".run.{os.getppid()}.abcdefgh.tmp"  # our parent is alive
    live.mkdir()
    assert remove_stale_temps(tmp_path, "run") == []
    assert live.exists()


# -- sloanalysis report --out ------------------------------------------------------------------


def test_report_refuses_to_write_over_its_own_input_run(run_dir: Path, capsys) -> None:
    before = _tree(run_dir)
    assert sloanalysis(["report", "--run", str(run_dir), "--out", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "is the input" in err and len(err.strip().splitlines()) == 1, err
    assert _tree(run_dir) == before


def test_report_refuses_an_out_inside_the_run_and_a_regular_file(
    tmp_path: Path, run_dir: Path, capsys
) -> None:
    assert sloanalysis(["report", "--run", str(run_dir), "--out", str(run_dir / "report")]) == 2
    assert "inside the input" in capsys.readouterr().err
    assert not (run_dir / "report").exists()
    plain = tmp_path / "report.html"
    plain.write_text("<p>mine</p>")
    assert sloanalysis(["report", "--run", str(run_dir), "--out", str(plain)]) == 2
    assert "not a report directory" in capsys.readouterr().err
    assert plain.read_text() == "<p>mine</p>" and plain.is_file()


def test_report_refuses_a_directory_it_did_not_write(tmp_path: Path, run_dir: Path, capsys) -> None:
    mine = tmp_path / "docs"
    mine.mkdir()
    (mine / "thesis.txt").write_text("mine")
    assert sloanalysis(["report", "--run", str(run_dir), "--out", str(mine)]) == 2
    assert "no .sloanalysis-report file" in capsys.readouterr().err
    assert _tree(mine) == {"thesis.txt": b"mine"}


# -- files: generate-rules --out, writers that stream, parquet -----------------------------------


def test_generate_rules_refuses_to_overwrite_its_input(tmp_path: Path, capsys) -> None:
    slos = tmp_path / "slos.yaml"
    slos.write_bytes(SLOS.read_bytes())
    assert sloanalysis(["generate-rules", str(slos), "--out", str(slos)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert slos.read_bytes() == SLOS.read_bytes()


def test_generate_rules_refuses_a_special_file(tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "fifo"  # like /dev/null: must stay what it is
    os.mkfifo(fifo)
    assert sloanalysis(["generate-rules", str(SLOS), "--out", str(fifo)]) == 2
    err = capsys.readouterr().err
    assert str(fifo) in err and "a fifo" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    directory = tmp_path / "dir"
    directory.mkdir()
    assert sloanalysis(["generate-rules", str(SLOS), "--out", str(directory)]) == 2
    assert "a directory" in capsys.readouterr().err and directory.is_dir()


def _writers(tmp: Path) -> dict[str, object]:
    store = SeriesStore()
    store.add({"__name__": "up", "job": "x"}, [1_000], [1.0])
    return {
        "generate-rules": lambda p: sloanalysis(["generate-rules", str(SLOS), "--out", str(p)]),
        "openmetrics": lambda p: write_openmetrics(store, p),
        "parquet": lambda p: store.to_parquet(p),
        "text": lambda p: atomic_write_text(p, "new\n"),
    }


@pytest.mark.parametrize("writer", ["generate-rules", "openmetrics", "parquet", "text"])
def test_a_link_planted_at_the_old_temporary_name_is_not_followed(tmp_path: Path, writer: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "out.file"
    (tmp_path / ".out.file.tmp").symlink_to(victim)  # the name the old writers used
    _writers(tmp_path)[writer](target)  # type: ignore[operator]
    assert victim.read_text() == "precious\n"
    assert target.is_file() and not target.is_symlink() and target.stat().st_size > 0


@pytest.mark.parametrize("writer", ["generate-rules", "openmetrics", "parquet", "text"])
def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path, writer: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "out.file"
    target.symlink_to(victim)
    _writers(tmp_path)[writer](target)  # type: ignore[operator]
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and target.is_file()


def test_temporary_names_are_unpredictable_and_carry_the_pid(tmp_path: Path) -> None:
    names: list[str] = []
    for _ in range(2):
        atomic_write_with(tmp_path / "x.parquet", lambda p: names.append(p.name) or p.write_bytes(b"1"))
    assert names[0] != names[1]
    for name in names:
        assert (
            name != ".x.parquet.tmp"
            and name.startswith(f".x.parquet.{os.getpid()}.")
            and name.endswith(".tmp")
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_a_failed_write_leaves_the_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("old")

    def fail(p: Path) -> None:
        p.write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write_with(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_file_permissions_follow_the_umask_or_the_existing_file(tmp_path: Path, umask_022) -> None:
    fresh = atomic_write_bytes(tmp_path / "fresh", b"x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    private = tmp_path / "private"
    private.write_text("old")
    private.chmod(0o600)
    atomic_write_text(private, "new")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_text() == "new"
    secret = atomic_write_text(tmp_path / "keys.json", "{}", mode=0o600)  # API keys stay private
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from sloanalysis.files import atomic_open
        cm = atomic_open("rules.yml")
        fh = cm.__enter__()
        fh.write("groups: []")
        fh.flush()
        """
    )
    _killed_inside(code, tmp_path)
    (left,) = list(tmp_path.iterdir())
    assert left.name.startswith(".rules.yml.") and left.name.endswith(".tmp")
    atomic_write_text(tmp_path / "rules.yml", "groups: []\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.yml"]


def test_export_openmetrics_writes_into_the_run_atomically(run_dir: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (run_dir / ".metrics.om.tmp").symlink_to(victim)
    assert tronsim(["export-openmetrics", str(run_dir)]) == 0
    assert victim.read_text() == "precious\n"
    assert (run_dir / "metrics.om").read_text().endswith("# EOF\n")
    assert {INCIDENTS, RUN_JSON, SAMPLES} <= {p.name for p in run_dir.iterdir()}


# -- test-rules: no content of foreign files in errors ------------------------------------------


@pytest.mark.parametrize("foreign", ["secret", "/etc/passwd"])
def test_test_rules_does_not_echo_a_file_that_is_not_a_rules_file(
    tmp_path: Path, foreign: str, capsys
) -> None:
    if foreign == "secret":
        path = tmp_path / "secret.txt"
        path.write_text("api_token_hunter2 and more\nsecond line\n")
        secret = "hunter2"
    else:
        path = Path(foreign)
        if not path.is_file():
            pytest.skip("no /etc/passwd here")
        secret = path.read_text().splitlines()[0][:8]
    test = tmp_path / "t.yml"
    test.write_text(f"rule_files: [{path}]\ntests:\n  - interval: 1m\n    input_series: []\n")
    assert sloanalysis(["test-rules", str(test)]) == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert secret not in text
    assert f"{path}:1: not a valid rules file" in text


# -- tronsim capacity --out --------------------------------------------------------------------

SWEEP = """
name: safety
scenario: {scenario}
duration: 10m
warmup: 1m
seed: 3
replications: 2
set:
  incidents: []
grid:
  load.payout_rate: {rates}
"""


def _sweep_file(tmp_path: Path, rates: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(scenario=SMOKE, rates=rates), encoding="utf-8")
    return path


def test_capacity_refuses_a_directory_it_did_not_write(tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("mine")
    sweep = _sweep_file(tmp_path, "[0.1]")
    assert tronsim(["capacity", str(sweep), "--out", str(mine), "--workers", "1"]) == 2
    assert "not a capacity sweep directory" in capsys.readouterr().err
    assert _tree(mine) == {"thesis.txt": b"mine"}


class _Stop(Exception):
    pass


def test_a_changed_sweep_removes_the_earlier_sweeps_points_and_results(tmp_path: Path) -> None:
    from simulator.capacity import LocalExecutor, load_sweep, run_sweep

    out = tmp_path / "cap"
    executor = LocalExecutor(1)
    first = load_sweep(_sweep_file(tmp_path, "[0.1, 0.2]"))
    run_sweep(first, out, executor, plot=False)
    assert (out / ".tronsim-sweep").is_file() and (out / "results.parquet").is_file()
    kept, dropped = (p.filename for p in first.points)

    changed = load_sweep(_sweep_file(tmp_path, "[0.1, 0.3, 0.4]"))  # 0.1 is the same point
    assert changed.points[0].filename == kept
    messages: list[str] = []

    def stop(point: object) -> None:
        raise _Stop

    with pytest.raises(_Stop):
        run_sweep(changed, out, executor, plot=False, on_point=stop, log=messages.append)
    names = sorted(p.name for p in (out / "points").iterdir())
    assert kept in names and dropped not in names and len(names) == 2  # kept + one new point
    assert not (out / "results.parquet").exists() and not (out / "summary.json").exists()
    assert any("removed 1 point(s) of the earlier sweep" in m for m in messages), messages
    resumed = run_sweep(changed, out, executor, plot=False)
    assert resumed.reused == 2 and list(resumed.results["x"]) == [0.1, 0.3, 0.4]


# -- python -m simulator.live.stack --workdir -----------------------------------------------------


def test_live_stack_refuses_to_empty_a_workdir_it_did_not_make(tmp_path: Path, capsys) -> None:
    from simulator.live.stack import main as live_stack

    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.txt").write_text("mine")
    assert live_stack([str(SMOKE), "--workdir", str(home)]) == 2
    assert "not a live work directory" in capsys.readouterr().err
    assert _tree(home) == {"thesis.txt": b"mine"}


# -- backtest --emit-promtool-test ----------------------------------------------------------------


def test_a_regression_test_never_overwrites_its_rule_file(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    from sloanalysis.rules.manager import evaluate_rules
    from sloanalysis.rules.model import load_rules
    from sloanalysis.rules.promtool import write_regression_test

    rules = tmp_path / "tron-payment.yml"
    rules.write_bytes((ROOT / "monitoring" / "rules" / "tron-payment.yml").read_bytes())
    before = rules.read_bytes()
    start = 1_767_700_000_000
    ts = start + 15_000 * np.arange(240)
    store = SeriesStore()
    store.add(
        {"__name__": "tron_circuit_breaker_status", "job": "tron-payment-api"},
        ts,
        np.where((ts - start >= 20 * 60_000) & (ts - start < 32 * 60_000), 1.0, 0.0),
    )
    evaluation = evaluate_rules(load_rules(rules), store, start, int(ts[-1]))
    incident = pd.Series(
        {
            "id": "outage-x",
            "kind": "tron_outage",
            "start": pd.Timestamp(start + 20 * 60_000, unit="ms", tz="UTC"),
            "end": pd.Timestamp(start + 32 * 60_000, unit="ms", tz="UTC"),
            "expected_alerts": ("CircuitBreakerOpen",),
        }
    )
    with pytest.raises(UserError, match="is the input"):
        write_regression_test([rules], store, incident, evaluation, rules)
    assert rules.read_bytes() == before

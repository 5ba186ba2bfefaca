"""The `autolog` command line, through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import autolog
from autolog.cli import main


@pytest.fixture
def runs(tracking_dir):
    autolog.set_experiment("cli")
    ids = []
    for name, model, acc in (("a", "rf", 0.9), ("b", "gb", 0.7)):
        with autolog.start_run(run_name=name) as r:
            autolog.log_params({"model": model, "depth": 3})
            autolog.log_metric("acc", acc)
            autolog.log_text("x", "notes/n.txt")
        ids.append(r.info.run_id)
    return ids


def invoke(tracking_dir, *args: str):
    return CliRunner().invoke(main, ["--store", str(tracking_dir), *args])


def test_runs_list_filters_and_orders(tracking_dir, runs) -> None:
    out = invoke(
        tracking_dir, "runs", "list", "--experiment", "cli", "--order-by", "metrics.acc DESC"
    )
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:3] == ["run_id", "name", "status"]
    assert [line.split()[0] for line in lines[2:4]] == runs
    assert lines[4] == f"2 of 2 runs in {tracking_dir / 'autolog.db'}"
    out = invoke(tracking_dir, "runs", "list", "--filter", "params.model = 'gb'", "--json")
    assert [r["info"]["run_id"] for r in json.loads(out.output)] == [runs[1]]


def test_runs_show(tracking_dir, runs) -> None:
    out = invoke(tracking_dir, "runs", "show", runs[0])
    assert out.exit_code == 0, out.output
    assert f"Run {runs[0]}  (a)" in out.output
    assert "  model = rf" in out.output and "  acc = 0.9" in out.output
    assert "  notes/" in out.output
    assert "autolog.platform" not in out.output
    assert "autolog.platform" in invoke(tracking_dir, "runs", "show", runs[0], "--all-tags").output


def test_runs_compare_marks_differences(tracking_dir, runs) -> None:
    out = invoke(tracking_dir, "runs", "compare", *runs)
    assert out.exit_code == 0, out.output
    rows = {line.split()[1]: line.split() for line in out.output.splitlines()[2:]}
    assert rows["params.model"] == ["*", "params.model", "rf", "gb"]
    assert rows["metrics.acc"] == ["*", "metrics.acc", "0.9", "0.7"]
    assert "params.depth" not in rows
    full = invoke(tracking_dir, "runs", "compare", "--all", *runs)
    assert "params.depth" in full.output


def test_runs_delete_and_restore(tracking_dir, runs) -> None:
    assert invoke(tracking_dir, "runs", "delete", runs[0]).exit_code == 0
    listed = invoke(tracking_dir, "runs", "list", "--json").output
    assert [r["info"]["run_id"] for r in json.loads(listed)] == [runs[1]]
    assert invoke(tracking_dir, "runs", "restore", runs[0]).exit_code == 0
    assert len(json.loads(invoke(tracking_dir, "runs", "list", "--json").output)) == 2


def test_experiments_list(tracking_dir, runs) -> None:
    out = invoke(tracking_dir, "experiments", "list")
    rows = [line.split() for line in out.output.splitlines()[2:-1]]
    assert [r[:3] for r in rows] == [["0", "Default", "0"], ["1", "cli", "2"]]
    assert out.output.splitlines()[-1] == f"2 experiments in {tracking_dir / 'autolog.db'}"


def test_counts_under_tables_agree_with_one(tracking_dir) -> None:
    """One of a thing reads "1 experiment", not "1 experiments"."""
    with autolog.start_run():
        pass
    db = tracking_dir / "autolog.db"
    assert invoke(tracking_dir, "experiments", "list").output.splitlines()[-1] == (
        f"1 experiment in {db}"
    )
    assert invoke(tracking_dir, "runs", "list").output.splitlines()[-1] == f"1 of 1 run in {db}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["runs", "show", "nope"], "Run id 'nope' is not a run id or a prefix of one"),
        (["runs", "show", "abc"], "No run id starts with 'abc'"),
        (["runs", "list", "--filter", "metrics.acc >"], "Invalid filter at position 13"),
        (["runs", "list", "--experiment", "missing"], "No experiment named 'missing'"),
        (["runs", "compare", "x"], "at least two run ids"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(tracking_dir, runs, args, message) -> None:
    out = invoke(tracking_dir, *args)
    assert out.exit_code == 2
    assert message in out.output
    assert "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_python_dash_m_autolog(tracking_dir, runs) -> None:
    import os
    import subprocess
    import sys

    # piped output without $COLUMNS is not fitted to a width: ids stay whole for grep and awk
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run(
        [sys.executable, "-m", "autolog", "--store", str(tracking_dir), "runs", "list"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0 and runs[0] in out.stdout

"""Issue 27's CLI: no store created by a read, the store named, N of M, metric columns, run-id
prefixes, deleted runs, runs show details, restore on an active run, `autolog ui` ports."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

import autolog
from autolog.cli import main


@pytest.fixture
def runs(tracking_dir):
    autolog.set_experiment("daily")
    ids = []
    for name, acc, loss in (("a", 0.9, 0.3), ("b", 0.7, 0.5), ("c", 0.8, 0.4)):
        with autolog.start_run(run_name=name) as r:
            autolog.log_metrics({"acc": acc, "val_loss": loss, "train_time": 1.0})
            autolog.set_tag("mlflow.log-model.history", '[{"artifact_path": "model"}]')
        ids.append(r.info.run_id)
    return ids


def invoke(store, *args: str, columns: int | None = None):
    env = {"COLUMNS": str(columns)} if columns else {}
    return CliRunner(env=env).invoke(main, ["--store", str(store), *args])


@pytest.mark.parametrize("args", [["runs", "list"], ["experiments", "list"], ["models", "list"]])
def test_a_read_on_a_missing_store_creates_nothing(tmp_path, monkeypatch, args) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "typo-runs"
    out = invoke(missing, *args)
    assert out.exit_code == 2
    assert out.output.startswith(f"Error: No autolog store at {missing} (no database file ")
    assert "Traceback" not in out.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_missing_store_error_names_the_stores_nearby(tmp_path, monkeypatch, runs, tracking_dir):
    monkeypatch.chdir(tracking_dir.parent)
    out = invoke(tracking_dir.parent / "autolog-run", "runs", "list")
    assert out.exit_code == 2
    assert f"stores found nearby: {tracking_dir}." in out.output
    monkeypatch.setenv("AUTOLOG_TRACKING_URI", str(tracking_dir))
    out = invoke(tracking_dir.parent / "autolog-run", "runs", "list")
    assert f"stores found nearby: {tracking_dir}, {tracking_dir} ($AUTOLOG_TRACKING_URI)." in (
        out.output
    )


def test_the_db_file_works_as_the_store(runs, tracking_dir) -> None:
    out = invoke(tracking_dir / "autolog.db", "runs", "list", "-e", "daily")
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[-1] == f"3 of 3 runs in {tracking_dir / 'autolog.db'}"


def test_runs_list_n_of_m_and_metric_columns(runs, tracking_dir) -> None:
    out = invoke(tracking_dir, "runs", "list", "-n", "2", "--metrics", "val_loss,acc",
                 "--order-by", "metrics.acc DESC")  # fmt: skip
    lines = out.output.splitlines()
    assert lines[0].split() == [
        "run_id",
        "name",
        "status",
        "started",
        "duration",
        "val_loss",
        "acc",
    ]
    assert [ln.split()[-2:] for ln in lines[2:4]] == [["0.3", "0.9"], ["0.4", "0.8"]]
    assert lines[4] == f"2 of 3 runs in {tracking_dir / 'autolog.db'}"
    default = invoke(tracking_dir, "runs", "list").output.splitlines()[0].split()
    assert default[5:] == ["val_loss", "acc", "train_time"]  # shared metrics, validation first


def test_tables_fit_the_terminal(runs, tracking_dir) -> None:
    out = invoke(tracking_dir, "runs", "list", columns=60)
    lines = out.output.splitlines()
    assert max(len(ln) for ln in lines[:5]) <= 60
    shown = lines[2].split()[0]  # ids cut to a prefix, which every command takes
    assert 8 <= len(shown) < 32 and runs[2].startswith(shown)
    assert invoke(tracking_dir, "runs", "show", shown).output.startswith(f"Run {runs[2]}  (c)")


def test_columns_that_cannot_fit_even_narrowed_are_named_not_overflowed(runs, tracking_dir) -> None:
    """At 40 columns the narrowest table (ids 8, others 5, the status whole) is wider: the last
    columns go, and a line names them."""
    lines = invoke(tracking_dir, "runs", "list", columns=40).output.splitlines()
    assert lines[0].split() == ["run_id", "name", "status", "start…", "durat…"]
    assert max(len(ln) for ln in lines[:5]) <= 40
    assert lines[5] == (
        "(3 more columns not shown: val_loss, acc, train_time; widen the terminal to see them)"
    )
    assert lines[6] == f"3 of 3 runs in {tracking_dir / 'autolog.db'}"
    wide = invoke(tracking_dir, "runs", "list", columns=100).output.splitlines()
    assert wide[0].split()[5:] == ["val_loss", "acc", "train_time"] and len(wide) == 6


def _in_a_terminal(args: list[str], columns: int) -> str:
    """What a command prints to a terminal `columns` wide (a pty; no $COLUMNS)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    proc = subprocess.Popen(args, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(60) == 0, out
    return out.decode().replace("\r\n", "\n")


def test_colour_and_the_terminal_width_only_in_a_terminal(runs, tracking_dir) -> None:
    args = [sys.executable, "-m", "autolog", "--store", str(tracking_dir), "runs", "list"]
    tty = _in_a_terminal(args, columns=60)
    assert "\x1b[32mFINISHED\x1b[0m" in tty and "\x1b[1mrun_id" in tty
    plain = re.sub(r"\x1b\[[0-9;]*m", "", tty).splitlines()
    assert max(len(line) for line in plain[:-1]) <= 60  # the table; then "3 of 3 runs in ..."
    assert plain[2].split()[2] == "FINISHED"  # a status is never cut
    assert runs[2].startswith(plain[2].split()[0]) and len(plain[2].split()[0]) < 32
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60).stdout
    assert "\x1b" not in piped
    assert piped.splitlines()[2].split()[0] == runs[2]  # whole ids, for grep and awk


def test_prefixes_deleted_list_and_restore(runs, tracking_dir) -> None:
    compared = invoke(tracking_dir, "runs", "compare", runs[1][:6], runs[2][:7]).output
    assert compared.splitlines()[0].split() == ["key", "b", "c"]
    assert invoke(tracking_dir, "runs", "delete", runs[0][:6]).output == f"Deleted run {runs[0]}\n"
    out = invoke(tracking_dir, "runs", "list", "--deleted")
    assert [ln.split()[0] for ln in out.output.splitlines()[2:3]] == [runs[0]]
    assert out.output.splitlines()[-1].startswith("1 of 1 deleted run in ")
    assert (
        invoke(tracking_dir, "runs", "restore", runs[0][:6]).output == f"Restored run {runs[0]}\n"
    )
    again = invoke(tracking_dir, "runs", "restore", runs[0])
    assert (again.exit_code, again.output) == (
        0,
        f"Run {runs[0]} is not deleted; nothing to restore.\n",
    )


def test_runs_show_experiment_children_and_hidden_tags(runs, tracking_dir) -> None:
    with autolog.start_run(run_id=runs[0]):
        for name, score in (("k1", 0.2), ("k2", 0.6)):
            with autolog.start_run(run_name=name, nested=True):
                autolog.log_metric("val_score", score)
    out = invoke(tracking_dir, "runs", "show", runs[0][:8])
    assert out.exit_code == 0, out.output
    assert "  experiment: daily (id 1)" in out.output
    assert "mlflow.log-model.history" not in out.output
    assert "hidden; --all shows them)" in out.output
    child_rows = out.output.split("Child runs (2):\n")[1].splitlines()[2:4]
    assert [r.split()[1] for r in child_rows] == ["k2", "k1"]  # best val_score first
    full = invoke(tracking_dir, "runs", "show", runs[0], "--all")
    assert "mlflow.log-model.history = [" in full.output


def test_ambiguous_and_unknown_prefixes(runs, tracking_dir) -> None:
    out = invoke(tracking_dir, "runs", "show", "")
    assert out.exit_code == 2 and "is not a run id or a prefix of one" in out.output


def test_ui_on_a_busy_port_is_one_line_and_exit_1(runs, tracking_dir) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "autolog", "--store", str(tracking_dir), "ui", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr == (
        f"Error: Port {port} on 127.0.0.1 is already in use; pass --port N for another port, "
        "or --port 0 for any free one.\n"
    )


def test_ui_port_0_prints_the_real_port(runs, tracking_dir) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "autolog", "--store", str(tracking_dir), "ui", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m and int(m.group(1)) != 0, line
        import httpx

        assert httpx.get(f"http://127.0.0.1:{m.group(1)}/", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_ui_on_a_missing_store_creates_nothing(tmp_path) -> None:
    out = invoke(tmp_path / "nope", "ui", "--port", "0")
    assert out.exit_code == 2 and "No autolog store at" in out.output
    assert list(tmp_path.iterdir()) == []

"""The fluent API and the Client: runs, nesting, failure statuses, search, artifacts, context."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autolog
from autolog import tracking
from autolog.errors import InvalidValueError, TrackingError


def test_run_context_manager_records_everything() -> None:
    with autolog.start_run(run_name="first", tags={"team": "a"}) as run:
        autolog.log_param("alpha", 0.5)
        autolog.log_params({"model": "rf", "opt": {"lr": 0.01}})
        autolog.log_metric("loss", 1.5, step=0)
        autolog.log_metric("loss", 0.5, step=1)
        autolog.log_metrics({"acc": 0.75, "f1": 0.5}, step=1)
        autolog.set_tag("stage", "dev")
        autolog.set_tags({"x": 1})
        assert autolog.active_run().info.run_id == run.info.run_id
    got = autolog.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "first"
    assert got.data.params == {"alpha": "0.5", "model": "rf", "opt.lr": "0.01"}
    assert got.data.metrics == {"loss": 0.5, "acc": 0.75, "f1": 0.5}
    assert {k: got.data.tags[k] for k in ("team", "stage", "x")} == {
        "team": "a",
        "stage": "dev",
        "x": "1",
    }
    assert got.data.tags["mlflow.runName"] == "first"
    assert [(m.step, m.value) for m in autolog.get_metric_history(run.info.run_id, "loss")] == [
        (0, 1.5),
        (1, 0.5),
    ]
    assert autolog.active_run() is None
    assert autolog.last_active_run().info.run_id == run.info.run_id


def test_exception_ends_run_failed_and_keyboard_interrupt_killed() -> None:
    with pytest.raises(ValueError), autolog.start_run() as r1:
        autolog.log_metric("m", 1)
        raise ValueError("x")
    assert autolog.get_run(r1.info.run_id).info.status == "FAILED"
    assert autolog.get_run(r1.info.run_id).data.metrics == {"m": 1.0}
    with pytest.raises(KeyboardInterrupt), autolog.start_run() as r2:
        raise KeyboardInterrupt
    assert autolog.get_run(r2.info.run_id).info.status == "KILLED"


def test_nested_runs_link_to_parent() -> None:
    with autolog.start_run() as parent:
        with pytest.raises(TrackingError, match="nested=True"):
            autolog.start_run()
        with autolog.start_run(nested=True) as child:
            assert autolog.active_run().info.run_id == child.info.run_id
        assert autolog.active_run().info.run_id == parent.info.run_id
    got = autolog.get_run(child.info.run_id)
    assert got.info.parent_run_id == parent.info.run_id
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_log_without_active_run_starts_one_and_end_run_ends_it() -> None:
    autolog.log_metric("m", 2.0)
    run = autolog.active_run()
    assert run is not None
    autolog.end_run()
    assert autolog.get_run(run.info.run_id).info.status == "FINISHED"


def test_resume_run_by_id() -> None:
    with autolog.start_run() as r:
        autolog.log_param("a", 1)
    with autolog.start_run(run_id=r.info.run_id):
        autolog.log_metric("later", 3.0)
    got = autolog.get_run(r.info.run_id)
    assert got.data.params == {"a": "1"} and got.data.metrics == {"later": 3.0}


def test_experiments_and_search_runs_frame_and_list() -> None:
    exp = autolog.set_experiment("exp-a")
    for i, model in enumerate(["rf", "gb", "rf"]):
        with autolog.start_run(run_name=f"r{i}"):
            autolog.log_param("model", model)
            autolog.log_metric("acc", 0.5 + i / 10)
    frame = autolog.search_runs(filter_string="params.model = 'rf'", order_by=["metrics.acc DESC"])
    assert list(frame["metrics.acc"]) == [0.7, 0.5]
    assert {"run_id", "status", "start_time", "params.model", "tags.mlflow.runName"} <= set(
        frame.columns
    )
    runs = autolog.search_runs(
        experiment_names=["exp-a"],
        filter_string="metrics.acc > 0.55 or params.model = 'gb'",
        output_format="list",
    )
    assert sorted(r.info.run_name for r in runs) == ["r1", "r2"]
    assert autolog.get_experiment_by_name("exp-a").experiment_id == exp.experiment_id
    assert (
        autolog.search_runs(experiment_names=["exp-a"], max_results=1, output_format="list")[
            0
        ].info.run_name
        == "r2"
    )
    with pytest.raises(InvalidValueError, match="nope"):
        autolog.search_runs(experiment_names=["nope"])


def test_artifact_helpers(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([1, 2], [3, 4])
    src = tmp_path / "notes.md"
    src.write_text("# hi")
    with autolog.start_run() as r:
        autolog.log_text("hello", "texts/a.txt")
        autolog.log_dict({"a": [1, 2]}, "cfg/c.json")
        autolog.log_dict({"a": 1}, "cfg/c.yaml")
        autolog.log_figure(fig, "plots/p.png")
        autolog.log_artifact(src)
    client = autolog.Client()
    rid = r.info.run_id
    names = sorted(f.path for f in client.list_artifacts(rid))
    assert "texts" in names and "cfg" in names and "plots" in names and "notes.md" in names
    base = Path(client.download_artifacts(rid, ""))
    assert (base / "texts" / "a.txt").read_text() == "hello"
    assert json.loads((base / "cfg" / "c.json").read_text()) == {"a": [1, 2]}
    assert (base / "cfg" / "c.yaml").read_text() == "a: 1\n"
    assert (base / "plots" / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_run_context_tags_recorded() -> None:
    with autolog.start_run() as r:
        pass
    tags = autolog.get_run(r.info.run_id).data.tags
    for key in (
        "mlflow.source.name",
        "autolog.source.argv",
        "mlflow.user",
        "autolog.host",
        "autolog.python_version",
        "autolog.platform",
        "autolog.packages",
    ):
        assert tags[key], key
    assert "numpy" in json.loads(tags["autolog.packages"])


def test_git_context_and_diff_artifact(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import autolog
            autolog.set_tracking_uri({str(tmp_path / "store")!r})
            with autolog.start_run() as r:
                pass
            print(r.info.run_id)
            """
        )
    )
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "train.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    script.write_text(script.read_text() + "# changed\n")
    env = {k: v for k, v in os.environ.items() if k != "AUTOLOG_DISABLE_GIT"}
    out = subprocess.run(
        [sys.executable, str(script)], cwd=repo, capture_output=True, text=True, check=True, env=env
    )
    rid = out.stdout.strip()
    client = autolog.Client(str(tmp_path / "store"))
    tags = client.get_run(rid).data.tags
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.dirty"] == "true"
    assert tags["mlflow.source.name"] == str(script)
    diff = Path(client.download_artifacts(rid, "source/git_diff.patch")).read_text()
    assert "+# changed" in diff


def test_runs_left_open_end_at_exit_finished_or_failed(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import autolog, sys
        autolog.set_tracking_uri({str(tmp_path / "s")!r})
        autolog.start_run()
        print(autolog.active_run().info.run_id, flush=True)
        if sys.argv[1] == "fail":
            raise RuntimeError("boom")
        """
    )
    statuses = {}
    for mode in ("ok", "fail"):
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True)
        statuses[mode] = autolog.Client(str(tmp_path / "s")).get_run(out.stdout.strip()).info.status
    assert statuses == {"ok": "FINISHED", "fail": "FAILED"}


def test_tracking_uri_env_and_sqlite_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tracking._tracking_uri = None
    monkeypatch.setenv("AUTOLOG_TRACKING_URI", str(tmp_path / "envstore"))
    assert autolog.get_tracking_uri() == str(tmp_path / "envstore")
    autolog.set_tracking_uri(f"sqlite:///{tmp_path}/file.db")
    with autolog.start_run() as r:
        autolog.log_metric("m", math.pi)
    assert (tmp_path / "file.db").exists()
    assert autolog.get_run(r.info.run_id).data.metrics["m"] == math.pi


def test_default_folder_is_not_the_package_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracking._tracking_uri = None
    monkeypatch.chdir(tmp_path)
    assert autolog.get_tracking_uri() == str(tmp_path / "autolog-runs")


def test_client_explicit_api(tmp_path: Path) -> None:
    from store.entities import Metric, Param, RunTag

    client = autolog.MlflowClient()
    eid = client.create_experiment("explicit")
    run = client.create_run(eid, run_name="c")
    rid = run.info.run_id
    client.log_batch(
        rid,
        metrics=[Metric("m", 1.0, 10, 0), Metric("m", 2.0, 11, 1)],
        params=[Param("p", "v")],
        tags=[RunTag("t", "u")],
    )
    client.set_terminated(rid, "FAILED")
    got = client.get_run(rid)
    assert (
        got.info.status == "FAILED" and got.data.params == {"p": "v"} and got.data.tags["t"] == "u"
    )
    assert [m.value for m in client.get_metric_history(rid, "m")] == [1.0, 2.0]
    assert [r.info.run_id for r in client.search_runs([eid])] == [rid]
    client.delete_run(rid)
    assert client.search_runs([eid]) == []
    assert [r.info.run_id for r in client.search_runs([eid], run_view_type="ALL")] == [rid]

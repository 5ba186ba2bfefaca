"""Store round trips, artifact containment, dead-run detection, concurrency, crash safety."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from store.entities import Metric
from store.errors import (
    ArtifactPathError,
    InvalidValueError,
    ParamOverwriteError,
    RunNotFoundError,
    SearchSyntaxError,
)
from store.sqlite import MIGRATIONS, Store, open_store


@pytest.fixture
def fresh(tmp_path: Path) -> Store:
    return Store(tmp_path / "db.sqlite", tmp_path / "artifacts")


def test_metrics_round_trip_keep_nan_inf_step_and_timestamp(fresh: Store) -> None:
    run = fresh.create_run(run_name="r")
    rid = run.info.run_id
    points = [
        Metric("loss", math.nan, 1000, 0),
        Metric("loss", math.inf, 1001, 1),
        Metric("loss", -math.inf, 1002, 2),
        Metric("loss", 0.25, 1003, 3),
    ]
    fresh.log_batch(rid, metrics=points)
    history = fresh.get_metric_history(rid, "loss")
    assert [(m.step, m.timestamp) for m in history] == [(0, 1000), (1, 1001), (2, 1002), (3, 1003)]
    assert math.isnan(history[0].value)
    assert [m.value for m in history[1:]] == [math.inf, -math.inf, 0.25]
    assert fresh.get_run(rid).data.metrics == {"loss": 0.25}


def test_latest_metric_is_the_highest_step_not_the_last_written(fresh: Store) -> None:
    rid = fresh.create_run().info.run_id
    fresh.log_metric(rid, "acc", 0.9, timestamp=5, step=10)
    fresh.log_metric(rid, "acc", 0.1, timestamp=6, step=2)
    assert fresh.get_run(rid).data.metrics["acc"] == 0.9
    fresh.log_metric(rid, "nanm", math.nan, timestamp=1, step=0)
    assert math.isnan(fresh.get_run(rid).data.metrics["nanm"])


def test_params_tags_unicode_long_values_and_flattening(fresh: Store) -> None:
    rid = fresh.create_run().info.run_id
    long_value = "x" * 100_000
    fresh.log_batch(
        rid,
        params={"long": long_value, "größe_λ": "ü", "opt": {"lr": 0.1, "betas": {"b1": 0.9}}},
        tags={"équipe": "données", "k": 1},
    )
    data = fresh.get_run(rid).data
    assert data.params == {
        "long": long_value,
        "größe_λ": "ü",
        "opt.lr": "0.1",
        "opt.betas.b1": "0.9",
    }
    assert data.tags["équipe"] == "données"
    assert data.tags["k"] == "1"


def test_param_cannot_change_but_same_value_is_fine(fresh: Store) -> None:
    rid = fresh.create_run().info.run_id
    fresh.log_param(rid, "a", 1)
    fresh.log_param(rid, "a", "1")
    with pytest.raises(ParamOverwriteError, match="'a'.*'1'.*'2'"):
        fresh.log_param(rid, "a", 2)
    assert fresh.get_run(rid).data.params == {"a": "1"}


def test_failed_batch_writes_nothing(fresh: Store) -> None:
    rid = fresh.create_run().info.run_id
    fresh.log_param(rid, "a", 1)
    with pytest.raises(ParamOverwriteError):
        fresh.log_batch(rid, metrics=[("m", 1.0, 1, 0)], params={"a": 2}, tags={"t": "v"})
    run = fresh.get_run(rid)
    assert run.data.metrics == {} and "t" not in run.data.tags


def test_bad_values_get_clear_errors(fresh: Store) -> None:
    rid = fresh.create_run().info.run_id
    with pytest.raises(InvalidValueError, match="'m'.*'abc'"):
        fresh.log_metric(rid, "m", "abc")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="non-empty"):
        fresh.log_param(rid, "", 1)
    with pytest.raises(RunNotFoundError, match="nope"):
        fresh.get_run("nope")
    with pytest.raises(InvalidValueError, match="BOGUS"):
        fresh.update_run(rid, status="BOGUS")


def test_run_lifecycle_and_search(fresh: Store) -> None:
    exp = fresh.create_experiment("e1")
    a = fresh.create_run(exp, run_name="a").info.run_id
    b = fresh.create_run(exp, run_name="b", parent_run_id=a).info.run_id
    fresh.log_metric(a, "acc", 0.9)
    fresh.log_metric(b, "acc", 0.5)
    fresh.set_terminated(a, "FINISHED")
    assert fresh.get_run(a).info.status == "FINISHED"
    assert fresh.get_run(a).info.end_time is not None
    assert fresh.get_run(b).info.parent_run_id == a
    assert fresh.child_run_ids(a) == [b]
    found = fresh.search_runs([exp], "metrics.acc > 0.6")
    assert [r.info.run_id for r in found] == [a]
    fresh.delete_run(a)
    assert fresh.search_runs([exp]) and all(r.info.run_id != a for r in fresh.search_runs([exp]))
    assert [r.info.run_id for r in fresh.search_runs([exp], lifecycle_stage="deleted")] == [a]
    fresh.restore_run(a)
    assert fresh.count_runs([exp]) == 2


def test_malformed_filter_raises_and_changes_nothing(fresh: Store) -> None:
    fresh.create_run()
    before = list(fresh.conn.iterdump())
    with pytest.raises(SearchSyntaxError):
        fresh.search_runs(None, "metrics.a = 1; DROP TABLE runs")
    assert list(fresh.conn.iterdump()) == before


def test_schema_is_versioned_and_reopening_migrates_nothing(tmp_path: Path) -> None:
    s1 = Store(tmp_path / "db.sqlite", tmp_path / "a")
    rid = s1.create_run().info.run_id
    assert s1.schema_version == len(MIGRATIONS)
    s2 = Store(tmp_path / "db.sqlite", tmp_path / "a")
    assert s2.get_run(rid).info.run_id == rid
    assert s2.schema_version == len(MIGRATIONS)
    mode = s2.conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(Exception, match="newer than this autolog knows"):
        Store(path, tmp_path / "a").create_run()


def test_open_store_uris(tmp_path: Path) -> None:
    s = open_store(str(tmp_path / "folder"))
    assert s.db_path == tmp_path / "folder" / "autolog.db"
    s = open_store(f"sqlite:///{tmp_path}/x.db")
    assert s.db_path == tmp_path / "x.db"
    assert s.artifacts.root == tmp_path / "artifacts"
    with pytest.raises(InvalidValueError, match="s3://b"):
        open_store("s3://b")


# -- artifacts -----------------------------------------------------------------------------


def test_artifacts_round_trip(fresh: Store, tmp_path: Path) -> None:
    rid = fresh.create_run().info.run_id
    src = tmp_path / "a.txt"
    src.write_text("hello")
    fresh.log_artifact(rid, src, "docs")
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b.txt").write_text("b")
    fresh.log_artifacts(rid, folder, "tree")
    assert [(f.path, f.is_dir) for f in fresh.list_artifacts(rid)] == [
        ("docs", True),
        ("tree", True),
    ]
    assert [(f.path, f.file_size) for f in fresh.list_artifacts(rid, "docs")] == [("docs/a.txt", 5)]
    out = fresh.download_artifacts(rid, "tree/sub/b.txt", tmp_path / "out")
    assert out.read_text() == "b"


@pytest.mark.parametrize(
    "bad", ["../x", "a/../../x", "/etc/passwd", "..", "a/b/../../../c", "C:/win", "a\x00b"]
)
def test_artifact_paths_that_escape_are_refused(fresh: Store, tmp_path: Path, bad: str) -> None:
    rid = fresh.create_run().info.run_id
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(ArtifactPathError):
        fresh.log_artifact(rid, src, bad)
    with pytest.raises(ArtifactPathError):
        fresh.write_artifact_bytes(rid, bad + "/f", b"x")
    with pytest.raises(ArtifactPathError):
        fresh.list_artifacts(rid, bad)


def test_links_out_of_the_root_are_refused(fresh: Store, tmp_path: Path) -> None:
    rid = fresh.create_run().info.run_id
    outside = tmp_path / "outside"
    outside.mkdir()
    base = fresh.artifact_dir(rid)
    base.mkdir(parents=True)
    os.symlink(outside, base / "link")
    with pytest.raises(ArtifactPathError, match="outside this run.s artifact folder"):
        fresh.write_artifact_bytes(rid, "link/evil.txt", b"x")
    assert not (outside / "evil.txt").exists()
    assert fresh.list_artifacts(rid) == []  # links are not listed


def test_links_made_after_a_write_are_refused_and_links_inside_the_root_followed(
    fresh: Store, tmp_path: Path
) -> None:
    rid = fresh.create_run().info.run_id
    fresh.write_artifact_bytes(rid, "first.txt", b"1")  # the run's folder is resolved once here
    base = fresh.artifact_dir(rid)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, base / "later")
    for path in ("later/evil.txt", "later/deeper/evil.txt"):
        with pytest.raises(ArtifactPathError, match="outside this run.s artifact folder"):
            fresh.write_artifact_bytes(rid, path, b"x")
    assert list(outside.iterdir()) == []
    (base / "real").mkdir()
    os.symlink(base / "real", base / "alias")  # a link that stays inside the root
    fresh.write_artifact_bytes(rid, "alias/kept.txt", b"k")
    assert (base / "real" / "kept.txt").read_bytes() == b"k"
    other = fresh.create_run().info.run_id
    other_base = fresh.artifact_dir(other)
    other_base.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, other_base)  # the run's folder itself leads out
    with pytest.raises(ArtifactPathError, match="outside the artifact root"):
        fresh.write_artifact_bytes(other, "f.txt", b"x")
    assert list(outside.iterdir()) == []


# -- processes -----------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from store.sqlite import Store
    s = Store({db!r}, {art!r})
    worker = int(sys.argv[1])
    for i in range(200):
        rid = s.create_run(run_name=f"w{{worker}}-{{i}}").info.run_id
        s.log_batch(rid, metrics=[("m", float(j), 1, j) for j in range(5)], params={{"w": worker}})
        s.log_metric(rid, "single", 1.0)
        s.set_terminated(rid, "FINISHED")
    print("ok")
    """
)


def test_eight_processes_write_one_database(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    db, art = str(tmp_path / "db.sqlite"), str(tmp_path / "art")
    script = tmp_path / "w.py"
    script.write_text(_WRITER.format(root=root, db=db, art=art))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(w)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for w in range(8)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err.decode()
        assert out.decode().strip() == "ok"
    s = Store(db, art)
    conn = s.conn
    assert conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'FINISHED'").fetchone()[0] == 1600
    assert conn.execute("SELECT COUNT(*) FROM metrics WHERE key = 'm'").fetchone()[0] == 1600 * 5
    assert conn.execute("SELECT COUNT(*) FROM metrics WHERE key = 'single'").fetchone()[0] == 1600
    assert (
        conn.execute("SELECT COUNT(DISTINCT value) FROM params WHERE key = 'w'").fetchone()[0] == 8
    )


_VICTIM = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from store.sqlite import Store
    s = Store({db!r}, {art!r})
    rid = s.create_run(run_name="victim").info.run_id
    print(rid, flush=True)
    step = 0
    while True:
        s.log_batch(rid, metrics=[("m", float(step), 1, step)])
        if step == 50:
            print("50", flush=True)
        step += 1
    """
)


def test_sigkill_while_logging_leaves_a_sound_database_and_a_killed_run(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    db, art = str(tmp_path / "db.sqlite"), str(tmp_path / "art")
    script = tmp_path / "v.py"
    script.write_text(_VICTIM.format(root=root, db=db, art=art))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    rid = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "50"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    s = Store(db, art)
    assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    history = s.get_metric_history(rid, "m")
    steps = [m.step for m in history]
    assert steps == list(range(len(steps))) and len(steps) > 50  # every committed point, in order
    assert s.get_run(rid).info.status == "KILLED"


def test_create_finished_runs_writes_every_run_in_one_call(fresh: Store) -> None:
    parent = fresh.create_run(run_name="parent").info.run_id
    ids = fresh.create_finished_runs(
        "0",
        [
            ("a", {"t": "1"}, {"p": {"q": 2}}, [("m", 0.5, 1000, 0), ("m", 0.75, 1001, 1)]),
            ("b", {}, {"p": "x"}, [("m", 0.25, 1000, 3)]),
        ],
        parent_run_id=parent,
        user_id="u",
    )
    assert len(ids) == 2 and sorted(fresh.child_run_ids(parent)) == sorted(ids)
    a, b = fresh.get_run(ids[0]), fresh.get_run(ids[1])
    assert (a.info.run_name, a.info.status, a.info.user_id) == ("a", "FINISHED", "u")
    assert a.info.end_time is not None and a.info.end_time >= a.info.start_time
    assert a.data.tags["t"] == "1" and a.data.params == {"p.q": "2"}
    assert (a.data.metrics, b.data.metrics, b.data.params) == ({"m": 0.75}, {"m": 0.25}, {"p": "x"})
    assert [m.value for m in fresh.get_metric_history(ids[0], "m")] == [0.5, 0.75]
    with pytest.raises(Exception, match="No experiment"):
        fresh.create_finished_runs("99", [("c", {}, {}, [])])


def test_unfinished_writes_are_hidden_and_dead_savers_leftovers_removed(
    fresh: Store, tmp_path: Path
) -> None:
    from store.processes import HOST

    rid = fresh.create_run().info.run_id
    fresh.write_artifact_bytes(rid, "a/keep.txt", b"k")
    base = fresh.run_artifact_base(rid)
    (base / "a" / ".autolog-tmp-0123.txt").write_bytes(b"half")
    (base / ".autolog-partial-x").mkdir()
    (base / ".autolog-partial-x" / "blob").write_bytes(b"half")
    assert [f.path for f in fresh.list_artifacts(rid, "a")] == ["a/keep.txt"]
    tree = fresh.walk_artifacts(rid, 10)
    assert [(e["path"], [c["path"] for c in e["children"]]) for e in tree] == [
        ("a", ["a/keep.txt"])
    ]
    out = fresh.download_artifacts(rid, "", tmp_path / "out")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["a", "a/keep.txt"]

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = base.parent / f".autolog-partial-{HOST}-{os.getpid()}-a"
    theirs = base.parent / f".autolog-partial-{HOST}-{dead.pid}-b"
    other_host = base.parent / f".autolog-partial-{HOST}x-{dead.pid}-c"
    for folder in (mine, theirs, other_host):
        folder.mkdir()
    with fresh.staged_artifact_dir(rid, "model") as staging:
        assert staging.parent == base.parent and staging.name.startswith(
            f".autolog-partial-{HOST}-{os.getpid()}-"
        )
        (staging / "MLmodel").write_text("m")
    assert sorted(p.name for p in base.parent.iterdir()) == sorted(
        ["artifacts", mine.name, other_host.name]
    )
    assert (base / "model" / "MLmodel").read_text() == "m"

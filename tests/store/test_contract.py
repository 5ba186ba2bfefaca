"""What every store backend promises, run against each backend in BACKENDS.

A new backend adds one entry to BACKENDS (a function giving the URI of a fresh, empty store in
a folder) and must pass this file unchanged. Everything here goes through ``open_store`` and
the methods of ``store.base``: no SQL, no connection, no artifact path built by hand.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autolog.server.testing import LocalServer, shared_server
from store.base import RegistryStore, TrackingStore, open_store, register_backend
from store.entities import LoggedModelOutput, Metric
from store.errors import (
    ArtifactExistsError,
    ArtifactPathError,
    InvalidValueError,
    ParamOverwriteError,
    RegisteredModelNotFoundError,
    RunNotFoundError,
    SearchSyntaxError,
)

# backend name -> a function giving the URI of a fresh store under a folder
# (with the test's request: PostgreSQL ones get a database on the session's cluster, S3 ones a
# prefix on its SeaweedFS server, see tests/services.py). S3 artifacts behave the same whatever
# the database: test_postgres.py checks them on SQLite once, which keeps CI time down.
BACKENDS: dict[str, Callable[[Path, Any], str]] = {
    "sqlite": lambda folder, request: f"sqlite:///{folder}/contract.db",
    "postgres": lambda folder, request: (
        f"{request.getfixturevalue('postgres_uri')}?artifact_root={folder}/artifacts"
    ),
    "postgres+s3": lambda folder, request: (
        f"{request.getfixturevalue('postgres_uri')}?artifact_root={_bucket(folder, request)}"
    ),
    # a real uvicorn on a free 127.0.0.1 port (one per session), its store fresh in each test
    "rest": lambda folder, request: shared_server(folder),
    # the same over PostgreSQL: a fresh database behind one server per session
    "rest+postgres": lambda folder, request: request.getfixturevalue("pg_rest_server").reset(
        f"{request.getfixturevalue('postgres_uri')}?artifact_root={folder}/artifacts"
    ),
}


@pytest.fixture(scope="session")
def pg_rest_server(postgres_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``autolog server`` over PostgreSQL, reset to a fresh database by each test."""
    folder = tmp_path_factory.mktemp("rest-pg")
    first = f"{postgres_server.new_database()}?artifact_root={folder}/artifacts"
    server = LocalServer(first, testing_reset=True).start()
    yield server
    server.stop()


def _bucket(folder: Path, request: Any) -> str:
    """s3://<bucket>/<a fresh prefix> on the session's S3 server, reached through the environment."""
    s3 = request.getfixturevalue("s3_env")
    request.getfixturevalue("monkeypatch").setenv("AUTOLOG_ARTIFACT_CACHE", str(folder / "cache"))
    return str(s3.new_prefix())


@pytest.fixture(params=sorted(BACKENDS))
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return BACKENDS[request.param](tmp_path, request)


@pytest.fixture
def store(uri: str) -> Any:
    s = open_store(uri)
    yield s
    s.close()


def _run(store: Any, name: str = "r", experiment_id: str | int = 0, **kw: Any) -> str:
    return store.create_run(experiment_id, run_name=name, **kw).info.run_id


# -- the interfaces ------------------------------------------------------------------------------


def test_the_store_implements_the_interfaces(store: Any) -> None:
    assert isinstance(store, TrackingStore)
    assert isinstance(store, RegistryStore)


def test_open_store_dispatches_on_the_scheme_and_names_the_served_ones(tmp_path: Path) -> None:
    opened: list[str] = []
    register_backend("contract-test", lambda u: opened.append(u) or "a store")
    assert open_store("contract-test://host/db") == "a store"
    assert opened == ["contract-test://host/db"]
    with pytest.raises(
        InvalidValueError,
        match=r"scheme 'nosuch'.*contract-test, file, http, https, postgres, .*sqlite",
    ):
        open_store("nosuch://x")


# -- round trips ---------------------------------------------------------------------------------


def test_metrics_round_trip_with_nan_and_infinities(store: Any) -> None:
    rid = _run(store)
    values = [0.5, math.nan, math.inf, -math.inf, -0.0, 1e-300]
    store.log_batch(rid, metrics=[("m", v, 1000 + i, i) for i, v in enumerate(values)])
    history = store.get_metric_history(rid, "m")
    assert [(m.timestamp, m.step) for m in history] == [(1000 + i, i) for i in range(6)]
    got = [m.value for m in history]
    assert got[0] == 0.5 and math.isnan(got[1])
    assert got[2:] == [math.inf, -math.inf, -0.0, 1e-300]
    assert store.get_run(rid).data.metrics["m"] == 1e-300  # the latest: highest step
    store.log_metric(rid, "only_nan", math.nan, 5, 0)
    assert math.isnan(store.get_run(rid).data.metrics["only_nan"])
    assert store.metric_keys(rid) == ["m", "only_nan"]


def test_params_tags_and_runs_round_trip(store: Any) -> None:
    eid = store.create_experiment("exp", tags={"team": "vision"})
    rid = _run(store, "first", eid, tags={"t": "1"}, start_time=1234)
    long_value = "x" * 10_000  # no 500-character cap
    store.log_batch(rid, params={"lr": 0.1, "nested": {"depth": 3}, "long": long_value})
    store.set_tag(rid, "t", "2")
    store.set_tag(rid, "gone", "x")
    store.delete_tag(rid, "gone")
    store.set_terminated(rid, "FINISHED", end_time=2000)
    run = store.get_run(rid)
    assert run.data.params == {"lr": "0.1", "nested.depth": "3", "long": long_value}
    assert run.data.tags == {"t": "2"}
    assert (run.info.run_name, run.info.status, run.info.start_time, run.info.end_time) == (
        "first",
        "FINISHED",
        1234,
        2000,
    )
    assert run.info.experiment_id == eid
    assert store.get_experiment(eid).tags == {"team": "vision"}
    assert store.get_experiment_by_name("exp").experiment_id == eid
    store.log_param(rid, "lr", 0.1)  # the same value again is fine
    with pytest.raises(ParamOverwriteError, match="'lr'.*'0.1'.*'0.2'"):
        store.log_param(rid, "lr", 0.2)


def test_a_created_run_is_the_run_read_back_and_its_info_reads_alone(store: Any) -> None:
    eid = store.create_experiment("exp")
    parent = _run(store, "parent", eid)
    created = store.create_run(
        eid, run_name="child", start_time=1234, tags={"t": "1", "n": 2}, parent_run_id=parent,
        user_id="ana",
    )  # fmt: skip
    assert created == store.get_run(created.info.run_id)
    assert created.data.tags == {"t": "1", "n": "2"}
    assert (created.info.status, created.info.lifecycle_stage, created.info.end_time) == (
        "RUNNING", "active", None,
    )  # fmt: skip
    store.update_run(created.info.run_id, status="FINISHED", end_time=2000)
    info = store.get_run_info(created.info.run_id)
    assert info == store.get_run(created.info.run_id).info
    assert (info.run_name, info.status, info.end_time, info.parent_run_id, info.user_id) == (
        "child", "FINISHED", 2000, parent, "ana",
    )  # fmt: skip
    with pytest.raises(RunNotFoundError, match="nope"):
        store.get_run_info("nope")


def test_unknown_runs_and_bad_values_get_clear_errors(store: Any) -> None:
    with pytest.raises(RunNotFoundError, match="nope"):
        store.get_run("nope")
    with pytest.raises(RunNotFoundError, match="nope"):
        store.get_metric_history("nope", "m")
    with pytest.raises(RunNotFoundError, match="nope"):  # refused whole (no orphan points)
        store.log_batch("nope", metrics=[("m", 1.0, 1, 0), ("m", 2.0, 2, 1)], params={"p": "1"})
    rid = _run(store)
    with pytest.raises(InvalidValueError, match="'abc'"):
        store.log_metric(rid, "m", "abc")
    with pytest.raises(InvalidValueError, match="keys must be non-empty"):
        store.log_param(rid, "", 1)
    with pytest.raises(InvalidValueError, match="'BOGUS'"):
        store.update_run(rid, status="BOGUS")


def test_finished_runs_in_one_call_and_children(store: Any) -> None:
    parent = _run(store, "search")
    ids = store.create_finished_runs(
        0,
        [("c1", {"k": "a"}, {"p": 1}, [("m", 0.5, 10, 0)]), ("c2", {}, {}, [])],
        parent_run_id=parent,
    )
    assert sorted(store.child_run_ids(parent)) == sorted(ids)
    first = store.get_run(ids[0])
    assert (first.info.status, first.data.params, first.data.metrics) == (
        "FINISHED",
        {"p": "1"},
        {"m": 0.5},
    )


def test_deleted_runs_leave_searches_and_come_back(store: Any) -> None:
    rid = _run(store)
    store.delete_run(rid)
    assert store.search_runs([0]) == []
    assert [r.info.run_id for r in store.search_runs([0], lifecycle_stage="deleted")] == [rid]
    store.restore_run(rid)
    assert [r.info.run_id for r in store.search_runs([0])] == [rid]


# -- search ---------------------------------------------------------------------------------------


@pytest.fixture
def searched(store: Any) -> dict[str, str]:
    ids = {}
    rows = [
        ("a", 1000, {"acc": 0.9}, {"model": "tree"}, {"team": "Vision"}),
        ("b", 2000, {"acc": 0.7}, {"model": "Tree"}, {"team": "vision"}),
        ("c", 3000, {"acc": math.nan}, {"model": "linear"}, {}),
        ("d", 4000, {}, {"model": "tree_deep"}, {"team": "audio"}),
    ]
    for name, start, metrics, params, tags in rows:
        rid = _run(store, name, start_time=start)
        store.log_batch(
            rid, metrics=[(k, v, 0, 0) for k, v in metrics.items()], params=params, tags=tags
        )
        ids[name] = rid
    return ids


def _names(store: Any, filter_string: str = "", order_by: list[str] | None = None) -> list[str]:
    return [r.info.run_name for r in store.search_runs([0], filter_string, order_by)]


def test_experiments_rename_delete_and_restore(store: Any) -> None:
    eid = store.create_experiment("first", {"k": "v"})
    other = store.create_experiment("other")
    store.rename_experiment(eid, "renamed")
    assert store.get_experiment(eid).name == "renamed"
    assert store.get_experiment_by_name("first") is None
    assert store.get_experiment_by_name("renamed").experiment_id == eid
    store.rename_experiment(eid, "renamed")  # its own name again: nothing to refuse
    with pytest.raises(InvalidValueError, match="'other' already exists"):
        store.rename_experiment(eid, "other")
    with pytest.raises(InvalidValueError, match="Invalid experiment name ''"):
        store.rename_experiment(eid, "")
    store.delete_experiment(eid)
    assert [e.experiment_id for e in store.list_experiments("deleted")] == [eid]
    store.restore_experiment(eid)
    got = store.get_experiment(eid)
    assert (got.lifecycle_stage, got.name, got.tags) == ("active", "renamed", {"k": "v"})
    assert store.list_experiments("deleted") == []
    assert store.get_experiment(other).name == "other"
    with pytest.raises(LookupError):
        store.restore_experiment("987654")


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", ["d", "c", "b", "a"]),
        ("metrics.acc > 0.8", ["a"]),
        ("metrics.acc != 0.9", ["b"]),  # NaN and missing match no comparison
        ("metrics.acc IS NULL", ["d"]),
        ("metrics.acc IS NOT NULL", ["c", "b", "a"]),
        ("params.model = 'tree'", ["a"]),
        ("params.model LIKE 'tree%'", ["d", "a"]),  # LIKE is case-sensitive
        ("params.model ILIKE 'tree%'", ["d", "b", "a"]),
        ("params.model NOT IN ('tree', 'linear')", ["d", "b"]),
        ("tags.team = 'vision' or metrics.acc > 0.8", ["b", "a"]),
        ("(tags.team ILIKE 'VIS%' or params.model = 'linear') and start_time >= 2000", ["c", "b"]),
        ("attributes.run_name IN ('a', 'd')", ["d", "a"]),
        ("status = 'running'", ["d", "c", "b", "a"]),
    ],
)
def test_the_search_grammar(
    store: Any, searched: dict[str, str], filter_string: str, expected: list[str]
) -> None:
    assert _names(store, filter_string) == expected
    assert store.count_runs([0], filter_string) == len(expected)


def test_order_by_puts_missing_values_last_and_pages_stably(
    store: Any, searched: dict[str, str]
) -> None:
    # NaN orders like a missing value; ties are broken by run id
    last = sorted(["c", "d"], key=lambda name: searched[name])
    assert _names(store, order_by=["metrics.acc DESC"]) == ["a", "b", *last]
    assert _names(store, order_by=["metrics.acc"]) == ["b", "a", *last]
    assert _names(store, order_by=["params.model ASC"]) == ["b", "c", "a", "d"]
    pages = [
        [r.info.run_name for r in store.search_runs([0], "", ["run_name"], 2, offset)]
        for offset in (0, 2, 4)
    ]
    assert pages == [["a", "b"], ["c", "d"], []]


def test_pages_run_on_past_the_runs_without_the_ordered_value(
    store: Any, searched: dict[str, str]
) -> None:
    # a page is read first from the runs having the value, then from those without
    order = ["a", "b", *sorted(["c", "d"], key=lambda name: searched[name])]
    for offset in range(5):
        page = store.search_runs([0], "", ["metrics.acc DESC"], 1, offset)
        assert [r.info.run_name for r in page] == order[offset : offset + 1]
    for max_results, offset in ((3, 1), (None, 3), (None, 0), (2, 2), (0, 0)):
        page = store.search_runs([0], "", ["metrics.acc DESC"], max_results, offset)
        end = None if max_results is None else offset + max_results
        assert [r.info.run_name for r in page] == order[offset:end]
    page = store.search_runs([0], "params.model != 'linear'", ["tags.team ASC"], 5, 1)
    assert [r.info.run_name for r in page] == ["d", "b"]  # Vision, audio, vision: bytewise


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        ("metrics.acc >", "position 13"),
        ("params.x = 1", "quote the value"),
        ("bogus = 'x'", "unknown attribute 'bogus'"),
        ("metrics.acc = 1; DROP TABLE runs", "';' is not allowed"),
    ],
)
def test_malformed_filters_name_the_place(store: Any, filter_string: str, message: str) -> None:
    with pytest.raises(SearchSyntaxError, match=message):
        store.search_runs([0], filter_string)


# -- concurrency -----------------------------------------------------------------------------------


def _log_from_process(uri: str, run_id: str, worker: int, n: int) -> None:
    s = open_store(uri)
    for i in range(n):
        s.log_batch(run_id, metrics=[(f"w{worker}", float(i), i, i)], params={f"p{worker}_{i}": i})
    s.close()


def test_many_processes_and_threads_lose_no_row(store: Any, uri: str) -> None:
    rid = _run(store)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_log_from_process, args=(uri, rid, w, 40)) for w in range(3)]
    threads = [
        threading.Thread(target=_log_from_process, args=(uri, rid, w, 40)) for w in range(3, 6)
    ]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for t in threads:
        t.join(60)
    run = store.get_run(rid)
    assert len(run.data.params) == 6 * 40
    for w in range(6):
        assert [m.value for m in store.get_metric_history(rid, f"w{w}")] == [
            float(i) for i in range(40)
        ]
        assert run.data.metrics[f"w{w}"] == 39.0


# -- reads for UIs -----------------------------------------------------------------------------


def test_sampled_history_keeps_short_histories_and_the_envelope_of_long_ones(store: Any) -> None:
    rid = _run(store)
    store.log_batch(rid, metrics=[("m", float(i % 7), 100 + i, i) for i in range(1000)])
    store.log_metric(rid, "m", math.nan, 5000, 1000)
    short = store.sampled_metric_history(rid, "m", 2000)
    assert (short["total"], short["downsampled"], short["bucket_width"]) == (1001, False, None)
    assert short["steps"][:3] == [0, 1, 2] and short["timestamps"][:2] == [100, 101]
    assert math.isnan(short["values"][-1])
    long = store.sampled_metric_history(rid, "m", 100, min_step=0, max_step=999)
    assert (long["total"], long["downsampled"], long["bucket_width"]) == (1000, True, 20)
    assert long["timestamps"] is None
    assert len(long["steps"]) == 100
    assert min(long["values"]) == 0.0 and max(long["values"]) == 6.0
    with pytest.raises(RunNotFoundError):
        store.sampled_metric_history("nope", "m", 100)


def test_counts_and_model_lineage(store: Any) -> None:
    eid = store.create_experiment("counted")
    a = _run(store, "a", eid, start_time=10)
    b = _run(store, "b", eid, start_time=20)
    _run(store, "gone", eid, start_time=30)
    store.delete_run(store.search_runs([eid], "run_name = 'gone'")[0].info.run_id)
    assert store.experiment_run_counts()[eid] == (2, 20)
    store.record_model("u1", a, "model", ["sklearn"], 1, {"inputs": "[]"})
    store.record_model("u2", a, "other", ["python_function"], 2, None)
    assert store.models_of_runs([a, b]) == {a: ["model", "other"]}
    assert [m["model_uuid"] for m in store.list_models(a)] == ["u1", "u2"]
    logged = store.logged_models(10)
    assert [(m["artifact_path"], m["run_name"], m["experiment_id"]) for m in logged] == [
        ("other", "a", eid),
        ("model", "a", eid),
    ]


# -- artifacts --------------------------------------------------------------------------------------


def test_artifacts_round_trip_and_list(store: Any, tmp_path: Path) -> None:
    rid = _run(store)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.txt").write_text("BB")
    store.log_artifacts(rid, src, "dir")
    store.write_artifact_bytes(rid, "notes/n.txt", b"note")
    assert [(f.path, f.is_dir, f.file_size) for f in store.list_artifacts(rid, "dir")] == [
        ("dir/a.txt", False, 1),
        ("dir/sub", True, None),
    ]
    tree = store.walk_artifacts(rid, 100)
    assert [(e["path"], e["is_dir"]) for e in tree] == [("dir", True), ("notes", True)]
    assert [c["path"] for c in tree[0]["children"]] == ["dir/sub", "dir/a.txt"]
    out = store.download_artifacts(rid, "dir", tmp_path / "out")
    assert (out / "sub" / "b.txt").read_text() == "BB"
    assert store.artifact_local_path(rid, "notes/n.txt").read_bytes() == b"note"


def test_model_outputs_and_a_logged_models_own_folder(store: Any, tmp_path: Path) -> None:
    """MLflow 3's log_model: a model with its files in its own folder (the artifact methods
    take its id for a run's), recorded as an output of its run with the step."""
    rid = _run(store)
    first = store.create_logged_model("0", name="clf", source_run_id=rid).model_id
    second = store.create_logged_model("0", name="reg").model_id
    store.log_outputs(rid, [LoggedModelOutput(first, 3)])
    store.log_outputs(rid, [LoggedModelOutput(second, 0), LoggedModelOutput(first, 9)])
    outputs = store.get_run(rid).outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(first, 3), (second, 0)]
    assert store.get_run(_run(store)).outputs.model_outputs == []
    with pytest.raises(RunNotFoundError):
        store.log_outputs("0" * 32, [LoggedModelOutput(first, 0)])
    with pytest.raises(InvalidValueError):
        store.log_outputs(rid, [LoggedModelOutput(first, "1")])  # type: ignore[arg-type]
    store.write_artifact_bytes(first, "MLmodel", b"flavors: {}")
    store.write_artifact_bytes(first, "data/model.pkl", b"12345")
    assert [(f.path, f.is_dir, f.file_size) for f in store.list_artifacts(first)] == [
        ("MLmodel", False, 11),
        ("data", True, None),
    ]
    assert store.artifact_local_path(first, "data/model.pkl").read_bytes() == b"12345"
    assert store.list_artifacts(rid) == [] and store.list_artifacts(second) == []
    with pytest.raises(ArtifactPathError):
        store.artifact_local_path(first, "../x")


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../x", "a\x00b"])
def test_no_path_given_leaves_the_run(store: Any, bad: str) -> None:
    rid = _run(store)
    with pytest.raises(ArtifactPathError):
        store.write_artifact_bytes(rid, bad, b"x")
    with pytest.raises(ArtifactPathError):
        store.artifact_local_path(rid, bad)
    with pytest.raises(ArtifactPathError):
        store.list_artifacts(rid, bad)


def test_no_link_leads_outside_the_run(store: Any, tmp_path: Path) -> None:
    rid, other = _run(store), _run(store)
    store.write_artifact_bytes(other, "secret.txt", b"s")
    store.write_artifact_bytes(rid, "keep.txt", b"k")
    folder = store.artifact_local_path(rid)
    os.symlink(tmp_path, folder / "out")
    os.symlink(store.artifact_local_path(other, "secret.txt"), folder / "theirs.txt")
    for path in ("out", "out/x", "theirs.txt"):
        with pytest.raises(ArtifactPathError):
            store.artifact_local_path(rid, path)
    assert [f.path for f in store.list_artifacts(rid)] == ["keep.txt"]
    assert [e["path"] for e in store.walk_artifacts(rid, 10)] == ["keep.txt"]


def test_a_staged_folder_appears_whole_or_not_at_all(store: Any) -> None:
    rid = _run(store)
    with store.staged_artifact_dir(rid, "model") as staging:
        (staging / "MLmodel").write_text("v1")
        assert [f.path for f in store.list_artifacts(rid) if not f.path.startswith(".")] == []
    assert store.artifact_local_path(rid, "model/MLmodel").read_text() == "v1"
    with (
        pytest.raises(RuntimeError, match="half-written"),
        store.staged_artifact_dir(rid, "model") as staging,
    ):
        (staging / "MLmodel").write_text("v2")
        raise RuntimeError("half-written")
    assert store.artifact_local_path(rid, "model/MLmodel").read_text() == "v1"
    with store.staged_artifact_dir(rid, "model") as staging:
        (staging / "weights").write_text("w")
    assert [f.path for f in store.list_artifacts(rid)] == ["model"]
    assert [f.path for f in store.list_artifacts(rid, "model")] == ["model/weights"]
    with pytest.raises(ArtifactPathError), store.staged_artifact_dir(rid, "../escape"):
        pass


def test_a_staged_folder_is_never_listed_and_does_not_replace_a_rival_unless_asked(
    store: Any,
) -> None:
    rid = _run(store)
    store.write_artifact_bytes(rid, "keep.txt", b"k")
    with store.staged_artifact_dir(rid, "model", replace=False) as staging:
        (staging / "MLmodel").write_text("ours")
        assert [f.path for f in store.list_artifacts(rid)] == ["keep.txt"]
        assert [e["path"] for e in store.walk_artifacts(rid, 10)] == ["keep.txt"]
        assert store.artifact_local_path(rid, "model").exists() is False
    assert store.artifact_local_path(rid, "model/MLmodel").read_text() == "ours"

    with (
        pytest.raises(ArtifactExistsError, match="was created by someone else meanwhile"),
        store.staged_artifact_dir(rid, "other", replace=False) as staging,
    ):
        (staging / "MLmodel").write_text("ours")
        store.write_artifact_bytes(rid, "other/theirs.txt", b"first")  # a rival writer
    assert [f.path for f in store.list_artifacts(rid, "other")] == ["other/theirs.txt"]
    assert [e["path"] for e in store.walk_artifacts(rid, 10)] == ["model", "other", "keep.txt"]


# -- registry --------------------------------------------------------------------------------------


def _register_from_process(uri: str, n: int) -> None:
    s = open_store(uri)
    for _ in range(n):
        s.create_model_version("m", "runs:/x/model", create_model=True)
    s.close()


def test_concurrent_registrations_get_consecutive_versions(store: Any, uri: str) -> None:
    store.create_registered_model("m")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_register_from_process, args=(uri, 10)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    versions = store.search_model_versions("name = 'm'", order_by=["version_number ASC"])
    assert [v.version for v in versions] == [str(i) for i in range(1, 31)]


def test_registry_versions_aliases_stages_and_rename(store: Any) -> None:
    rid = _run(store)
    store.create_registered_model("clf", tags={"team": "vision"}, description="d")
    v1 = store.create_model_version("clf", f"runs:/{rid}/model", run_id=rid)
    v2 = store.create_model_version("clf", f"runs:/{rid}/model", run_id=rid)
    assert (v1.version, v2.version) == ("1", "2")
    store.set_registered_model_alias("clf", "champion", 1)
    assert store.get_model_version_by_alias("clf", "champion").version == "1"
    store.transition_model_version_stage("clf", 1, "Production")
    store.transition_model_version_stage("clf", 2, "production", archive_existing_versions=True)
    assert store.get_model_version("clf", 1).current_stage == "Archived"
    assert [v.version for v in store.get_latest_versions("clf", ["Production"])] == ["2"]
    store.delete_model_version("clf", 2)
    v3 = store.create_model_version("clf", f"runs:/{rid}/model")
    assert v3.version == "3"  # a deleted version's number is never reused
    store.rename_registered_model("clf", "classifier")
    assert store.get_model_version_by_alias("classifier", "champion").version == "1"
    assert [v.version for v in store.model_versions_of_run(rid)] == ["1"]
    models = store.search_registered_models("tags.team = 'vision' and name LIKE 'class%'")
    assert [m.name for m in models] == ["classifier"]
    with pytest.raises(RegisteredModelNotFoundError, match="classifier"):
        store.get_registered_model("clf")
    with pytest.raises(SearchSyntaxError, match="unknown name 'acc'"):
        store.search_model_versions("acc > 1")


def test_metric_entities_are_accepted_as_well_as_tuples(store: Any) -> None:
    rid = _run(store)
    store.log_batch(rid, metrics=[Metric("m", 2.0, 7, 3)])
    assert [(m.key, m.value, m.timestamp, m.step) for m in store.get_metric_history(rid, "m")] == [
        ("m", 2.0, 7, 3)
    ]

"""autolog server over HTTP: MLflow's shapes and errors, bad input, paging, idempotent batches,
auth, the fluent API and models through a server, restarts and concurrent writers."""

from __future__ import annotations

import base64
import json
import math
import multiprocessing
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

import autolog
from autolog import tracking
from autolog.server.auth import hash_password, hash_token
from autolog.server.testing import LocalServer, free_port, shared_server
from store.base import open_store
from store.errors import ArtifactPathError, RunNotFoundError
from store.sqlite import Store

API = "/api/2.0/mlflow/"


@pytest.fixture(scope="session")
def pg_server(postgres_server: Any, s3_server: Any) -> Any:
    """One server per session over PostgreSQL + S3; each test resets it to a fresh database."""
    saved = dict(os.environ)
    os.environ.update(s3_server.env())
    try:
        uri = f"{postgres_server.new_database()}?artifact_root={s3_server.new_prefix()}"
        server = LocalServer(uri, testing_reset=True).start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres+s3"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The server's URL, over a fresh SQLite store or a fresh PostgreSQL database + S3 prefix."""
    if request.param == "sqlite":
        return shared_server(tmp_path)
    server = request.getfixturevalue("pg_server")
    pg, s3 = request.getfixturevalue("postgres_server"), request.getfixturevalue("s3_server")
    return server.reset(f"{pg.new_database()}?artifact_root={s3.new_prefix()}")


@pytest.fixture
def http(url: str) -> Any:
    with httpx.Client(base_url=url) as c:
        yield c


def _run(http: Any, **kw: Any) -> dict[str, Any]:
    r = http.post(API + "runs/create", json={"experiment_id": "0", **kw})
    assert r.status_code == 200, r.text
    return r.json()["run"]


def test_mlflow_shapes_and_errors(http: Any) -> None:
    eid = http.post(
        API + "experiments/create", json={"name": "e", "tags": [{"key": "t", "value": "v"}]}
    ).json()["experiment_id"]
    exp = http.get(API + "experiments/get-by-name", params={"experiment_name": "e"}).json()[
        "experiment"
    ]
    assert (exp["experiment_id"], exp["name"], exp["tags"]) == (
        eid,
        "e",
        [{"key": "t", "value": "v"}],
    )
    run = _run(http, run_name="r1", start_time=5, tags=[{"key": "k", "value": "1"}])
    rid = run["info"]["run_id"]
    assert run["info"]["artifact_uri"] == f"mlflow-artifacts:/0/{rid}/artifacts"
    assert (run["info"]["run_name"], run["info"]["start_time"], run["info"]["status"]) == (
        "r1",
        5,
        "RUNNING",
    )
    body = {"run_id": rid, "metrics": [{"key": "m", "value": "NaN", "timestamp": 1, "step": 0},
                                       {"key": "m", "value": 2.5, "timestamp": 2, "step": 1}],
            "params": [{"key": "p", "value": "x"}]}  # fmt: skip
    assert http.post(API + "runs/log-batch", json=body).json() == {}
    hist = http.get(API + "metrics/get-history", params={"run_id": rid, "metric_key": "m"}).json()
    assert hist == {"metrics": [{"key": "m", "value": "NaN", "timestamp": 1, "step": 0},
                                {"key": "m", "value": 2.5, "timestamp": 2, "step": 1}]}  # fmt: skip
    got = http.get(API + "runs/get", params={"run_id": rid}).json()["run"]["data"]
    assert (got["metrics"], got["params"]) == (
        [{"key": "m", "value": 2.5}],
        [{"key": "p", "value": "x"}],
    )
    missing = http.get(API + "runs/get", params={"run_id": "nope"})
    assert missing.status_code == 404
    assert (
        missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        and "nope" in missing.json()["message"]
    )
    info = http.get("/api/3.0/mlflow/server-info").json()
    assert info["server"] == "autolog"


def test_search_pages_with_next_page_token(http: Any) -> None:
    ids = [_run(http, run_name=f"r{i}", start_time=i)["info"]["run_id"] for i in range(5)]
    seen, token = [], None
    while True:
        body = {"experiment_ids": ["0"], "max_results": 2, "order_by": ["start_time ASC"]}
        page = http.post(
            API + "runs/search", json={**body, "page_token": token} if token else body
        ).json()
        seen += [r["info"]["run_id"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == ids
    hist_body = {
        "run_id": ids[0],
        "metrics": [{"key": "m", "value": i, "timestamp": i, "step": i} for i in range(5)],
    }
    http.post(API + "runs/log-batch", json=hist_body)
    page = http.get(
        API + "metrics/get-history", params={"run_id": ids[0], "metric_key": "m", "max_results": 3}
    ).json()
    assert [m["step"] for m in page["metrics"]] == [0, 1, 2] and page["next_page_token"]


def test_search_tokens_carry_the_last_runs_sort_key(http: Any) -> None:
    """A token names where its page ended (keyset), not only how many runs came before it; a
    token handed to another search counts as its offset, as MLflow's do."""
    ids = []
    for i in range(7):
        rid = _run(http, start_time=i)["info"]["run_id"]
        metrics = [{"key": "m", "value": i % 3, "timestamp": 1, "step": 0}] if i != 4 else []
        http.post(API + "runs/log-batch", json={"run_id": rid, "metrics": metrics})
        ids.append(rid)
    body = {"experiment_ids": ["0"], "max_results": 2, "order_by": ["metrics.m DESC"]}
    seen, token, tokens = [], None, []
    while True:
        page = http.post(API + "runs/search", json={**body, "page_token": token}).json()
        seen += [r["info"]["run_id"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
        tokens.append(json.loads(base64.b64decode(token)))
    # m DESC (2, 2, 1, 1, 0, 0; ties by run_id), then the run without m
    by_value = sorted((i for i in range(7) if i != 4), key=lambda i: (-(i % 3), ids[i]))
    assert seen == [ids[i] for i in by_value] + [ids[4]]
    assert [t["offset"] for t in tokens] == [2, 4, 6] and all(t["after"] for t in tokens)
    other = {**body, "order_by": ["start_time ASC"], "page_token": token or _b64(tokens[0])}
    page = http.post(API + "runs/search", json=other).json()
    assert [r["info"]["run_id"] for r in page["runs"]] == ids[2:4]  # offset 2 of that search


def _b64(token: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(token).encode()).decode()


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "code"),
    [
        ("POST", "runs/log-batch", {"content": b"{not json"}, "MALFORMED_REQUEST"),
        ("POST", "runs/log-batch", {"content": b"[1, 2]"}, "MALFORMED_REQUEST"),
        ("POST", "runs/search", {"json": {"max_results": "many"}}, "INVALID_PARAMETER_VALUE"),
        (
            "POST",
            "runs/search",
            {"json": {"filter": "metrics.a = 1; DROP TABLE runs"}},
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            "runs/search",
            {"json": {"filter": "(" * 500 + "metrics.a > 1" + ")" * 500}},
            "INVALID_PARAMETER_VALUE",
        ),
        ("POST", "runs/search", {"json": {"page_token": "garbage!"}}, "INVALID_PARAMETER_VALUE"),
        ("POST", "experiments/create", {"json": {"name": 5}}, "INVALID_PARAMETER_VALUE"),
        ("POST", "runs/log-batch", {"json": {"metrics": []}}, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_bad_input_gets_mlflow_400s(
    http: Any, method: str, path: str, kwargs: dict[str, Any], code: str
) -> None:
    r = http.request(method, API + path, **kwargs)
    assert (r.status_code, r.json()["error_code"]) == (400, code)


def test_bad_metric_values_store_nothing(http: Any, url: str) -> None:
    rid = _run(http)["info"]["run_id"]
    body = {"run_id": rid, "metrics": [{"key": "ok", "value": 1, "timestamp": 1, "step": 0},
                                       {"key": "bad", "value": "abc", "timestamp": 1, "step": 0}]}  # fmt: skip
    r = http.post(API + "runs/log-batch", json=body)
    assert r.status_code == 400 and "'abc'" in r.json()["message"]
    assert http.get(API + "runs/get", params={"run_id": rid}).json()["run"]["data"]["metrics"] == []


@pytest.mark.parametrize(
    "bad", ["..%2F..%2Fescape.txt", "a%2F..%2F..%2F..%2Fx", "%2Fetc%2Fpasswd", "a%00b"]
)
def test_artifact_proxy_refuses_traversal(http: Any, url: str, tmp_path: Path, bad: str) -> None:
    rid = _run(http)["info"]["run_id"]
    r = http.put(f"/api/2.0/mlflow-artifacts/artifacts/0/{rid}/artifacts/{bad}", content=b"x")
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text
    assert not list(tmp_path.rglob("escape.txt")) and not list(tmp_path.rglob("x"))
    assert http.get(
        "/api/2.0/mlflow-artifacts/artifacts", params={"path": f"0/{rid}/artifacts"}
    ).json() == {"files": []}


def test_artifact_proxy_round_trip_and_wrong_experiment(http: Any) -> None:
    rid = _run(http)["info"]["run_id"]
    base = f"/api/2.0/mlflow-artifacts/artifacts/0/{rid}/artifacts"
    assert http.put(base + "/d/f.bin", content=b"\x00" * 100_000).status_code == 200
    assert http.get(base + "/d/f.bin").content == b"\x00" * 100_000
    listed = http.get(
        "/api/2.0/mlflow-artifacts/artifacts", params={"path": f"0/{rid}/artifacts/d"}
    ).json()
    assert listed == {"files": [{"path": "f.bin", "is_dir": False, "file_size": 100_000}]}
    assert (
        http.get(f"/api/2.0/mlflow-artifacts/artifacts/7/{rid}/artifacts/d/f.bin").status_code
        == 404
    )


def test_a_retried_batch_is_written_once(http: Any) -> None:
    rid = _run(http)["info"]["run_id"]
    body = {"run_id": rid, "idempotency_key": "k1",
            "metrics": [{"key": "m", "value": float(i), "timestamp": i, "step": i} for i in range(3)]}  # fmt: skip
    for _ in range(3):
        assert http.post(API + "runs/log-batch", json=body).status_code == 200
    hist = http.get(API + "metrics/get-history", params={"run_id": rid, "metric_key": "m"}).json()[
        "metrics"
    ]
    assert [m["step"] for m in hist] == [0, 1, 2]


def test_old_batch_keys_are_forgotten_a_bounded_number_at_a_time(tmp_path: Path) -> None:
    from store.sqlite_values import BATCH_KEY_TTL_MS
    from store.values import now_ms

    s = Store(tmp_path / "a.db", tmp_path / "art")
    rid = s.create_run(0).info.run_id
    old = now_ms() - BATCH_KEY_TTL_MS - 60_000
    s.conn.executemany(
        "INSERT INTO batch_keys VALUES (?, ?, ?)", [(f"old{i}", rid, old) for i in range(1500)]
    )
    s.conn.execute("INSERT INTO batch_keys VALUES ('recent', ?, ?)", [rid, now_ms()])

    def keys() -> set[str]:
        return {k for (k,) in s.conn.execute("SELECT batch_key FROM batch_keys")}

    s.log_batch(rid, metrics=[("m", 1.0, 1, 1)], idempotency_key="new1")
    assert len(keys()) == 500 + 2 and {"recent", "new1"} <= keys()
    s.log_batch(rid, metrics=[("m", 2.0, 2, 2)], idempotency_key="new2")  # within the minute
    assert len(keys()) == 500 + 3
    s._next_key_sweep = 0.0  # a minute later
    s.log_batch(rid, metrics=[("m", 3.0, 3, 3)], idempotency_key="new3")
    assert keys() == {"recent", "new1", "new2", "new3"}
    s.log_batch(rid, metrics=[("m", 3.0, 3, 3)], idempotency_key="new3")  # still deduplicated
    assert [m.step for m in s.get_metric_history(rid, "m")] == [1, 2, 3]
    s.close()


def test_fluent_api_and_models_through_the_server(url: str, tmp_path: Path) -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    import numpy as np

    autolog.set_tracking_uri(url)
    autolog.autolog(log_models=True)
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    with autolog.start_run(run_name="fit") as run:
        model = sklearn.LinearRegression().fit(X, y)
        autolog.log_metric("extra", math.inf, step=3)
        autolog.log_text("hello", "notes/a.txt")
    rid = run.info.run_id
    got = autolog.get_run(rid)
    assert got.info.status == "FINISHED" and got.data.metrics["extra"] == math.inf
    assert got.data.params["fit_intercept"] == "True"
    client = autolog.Client()
    assert [f.path for f in client.list_artifacts(rid, "notes")] == ["notes/a.txt"]
    loaded = autolog.load_model(f"runs:/{rid}/model")
    assert loaded.predict(X).tolist() == pytest.approx(model.predict(X).tolist())
    client.create_registered_model("reg")
    mv = client.create_model_version("reg", f"runs:/{rid}/model", run_id=rid)
    client.set_registered_model_alias("reg", "champion", mv.version)
    again = autolog.load_model("models:/reg@champion")
    assert again.predict(X[:2]).tolist() == pytest.approx(model.predict(X[:2]).tolist())
    # nothing was written locally: the store is the server's
    assert not (tmp_path / "autolog-runs").exists()


def test_autologged_model_and_datasets_through_the_server(url: str, tmp_path: Path) -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    import numpy as np

    autolog.set_tracking_uri(url)
    autolog.autolog(log_models=True)
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    model = sklearn.LinearRegression().fit(X, y)
    logged = autolog.last_logged_model()
    assert logged is not None and logged.model_id.startswith("m-")
    rid = logged.source_run_id
    assert (logged.name, logged.artifact_path, logged.status) == ("model", "model", "READY")
    assert logged.artifact_location == f"mlflow-artifacts:/0/{rid}/artifacts/model"
    assert logged.params["fit_intercept"] == "True"
    by_key = {m.key: m for m in logged.metrics}
    assert by_key["training_r2_score"].value == 1.0
    assert (by_key["training_r2_score"].dataset_name, by_key["training_r2_score"].run_id) == (
        "train",
        rid,
    )
    loaded = autolog.load_model(f"models:/{logged.model_id}")
    assert loaded.predict(X).tolist() == pytest.approx(model.predict(X).tolist())
    [inp] = autolog.get_run(rid).inputs.dataset_inputs
    assert (inp.dataset.name, inp.dataset.source_type, inp.dataset.source) == (
        "train",
        "memory",
        "in-memory numpy",
    )
    assert inp.dataset.digest == by_key["training_r2_score"].dataset_digest
    assert inp.dataset.profile == '{"num_rows": 10, "num_columns": 2, "num_elements": 20}'
    assert [(t.key, t.value) for t in inp.tags] == [("mlflow.data.context", "training")]
    # searches carry the inputs too, and MLflow's own run JSON has them in its shape
    [found] = autolog.search_runs(output_format="list")
    assert found.inputs.dataset_inputs == [inp]
    got = httpx.get(url + API + "runs/get", params={"run_id": rid}).json()["run"]["inputs"]
    assert got["dataset_inputs"][0]["dataset"]["digest"] == inp.dataset.digest
    assert got["dataset_inputs"][0]["tags"] == [{"key": "mlflow.data.context", "value": "training"}]
    assert not (tmp_path / "autolog-runs").exists()


def test_an_autologged_fit_makes_one_request_on_the_training_thread(
    tmp_path: Path, sent_requests: list[tuple[str, str, str]]
) -> None:
    """The run's creation is the only request the fit waits for; the other 14 (params, the
    dataset, the model's record, folder, lineage and metrics, the run's end) go through the
    store's background lane, in order, and the training metrics and HTML diagram are sent from
    autolog's deferred-work thread; a later read waits for both."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    import numpy as np

    from autolog import batching

    sent = sent_requests

    def drain() -> None:
        batching.flush_deferred()
        autolog.Client().store.flush()  # type: ignore[attr-defined]  # a RestStore

    url = shared_server(tmp_path)
    autolog.set_tracking_uri(url)
    autolog.autolog(log_models=True)
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    sklearn.LinearRegression().fit(X, y)  # the first fit also asks server-info once
    drain()
    sent.clear()
    model = sklearn.LinearRegression().fit(X, y)
    drain()
    assert [s for s in sent if s[0] == "MainThread"] == [
        ("MainThread", "POST", "/api/2.0/mlflow/runs/create")
    ]

    def of(thread: str) -> list[tuple[str, str]]:
        return [(m, p.rsplit("/", 1)[-1]) for name, m, p in sent if name == thread]

    lane, deferred = of("autolog-rest-lane"), of("autolog-deferred")
    assert len(lane) + len(deferred) + 1 == len(sent)
    assert lane[:2] == [("POST", "log-batch"), ("POST", "log-inputs")]
    assert lane[-2:] == [("POST", "set-tag"), ("POST", "update")] and len(lane) == 14
    # scikit-learn's training metrics, their copy onto the logged model and the HTML diagram
    # (autolog.batching.defer): sent by that thread, after the fit returned
    assert deferred == [
        ("POST", "log-batch"), ("GET", "get"), ("GET", "latest"), ("POST", "metrics"),
        ("PUT", "estimator.html"),
    ]  # fmt: skip
    logged = autolog.last_logged_model()
    assert logged is not None and logged.source_run_id is not None
    run = autolog.get_run(logged.source_run_id)
    assert run.info.status == "FINISHED" and run.data.params["fit_intercept"] == "True"
    assert run.data.metrics["training_r2_score"] == 1.0
    assert "mlflow.log-model.history" in run.data.tags and "mlflow.datasets" in run.data.tags
    assert logged.status == "READY" and logged.model_id in run.data.tags["mlflow.log-model.history"]
    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.predict(X).tolist() == pytest.approx(model.predict(X).tolist())


def test_a_plain_torch_loop_sends_only_its_run_from_the_training_thread(
    tmp_path: Path, sent_requests: list[tuple[str, str, str]]
) -> None:
    """A plain loop starts and ends outside any patched fit: its params, dataset, model
    upload and records and its run's end go through the lane too (they took 21 requests a
    training on the training thread, 2026-12-06). The run and the model read back whole."""
    torch = pytest.importorskip("torch")

    from integrations import torch as torch_integration

    sent = sent_requests

    def train() -> Any:
        g = torch.Generator().manual_seed(0)
        X, y = torch.randn(64, 4, generator=g), torch.randn(64, 1, generator=g)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for i in range(0, 64, 16):
            loss = torch.nn.functional.mse_loss(model(X[i : i + 16]), y[i : i + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
        torch_integration.end_training()
        return model, X

    autolog.set_tracking_uri(shared_server(tmp_path))
    autolog.autolog(log_models=True)
    train()  # the first training also asks server-info once
    autolog.Client().store.flush()  # type: ignore[attr-defined]  # a RestStore
    sent.clear()
    model, X = train()
    autolog.Client().store.flush()  # type: ignore[attr-defined]
    assert [s for s in sent if s[0] == "MainThread"] == [
        ("MainThread", "POST", "/api/2.0/mlflow/runs/create")
    ]
    lane = [(m, p.rsplit("/", 1)[-1]) for name, m, p in sent if name == "autolog-rest-lane"]
    assert len(lane) + 2 == len(sent)  # and the points, from the metric writer
    assert lane[:2] == [("POST", "log-batch"), ("PUT", "model_summary.txt")]
    assert ("PUT", "staged") in lane and ("POST", "logged-models") in lane
    assert lane[-2:] == [("POST", "set-tag"), ("POST", "update")]
    run = autolog.last_active_run()
    assert run is not None and run.info.status == "FINISHED"
    assert run.data.params["optimizer_name"] == "SGD" and run.data.metrics["num_steps"] == 4.0
    names = {f.path for f in autolog.Client().list_artifacts(run.info.run_id)}
    assert {"model", "model_summary.txt"} <= names
    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    with torch.no_grad():
        expected = model(X).numpy()
    got = loaded.predict(X.numpy())
    assert got.shape == expected.shape and (got == expected).all()


def test_logged_model_endpoints_answer_as_mlflow(http: Any) -> None:
    rid = _run(http)["info"]["run_id"]
    r = http.post(API + "logged-models", json={"experiment_id": "0", "name": "m",
                  "source_run_id": rid, "params": [{"key": "a", "value": "1"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    info = r.json()["model"]["info"]
    mid = info["model_id"]
    assert (info["name"], info["status"], info["source_run_id"]) == (
        "m",
        "LOGGED_MODEL_PENDING",
        rid,
    )
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/models/{mid}/artifacts"
    base = f"{API}logged-models/{mid}"
    assert http.patch(base + "/tags", json={"tags": [{"key": "t", "value": "v"}]}).json() == {}
    point = {"key": "acc", "value": 0.5, "timestamp": 7, "step": 2, "model_id": mid,
             "dataset_name": "d", "dataset_digest": "x1"}  # fmt: skip
    assert http.post(API + "runs/log-batch", json={"run_id": rid, "metrics": [point]}).json() == {}
    done = http.patch(base, json={"model_id": mid, "status": 2}).json()["model"]
    assert done["info"]["status"] == "LOGGED_MODEL_READY"
    assert done["info"]["tags"] == [{"key": "t", "value": "v"}]
    assert done["data"] == {
        "params": [{"key": "a", "value": "1"}],
        "metrics": [{**point, "run_id": rid}],
    }
    found = http.post(API + "logged-models/search", json={"experiment_ids": ["0"],
                      "filter": "metrics.acc > 0.4"}).json()  # fmt: skip
    assert [m["info"]["model_id"] for m in found["models"]] == [mid]
    assert http.delete(base + "/tags/t").json() == {}
    assert http.delete(base).json() == {}
    gone = http.get(base)
    assert gone.status_code == 404 and gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert http.get(base, params={"allow_deleted": "true"}).json()["model"]["info"]["tags"] == []


def _no_times(obj: Any) -> Any:
    """obj without its *_timestamp fields (they change with every write)."""
    if isinstance(obj, dict):
        return {k: _no_times(v) for k, v in obj.items() if not k.endswith("_timestamp")}
    if isinstance(obj, list):
        return [_no_times(v) for v in obj]
    return obj


def test_registry_endpoints_answer_as_mlflow(http: Any) -> None:
    rid = _run(http)["info"]["run_id"]
    created = http.post(API + "registered-models/create", json={"name": "m", "description": "d",
                        "tags": [{"key": "a", "value": "1"}]}).json()  # fmt: skip
    assert _no_times(created) == {"registered_model": {"name": "m", "latest_versions": [],
        "tags": [{"key": "a", "value": "1"}], "aliases": [], "description": "d"}}  # fmt: skip
    version: dict[str, Any] = {"name": "m", "version": "1", "current_stage": "None", "source": f"runs:/{rid}/model",
               "run_id": rid, "status": "READY", "tags": [], "aliases": []}  # fmt: skip
    mv = http.post(API + "model-versions/create",
                   json={"name": "m", "source": f"runs:/{rid}/model", "run_id": rid}).json()  # fmt: skip
    assert _no_times(mv) == {"model_version": version}
    uri = http.get(API + "model-versions/get-download-uri", params={"name": "m", "version": "1"})
    assert uri.json() == {"artifact_uri": f"mlflow-artifacts:/0/{rid}/artifacts/model"}
    staged = http.post(API + "model-versions/transition-stage", json={"name": "m", "version": "1",
                       "stage": "Staging", "archive_existing_versions": False}).json()  # fmt: skip
    version["current_stage"] = "Staging"
    assert _no_times(staged) == {"model_version": version}
    alias = {"name": "m", "alias": "champ"}
    assert http.post(API + "registered-models/alias", json={**alias, "version": "1"}).json() == {}
    got = http.get(API + "registered-models/alias", params=alias).json()
    assert _no_times(got) == {"model_version": {**version, "aliases": ["champ"]}}
    renamed = http.post(API + "registered-models/rename", json={"name": "m", "new_name": "m2"})
    assert _no_times(renamed.json())["registered_model"]["aliases"] == [
        {"alias": "champ", "version": "1"}
    ]
    gone = http.get(API + "registered-models/get", params={"name": "m"})
    assert (gone.status_code, gone.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    latest = http.post(API + "registered-models/get-latest-versions",
                       json={"name": "m2", "stages": ["Staging"]}).json()  # fmt: skip
    assert _no_times(latest) == {
        "model_versions": [{**version, "name": "m2", "aliases": ["champ"]}]
    }
    r = http.request("DELETE", API + "registered-models/alias", json={**alias, "name": "m2"})
    assert r.json() == {}
    missing = http.get(API + "registered-models/alias", params={**alias, "name": "m2"})
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert http.request("DELETE", API + "model-versions/delete",
                        json={"name": "m2", "version": "1"}).json() == {}  # fmt: skip
    assert (
        http.request("DELETE", API + "registered-models/delete", json={"name": "m2"}).json() == {}
    )
    assert http.get(API + "registered-models/get", params={"name": "m2"}).status_code == 404


def test_single_value_and_lifecycle_endpoints_answer_as_mlflow(http: Any) -> None:
    rid = _run(http)["info"]["run_id"]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("runs/log-metric", {"key": "k", "value": 1.5, "timestamp": 5, "step": 2}),
        ("runs/log-parameter", {"key": "p", "value": "v"}),
        ("runs/set-tag", {"key": "t", "value": "v"}),
        ("runs/set-tag", {"key": "kept", "value": "w"}),
        ("runs/delete-tag", {"key": "t"}),
        ("runs/delete", {}),
        ("runs/restore", {}),
    ]
    for path, body in calls:
        assert http.post(API + path, json={"run_id": rid, **body}).json() == {}, path
    run = http.get(API + "runs/get", params={"run_id": rid}).json()["run"]
    assert run["info"]["lifecycle_stage"] == "active"
    # a run's metrics carry key and value only (docs/server.md, remaining differences)
    assert run["data"] == {"metrics": [{"key": "k", "value": 1.5}],
                           "params": [{"key": "p", "value": "v"}],
                           "tags": [{"key": "kept", "value": "w"}]}  # fmt: skip
    history = http.get(API + "metrics/get-history", params={"run_id": rid, "metric_key": "k"})
    assert history.json()["metrics"] == [{"key": "k", "value": 1.5, "timestamp": 5, "step": 2}]
    for path, body in [
        ("experiments/update", {"new_name": "zero"}),
        ("experiments/set-experiment-tag", {"key": "x", "value": "y"}),
        ("experiments/delete", {}),
        ("experiments/restore", {}),
    ]:
        assert http.post(API + path, json={"experiment_id": "0", **body}).json() == {}, path
    exp = http.get(API + "experiments/get", params={"experiment_id": "0"}).json()["experiment"]
    assert (exp["name"], exp["lifecycle_stage"], exp["tags"]) == (
        "zero", "active", [{"key": "x", "value": "y"}]
    )  # fmt: skip


def _log_runs(url: str, worker: int, runs: int, points: int) -> None:
    s = open_store(url)
    for r in range(runs):
        rid = s.create_run(0, run_name=f"w{worker}-{r}").info.run_id
        s.log_batch(rid, metrics=[("m", float(i), i, i) for i in range(points)])
        s.set_terminated(rid)
    s.close()


def test_concurrent_clients_lose_nothing(url: str) -> None:
    # the full size (8 x 100 runs x 1,000 points) is benchmarks/server_bench.py's
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_log_runs, args=(url, w, 5, 1000)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    s = open_store(url)
    runs = s.search_runs([0], max_results=None)
    assert sorted(r.info.run_name for r in runs) == sorted(
        f"w{w}-{r}" for w in range(8) for r in range(5)
    )
    for r in runs[:8]:
        assert [m.step for m in s.get_metric_history(r.info.run_id, "m")] == list(range(1000))
    s.close()


def test_a_restart_during_logging_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "store", port=free_port()).start()
    s = open_store(server.url)
    rid = s.create_run(0).info.run_id
    errors: list[BaseException] = []

    def log() -> None:
        try:
            for i in range(200):
                s.log_batch(rid, metrics=[("m", float(i), i, i)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=log)
    t.start()
    time.sleep(0.2)
    server.stop(kill=True)
    time.sleep(0.5)
    server.start()
    t.join(60)
    assert errors == []
    assert [m.step for m in s.get_metric_history(rid, "m")] == list(range(200))
    s.close()
    server.stop()


def test_an_unreachable_server_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOG_HTTP_REQUEST_MAX_RETRIES", "1")
    port = free_port()
    s = open_store(f"http://127.0.0.1:{port}")
    with pytest.raises(
        Exception, match=f"tracking server at http://127.0.0.1:{port} is unreachable"
    ):
        s.get_run("x")
    s.close()


def test_training_completes_with_one_warning_when_the_server_stays_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    import numpy as np

    monkeypatch.setenv("AUTOLOG_TESTING", "0")
    monkeypatch.setenv("AUTOLOG_HTTP_REQUEST_MAX_RETRIES", "1")
    autolog.set_tracking_uri(f"http://127.0.0.1:{free_port()}")
    autolog.autolog()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = sklearn.LinearRegression().fit(np.arange(8.0).reshape(4, 2), np.arange(4.0))
    assert model.coef_.shape == (2,)
    ours = [w for w in caught if "unreachable" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert tracking.active_run() is None


# -- auth --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("auth")
    store = Store(folder / "autolog.db", folder / "artifacts")
    store.add_user("ann", "write", hash_password("s3cret"))
    store.add_user("rob", "read", None)
    store.add_token("rob", hash_token("alt_robtoken"))
    store.close()
    with LocalServer(folder, auth=True) as server:
        yield server


def test_auth_requires_credentials_everywhere(auth_server: LocalServer) -> None:
    for path in (API + "experiments/search", "/", "/api/2.0/mlflow-artifacts/artifacts?path=0"):
        r = httpx.get(auth_server.url + path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="autolog"'
    assert httpx.get(auth_server.url + "/", auth=("ann", "wrong")).status_code == 401
    assert httpx.get(auth_server.url + "/", auth=("ann", "s3cret")).status_code == 200


def test_roles_decide_writes(auth_server: LocalServer) -> None:
    rob = {"Authorization": "Bearer alt_robtoken"}
    assert (
        httpx.post(auth_server.url + API + "runs/search", json={}, headers=rob).status_code == 200
    )
    r = httpx.post(auth_server.url + API + "experiments/create", json={"name": "x"}, headers=rob)
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    r = httpx.post(
        auth_server.url + API + "experiments/create", json={"name": "x"}, auth=("ann", "s3cret")
    )
    assert r.status_code == 200


def test_the_client_sends_tokens_and_basic_from_the_environment(
    auth_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    s = open_store(auth_server.url)
    rid = s.create_run(0).info.run_id
    s.close()
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.setenv("AUTOLOG_TRACKING_TOKEN", "alt_robtoken")
    s = open_store(auth_server.url)
    assert s.get_run(rid).info.run_id == rid
    with pytest.raises(Exception, match="needs 'write'"):
        s.set_tag(rid, "k", "v")
    s.close()


def test_users_cli_stores_hashes_only(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from autolog.cli import main

    runner = CliRunner()
    folder = str(tmp_path / "srv")
    out = runner.invoke(
        main,
        [
            "server",
            "--backend-store-uri",
            folder,
            "users",
            "add",
            "eve",
            "--role",
            "admin",
            "--token",
        ],
    )
    assert out.exit_code == 0, out.output
    token = out.output.split(": ")[1].split()[0]
    assert token.startswith("alt_")
    listing = runner.invoke(main, ["server", "--backend-store-uri", folder, "users", "list"])
    assert listing.output == "eve\tadmin\t1 token(s)\n"
    db = b"".join(f.read_bytes() for f in Path(folder).glob("autolog.db*"))  # WAL too
    assert token.encode() not in db and hash_token(token).encode() in db
    assert (
        runner.invoke(
            main, ["server", "--backend-store-uri", folder, "users", "remove", "eve"]
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(main, ["server", "--backend-store-uri", folder, "users", "list"]).output == ""
    )


def test_client_errors_are_the_store_errors(url: str) -> None:
    s = open_store(url)
    with pytest.raises(RunNotFoundError, match="nope"):
        s.get_run("nope")
    rid = s.create_run(0).info.run_id
    with pytest.raises(ArtifactPathError):
        s.write_artifact_bytes(rid, "../x", b"")
    s.close()


def test_mlflow_tracking_uri_is_used_when_ours_is_unset(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    tracking._tracking_uri = None
    monkeypatch.delenv("AUTOLOG_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    assert autolog.get_tracking_uri() == url
    monkeypatch.setenv("AUTOLOG_TRACKING_URI", os.fspath(Path("/tmp/x")))
    assert autolog.get_tracking_uri() == "/tmp/x"

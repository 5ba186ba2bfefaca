"""autolog server under faults and at its edges: a SIGKILL mid-fit, busy answers and their
retries, oversized bodies, the command line's warning, the start-up heap kept out of the
garbage collector's full collections."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import autolog
from autolog.server.testing import LocalServer, free_port

API = "/api/2.0/mlflow/"


def _run(http: Any) -> dict[str, Any]:
    r = http.post(API + "runs/create", json={"experiment_id": "0"})
    assert r.status_code == 200, r.text
    return r.json()["run"]


def test_oversized_bodies_get_400_and_store_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOLOG_SERVER_MAX_JSON_BYTES", "2000")
    monkeypatch.setenv("AUTOLOG_SERVER_MAX_ARTIFACT_BYTES", "1000")
    with LocalServer(tmp_path / "srv") as server, httpx.Client(base_url=server.url) as http:
        rid = _run(http)["info"]["run_id"]
        points = [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(60)]
        body = json.dumps({"run_id": rid, "metrics": points}).encode()
        assert len(body) > 2000
        r = http.post(API + "runs/log-batch", content=body)
        assert (r.status_code, r.json()["error_code"]) == (400, "MALFORMED_REQUEST")
        assert r.json()["message"] == (
            "Request body exceeds 2000 bytes; send smaller batches (or raise "
            "AUTOLOG_SERVER_MAX_JSON_BYTES on the server)."
        )
        base = f"/api/2.0/mlflow-artifacts/artifacts/0/{rid}/artifacts"
        r = http.put(base + "/big.bin", content=b"x" * 5000)
        assert r.status_code == 400 and r.json()["message"] == (
            "Artifact upload exceeds 1000 bytes; raise AUTOLOG_SERVER_MAX_ARTIFACT_BYTES on the "
            "server to accept larger files."
        )
        assert http.get(base + "/big.bin").status_code == 404
        assert http.get(API + "runs/get", params={"run_id": rid}).json()["run"]["data"] == {
            "metrics": [], "params": [], "tags": []
        }  # fmt: skip
        assert not list((tmp_path / "srv").rglob("big.bin"))
        # the server goes on: a batch and a file under the limits land
        ok = {"run_id": rid, "metrics": points[:3]}
        assert http.post(API + "runs/log-batch", json=ok).json() == {}
        assert http.put(base + "/small.bin", content=b"y" * 10).json() == {}
        assert http.get(base + "/small.bin").content == b"y" * 10


def test_busy_answers_are_retried_only_where_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    """502/503/504 are retried for calls safe to repeat, 429 for every call; an unsafe call
    gets the first 503 back (a real HTTP server on loopback answering from a script)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from store import rest_http

    monkeypatch.setenv("AUTOLOG_HTTP_REQUEST_BACKOFF_FACTOR", "0.01")
    script = {"GET": [503, 502, 504, 200], "POST": [429, 429, 200], "PUT": [503, 200]}
    seen: list[str] = []

    class Scripted(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.command)
            self.send_response(script[self.command].pop(0))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_PUT = answer

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    client = rest_http.Http(f"http://127.0.0.1:{srv.server_address[1]}")
    try:
        assert client.request("GET", "/a").status_code == 200
        assert client.request("POST", "/b", body={}, safe=False).status_code == 200
        assert client.request("PUT", "/c", content=b"x", safe=False).status_code == 503
        assert seen == ["GET"] * 4 + ["POST"] * 3 + ["PUT"]
    finally:
        client.close()
        srv.shutdown()
        srv.server_close()


def test_a_server_killed_and_restarted_during_a_fit_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    """The issue's fault: SIGKILL mid-fit, back on the same port a moment later. The fit
    finishes, every per-iteration point lands once (the batches' idempotency keys), the run
    ends FINISHED and its model loads through the restarted server."""
    xgb = pytest.importorskip("xgboost")
    import numpy as np

    server = LocalServer(tmp_path / "store", port=free_port()).start()
    restarted: list[BaseException | None] = []

    def restart() -> None:
        time.sleep(0.5)
        try:
            server.start(timeout=120)
            restarted.append(None)
        except BaseException as exc:  # reported below
            restarted.append(exc)

    class KillAtTen(xgb.callback.TrainingCallback):  # type: ignore[name-defined,misc]
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if epoch == 10:
                server.stop(kill=True)
                threading.Thread(target=restart).start()
            time.sleep(0.05)  # keeps points flowing while the server is down and restarting
            return False

    try:
        autolog.set_tracking_uri(server.url)
        autolog.autolog(log_models=True)
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(200, 4)), rng.integers(0, 2, 200)
        dtrain = xgb.DMatrix(X, y)
        params = {"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1}
        booster = xgb.train(params, dtrain, 60, evals=[(dtrain, "train")],
                            callbacks=[KillAtTen()], verbose_eval=False)  # fmt: skip
        autolog.Client().store.flush()  # type: ignore[attr-defined]  # a RestStore
        assert restarted == [None]
        logged = autolog.last_logged_model()
        assert logged is not None and logged.source_run_id is not None
        rid = logged.source_run_id
        run = autolog.get_run(rid)
        assert run.info.status == "FINISHED"
        history = autolog.Client().get_metric_history(rid, "train-logloss")
        assert [m.step for m in history] == list(range(60))
        want = booster.eval_set([(dtrain, "train")]).split("\t")[1]
        assert f"{history[-1].value:.5f}" == f"{float(want.split(':')[1]):.5f}"
        loaded = autolog.load_model(f"runs:/{rid}/model")
        assert loaded.predict(X[:5]).tolist() == pytest.approx(
            booster.predict(xgb.DMatrix(X[:5])).tolist()
        )
    finally:
        autolog.autolog(disable=True)
        server.stop()


@pytest.mark.parametrize(
    ("host", "auth", "warned"),
    [("0.0.0.0", False, True), ("0.0.0.0", True, False), ("127.0.0.1", False, False),
     ("localhost", False, False), ("::1", False, False)],
)  # fmt: skip
def test_a_non_loopback_host_without_auth_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, auth: bool, warned: bool
) -> None:
    """`autolog server`'s own command line (uvicorn.run replaced: nothing is bound here)."""
    import uvicorn
    from click.testing import CliRunner

    from autolog.cli import main

    ran: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.append({"app": app, **kw}))
    folder = str(tmp_path / "srv")
    args = ["server", "--backend-store-uri", folder, "--host", host, "--port", "5123",
            "--workers", "2", *(["--auth"] if auth else [])]  # fmt: skip
    saved = dict(os.environ)  # the command hands its settings to uvicorn's workers there
    try:
        out = CliRunner().invoke(main, args)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert out.exit_code == 0, out.output
    shown = f"[{host}]" if ":" in host else host
    assert out.stdout == (
        f"autolog server for {folder}: http://{shown}:5123/ (2 worker(s), "
        f"auth {'on' if auth else 'off'})\n"
    )
    warning = (
        f"Warning: bound to {host} without --auth: anyone who can reach this address can read "
        "and change every run, model and artifact. Add --auth and create users with "
        "`autolog server users add`.\n"
    )
    assert out.stderr == (warning if warned else "")
    assert ran == [{"app": "autolog.server.cli:app_from_env", "factory": True, "host": host,
                    "port": 5123, "workers": 2, "log_level": "warning"}]  # fmt: skip
    assert (Path(folder) / "autolog.db").is_file()  # the store was opened (and migrated) first


def test_the_served_app_freezes_its_start_up_heap(tmp_path: Path) -> None:
    """uvicorn's factory freezes what start-up allocated (no full collection walks it, see
    app_from_env); the command line's own check of the store freezes nothing."""
    import subprocess
    import sys

    code = (
        "import gc; from autolog.server.cli import app_from_env; "
        "app_from_env(freeze=False); print(gc.get_freeze_count()); "
        "app_from_env(); print(gc.get_freeze_count())"
    )
    env = {**os.environ, "AUTOLOG_SERVER_BACKEND_STORE_URI": str(tmp_path / "srv")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    unfrozen, frozen = map(int, out.stdout.split())
    assert unfrozen == 0 and frozen > 20_000


def test_a_grid_search_fit_sends_its_child_runs_from_the_lane(
    tmp_path: Path, sent_requests: list[tuple[str, str, str]]
) -> None:
    """A search's child runs (one runs/create-finished call) do not hold up the fit: the
    training thread sends runs/create alone, and after a flush the children are there."""
    model_selection = pytest.importorskip("sklearn.model_selection")
    from sklearn.linear_model import Ridge

    from autolog import batching
    from autolog.server.testing import shared_server

    def sent() -> list[tuple[str, str]]:
        return [(thread, path.rsplit("/", 1)[-1]) for thread, _, path in sent_requests]

    autolog.set_tracking_uri(shared_server(tmp_path))
    autolog.autolog(log_models=False)
    X = [[float(i), float(i % 3)] for i in range(30)]
    y = [2.0 * i + 1.0 for i in range(30)]
    search = model_selection.GridSearchCV(Ridge(), {"alpha": [0.1, 1.0, 10.0]}, cv=3)
    search.fit(X, y)  # the first fit also asks server-info once
    batching.flush_deferred()
    autolog.Client().store.flush()  # type: ignore[attr-defined]  # a RestStore
    sent_requests.clear()
    search.fit(X, y)
    assert [path for thread, path in sent() if thread == "MainThread"] == ["create"]
    batching.flush_deferred()
    autolog.Client().store.flush()  # type: ignore[attr-defined]
    assert ("autolog-rest-lane", "create-finished") in sent()
    parent = autolog.last_active_run()
    assert parent is not None
    children = autolog.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    assert sorted(r.data.params["alpha"] for r in children) == ["0.1", "1.0", "10.0"]
    assert {r.info.status for r in children} == {"FINISHED"}


def test_bodies_the_fast_parser_refuses_are_read_as_the_standard_library_reads_them(
    tmp_path: Path,
) -> None:
    """orjson reads request bodies; NaN tokens, lone surrogates and UTF-16 go to the standard
    library as before (store/rest_json.py)."""
    with LocalServer(tmp_path / "srv") as server, httpx.Client(base_url=server.url) as http:
        rid = _run(http)["info"]["run_id"]
        nan_tokens = b'{"run_id": "%s", "metrics": [{"key": "m", "value": NaN, "timestamp": 1, ' \
            b'"step": 0}, {"key": "m", "value": -Infinity, "timestamp": 2, "step": 1}]}' % rid.encode()  # fmt: skip
        assert http.post(API + "runs/log-batch", content=nan_tokens).json() == {}
        utf16 = json.dumps({"run_id": rid, "tags": [{"key": "t", "value": "é"}]}).encode("utf-16")
        assert http.post(API + "runs/log-batch", content=utf16).json() == {}
        big = b'{"run_id": "%s", "metrics": [{"key": "b", "value": 1.0, "timestamp": 1, ' \
            b'"step": 99999999999999999999}]}' % rid.encode()  # fmt: skip
        r = http.post(API + "runs/log-batch", content=big)
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        assert "Metric 'b' got step 1e+20; a step must be an integer" in r.json()["message"]
        surrogate = b'{"run_id": "%s", "tags": [{"key": "s", "value": "\\ud800"}]}' % rid.encode()
        r = http.post(API + "runs/log-batch", content=surrogate)
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        r = http.post(API + "runs/log-batch", content=b'{"run_id": ')
        assert (r.status_code, r.json()["error_code"]) == (400, "MALFORMED_REQUEST")
        assert r.json()["message"].startswith("Malformed JSON in the request body: Expecting value")
        hist = http.get(API + "metrics/get-history", params={"run_id": rid, "metric_key": "m"})
        assert [(p["value"], p["step"]) for p in hist.json()["metrics"]] == [
            ("NaN", 0),
            ("-Infinity", 1),
        ]
        data = http.get(API + "runs/get", params={"run_id": rid}).json()["run"]["data"]
        assert {t["key"]: t["value"] for t in data["tags"]}["t"] == "é"
        assert "b" not in {m["key"] for m in data.get("metrics", [])}
        assert "s" not in {t["key"] for t in data["tags"]}


def test_the_client_sends_every_kind_of_point_and_reads_it_back(tmp_path: Path) -> None:
    """log_batch's body goes through orjson, which writes NaN as null: the points carry NaN and
    the infinities as strings, numpy and other scalars as floats, an integer past 64 bits by
    the standard library."""
    import numpy as np

    from store.base import open_store
    from store.rest_json import dumps_finite

    assert dumps_finite({"step": 2**70}) == json.dumps({"step": 2**70}).encode().replace(b" ", b"")
    with LocalServer(tmp_path / "srv") as server:
        client = open_store(server.url)
        rid = client.create_run("0").info.run_id
        points = [
            ("m", 0.5, 1, 0), ("m", float("nan"), 2, 1), ("m", float("inf"), 3, 2),
            ("m", -float("inf"), 4, 3), ("m", np.float32(2.5), 5, 4), ("m", 7, 6, 5),
        ]  # fmt: skip
        client.log_batch(rid, metrics=points, params={"p": 1}, tags={"t": "x"})
        got = [(m.value, m.timestamp, m.step) for m in client.get_metric_history(rid, "m")]
        assert got[0] == (0.5, 1, 0) and got[1][0] != got[1][0]  # NaN
        assert got[1][1:] == (2, 1)
        assert got[2:] == [(float("inf"), 3, 2), (-float("inf"), 4, 3), (2.5, 5, 4), (7.0, 6, 5)]
        run = client.get_run(rid)
        assert (run.data.params, run.data.tags["t"]) == ({"p": "1"}, "x")
        client.close()


def test_what_a_logging_client_sends_most_is_routed_first(tmp_path: Path) -> None:
    """starlette matches routes in order; log-batch and the upload once came 60th and 71st."""
    from autolog.server.app import create_app
    from store.base import open_store

    routes = create_app(open_store(tmp_path), ui=False).router.routes

    def place(method: str, path: str) -> int:
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
        return next(i for i, r in enumerate(routes) if r.matches(scope)[0].name == "FULL")

    api = "/api/2.0/mlflow/"
    assert [place("POST", api + p) for p in ("runs/log-batch", "runs/create", "runs/update")] == [
        0,
        1,
        2,
    ]
    assert place("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a.txt") == 5
    download = routes[place("GET", "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a.txt")]
    assert download.methods == {"GET", "HEAD"}  # a GET still reaches the download, not the PUT


def test_a_program_holding_sqlites_lock_stalls_no_other_request(tmp_path: Path) -> None:
    """Another program (here a plain sqlite3 connection, as the ``sqlite3`` shell would) holds
    SQLite's write lock without autolog's file lock. The server's inline write meets it at once
    and waits on a thread instead of on the event loop (up to 30 s a try before): health and
    reads answer meanwhile, and the batch lands once the lock is let go, exactly once."""
    import sqlite3

    with LocalServer(tmp_path / "srv") as server, httpx.Client(base_url=server.url) as http:
        rid = _run(http)["info"]["run_id"]
        outside = sqlite3.connect(tmp_path / "srv" / "autolog.db", isolation_level=None)
        outside.execute("BEGIN IMMEDIATE")
        answers: list[httpx.Response] = []
        points = [
            {"key": "loss", "value": 0.5 / (i + 1), "timestamp": 7, "step": i} for i in range(3)
        ]
        body = {"run_id": rid, "metrics": points, "params": [{"key": "lr", "value": "0.1"}]}
        writer = threading.Thread(
            target=lambda: answers.append(
                httpx.post(server.url + API + "runs/log-batch", json=body, timeout=60)
            )
        )
        try:
            writer.start()
            writer.join(0.5)
            assert writer.is_alive()  # waiting for the outside program, on a thread
            started = time.monotonic()
            assert http.get("/health", timeout=5).status_code == 200
            got = http.get(API + "runs/get", params={"run_id": rid}, timeout=5)
            assert got.status_code == 200 and got.json()["run"]["data"]["params"] == []
            assert time.monotonic() - started < 2.0
            assert writer.is_alive()
        finally:
            outside.execute("COMMIT")
            outside.close()
        writer.join(30)
        assert not writer.is_alive() and answers[0].status_code == 200, answers
        history = http.get(
            API + "metrics/get-history", params={"run_id": rid, "metric_key": "loss"}
        )
        assert [(m["step"], m["value"]) for m in history.json()["metrics"]] == [
            (0, 0.5), (1, 0.25), (2, 0.5 / 3)
        ]  # fmt: skip
        params = http.get(API + "runs/get", params={"run_id": rid}).json()["run"]["data"]["params"]
        assert params == [{"key": "lr", "value": "0.1"}]

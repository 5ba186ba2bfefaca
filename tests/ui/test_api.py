"""The UI's JSON API and pages through Starlette's TestClient: every endpoint, paging, sorting,
filtering, downsampling, artifact containment (traversal attempts), sandboxing, Host check."""

from __future__ import annotations

import math
import os
import re

import pytest
from ui.demo import BASE_URL, CSV, HOST, HTML, PNG, PORT

from autolog.ui import create_app
from autolog.ui.app import allowed_hosts


def _names(body):
    return [r["run_name"] for r in body["runs"]]


# -- experiments ------------------------------------------------------------------------


def test_experiments_list_with_run_counts(client, demo):
    body = client.get("/api/experiments").json()
    got = [(e["experiment_id"], e["name"], e["run_count"]) for e in body["experiments"]]
    assert got == [
        ("0", "Default", 0),
        (demo.experiment_id, "iris", 4),
        (demo.other_experiment_id, "empty one", 0),
    ]
    iris = body["experiments"][1]
    assert iris["last_run_time"] == 1_700_000_000_000 + 3 * 60_000


def test_experiment_by_id_and_unknown(client, demo):
    r = client.get(f"/api/experiments/{demo.experiment_id}")
    assert r.status_code == 200
    assert r.json()["experiment"]["name"] == "iris"
    r = client.get("/api/experiments/999")
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "999" in r.json()["message"]


def test_deleted_experiment_is_not_listed(client, store, demo):
    store.delete_experiment(demo.other_experiment_id)
    names = [e["name"] for e in client.get("/api/experiments").json()["experiments"]]
    assert names == ["Default", "iris"]
    assert client.get(f"/api/experiments/{demo.other_experiment_id}").status_code == 404
    assert client.get(f"/experiments/{demo.other_experiment_id}").status_code == 404


# -- runs -------------------------------------------------------------------------------


def test_runs_newest_first_with_paging(client, demo):
    body = client.get(f"/api/runs?experiment_id={demo.experiment_id}&max_results=3").json()
    assert _names(body) == ["linear-d", "boost-c", "forest-b"]
    assert (body["total"], body["offset"], body["max_results"], body["next_offset"]) == (4, 0, 3, 3)
    body = client.get(f"/api/runs?experiment_id={demo.experiment_id}&max_results=3&offset=3").json()
    assert _names(body) == ["forest-a"]
    assert (body["total"], body["next_offset"]) == (4, None)
    assert body["columns"] == {
        "params": ["max_depth", "model", "n_estimators"],
        "metrics": ["accuracy", "loss", "val_loss"],
    }


def test_runs_sorted_by_metric_and_param(client, demo):
    body = client.get("/api/runs?sort=metrics.accuracy&dir=desc").json()
    assert _names(body) == ["forest-b", "boost-c", "forest-a", "linear-d"]
    assert [r["metrics"]["accuracy"] for r in body["runs"]] == pytest.approx(
        [0.9, 0.86, 0.82, 0.74]
    )
    # a run lacking the key comes last in both directions
    body = client.get("/api/runs?order_by=params.max_depth ASC").json()
    assert _names(body) == ["forest-a", "boost-c", "forest-b", "linear-d"]
    body = client.get("/api/runs?sort=params.max_depth&dir=desc").json()
    assert _names(body) == ["forest-b", "boost-c", "forest-a", "linear-d"]
    body = client.get("/api/runs?sort=attributes.run_name&dir=asc").json()
    assert _names(body) == ["boost-c", "forest-a", "forest-b", "linear-d"]


def test_runs_filter_with_the_search_grammar(client, demo):
    body = client.get("/api/runs", params={"filter": "params.model = 'forest'"}).json()
    assert sorted(_names(body)) == ["forest-a", "forest-b"]
    assert body["total"] == 2
    f = "metrics.accuracy > 0.85 and (tags.team = 'vision' or status = 'FAILED')"
    assert _names(client.get("/api/runs", params={"filter": f}).json()) == ["boost-c"]
    f = "tags.mlflow.autologging = 'xgboost'"
    assert _names(client.get("/api/runs", params={"filter": f}).json()) == ["boost-c"]


def test_runs_bad_filter_and_sort_are_400(client, demo):
    r = client.get("/api/runs", params={"filter": "metrics.accuracy >> 1"})
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "position" in r.json()["message"]
    assert client.get("/api/runs?sort=bogus.x").status_code == 400
    assert client.get("/api/runs?max_results=many").status_code == 400
    assert client.get("/api/runs?experiment_id=abc").status_code == 400


def test_runs_list_keeps_user_and_summary_tags(client, demo):
    run = next(r for r in client.get("/api/runs").json()["runs"] if r["run_name"] == "forest-a")
    assert run["tags"] == {
        "team": "vision",
        "mlflow.autologging": "sklearn",
        "mlflow.source.name": "train.py",
        "mlflow.user": "ada",
        "mlflow.source.git.commit": "0" * 40,
    }
    assert run["integration"] == "sklearn"
    assert run["duration_ms"] == 5_000
    assert run["params"] == {"model": "forest", "max_depth": "3", "n_estimators": "50"}


def test_run_detail(client, demo):
    rid = demo.runs["forest-a"]
    body = client.get(f"/api/runs/{rid}").json()
    run = body["run"]
    assert (run["run_id"], run["run_name"], run["status"]) == (rid, "forest-a", "FINISHED")
    assert run["tags"]["mlflow.source.git.branch"] == "main"
    assert set(run["metrics"]) == {"accuracy", "loss", "val_loss"}
    assert run["metrics"]["loss"] == pytest.approx(0.9 * math.exp(-29 / 8) + 0.05)
    [model] = body["models"]
    assert model["artifact_path"] == "model"
    assert model["model_uri"] == f"runs:/{rid}/model"
    assert [c["name"] for c in model["inputs"]] == [
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    ]
    assert {c["type"] for c in model["inputs"]} == {"double"}
    assert f'autolog.load_model("runs:/{rid}/model")' in model["load_code"]
    assert [(v["name"], v["version"], v["aliases"]) for v in body["model_versions"]] == [
        ("iris-classifier", "1", ["champion"]),
        ("iris-classifier", "2", []),
    ]
    assert body["children"] == []


def test_run_children_listed(client, store, demo):
    parent = demo.runs["forest-a"]
    child = store.create_run(demo.experiment_id, run_name="fold-1", parent_run_id=parent)
    body = client.get(f"/api/runs/{parent}").json()
    assert body["children"] == [
        {"run_id": child.info.run_id, "run_name": "fold-1", "status": "RUNNING"}
    ]
    html = client.get(f"/experiments/{demo.experiment_id}").text
    assert f'data-run="{parent}" aria-expanded="false" title="Show the 1 child runs">▸ 1' in html
    assert f'class="child-row" data-parent="{parent}" hidden>' in html
    flat = client.get(f"/experiments/{demo.experiment_id}?flat=1").text
    assert f'<a class="child" href="/runs/{parent}" title="Child of run {parent}">↳</a>' in flat
    assert f'href="/runs/{child.info.run_id}"' in client.get(f"/runs/{parent}").text


def test_deleted_run_is_hidden_from_lists_but_still_shown(client, store, demo):
    rid = demo.runs["boost-c"]
    store.delete_run(rid)
    assert "boost-c" not in _names(client.get("/api/runs").json())
    assert ">boost-c</a>" not in client.get("/runs").text
    assert '<span class="chip warn"' in client.get(f"/runs/{rid}").text
    assert client.get(f"/api/runs/{rid}").json()["run"]["lifecycle_stage"] == "deleted"


def test_unknown_run_is_404(client, demo):
    for url in ("/api/runs/0123abcd", "/api/runs/0123abcd/artifacts", "/runs/0123abcd"):
        assert client.get(url).status_code == 404, url
    r = client.get("/api/runs/0123abcd/metric-history?key=loss")
    assert r.status_code == 404
    assert "0123abcd" in r.json()["message"]


# -- metric histories -------------------------------------------------------------------


def test_history_small_is_exact(client, demo):
    rid = demo.runs["forest-b"]
    body = client.get(f"/api/runs/{rid}/metric-history", params={"key": "loss"}).json()
    assert body["downsampled"] is False
    assert body["total"] == 30
    assert body["steps"] == list(range(30))
    assert body["values"] == pytest.approx([0.5 * math.exp(-s / 8) + 0.05 for s in range(30)])
    assert body["timestamps"] == [1_700_000_000_000 + s for s in range(30)]


def test_history_step_range(client, demo):
    rid = demo.runs["forest-b"]
    body = client.get(f"/api/runs/{rid}/metric-history?key=loss&min_step=10&max_step=12").json()
    assert body["steps"] == [10, 11, 12]


def test_history_non_finite_values_are_strings(client, store, demo):
    rid = demo.runs["linear-d"]
    store.log_batch(
        rid,
        metrics=[
            ("odd", math.nan, 1, 0),
            ("odd", math.inf, 2, 1),
            ("odd", -math.inf, 3, 2),
            ("odd", 1.5, 4, 3),
        ],
    )
    body = client.get(f"/api/runs/{rid}/metric-history?key=odd").json()
    assert body["values"] == ["NaN", "Infinity", "-Infinity", 1.5]
    assert client.get(f"/api/runs/{rid}").json()["run"]["metrics"]["odd"] == 1.5


def test_history_unknown_key_is_empty_and_missing_key_is_400(client, demo):
    rid = demo.runs["forest-a"]
    body = client.get(f"/api/runs/{rid}/metric-history?key=nope").json()
    assert (body["total"], body["steps"], body["values"]) == (0, [], [])
    assert client.get(f"/api/runs/{rid}/metric-history").status_code == 400


def test_history_downsampled_keeps_shape(client, store, demo):
    rid = demo.runs["forest-a"]
    n = 10_000
    values = [math.sin(s / 500) for s in range(n)]
    values[7_777] = 25.0  # one spike
    values[123] = -9.0  # one dip
    store.log_batch(rid, metrics=[("long", v, 1_000 + s, s) for s, v in enumerate(values)])
    body = client.get(f"/api/runs/{rid}/metric-history?key=long&max_points=200").json()
    assert body["downsampled"] is True
    assert body["total"] == n
    assert body["timestamps"] is None
    assert len(body["steps"]) <= 200
    assert body["bucket_width"] == 100
    assert body["steps"][0] == 0 and body["steps"][-1] == n - 1
    assert body["steps"] == sorted(body["steps"])
    assert max(body["values"]) == 25.0
    assert min(body["values"]) == -9.0
    # every bucket's extremes are exact: bucket 5 (steps 500-599)
    bucket = values[500:600]
    i = body["steps"].index(500)
    assert sorted(body["values"][i : i + 2]) == [min(bucket), max(bucket)]
    # a falling stretch stays falling (min/max ordered to continue the line)
    falling = [v for s, v in zip(body["steps"], body["values"]) if 1_000 <= s < 2_400]
    assert falling == sorted(falling, reverse=True)
    # the same request again is answered from the cache with the same result
    again = client.get(f"/api/runs/{rid}/metric-history?key=long&max_points=200").json()
    assert again == body


def test_history_downsampled_refreshes_when_points_arrive(client, store, demo):
    rid = demo.runs["forest-a"]
    store.log_batch(rid, metrics=[("grow", float(s), 1, s) for s in range(1_000)])
    first = client.get(f"/api/runs/{rid}/metric-history?key=grow&max_points=100").json()
    store.log_batch(rid, metrics=[("grow", 5_000.0, 2, 1_000)])
    second = client.get(f"/api/runs/{rid}/metric-history?key=grow&max_points=100").json()
    assert (first["total"], second["total"]) == (1_000, 1_001)
    assert max(second["values"]) == 5_000.0


def test_history_many_points_on_one_step(client, store, demo):
    """Points logged without a step all sit at step 0: they become that step's min and max."""
    rid = demo.runs["forest-a"]
    store.log_batch(rid, metrics=[("flat", float(i % 7), i, 0) for i in range(500)])
    body = client.get(f"/api/runs/{rid}/metric-history?key=flat&max_points=50").json()
    assert body["downsampled"] is True
    assert (body["steps"], body["values"], body["total"]) == ([0, 0], [0.0, 6.0], 500)


# -- artifacts --------------------------------------------------------------------------


def test_artifact_listing(client, demo):
    rid = demo.runs["forest-a"]
    files = client.get(f"/api/runs/{rid}/artifacts").json()["files"]
    assert [(f["path"], f["is_dir"]) for f in files] == [
        ("data", True),
        ("model", True),
        ("notes.txt", False),
        ("plots", True),
        ("report.html", False),
        ("weights.bin", False),
    ]
    files = client.get(f"/api/runs/{rid}/artifacts?path=plots").json()["files"]
    assert [(f["path"], f["file_size"]) for f in files][1] == ("plots/tiny.png", len(PNG))


def test_artifact_files_served_sandboxed(client, demo):
    rid = demo.runs["forest-a"]
    r = client.get(f"/api/runs/{rid}/artifacts/plots/tiny.png")
    assert r.status_code == 200
    assert r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-security-policy"].startswith("sandbox;")
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.get(f"/api/runs/{rid}/artifacts/report.html")
    assert r.text == HTML
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert csp.split(";")[0] == "sandbox"  # no allow-scripts, no allow-same-origin
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert r.headers["content-disposition"].startswith("inline")
    r = client.get(f"/api/runs/{rid}/artifacts/report.html?download=1")
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''report.html"
    r = client.get(f"/api/runs/{rid}/artifacts/data/folds.csv")
    assert (r.text, r.headers["content-type"]) == (CSV, "text/csv; charset=utf-8")
    r = client.get(f"/api/runs/{rid}/artifacts/model/MLmodel")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "flavors:" in r.text


def test_artifact_folder_or_missing_file(client, demo):
    rid = demo.runs["forest-a"]
    assert client.get(f"/api/runs/{rid}/artifacts/plots").status_code == 400
    assert client.get(f"/api/runs/{rid}/artifacts/plots/nope.png").status_code == 404
    assert client.get(f"/api/runs/{demo.runs['forest-b']}/artifacts/notes.txt").status_code == 404


TRAVERSALS = [
    "..%2F..%2F..%2Fautolog.db",
    "..%2f..%2f..%2fautolog.db",
    "%2e%2e/%2e%2e/%2e%2e/autolog.db",
    "%2E%2E%2F%2E%2E%2F%2E%2E%2Fautolog.db",
    "plots/%2e%2e/%2e%2e/%2e%2e/%2e%2e/autolog.db",
    "..%5C..%5C..%5Cautolog.db",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "notes.txt%00.png",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_artifact_traversal_refused(client, demo, path):
    rid = demo.runs["forest-a"]
    r = client.get(f"/api/runs/{rid}/artifacts/{path}")
    assert r.status_code in (400, 404), r.text
    assert b"SQLite format" not in r.content and b"root:" not in r.content
    r = client.get(f"/api/runs/{rid}/artifact-preview?path={path}")
    assert r.status_code in (400, 404), r.text
    assert "SQLite format" not in r.text


def test_artifact_traversal_in_query_params_refused(client, demo):
    rid = demo.runs["forest-a"]
    for path in ("../../../autolog.db", "..", "/etc", "plots/../../.."):
        assert client.get(f"/api/runs/{rid}/artifacts", params={"path": path}).status_code == 400
        r = client.get(f"/api/runs/{rid}/artifact-preview", params={"path": path})
        assert r.status_code == 400


def test_links_out_of_the_run_are_refused(client, store, demo, tmp_path):
    rid = demo.runs["forest-a"]
    base = store.run_artifact_base(rid)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, base / "leak.txt")
    os.symlink(store.db_path, base / "db-link")
    other = store.run_artifact_base(demo.runs["forest-b"])
    other.mkdir(parents=True, exist_ok=True)
    (other / "theirs.txt").write_text("another run's file")
    os.symlink(other, base / "other-run")
    for path in ("leak.txt", "db-link", "other-run/theirs.txt"):
        r = client.get(f"/api/runs/{rid}/artifacts/{path}")
        assert r.status_code == 400, path
        assert "secret" not in r.text and "another run" not in r.text
        assert client.get(f"/api/runs/{rid}/artifact-preview?path={path}").status_code == 400
    # links are not listed either
    names = [f["path"] for f in client.get(f"/api/runs/{rid}/artifacts").json()["files"]]
    assert "leak.txt" not in names and "other-run" not in names


def test_artifact_previews(client, demo):
    rid = demo.runs["forest-a"]

    def preview(path):
        r = client.get(f"/api/runs/{rid}/artifact-preview", params={"path": path})
        assert r.status_code == 200, r.text
        return r.json()

    assert preview("plots/tiny.png") == {
        "path": "plots/tiny.png",
        "kind": "image",
        "size": len(PNG),
        "truncated": False,
        "url": f"/api/runs/{rid}/artifacts/plots/tiny.png",
    }
    assert preview("report.html")["kind"] == "html"
    assert preview("data/folds.csv")["rows"] == [
        ["fold", "accuracy", "f1"],
        ["1", "0.91", "0.88"],
        ["2", "0.93", "0.9"],
        ["3", "0.95", "0.92"],
    ]
    assert preview("notes.txt")["text"] == "all good\nsecond line\n"
    assert preview("weights.bin")["kind"] == "binary"
    assert "flavors:" in preview("model/MLmodel")["text"]
    assert client.get(f"/api/runs/{rid}/artifact-preview").status_code == 400


def test_big_text_preview_is_truncated(client, store, demo):
    rid = demo.runs["forest-a"]
    store.write_artifact_bytes(rid, "big.log", b"x" * 300_000)
    body = client.get(f"/api/runs/{rid}/artifact-preview?path=big.log").json()
    assert body["truncated"] is True
    assert len(body["text"]) == 256 * 1024
    assert client.get(f"/api/runs/{rid}/artifacts/big.log").content == b"x" * 300_000


# -- models -----------------------------------------------------------------------------


def test_logged_models(client, demo):
    [m] = client.get("/api/models").json()["models"]
    rid = demo.runs["forest-a"]
    assert (m["run_id"], m["artifact_path"], m["run_name"], m["model_uri"]) == (
        rid,
        "model",
        "forest-a",
        f"runs:/{rid}/model",
    )
    assert "python_function" in m["flavors"]


def test_registered_models(client, demo):
    [m] = client.get("/api/registered-models").json()["registered_models"]
    assert (m["name"], m["latest_version"], m["aliases"]) == (
        "iris-classifier",
        "2",
        {"champion": "1"},
    )
    assert m["description"] == "Logistic regression on iris."
    body = client.get("/api/registered-models/iris-classifier").json()["registered_model"]
    assert [(v["version"], v["current_stage"], v["aliases"]) for v in body["versions"]] == [
        ("2", "Staging", []),
        ("1", "None", ["champion"]),
    ]
    assert body["versions"][0]["run_id"] == demo.runs["forest-a"]
    r = client.get("/api/registered-models/nope")
    assert r.status_code == 404
    assert "nope" in r.json()["message"]
    assert client.get("/api/registered-models?filter=name LIKE 'iris%'").json()["registered_models"]
    assert client.get("/api/registered-models?filter=name = 'x'").json()["registered_models"] == []


# -- security ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:5000",
        "localhost",
        "127.0.0.1:5001",
        "127.0.0.1.nip.io:5000",
        "",
    ],
)
def test_foreign_host_header_refused(store, host):
    from starlette.testclient import TestClient

    app = create_app(store, host=HOST, port=PORT)
    with TestClient(app, base_url=BASE_URL) as c:
        r = c.get("/api/experiments", headers={"host": host})
        assert r.status_code == 400
        assert "Invalid Host header" in r.text


@pytest.mark.parametrize(
    "host", ["127.0.0.1:5000", "localhost:5000", "[::1]:5000", "LOCALHOST:5000"]
)
def test_loopback_host_header_accepted(store, host):
    from starlette.testclient import TestClient

    app = create_app(store, host=HOST, port=PORT)
    with TestClient(app, base_url=BASE_URL) as c:
        assert c.get("/api/experiments", headers={"host": host}).status_code == 200


def test_host_check_only_when_bound_to_loopback():
    assert allowed_hosts("0.0.0.0", 8080) is None
    assert allowed_hosts("::1", 8080) == {"localhost:8080", "127.0.0.1:8080", "[::1]:8080"}
    assert allowed_hosts("localhost", 80) == {
        "localhost:80",
        "127.0.0.1:80",
        "[::1]:80",
        "localhost",
        "127.0.0.1",
        "[::1]",
    }


def test_read_only(client, demo):
    rid = demo.runs["forest-a"]
    assert client.post("/api/runs").status_code == 405
    assert client.delete(f"/api/runs/{rid}").status_code == 405
    assert client.put(f"/api/runs/{rid}/artifacts/notes.txt", content=b"x").status_code == 405
    assert client.get(f"/api/runs/{rid}/artifacts/notes.txt").text == "all good\nsecond line\n"


def test_pages_carry_a_strict_csp(client, demo):
    r = client.get("/runs")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "SAMEORIGIN"


# -- pages ------------------------------------------------------------------------------


def test_experiments_page(client, demo):
    r = client.get("/")
    assert r.status_code == 200
    assert f'href="/experiments/{demo.experiment_id}">iris</a>' in r.text
    assert "All 4 runs" in r.text


def test_runs_page_table(client, demo):
    r = client.get(f"/experiments/{demo.experiment_id}")
    assert r.status_code == 200
    html = r.text
    for name, rid in demo.runs.items():
        assert f'<a href="/runs/{rid}">{name}</a>' in html
    assert "Runs 1–4 of 4" in html
    for col in ("max_depth", "n_estimators", "accuracy", "val_loss"):
        assert f">{col}<span" in html
    # metrics sort high to low first (the default direction, left out of the link)
    assert f'href="/experiments/{demo.experiment_id}?sort=metrics.accuracy"' in html
    assert f'href="/experiments/{demo.experiment_id}?sort=params.max_depth&amp;dir=asc"' in html
    assert '<span class="status status-failed">failed</span>' in html
    assert '<span class="chip">xgboost</span>' in html
    assert ">5.0s<" in html


def test_runs_page_sort_filter_and_paging(client, demo):
    url = f"/experiments/{demo.experiment_id}"
    html = client.get(url, params={"sort": "metrics.accuracy", "dir": "asc", "per_page": 2}).text
    order = [n for n in ("linear-d", "forest-a", "boost-c", "forest-b") if f">{n}</a>" in html]
    assert order == ["linear-d", "forest-a"]
    assert "Runs 1–2 of 4" in html
    assert (
        'name="page" id="jump-page" value="1" min="1" max="2" aria-label="Go to page"> of 2' in html
    )
    next_page = "sort=metrics.accuracy&amp;dir=asc&amp;per_page=2&amp;page=2"
    assert f'href="/experiments/{demo.experiment_id}?{next_page}" rel="next"' in html
    html = client.get(
        url, params={"sort": "metrics.accuracy", "dir": "asc", "per_page": 2, "page": 2}
    ).text
    assert ">boost-c</a>" in html and ">forest-b</a>" in html and ">linear-d</a>" not in html
    html = client.get(url, params={"filter": "params.model = 'forest'"}).text
    assert "Runs 1–2 of 2" in html
    assert ">boost-c</a>" not in html


def test_runs_page_bad_filter_shows_the_error(client, demo):
    r = client.get("/runs", params={"filter": "metrics.accuracy >> 1"})
    assert r.status_code == 400
    assert 'id="filter-error"' in r.text
    assert "position" in r.text
    assert 'value="metrics.accuracy &gt;&gt; 1"' in r.text  # the box keeps what was typed


def test_run_page(client, demo):
    rid = demo.runs["forest-a"]
    html = client.get(f"/runs/{rid}").text
    assert "<h1>forest-a" in html
    assert html.count('class="chart"') == 3
    assert f'data-run="{rid}" data-key="loss"' in html
    assert "0" * 40 in html  # git commit
    assert f"autolog.load_model(&#34;runs:/{rid}/model&#34;)" in html
    assert "sepal length (cm)" in html
    assert 'data-artifact="plots/roc.png"' in html
    assert 'data-artifact="data/folds.csv"' in html
    assert "iris-classifier</a> version 1" in html
    assert '<span class="chip alias">@champion</span>' in html


def test_compare_page(client, demo):
    a, b = demo.runs["forest-a"], demo.runs["boost-c"]
    r = client.get(f"/compare?runs={a}&runs={b}")
    assert r.status_code == 200
    html = r.text
    assert "Comparing 2 runs" in html
    assert '<tr class="differs"><th>max_depth</th><td>3</td><td>4</td></tr>' in html
    charts = re.findall(r'data-compare="1" data-key="([^"]+)"', html)
    assert charts == ["loss", "val_loss"]  # accuracy, logged once per run, only in the table
    assert 'id="no-histories"' not in html
    assert '"varying_params": ["learning_rate", "max_depth", "model", "n_estimators"]' in html
    assert client.get(f"/compare?runs={a},{b}").status_code == 200


def test_compare_single_values_make_no_charts(client, store, demo):
    ids = []
    for name, score in (("cand-1", 0.8), ("cand-2", 0.9)):
        rid = store.create_run(demo.experiment_id, run_name=name).info.run_id
        store.log_batch(rid, metrics=[("mean_test_score", score, 0, 0)])
        ids.append(rid)
    html = client.get(f"/compare?runs={ids[0]},{ids[1]}").text
    assert 'data-compare="1"' not in html
    assert "Every metric here was logged once per run: compared in the table above." in html
    assert '<option value="mean_test_score" selected>' in html  # still the plots' metric


def test_compare_needs_2_to_10_runs(client, demo):
    a = demo.runs["forest-a"]
    assert client.get(f"/compare?runs={a}").status_code == 400
    assert client.get(f"/compare?runs={a}&runs={a}").status_code == 400
    many = ",".join(f"{i:032x}" for i in range(11))
    assert client.get(f"/compare?runs={many}").status_code == 400
    assert client.get(f"/compare?runs={a},{'f' * 32}").status_code == 404


def test_models_pages(client, demo):
    html = client.get("/models").text
    assert '<a href="/models/iris-classifier">iris-classifier</a>' in html
    assert "@champion → v1" in html
    assert (
        'title="1 version in Staging">Staging 1: <a href="/models/iris-classifier/versions/2">v2</a>'
        in html
    )
    assert client.get("/models?q=IRIS").text.count('<a href="/models/iris-classifier">') == 1
    assert "No registered model matches" in client.get("/models?q=zzz").text
    bad = client.get("/models?q=name %3D")
    assert bad.status_code == 400 and 'id="model-search-error"' in bad.text
    assert f"runs:/{demo.runs['forest-a']}/model" in html
    html = client.get("/models/iris-classifier").text
    assert 'autolog.load_model("models:/iris-classifier@champion")' in html
    assert html.count("<tr>") == 3  # header + two versions
    assert client.get("/models/nope").status_code == 404


def test_empty_store_pages(client):
    assert "No runs yet" in client.get("/runs").text
    assert client.get("/models").status_code == 200
    assert client.get("/").status_code == 200


def test_static_assets_are_ours(client):
    r = client.get("/static/app.js")
    assert r.status_code == 200 and "lineChart" in r.text
    assert client.get("/static/style.css").status_code == 200


def test_pages_of_a_bare_run(client, store):
    """A run with nothing logged (no tags, params, metrics, artifacts) still renders everywhere."""
    run = store.create_run(0)  # RUNNING, no name, no tags
    rid = run.info.run_id
    other = store.create_run(0, run_name="other").info.run_id
    html = client.get(f"/runs/{rid}").text
    assert "No metrics." in html and "No parameters." in html and "No artifacts." in html
    assert "Not run from a git repository" in html
    assert "(running)" in html
    assert client.get("/runs").status_code == 200
    assert client.get("/experiments/0").status_code == 200
    assert client.get(f"/compare?runs={rid}&runs={other}").status_code == 200
    body = client.get(f"/api/runs/{rid}").json()
    assert body["run"]["duration_ms"] is None and body["models"] == []


def test_cli_ui_command(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import autolog.ui
    from autolog.cli import main

    calls = []
    monkeypatch.setattr(
        autolog.ui, "serve", lambda uri, host, port: calls.append((uri, host, port))
    )
    runner = CliRunner()
    assert runner.invoke(main, ["ui", "--store", str(tmp_path), "--port", "5123"]).exit_code == 0
    assert (
        runner.invoke(main, ["--store", "sqlite:///x.db", "ui", "--host", "0.0.0.0"]).exit_code == 0
    )
    assert runner.invoke(main, ["ui"], env={"AUTOLOG_TRACKING_URI": ""}).exit_code == 0
    assert calls == [
        (str(tmp_path), "127.0.0.1", 5123),
        ("sqlite:///x.db", "0.0.0.0", 5000),
        (None, "127.0.0.1", 5000),
    ]


def test_user_text_is_escaped_and_odd_keys_work(client, store, demo):
    rid = demo.runs["linear-d"]
    store.update_run(rid, run_name="<script>alert(1)</script>")
    store.log_batch(rid, metrics=[("eval/f1 score`'\"", 0.5, 1, 7)], params={"a<b": "</td>"})
    html = client.get(f"/runs/{rid}").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<td></td></td>" not in html and "&lt;/td&gt;" in html
    assert '<tr><th>eval/f1 score`&#39;&#34;</th><td class="num">0.5</td></tr>' in html  # one value
    store.log_batch(rid, metrics=[("eval/f1 score`'\"", 0.6, 2, 8)])
    assert 'data-key="eval/f1 score`&#39;&#34;"' in client.get(f"/runs/{rid}").text  # a history
    body = client.get(f"/api/runs/{rid}/metric-history", params={"key": "eval/f1 score`'\""}).json()
    assert (body["steps"], body["values"]) == ([7, 8], [0.5, 0.6])
    listing = client.get(f"/experiments/{demo.experiment_id}").text
    assert "<script>alert(1)" not in listing
    # sorting by a key with a backquote and quotes goes through the grammar's quoting
    names = _names(client.get("/api/runs", params={"sort": "metrics.eval/f1 score`'\""}).json())
    assert names[0] == "<script>alert(1)</script>"


def test_encoded_slashes_in_the_run_id_do_not_route_anywhere(client, demo):
    for url in (
        "/api/runs/..%2F..%2F/artifacts/autolog.db",
        "/api/runs/%2e%2e/artifacts/autolog.db",
        "/api/runs/..%2Fautolog.db",
        f"/api/runs/{demo.runs['forest-a']}%2F..%2F..%2F/artifacts/autolog.db",
    ):
        r = client.get(url)
        assert r.status_code in (400, 404), url
        assert b"SQLite format" not in r.content

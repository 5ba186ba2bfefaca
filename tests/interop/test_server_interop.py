"""autolog's server and MLflow's, both ways: MLflow's own client against ``autolog server``, and
autolog's client against a real ``mlflow server`` (full mlflow in ``.mlflow-venv``, which
``make test`` installs). One server of each kind for the module.

Each side creates an experiment and a run, logs params, metrics (a history), tags and a text
artifact, logs and registers an sklearn model, sets an alias, searches, and loads
``models:/<name>@champion``; the other side reads the same values back. MLflow's client logs
a model both the MLflow 2 way (``save_model`` + ``log_artifacts`` + ``register_model``) and
MLflow 3's (``mlflow.sklearn.log_model``: a logged model with its own folder, the run's
``outputs``, a version registered from ``models:/m-<id>``).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import autolog
from autolog.errors import ModelLoadError
from autolog.server.testing import LocalServer
from benchmarks.server_bench import MLFLOW_BIN, MlflowServer
from store.base import open_store

MLFLOW_PYTHON = MLFLOW_BIN.parent / "python"
X = np.arange(40.0).reshape(20, 2)
Y = (X[:, 0] > 20).astype(int)


@pytest.fixture(scope="module")
def mlflow_python() -> Path:
    if not MLFLOW_BIN.exists():
        message = (
            "no full mlflow in .mlflow-venv: run `make .mlflow-venv/.installed` (make test does)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return MLFLOW_PYTHON


@pytest.fixture(scope="module")
def autolog_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with LocalServer(tmp_path_factory.mktemp("autolog-server")) as server:
        yield server.url


@pytest.fixture(scope="module")
def mlflow_server(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server.url


def _mlflow(script: str, url: str, cwd: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true", MLFLOW_TRACKING_URI=url)
    proc = subprocess.run(
        [str(MLFLOW_PYTHON), "-c", textwrap.dedent(script)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"MLflow side failed:\n{proc.stdout}\n{proc.stderr}"
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


MLFLOW_WRITES = """
import json, mlflow, numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
X = np.arange(40.0).reshape(20, 2); y = (X[:, 0] > 20).astype(int)
exp_id = mlflow.create_experiment("from-mlflow", tags={"team": "a"})
mlflow.set_experiment("from-mlflow")
with mlflow.start_run(run_name="mlf") as run:
    mlflow.log_params({"alpha": 0.5, "depth": 3})
    for step, loss in enumerate([0.5, 0.25, 0.125]):
        mlflow.log_metric("loss", loss, step=step)
    mlflow.set_tag("stage", "dev")
    mlflow.log_text("hello", "notes/a.txt")
    model = LogisticRegression().fit(X, y)
    mlflow.sklearn.save_model(model, "saved", serialization_format="cloudpickle")
    mlflow.log_artifacts("saved", "model")
rid = run.info.run_id
mv = mlflow.register_model(f"runs:/{rid}/model", "from-mlflow-model")
MlflowClient().set_registered_model_alias("from-mlflow-model", "champion", mv.version)
found = mlflow.search_runs(experiment_names=["from-mlflow"], filter_string="params.depth = '3'",
                           output_format="list")
loaded = mlflow.pyfunc.load_model("models:/from-mlflow-model@champion")
print(json.dumps({"exp_id": exp_id, "run_id": rid, "version": mv.version,
                  "found": [r.info.run_id for r in found],
                  "predicted": loaded.predict(X).tolist(), "expected": model.predict(X).tolist()}))
"""


def test_mlflow_client_against_autolog_server(
    mlflow_python: Path, autolog_server: str, tmp_path: Path
) -> None:
    got = _mlflow(MLFLOW_WRITES, autolog_server, tmp_path)
    assert got["found"] == [got["run_id"]] and got["version"] == "1"
    assert got["predicted"] == got["expected"]
    store = open_store(autolog_server)
    exp = store.get_experiment_by_name("from-mlflow")
    assert exp is not None and exp.experiment_id == got["exp_id"] and exp.tags == {"team": "a"}
    run = store.get_run(got["run_id"])
    assert run.info.run_name == "mlf" and run.info.status == "FINISHED"
    assert run.data.params == {"alpha": "0.5", "depth": "3"}
    assert run.data.metrics == {"loss": 0.125}
    assert [(m.step, m.value) for m in store.get_metric_history(run.info.run_id, "loss")] == [
        (0, 0.5), (1, 0.25), (2, 0.125)
    ]  # fmt: skip
    assert run.data.tags["stage"] == "dev" and run.data.tags["mlflow.runName"] == "mlf"
    text = store.artifact_local_path(run.info.run_id, "notes/a.txt").read_text()
    assert text == "hello"
    mv = store.get_model_version_by_alias("from-mlflow-model", "champion")
    assert (mv.version, mv.run_id, mv.aliases) == ("1", got["run_id"], ["champion"])
    autolog.set_tracking_uri(autolog_server)
    model = autolog.load_model("models:/from-mlflow-model@champion", allow_pickle=True)
    assert model.predict(X).tolist() == got["expected"]
    store.close()


MLFLOW_PAGES = """
import json
from mlflow import MlflowClient
c = MlflowClient()
eid = c.create_experiment("paged")
ids = []
for i in range(9):
    run = c.create_run(eid, start_time=i)
    if i != 4:
        c.log_metric(run.info.run_id, "acc", float(i % 4), step=0)
    ids.append(run.info.run_id)
pages, token = [], None
while True:
    got = c.search_runs([eid], "", max_results=2, order_by=["metrics.acc DESC"], page_token=token)
    pages.append([r.info.run_id for r in got])
    token = got.token
    if not token:
        break
everything = [r.info.run_id for r in c.search_runs([eid], "", order_by=["metrics.acc DESC"])]
print(json.dumps({"ids": ids, "pages": pages, "everything": everything}))
"""


def test_mlflow_client_pages_through_autolog_servers_tokens(
    mlflow_python: Path, autolog_server: str, tmp_path: Path
) -> None:
    """MLflow's client passes autolog's keyset page tokens back unread and gets every run once."""
    got = _mlflow(MLFLOW_PAGES, autolog_server, tmp_path)
    ids = got["ids"]
    by_acc = sorted((i for i in range(9) if i != 4), key=lambda i: (-(i % 4), ids[i]))
    assert got["everything"] == [ids[i] for i in by_acc] + [ids[4]]  # the run without acc last
    assert [len(p) for p in got["pages"]] == [2, 2, 2, 2, 1]
    assert [r for page in got["pages"] for r in page] == got["everything"]


MLFLOW_READS = """
import json, sys, mlflow, numpy as np
from mlflow import MlflowClient
rid = sys.argv[1] if len(sys.argv) > 1 else None
c = MlflowClient()
exp = c.get_experiment_by_name("from-autolog")
run = c.search_runs([exp.experiment_id], filter_string="params.depth = '3'")[0]
rid = run.info.run_id
hist = [(m.step, m.value) for m in c.get_metric_history(rid, "loss")]
path = c.download_artifacts(rid, "notes/a.txt", ".")
mv = c.get_model_version_by_alias("from-autolog-model", "champion")
X = np.arange(40.0).reshape(20, 2)
loaded = mlflow.pyfunc.load_model("models:/from-autolog-model@champion")
print(json.dumps({"exp_tags": exp.tags, "run_id": rid, "name": run.info.run_name,
                  "status": run.info.status, "params": run.data.params,
                  "metrics": run.data.metrics, "stage": run.data.tags.get("stage"),
                  "history": hist, "text": open(path).read(), "version": mv.version,
                  "mv_run": mv.run_id, "aliases": list(mv.aliases),
                  "predicted": loaded.predict(X).tolist()}))
"""


def test_autolog_client_against_mlflow_server(
    mlflow_python: Path, mlflow_server: str, tmp_path: Path
) -> None:
    autolog.set_tracking_uri(mlflow_server)
    exp_id = autolog.create_experiment("from-autolog", tags={"team": "b"})
    autolog.set_experiment("from-autolog")
    with autolog.start_run(run_name="al") as run:
        autolog.log_params({"alpha": 0.5, "depth": 3})
        for step, loss in enumerate([0.5, 0.25, 0.125]):
            autolog.log_metric("loss", loss, step=step)
        autolog.set_tag("stage", "dev")
        autolog.log_text("hello", "notes/a.txt")
        model = LogisticRegression().fit(X, Y)
        info = autolog.sklearn.log_model(model, "model", registered_model_name="from-autolog-model")
    client = autolog.Client()
    client.set_registered_model_alias("from-autolog-model", "champion", "1")
    assert info.registered_model_version is not None
    assert info.registered_model_version.version == "1"
    found = autolog.search_runs([exp_id], filter_string="params.depth = '3'", output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    # autolog reads back through MLflow's server, loading its own model without allow_pickle:
    # the file digests travel in the run's autolog.models tag
    loaded = autolog.load_model("models:/from-autolog-model@champion")
    assert loaded.predict(X).tolist() == model.predict(X).tolist()
    got = _mlflow(MLFLOW_READS, mlflow_server, tmp_path)
    assert got == {
        "exp_tags": {"team": "b"}, "run_id": run.info.run_id, "name": "al",
        "status": "FINISHED", "params": {"alpha": "0.5", "depth": "3"},
        "metrics": {"loss": 0.125}, "stage": "dev",
        "history": [[0, 0.5], [1, 0.25], [2, 0.125]], "text": "hello", "version": "1",
        "mv_run": run.info.run_id, "aliases": ["champion"],
        "predicted": model.predict(X).tolist(),
    }  # fmt: skip


MLFLOW3_LOG_MODEL = """
import json, mlflow, numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
X = np.arange(40.0).reshape(20, 2); y = (X[:, 0] > 20).astype(int)
mlflow.set_experiment("mlflow3-models")
with mlflow.start_run() as run:
    mlflow.log_param("C", "1.0")
    mlflow.log_metric("acc", 0.75, step=3)
    model = LogisticRegression().fit(X, y)
    info = mlflow.sklearn.log_model(model, name="clf", step=3, registered_model_name="m3-model",
                                    serialization_format="cloudpickle")
c = MlflowClient()
c.set_registered_model_alias("m3-model", "champion", info.registered_model_version)
lm = c.get_logged_model(info.model_id)
print(json.dumps({
    "model_id": info.model_id, "run_id": run.info.run_id, "exp_id": run.info.experiment_id,
    "by_id": mlflow.pyfunc.load_model(f"models:/{info.model_id}").predict(X).tolist(),
    "by_alias": mlflow.pyfunc.load_model("models:/m3-model@champion").predict(X).tolist(),
    "by_version": mlflow.sklearn.load_model("models:/m3-model/1").predict(X).tolist(),
    "expected": model.predict(X).tolist(),
    "outputs": [[o.model_id, o.step] for o in mlflow.get_run(run.info.run_id).outputs.model_outputs],
    "status": str(lm.status), "name": lm.name, "source_run": lm.source_run_id,
    "params": lm.params, "metrics": [[m.key, m.value, m.step] for m in lm.metrics or []],
    "location": lm.artifact_location,
    "files": sorted(f.path for f in c.list_logged_model_artifacts(info.model_id)),
}))
"""


def test_mlflow3_log_model_against_autolog_server(
    mlflow_python: Path, autolog_server: str, tmp_path: Path
) -> None:
    """MLflow 3's log_model: the logged model, its files in its own folder through the proxy,
    the run's outputs with the step, the registered version, loads by id, alias and version."""
    got = _mlflow(MLFLOW3_LOG_MODEL, autolog_server, tmp_path)
    mid, rid, expected = got["model_id"], got["run_id"], got["expected"]
    assert got["by_id"] == got["by_alias"] == got["by_version"] == expected
    assert got["outputs"] == [[mid, 3]]
    assert (got["status"], got["name"], got["source_run"]) == ("READY", "clf", rid)
    assert got["params"] == {"C": "1.0"} and got["metrics"] == [["acc", 0.75, 3]]
    assert got["location"] == f"mlflow-artifacts:/{got['exp_id']}/models/{mid}/artifacts"
    files = ["MLmodel", "conda.yaml", "model.pkl", "python_env.yaml", "requirements.txt"]
    assert got["files"] == files
    # the same through autolog's client and MLflow's directory listing endpoint
    autolog.set_tracking_uri(autolog_server)
    run = autolog.Client().get_run(rid)
    assert [(o.model_id, o.step) for o in run.outputs.model_outputs] == [(mid, 3)]
    listed = httpx.get(
        f"{autolog_server}/api/2.0/mlflow/logged-models/{mid}/artifacts/directories"
    ).json()
    assert listed["root_uri"] == got["location"]
    assert sorted(f["path"] for f in listed["files"]) == files
    assert all(f["file_size"] > 0 and not f["is_dir"] for f in listed["files"])
    for uri in (f"models:/{mid}", "models:/m3-model@champion"):
        # pickled by MLflow, without autolog's recorded digests: only with allow_pickle
        with pytest.raises(ModelLoadError, match="no digest was recorded"):
            autolog.load_model(uri)
        assert autolog.load_model(uri, allow_pickle=True).predict(X).tolist() == expected

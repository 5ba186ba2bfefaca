"""Logged models as records (models:/m-<hex>), MLflow's system tag names, and the migration of a
store written before them."""

from __future__ import annotations

import json
import pickle
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import autolog
from autolog import models, tracking
from autolog.errors import (
    InvalidValueError,
    LoggedModelNotFoundError,
    ModelLoadError,
    SearchSyntaxError,
)
from store.sql.schema import MIGRATIONS


@pytest.fixture(autouse=True)
def no_opt_in_from_the_environment(monkeypatch):
    monkeypatch.delenv("AUTOLOG_ALLOW_PICKLE", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def iris_model(iris):
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


# -- log_model ------------------------------------------------------------------------------


def test_log_model_creates_a_record_with_the_runs_params_and_latest_metrics(store, iris_model):
    with autolog.start_run() as run:
        autolog.log_params({"C": 1.0, "solver": "lbfgs"})
        autolog.log_metric("acc", 0.5, step=0)
        autolog.log_metric("acc", 0.75, step=1)
        info = models.log_model("python_function", iris_model, "clf")
    rid = run.info.run_id
    model = autolog.Client().get_logged_model(info.model_id)
    assert model == autolog.last_logged_model()
    assert (model.name, model.source_run_id, model.artifact_path, model.status) == (
        "clf",
        rid,
        "clf",
        "READY",
    )
    assert model.experiment_id == run.info.experiment_id
    assert model.params == {"C": "1.0", "solver": "lbfgs"}
    assert [(m.key, m.value, m.step, m.run_id, m.dataset_name) for m in model.metrics] == [
        ("acc", 0.75, 1, rid, None)
    ]
    assert model.artifact_location == str(store.artifact_local_path(rid, "clf"))
    assert model.creation_timestamp <= model.last_updated_timestamp
    # the MLmodel file names the record, as MLflow 3 writes it
    assert yaml.safe_load((info.path / "MLmodel").read_text())["model_id"] == model.model_id
    # the run still lists its model, with the id in MLflow's history tag
    history = json.loads(autolog.get_run(rid).data.tags["mlflow.log-model.history"])
    assert [(h["artifact_path"], h["model_id"]) for h in history] == [("clf", model.model_id)]
    assert info.model_uri == f"runs:/{rid}/clf"


def test_models_uri_and_runs_uri_load_the_same_model(iris, iris_model):
    X, _ = iris
    info = models.log_model("python_function", iris_model)
    by_id = autolog.load_model(f"models:/{info.model_id}")
    by_run = autolog.load_model(info.model_uri)
    assert np.array_equal(by_id.predict(X), iris_model.predict(X))
    assert np.array_equal(by_run.predict(X), iris_model.predict(X))


def test_pickle_swapped_after_logging_is_refused_through_models_uri(tmp_path, iris_model):
    info = models.log_model("python_function", iris_model)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (info.path / "model.pkl").write_bytes(pickle.dumps(Payload()))
    for allow in (None, True):  # an opt-in does not cover a file changed after logging
        with pytest.raises(ModelLoadError, match="model.pkl changed after logging"):
            autolog.load_model(f"models:/{info.model_id}", allow_pickle=allow)
    assert not marker.exists()


def test_a_failed_save_leaves_a_failed_record(iris_model):
    with pytest.raises(autolog.errors.ModelError):
        models.log_model("python_function", iris_model, signature="not a signature")
    (model,) = autolog.Client().search_logged_models(filter_string="status = 'FAILED'")
    assert model.name == "model"
    assert autolog.last_logged_model() is None or autolog.last_logged_model() != model


def test_registering_by_models_uri_keeps_the_run_source_and_tags_the_model(iris, iris_model):
    info = models.log_model("python_function", iris_model)
    version = autolog.register_model(f"models:/{info.model_id}", "iris")
    assert version.source == info.model_uri
    again = autolog.register_model(info.model_uri, "iris")
    tags = autolog.Client().get_logged_model(info.model_id).tags
    assert json.loads(tags["mlflow.modelVersions"]) == [
        {"name": "iris", "version": version.version},
        {"name": "iris", "version": again.version},
    ]
    X, _ = iris
    assert np.array_equal(autolog.load_model("models:/iris/1").predict(X), iris_model.predict(X))


# -- the store: search, tags, status --------------------------------------------------------


@pytest.fixture
def three(store):
    rid = store.create_run(0, "r").info.run_id
    out = []
    for name, acc, depth in (("a", 0.9, "3"), ("b", 0.7, "5"), ("c", 0.95, "3")):
        m = store.create_logged_model(0, name=name, source_run_id=rid, params={"depth": depth})
        store.log_logged_model_metrics(m.model_id, [("acc", acc, 1, 0, rid)])
        out.append(m.model_id)
    store.log_logged_model_metrics(out[1], [("acc", 0.99, 2, 0, rid, "test", "d1")])
    return out


def names(found):
    return [m.name for m in found]


def test_search_logged_models_filters_like_mlflow(store, three):
    client = autolog.Client()
    assert names(client.search_logged_models(filter_string="metrics.acc > 0.8")) == ["c", "b", "a"]
    assert names(
        client.search_logged_models(
            filter_string="metrics.acc > 0.8", datasets=[{"name": "test", "digest": "d1"}]
        )
    ) == ["b"]
    assert names(client.search_logged_models(filter_string="params.depth = '3'")) == ["c", "a"]
    assert names(client.search_logged_models(filter_string="name = 'b'")) == ["b"]
    assert names(
        client.search_logged_models(filter_string="status = 'pending' AND name LIKE 'a%'")
    ) == ["a"]
    client.set_logged_model_tags(three[0], {"team": "vision"})
    assert names(client.search_logged_models(filter_string="tags.team = 'vision'")) == ["a"]
    client.delete_logged_model_tag(three[0], "team")
    assert client.get_logged_model(three[0]).tags == {}
    assert names(client.search_logged_models(experiment_ids=["1"])) == []
    assert names(client.search_logged_models(max_results=1)) == ["c"]


def test_search_logged_models_orders_by_metrics_and_attributes(store, three):
    client = autolog.Client()
    by_acc = client.search_logged_models(order_by=["metrics.acc DESC"])
    assert names(by_acc) == ["b", "c", "a"]  # b has 0.99 on the test dataset
    mlflow_style = client.search_logged_models(
        order_by=[{"field_name": "name", "ascending": False}]
    )
    assert names(mlflow_style) == ["c", "b", "a"]
    assert names(client.search_logged_models(order_by=["creation_timestamp ASC"])) == [
        "a",
        "b",
        "c",
    ]


def test_bad_search_input_is_named(store, three):
    client = autolog.Client()
    with pytest.raises(SearchSyntaxError, match="unknown name 'colour'"):
        client.search_logged_models(filter_string="colour = 'red'")
    with pytest.raises(SearchSyntaxError, match="unknown status 'DONE'"):
        client.search_logged_models(filter_string="status = 'DONE'")
    with pytest.raises(InvalidValueError, match="Invalid dataset 'test'"):
        client.search_logged_models(datasets=["test"])


def test_status_ids_and_deletion(store, three):
    client = autolog.Client()
    assert client.finalize_logged_model(three[0], "READY").status == "READY"
    with pytest.raises(InvalidValueError, match="Invalid logged model status 'DONE'"):
        client.finalize_logged_model(three[0], "DONE")
    with pytest.raises(InvalidValueError, match="Invalid logged model id 'abc'"):
        client.get_logged_model("abc")
    with pytest.raises(LoggedModelNotFoundError, match="m-0{32}"):
        client.get_logged_model("m-" + "0" * 32)
    client.delete_logged_model(three[1])
    with pytest.raises(LoggedModelNotFoundError, match="is deleted"):
        client.get_logged_model(three[1])
    assert store.get_logged_model(three[1], allow_deleted=True).lifecycle_stage == "deleted"
    assert names(client.search_logged_models()) == ["c", "a"]


# -- system tags ------------------------------------------------------------------------------


def test_runs_carry_mlflows_system_tag_names(iris, iris_model):
    X, y = iris
    autolog.autolog()
    with (
        autolog.start_run(description="first try") as parent,
        autolog.start_run(nested=True) as child,
    ):
        LogisticRegression(max_iter=200).fit(X, y)
    tags = autolog.get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id
    assert tags["mlflow.runName"] == child.info.run_name
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.user"] == child.info.user_id
    assert "mlflow.source.name" in tags and "mlflow.log-model.history" in tags
    assert autolog.get_run(parent.info.run_id).data.tags["mlflow.note.content"] == "first try"
    assert not [k for k in tags if k in _OLD_NAMES]


_OLD_NAMES = (
    "autolog.runName",
    "autolog.parentRunId",
    "autolog.user",
    "autolog.source.name",
    "autolog.source.type",
    "autolog.integration",
    "autolog.log-model.history",
    "autolog.note.content",
)


def _old_store(path: Path) -> tuple[str, str]:
    """A store as schema version 4 wrote it: parent and child runs tagged with the old names."""
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    for migrate in MIGRATIONS[:4]:
        migrate(db)
    db.execute("PRAGMA user_version = 4")
    rows = [("p" * 32, "parent", None), ("c" * 32, "child", "p" * 32)]
    for rid, name, parent in rows:
        db.execute(
            "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, user_id, "
            "parent_run_id, lifecycle_stage, artifact_uri) VALUES (?, 0, ?, 'FINISHED', 1, "
            "'ada', ?, 'active', ?)",
            [rid, name, parent, f"0/{rid}/artifacts"],
        )
        tags = {"autolog.runName": name, "autolog.user": "ada", "autolog.integration": "sklearn"}
        if parent:
            tags["autolog.parentRunId"] = parent
        tags["autolog.host"] = "box"
        db.conn.executemany(
            "INSERT INTO tags VALUES (?, ?, ?)", [(rid, k, v) for k, v in tags.items()]
        )
    # set by hand under the new name already: the new one wins
    db.execute("INSERT INTO tags VALUES (?, 'mlflow.user', 'grace')", ["p" * 32])
    db.conn.close()
    return "p" * 32, "c" * 32


def test_an_old_store_migrates_its_tags_and_keeps_parent_child_links(tmp_path):
    parent, child = _old_store(tmp_path / "autolog.db")
    autolog.set_tracking_uri(str(tmp_path))
    store = tracking._store()
    assert store.schema_version == len(MIGRATIONS) >= 5
    tags = autolog.get_run(child).data.tags
    assert tags == {
        "mlflow.runName": "child",
        "mlflow.user": "ada",
        "mlflow.autologging": "sklearn",
        "mlflow.parentRunId": parent,
        "autolog.host": "box",
    }
    assert autolog.get_run(parent).data.tags["mlflow.user"] == "grace"
    assert store.child_run_ids(parent) == [child]
    assert autolog.Client().get_parent_run(child).info.run_id == parent
    found = autolog.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert list(found["run_id"]) == [child]
    with pytest.warns(DeprecationWarning, match="tags.mlflow.parentRunId") as caught:
        old = autolog.search_runs(filter_string=f"tags.autolog.parentRunId = '{parent}'")
    assert list(old["run_id"]) == [child]
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names raise no warning
        autolog.search_runs(filter_string="tags.mlflow.runName = 'child'")
    # a model logged into a migrated store becomes a record too
    assert store.search_logged_models() == []

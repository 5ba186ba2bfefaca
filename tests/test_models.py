"""Model directories: round trips, MLmodel contents, log_model lineage, URIs, load errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import autolog
from autolog import models, tracking
from autolog.errors import ModelError, ModelLoadError, SchemaEnforcementError
from autolog.models import Flavor
from autolog.signature import infer_signature


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def iris_model(iris):
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X.to_numpy(), y)


def _mlmodel(path: Path) -> dict:
    return yaml.safe_load((path / "MLmodel").read_text())


# -- round trips ------------------------------------------------------------------------------


def test_round_trip_numpy(tmp_path, iris, iris_model):
    X = iris[0].to_numpy()
    models.save_model("python_function", iris_model, tmp_path / "m", input_example=X[:5])
    loaded = autolog.load_model(str(tmp_path / "m"), allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(X), iris_model.predict(X))
    assert loaded.metadata.signature.to_dict() == {
        "inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]',
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
        "params": None,
    }
    assert loaded.unwrap_python_model().coef_.tolist() == iris_model.coef_.tolist()
    np.testing.assert_array_equal(loaded.metadata.load_input_example(tmp_path / "m"), X[:5])


def test_round_trip_pandas_mixed_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 10, size=n),
            "color": rng.choice(["red", "green", "blue"], size=n),
            "size": pd.Categorical(rng.choice(["S", "M", "L"], size=n)),
            "f32": rng.normal(size=n).astype("float32"),
        }
    )
    y = (df["x"] + (df["color"] == "red") > 0.3).astype(int)
    pipe = make_pipeline(
        ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["color", "size"])],
            remainder="passthrough",
        ),
        LogisticRegression(max_iter=500),
    ).fit(df, y)
    models.save_model(models.PICKLED_FLAVOR, pipe, tmp_path / "m", input_example=df.head(3))
    loaded = autolog.load_model(tmp_path / "m", allow_pickle=True)
    types = {c.name: c.type.name for c in loaded.metadata.signature.inputs}
    assert types == {
        "x": "double",
        "k": "long",
        "color": "string",
        "size": "string",
        "f32": "float",
    }
    np.testing.assert_array_equal(loaded.predict(df), pipe.predict(df))
    # widened on the way in, same answer
    widened = df.assign(k=df["k"].astype("int32"))
    np.testing.assert_array_equal(loaded.predict(widened), pipe.predict(df))
    with pytest.raises(SchemaEnforcementError, match=r"missing inputs \['color'\]"):
        loaded.predict(df.drop(columns=["color"]))
    example = loaded.metadata.load_input_example(tmp_path / "m")
    assert list(example.columns) == list(df.columns)


def test_round_trip_sparse(tmp_path):
    rng = np.random.default_rng(1)
    X = sp.random(100, 20, density=0.2, format="csr", random_state=2)
    y = rng.integers(0, 2, size=100)
    model = LogisticRegression(max_iter=500).fit(X, y)
    models.save_model("python_function", model, tmp_path / "m", input_example=X[:4])
    meta = _mlmodel(tmp_path / "m")
    assert meta["saved_input_example_info"]["type"] == "sparse_matrix_csr"
    loaded = autolog.load_model(tmp_path / "m", allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    back = loaded.metadata.load_input_example(tmp_path / "m")
    assert sp.issparse(back) and (back != X[:4]).nnz == 0


def test_object_with_predict_is_any_class(tmp_path):
    class Doubler:
        def predict(self, data):
            return np.asarray(data) * 2

    models.save_model("python_function", Doubler(), tmp_path / "m", input_example=np.ones((2, 3)))
    assert "sklearn" not in _mlmodel(tmp_path / "m")["flavors"]
    loaded = autolog.load_model(tmp_path / "m", allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 3))), [[2.0, 2.0, 2.0]])
    with pytest.raises(SchemaEnforcementError, match="Wrong shape"):
        loaded.predict(np.ones((1, 4)))


def test_object_without_predict_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ModelError, match="predict"):
        models.save_model("python_function", object(), tmp_path / "m")
    assert not (tmp_path / "m").exists()


# -- the directory ---------------------------------------------------------------------------


def test_mlmodel_fields_are_mlflows(tmp_path, iris, iris_model):
    X = iris[0].to_numpy()
    models.save_model("python_function", iris_model, tmp_path / "m", input_example=X[:2])
    meta = _mlmodel(tmp_path / "m")
    assert set(meta) >= {
        "flavors",
        "model_uuid",
        "utc_time_created",
        "signature",
        "saved_input_example_info",
    }
    pyfunc = meta["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "mlflow.sklearn"
    assert pyfunc["model_path"] == "model.pkl"
    assert pyfunc["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert pyfunc["python_version"] == ".".join(map(str, sys.version_info[:3]))
    import sklearn

    assert meta["flavors"]["sklearn"] == {
        "pickled_model": "model.pkl",
        "serialization_format": "cloudpickle",
        "sklearn_version": sklearn.__version__,
        "code": None,
    }
    assert meta["saved_input_example_info"] == {
        "artifact_path": "input_example.json",
        "type": "ndarray",
    }
    reqs = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert f"scikit-learn=={sklearn.__version__}" in reqs
    assert f"cloudpickle=={cloudpickle.__version__}" in reqs
    env = yaml.safe_load((tmp_path / "m" / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"]
    conda = yaml.safe_load((tmp_path / "m" / "conda.yaml").read_text())
    assert conda["dependencies"][-1]["pip"] == reqs
    with open(tmp_path / "m" / "model.pkl", "rb") as f:
        assert pickle.load(f).coef_.tolist() == iris_model.coef_.tolist()


def test_signature_false_and_explicit(tmp_path, iris, iris_model):
    X = iris[0].to_numpy()
    models.save_model("python_function", iris_model, tmp_path / "a", False, X[:2])
    assert "signature" not in _mlmodel(tmp_path / "a")
    sig = infer_signature(X)
    models.save_model("python_function", iris_model, tmp_path / "b", sig)
    assert autolog.load_model(tmp_path / "b", allow_pickle=True).metadata.signature == sig


def test_requirements_override_and_extra(tmp_path, iris_model):
    models.save_model(
        "python_function",
        iris_model,
        tmp_path / "m",
        pip_requirements=["scikit-learn"],
        extra_pip_requirements=["tabulate==0.9"],
    )
    assert (tmp_path / "m" / "requirements.txt").read_text().split() == [
        "scikit-learn",
        "tabulate==0.9",
    ]


def test_non_empty_target_is_refused(tmp_path, iris_model):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    with pytest.raises(ModelError, match="not empty"):
        models.save_model("python_function", iris_model, tmp_path / "m")


def test_version_mismatch_warns_once(tmp_path, iris_model):
    models.save_model("python_function", iris_model, tmp_path / "m")
    reqs = tmp_path / "m" / "requirements.txt"
    reqs.write_text(reqs.read_text().replace("scikit-learn==", "scikit-learn==0.0.1+"))
    meta = _mlmodel(tmp_path / "m")
    meta["flavors"]["python_function"]["python_version"] = "2.7.18"
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.warns(UserWarning) as rec:
        autolog.load_model(tmp_path / "m", allow_pickle=True)
    assert len(rec) == 1
    assert "Python 2.7.18" in str(rec[0].message) and "scikit-learn==0.0.1" in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        autolog.load_model(tmp_path / "m", suppress_warnings=True, allow_pickle=True)


# -- a custom flavor, in a few lines -----------------------------------------------------------


class LinearJSONFlavor(Flavor):
    """A 'library' whose model is a dict of weights stored as JSON (no pickle)."""

    name = "linear_json"
    requirements = ("numpy",)

    def save_native(self, model, path):
        (path / "weights.json").write_text(json.dumps(model))
        return {"data": "weights.json", "format": "json"}

    def load_native(self, path, conf):
        return json.loads((path / conf["data"]).read_text())

    def predict(self, native, data, params=None):
        return np.asarray(data) @ np.asarray(native["w"]) + native["b"]


def test_custom_flavor(tmp_path):
    flavor = models.register_flavor(LinearJSONFlavor())
    weights = {"w": [1.0, 2.0], "b": 0.5}
    X = np.array([[1.0, 1.0], [0.0, 2.0]])
    models.save_model(flavor, weights, tmp_path / "m", input_example=X)
    meta = _mlmodel(tmp_path / "m")
    assert meta["flavors"]["linear_json"] == {"data": "weights.json", "format": "json"}
    assert meta["flavors"]["python_function"]["loader_module"] == "autolog.models"
    np.testing.assert_allclose(autolog.load_model(tmp_path / "m").predict(X), [3.5, 4.5])
    assert models.load_flavor_model(tmp_path / "m", "linear_json") == weights
    # what MLflow's pyfunc calls for loader_module: autolog.models
    np.testing.assert_allclose(models._load_pyfunc(str(tmp_path / "m")).predict(X), [3.5, 4.5])


# -- MLflow-written scikit-learn directories (see tests/interop for the real MLflow) ------------


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
@pytest.mark.parametrize("integration", ["present", "absent"])
def test_loads_mlflow_sklearn_layout(tmp_path, iris, iris_model, fmt, integration, monkeypatch):
    if integration == "absent":  # the reader in autolog.models, without integrations.sklearn
        monkeypatch.setitem(sys.modules, "integrations.sklearn", None)
    d = tmp_path / "mlflow_model"
    d.mkdir()
    with open(d / "model.pkl", "wb") as f:
        (pickle if fmt == "pickle" else cloudpickle).dump(iris_model, f)
    mlmodel = {
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "predict_fn": "predict",
                "python_version": "3.11.7",
            },
            "sklearn": {
                "code": None,
                "pickled_model": "model.pkl",
                "serialization_format": fmt,
                "sklearn_version": "1.9.1",
                "skops_trusted_types": None,
            },
        },
        "mlflow_version": "3.17.2",
        "model_uuid": "0af5c5b22c554df0acd6a1246e50562e",
        "utc_time_created": "2026-01-01 00:00:00.000000",
        "signature": {
            "inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]',
            "outputs": None,
            "params": None,
        },
    }
    (d / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (d / "requirements.txt").write_text("mlflow==3.17.2\n")
    X = iris[0].to_numpy()
    loaded = autolog.load_model(f"file://{d}", allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(X), iris_model.predict(X))
    assert loaded.metadata.model_uuid == "0af5c5b22c554df0acd6a1246e50562e"
    assert loaded.metadata.extra["mlflow_version"] == "3.17.2"
    if integration == "absent":
        assert type(loaded.flavor) is models.MLflowSklearnFlavor


# -- load errors name the path --------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path, iris_model):
    path = tmp_path / "m"
    models.save_model("python_function", iris_model, path)
    return path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("garbage", "not valid YAML"),
        ("truncated", "truncated or corrupted"),
        ("empty", "truncated or corrupted"),
        ("list", "not a YAML mapping"),
        ("no MLmodel", "no MLmodel file"),
        ("missing native file", "model file is missing"),
        ("unknown flavor", "unknown flavor 'nosuchlib'"),
        ("mlflow loader unknown", "unknown flavor 'nosuchlib'"),
        ("bad signature", "unreadable signature"),
        ("flavor section not a mapping", "is not a mapping"),
        ("missing key", "lacks key 'model_path'"),
        ("pickle garbage", "cannot load the python_function model"),
    ],
)
def test_broken_directory_raises_model_load_error_naming_path(saved, damage, message):
    mlmodel = saved / "MLmodel"
    text = mlmodel.read_text()
    meta = yaml.safe_load(text)
    pyfunc = meta["flavors"]["python_function"]
    if damage == "garbage":
        mlmodel.write_text("flavors: [unclosed\n  : :\x00")
    elif damage == "truncated":
        mlmodel.write_text(text[: text.index("flavors:") + len("flavors:")])
    elif damage == "empty":
        mlmodel.write_text("")
    elif damage == "list":
        mlmodel.write_text("- a\n- b\n")
    elif damage == "no MLmodel":
        mlmodel.unlink()
    elif damage == "missing native file":
        (saved / "model.pkl").unlink()
    elif damage == "pickle garbage":
        (saved / "model.pkl").write_bytes(b"not a pickle")
    else:
        if damage == "unknown flavor":
            pyfunc["autolog_flavor"] = "nosuchlib"
        elif damage == "mlflow loader unknown":
            del pyfunc["autolog_flavor"]
            del meta["flavors"]["sklearn"]
            pyfunc["loader_module"] = "mlflow.nosuchlib"
        elif damage == "bad signature":
            meta["signature"] = {"inputs": "[{not json"}
        elif damage == "flavor section not a mapping":
            meta["flavors"]["sklearn"] = "oops"
        elif damage == "missing key":
            del pyfunc["model_path"]
        mlmodel.write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelLoadError) as info:
        autolog.load_model(saved, allow_pickle=True)
    assert type(info.value) is ModelLoadError
    assert str(saved) in str(info.value)
    assert message in str(info.value)


def test_no_model_at_path(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        autolog.load_model(tmp_path / "nothing")


# -- log_model and URIs ----------------------------------------------------------------------------


def test_log_model_records_lineage(store, iris, iris_model):
    X = iris[0].to_numpy()
    info = models.log_model("python_function", iris_model, "model", input_example=X[:3])
    run = tracking.active_run()
    assert run is not None and info.run_id == run.info.run_id  # started, left active
    assert info.model_uri == f"runs:/{info.run_id}/model"
    assert info.artifact_path == "model"
    assert info.signature is not None and set(info.flavors) == {"python_function", "sklearn"}
    meta = _mlmodel(info.path)
    assert meta["run_id"] == info.run_id and meta["artifact_path"] == "model"
    assert meta["model_uuid"] == info.model_uuid
    assert info.path == tracking.Client().artifact_dir(info.run_id, "model")

    second = models.log_model("python_function", iris_model, name="other")
    rows = store.list_models(info.run_id)
    assert [r["artifact_path"] for r in rows] == ["model", "other"]
    assert rows[0]["model_uuid"] == info.model_uuid
    assert rows[0]["signature"] == info.signature.to_dict()
    assert rows[0]["flavors"] == ["python_function", "sklearn"]
    history = json.loads(tracking.get_run(info.run_id).data.tags[models.LOG_MODEL_HISTORY_TAG])
    assert [h["model_uuid"] for h in history] == [info.model_uuid, second.model_uuid]

    loaded = autolog.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(X), iris_model.predict(X))
    assert loaded.metadata.run_id == info.run_id

    with pytest.raises(ModelError, match="already holds files"):
        models.log_model("python_function", iris_model, "model")


def test_log_model_losing_the_race_for_its_path_fails_and_leaves_nothing(store, iris_model):
    run_id = tracking._ensure_run()

    class Racing(Flavor):
        name = "racing"

        def save_native(self, model, path):
            store.write_artifact_bytes(run_id, "model/theirs.txt", b"another save got here first")
            (path / "ours.bin").write_bytes(b"ours")
            return {"data": "ours.bin"}

    folder = tracking.Client().artifact_dir(run_id, "model")
    with pytest.raises(ModelError, match=f"{folder} was created by someone else") as err:
        models.log_model(Racing(), iris_model, "model")
    assert "Directory not empty" in str(err.value)
    assert sorted(p.name for p in folder.iterdir()) == ["theirs.txt"]
    assert sorted(p.name for p in folder.parent.parent.iterdir()) == ["artifacts"]
    assert store.list_models(run_id) == []
    assert store.model_file_digests(run_id, "model") is None


def test_log_model_into_given_run(iris_model):
    with autolog.start_run() as run:
        pass
    info = models.log_model("python_function", iris_model, run_id=run.info.run_id)
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    assert tracking.active_run() is None


def test_resolve_model_uri(tmp_path, iris_model):
    assert models.resolve_model_uri(str(tmp_path)) == tmp_path
    assert models.resolve_model_uri(f"file://{tmp_path}") == tmp_path
    assert models.resolve_model_uri(tmp_path) == tmp_path
    with pytest.raises(ModelError, match="Unsupported model URI scheme"):
        models.resolve_model_uri("s3://bucket/model")
    with pytest.raises(ModelError, match="Malformed"):
        models.resolve_model_uri("runs:/")


def test_models_uri_without_registry(monkeypatch):
    monkeypatch.setitem(sys.modules, "autolog.registry", None)
    with pytest.raises(ModelError, match="registry is unavailable"):
        autolog.load_model("models:/iris/1")


def test_models_uri_goes_through_registry(monkeypatch, tmp_path, iris_model):
    models.save_model("python_function", iris_model, tmp_path / "m")
    fake = type(sys)("autolog.registry")
    where = str(tmp_path / "m")
    fake.resolve_models_source = lambda uri: (where, where) if uri == "models:/iris/1" else None
    monkeypatch.setitem(sys.modules, "autolog.registry", fake)
    monkeypatch.setattr(autolog, "registry", fake, raising=False)
    # registered from a directory, not a run: no recorded digest vouches for the pickle
    with pytest.raises(ModelLoadError, match="refusing to unpickle a pickle"):
        autolog.load_model("models:/iris/1")
    assert autolog.load_model("models:/iris/1", allow_pickle=True).metadata.flavors["sklearn"]


def test_import_models_loads_no_ml_library():
    code = (
        "import sys, autolog.models;"
        "print(sorted(m for m in ('numpy', 'pandas', 'sklearn', 'torch', 'scipy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registered_model_loads_by_models_uri(iris, iris_model):
    X = iris[0].to_numpy()
    info = models.log_model("python_function", iris_model, registered_model_name="iris")
    assert str(info.registered_model_version.version) == "1"
    loaded = autolog.load_model("models:/iris/1")
    assert loaded.metadata.model_uuid == info.model_uuid
    np.testing.assert_array_equal(loaded.predict(X), iris_model.predict(X))


def test_integration_failing_to_import_is_a_load_error(saved, monkeypatch):
    broken = type(sys)("integrations.brokenlib")

    def fail(name):
        raise RuntimeError("boom")

    broken.__getattr__ = fail
    monkeypatch.setitem(sys.modules, "integrations.brokenlib", broken)
    from autolog import integration

    integration.discover()  # brokenlib as if its entry point were installed
    monkeypatch.setitem(integration.INTEGRATIONS, "brokenlib", "brokenlib")
    monkeypatch.setitem(integration._modules, "brokenlib", "integrations.brokenlib")
    meta = _mlmodel(saved)
    meta["flavors"]["python_function"]["autolog_flavor"] = "brokenlib"
    (saved / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelLoadError, match="'brokenlib' flavor is unavailable") as info:
        autolog.load_model(saved / "MLmodel")
    assert str(saved) in str(info.value)

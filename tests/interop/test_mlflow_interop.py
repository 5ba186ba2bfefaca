"""Interoperability with the real MLflow, both ways, run in a virtual environment of its own.

MLflow is never a dependency of autolog: ``make test`` builds ``<repo>/.mlflow-venv`` (Makefile
target ``.mlflow-venv/.installed``) with MLflow and the same scikit-learn, numpy, pandas, scipy,
cloudpickle and skops versions as ``.venv``, and these tests run scripts there with subprocess.

Checked with: mlflow-skinny 3.17.2 (Python 3.11.7, scikit-learn 1.9.1, numpy 2.4.6, pandas 3.1.1).

(a) a directory written by autolog loads with ``mlflow.pyfunc.load_model`` (and
    ``mlflow.sklearn.load_model``) and predicts what the model predicts here;
(b) directories written by ``mlflow.sklearn.save_model`` (its default skops format, and
    cloudpickle) load with ``autolog.load_model`` and predict what MLflow predicted; the
    cloudpickle one only with ``allow_pickle=True``, as any pickle loaded by path.

MLflow 3.x unpickles a model only with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true`` (its rule for
every pickled model, its own included), so the MLflow side runs with it set.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import autolog
from autolog import models
from autolog.errors import ModelLoadError

REPO = Path(__file__).resolve().parents[2]
MLFLOW_PYTHON = REPO / ".mlflow-venv" / "bin" / "python"


@pytest.fixture(scope="module")
def mlflow_python() -> Path:
    if not MLFLOW_PYTHON.exists():
        message = "no .mlflow-venv: run `make .mlflow-venv/.installed` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return MLFLOW_PYTHON


def _run_in_mlflow(python: Path, script: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true", MLFLOW_TRACKING_URI=str(cwd / "mlruns"))
    proc = subprocess.run(
        [str(python), "-c", textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"MLflow side failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _mixed_frame(n: int = 120) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 5, size=n),
            "color": rng.choice(["red", "green", "blue"], size=n),
            "size": pd.Categorical(rng.choice(["S", "M", "L"], size=n)),
        }
    )
    y = ((df["x"] + (df["color"] == "red")) > 0.3).astype(int)
    return df, y


def test_mlflow_loads_what_autolog_writes(mlflow_python, tmp_path):
    X, y = load_iris(return_X_y=True)
    iris_model = LogisticRegression(max_iter=500).fit(X, y)
    models.save_model("python_function", iris_model, tmp_path / "iris", input_example=X[:3])

    df, yy = _mixed_frame()
    pipe = make_pipeline(
        ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["color", "size"])],
            remainder="passthrough",
        ),
        LogisticRegression(max_iter=500),
    ).fit(df, yy)
    info = models.log_model("python_function", pipe, "mixed", input_example=df.head(3))

    np.save(tmp_path / "X.npy", X)
    # Plain JSON between the two environments; MLflow reads "size" as strings: its enforcement
    # refuses a categorical column for a string signature (autolog accepts both).
    (tmp_path / "df.json").write_text(json.dumps(df.astype({"size": str}).to_dict("list")))
    (tmp_path / "paths.json").write_text(
        json.dumps({"iris": str(tmp_path / "iris"), "mixed": str(info.path)})
    )
    _run_in_mlflow(
        mlflow_python,
        """
        import json, numpy as np, pandas as pd, mlflow.pyfunc, mlflow.sklearn
        paths = json.load(open("paths.json"))
        iris = mlflow.pyfunc.load_model(paths["iris"])
        np.save("iris_pred.npy", np.asarray(iris.predict(np.load("X.npy"))))
        assert iris.metadata.get_input_schema().is_tensor_spec()
        mixed = mlflow.pyfunc.load_model(paths["mixed"])
        np.save("mixed_pred.npy", np.asarray(mixed.predict(pd.DataFrame(json.load(open("df.json"))))))
        native = mlflow.sklearn.load_model(paths["iris"])
        np.save("native_pred.npy", native.predict(np.load("X.npy")))
        print(mixed.metadata.run_id)
        """,
        tmp_path,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "iris_pred.npy"), iris_model.predict(X))
    np.testing.assert_array_equal(np.load(tmp_path / "native_pred.npy"), iris_model.predict(X))
    np.testing.assert_array_equal(np.load(tmp_path / "mixed_pred.npy"), pipe.predict(df))


def test_autolog_loads_what_mlflow_writes(mlflow_python, tmp_path):
    _run_in_mlflow(
        mlflow_python,
        """
        import json, numpy as np, mlflow.sklearn
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        X, y = load_iris(return_X_y=True, as_frame=True)
        m = LogisticRegression(max_iter=500).fit(X, y)
        # Explicit requirements: MLflow's inference of them runs a subprocess (15 s each).
        reqs = ["mlflow==3.17.2", "scikit-learn", "skops"]
        mlflow.sklearn.save_model(m, "skops_df", input_example=X.head(3), pip_requirements=reqs)
        m2 = LogisticRegression(max_iter=500).fit(X.to_numpy(), y)
        mlflow.sklearn.save_model(
            m2, "cloudpickle_np", input_example=X.to_numpy()[:3],
            serialization_format="cloudpickle", pip_requirements=reqs[:2],
        )
        np.save("X.npy", X.to_numpy())
        json.dump(list(X.columns), open("columns.json", "w"))
        np.save("pred_df.npy", m.predict(X))
        np.save("pred_np.npy", m2.predict(X.to_numpy()))
        """,
        tmp_path,
    )
    columns = json.loads((tmp_path / "columns.json").read_text())
    X = pd.DataFrame(np.load(tmp_path / "X.npy"), columns=columns)
    from_df = autolog.load_model(str(tmp_path / "skops_df"))
    assert from_df.metadata.flavors["sklearn"]["serialization_format"] == "skops"
    assert [c.name for c in from_df.metadata.signature.inputs] == list(X.columns)
    np.testing.assert_array_equal(from_df.predict(X), np.load(tmp_path / "pred_df.npy"))

    # skops needed no opt-in (only types skops trusts); the cloudpickle directory does
    with pytest.raises(ModelLoadError, match="refusing to unpickle"):
        autolog.load_model(tmp_path / "cloudpickle_np")
    from_np = autolog.load_model(tmp_path / "cloudpickle_np", allow_pickle=True)
    np.testing.assert_array_equal(from_np.predict(X.to_numpy()), np.load(tmp_path / "pred_np.npy"))
    assert from_np.metadata.signature.inputs.is_tensor_spec()
    assert isinstance(from_np.unwrap_python_model(), LogisticRegression)
    # what MLflow saved round-trips through our pickle reader too
    with open(tmp_path / "cloudpickle_np" / "model.pkl", "rb") as f:
        assert pickle.load(f).coef_.shape == (3, 4)


def test_mlflow_reads_the_model_id_and_system_tags_autolog_writes(mlflow_python, tmp_path):
    """MLflow's Model reads run_id and model_id from our MLmodel, and every system tag an
    autologged run carries under an MLflow name is one of MLflow's own constants."""
    X, y = load_iris(return_X_y=True)
    autolog.autolog()
    LogisticRegression(max_iter=500).fit(X, y)  # a run autolog starts: mlflow.autologging
    tags = dict(autolog.last_active_run().data.tags)
    with (
        autolog.start_run(description="note") as parent,
        autolog.start_run(nested=True) as child,
    ):
        LogisticRegression(max_iter=500).fit(X, y)
    autolog.autolog(disable=True)
    model = autolog.last_logged_model()
    tags.update(autolog.get_run(child.info.run_id).data.tags)
    tags.update(autolog.get_run(parent.info.run_id).data.tags)
    (tmp_path / "facts.json").write_text(
        json.dumps({"path": model.artifact_location, "tags": sorted(tags)})
    )
    out = _run_in_mlflow(
        mlflow_python,
        """
        import json, mlflow.models
        from mlflow.utils import mlflow_tags
        facts = json.load(open("facts.json"))
        m = mlflow.models.Model.load(facts["path"])
        known = {v for k, v in vars(mlflow_tags).items() if k.startswith("MLFLOW_")}
        # written by MLflow's evaluation datasets (mlflow/data/evaluation_dataset.py), no constant
        known.add("mlflow.datasets")
        ours = sorted(t for t in facts["tags"] if t.startswith("mlflow."))
        print(json.dumps({"run_id": m.run_id, "model_id": m.model_id, "ours": ours,
                          "unknown": [t for t in ours if t not in known]}))
        """,
        tmp_path,
    )
    got = json.loads(out.strip().splitlines()[-1])
    assert (got["run_id"], got["model_id"]) == (child.info.run_id, model.model_id)
    assert got["unknown"] == []
    assert set(got["ours"]) >= {
        "mlflow.autologging",
        "mlflow.log-model.history",
        "mlflow.note.content",
        "mlflow.parentRunId",
        "mlflow.runName",
        "mlflow.source.name",
        "mlflow.source.type",
        "mlflow.user",
    }

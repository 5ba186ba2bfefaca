"""MLflow's client side against `autolog models serve`, and MLflow's models served by autolog.

Runs MLflow (mlflow-skinny 3.17.2) in ``.mlflow-venv`` as in test_mlflow_interop.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))

from serving_helpers import running  # noqa: E402
from test_mlflow_interop import _mixed_frame, _run_in_mlflow, mlflow_python  # noqa: E402, F401

import autolog  # noqa: E402
from autolog import serving  # noqa: E402
from autolog.signature import infer_signature  # noqa: E402

_CLIENT = """
import json, sys
import pandas as pd, requests
from mlflow.models import convert_input_example_to_serving_input
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

url, frame = sys.argv[1], pd.read_json(sys.argv[2], orient="split")
host, port = url.rsplit(":", 1)
client = ScoringServerClient(host.replace("http://", ""), int(port))
client.wait_server_ready(timeout=30)
out = {"invoke": client.invoke(frame).get_predictions(predictions_format="ndarray").tolist()}
body = convert_input_example_to_serving_input(frame)  # what MLflow's docs send with curl
r = requests.post(url + "/invocations", data=body, headers={"Content-Type": "application/json"})
out["documented"] = r.json()["predictions"]
r = requests.post(url + "/invocations", data=frame.to_csv(index=False),
                  headers={"Content-Type": "text/csv"})
out["csv"] = r.json()["predictions"]
print(json.dumps(out))
"""


def test_mlflow_client_scores_against_autolog_server(mlflow_python, tmp_path):  # noqa: F811
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from integrations import sklearn

    df, y = _mixed_frame()
    df = df.drop(columns=["size"])
    pipe = make_pipeline(
        ColumnTransformer([("oh", OneHotEncoder(), ["color"])], remainder="passthrough"),
        LogisticRegression(),
    ).fit(df, y)
    uri = sklearn.log_model(pipe, name="model", signature=infer_signature(df, pipe.predict(df)))
    autolog.end_run()
    head = df.head(7)
    expected = pipe.predict(head).tolist()
    (tmp_path / "frame.json").write_text(head.to_json(orient="split"))
    with running(serving.app(uri.model_uri)) as url:
        script = _CLIENT.replace("sys.argv[1], ", f"{url!r}, ").replace(
            "sys.argv[2]", repr(str(tmp_path / "frame.json"))
        )
        out = json.loads(_run_in_mlflow(mlflow_python, script, tmp_path).strip().splitlines()[-1])
    assert out == {"invoke": expected, "documented": expected, "csv": expected}


def test_a_model_mlflow_saved_is_served_by_autolog(mlflow_python, tmp_path):  # noqa: F811
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=["a", "b", "c"])
    X.to_csv(tmp_path / "X.csv", index=False)
    script = f"""
    import pandas as pd, mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    X = pd.read_csv({str(tmp_path / "X.csv")!r})
    m = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    mlflow.sklearn.save_model(m, {str(tmp_path / "mlflow-model")!r},
                              signature=infer_signature(X, m.predict(X)))
    print(m.predict(X.head(6)).tolist())
    """
    expected = json.loads(_run_in_mlflow(mlflow_python, script, tmp_path).strip().splitlines()[-1])
    with running(serving.app(str(tmp_path / "mlflow-model"), allow_pickle=True)) as url:
        import httpx

        split = X.head(6).to_dict(orient="split")
        r = httpx.post(url + "/invocations", json={"dataframe_split": split})
        assert r.json() == {"predictions": expected}
        r = httpx.post(url + "/invocations", json={"dataframe_records": [{"a": 1.0, "b": 0.0}]})
        assert (r.status_code, r.json()["message"]) == (
            400,
            "Model is missing inputs ['c']: the signature requires them.",
        )

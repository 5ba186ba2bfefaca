"""The scoring server over a real uvicorn: every integration, every input format, every error."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest
from serving_helpers import running

import autolog
from autolog import serving
from autolog.signature import infer_signature


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 5, size=n),
            "color": rng.choice(["red", "green", "blue"], size=n),
        }
    )


def _sklearn_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from integrations import sklearn

    df = _frame()
    y = ((df["x"] + (df["color"] == "red")) > 0.3).astype(int)
    pipe = make_pipeline(
        ColumnTransformer([("oh", OneHotEncoder(), ["color"])], remainder="passthrough"),
        LogisticRegression(),
    ).fit(df, y)
    info = sklearn.log_model(pipe, name="model", signature=infer_signature(df, pipe.predict(df)))
    return info.model_uri, df.head(5)


def _numeric(n: int = 60) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    return X, (X["a"] - X["b"] > 0).astype(int).to_numpy()


def _xgboost():
    import xgboost as xgb

    from integrations import xgboost

    X, y = _numeric()
    m = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    info = xgboost.log_model(m, name="model", signature=infer_signature(X, m.predict(X)))
    return info.model_uri, X.head(5)


def _lightgbm():
    import lightgbm as lgb

    from integrations import lightgbm

    X, y = _numeric()
    m = lgb.LGBMRegressor(n_estimators=5, min_child_samples=2, verbose=-1).fit(X, y)
    info = lightgbm.log_model(m, name="model", signature=infer_signature(X, m.predict(X)))
    return info.model_uri, X.head(5)


def _statsmodels():
    import statsmodels.api as sm

    from integrations import statsmodels

    X, y = _numeric()
    res = sm.OLS(y.astype(float), X).fit()
    info = statsmodels.log_model(res, name="model", signature=infer_signature(X, res.predict(X)))
    return info.model_uri, X.head(5)


def _torch():
    import torch

    from integrations import torch as itorch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    X = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    out = net(torch.from_numpy(X)).detach().numpy()
    info = itorch.log_model(net, name="model", signature=infer_signature(X, out))
    return info.model_uri, pd.DataFrame(X, columns=["f0", "f1", "f2"])


BUILDERS = {
    "sklearn": _sklearn_pipeline,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "statsmodels": _statsmodels,
    "torch": _torch,
}


def _bodies(df: pd.DataFrame, tensors: bool) -> dict[str, tuple[bytes, str]]:
    j = "application/json"
    split = df.to_dict(orient="split")
    del split["index"]
    bodies = {
        "dataframe_split": (json.dumps({"dataframe_split": split}).encode(), j),
        "dataframe_records": (
            json.dumps({"dataframe_records": df.to_dict(orient="records")}).encode(),
            j,
        ),
        "csv": (df.to_csv(index=False).encode(), "text/csv"),
    }
    if tensors:
        rows = df.to_numpy().tolist()
        bodies["instances"] = (json.dumps({"instances": rows}).encode(), j)
        bodies["inputs"] = (json.dumps({"inputs": rows}).encode(), j)
    else:
        bodies["instances"] = (
            json.dumps({"instances": df.to_dict(orient="records")}).encode(),
            j,
        )
        bodies["inputs"] = (json.dumps({"inputs": df.to_dict(orient="list")}).encode(), j)
    return bodies


@pytest.mark.parametrize("lib", sorted(BUILDERS))
def test_each_integration_each_format_matches_load_model(lib):
    uri, df = BUILDERS[lib]()
    autolog.end_run()
    model = autolog.load_model(uri)
    tensors = model.metadata.get_input_schema().is_tensor_spec()
    local = df.to_numpy(dtype=np.float32) if tensors else df
    expected = np.asarray(model.predict(local)).tolist()
    with running(serving.app(uri)) as url:
        assert httpx.get(url + "/ping").status_code == 200
        assert httpx.get(url + "/health").status_code == 200
        assert httpx.get(url + "/version").text == autolog.__version__
        for fmt, (body, ctype) in _bodies(df, tensors).items():
            r = httpx.post(url + "/invocations", content=body, headers={"Content-Type": ctype})
            assert r.status_code == 200, (fmt, r.text)
            got = r.json()["predictions"]
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f"{lib} {fmt}")
            assert r.headers["content-type"] == "application/json"


@pytest.fixture
def sklearn_url():
    uri, _ = _sklearn_pipeline()
    autolog.end_run()
    with running(serving.app(uri, max_body_mb=0.001, timeout=30)) as url:
        yield url


def _post(url: str, body, ctype: str = "application/json") -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(url + "/invocations", content=content, headers={"Content-Type": ctype})


ROW = {"x": 0.5, "k": 2, "color": "red"}
WIDEN = " Only safe widening casts are applied (int32->int64, float32->float64, int->double)."


@pytest.mark.parametrize(
    ("body", "ctype", "status", "message"),
    [
        (
            {"dataframe_records": [{"x": 0.5, "k": 2}]},
            "application/json",
            400,
            "Model is missing inputs ['color']: the signature requires them.",
        ),
        (
            {"dataframe_records": [{**ROW, "x": "high"}]},
            "application/json",
            400,
            "Incompatible input type for column 'x': expected double, found str." + WIDEN,
        ),
        (
            {"dataframe_split": {"columns": ["x", "k", "color"], "data": [[0.5, 2.5, "red"]]}},
            "application/json",
            400,
            "Incompatible input type for column 'k': expected long, found float64." + WIDEN,
        ),
        (
            "x,k,color\n0.5,two,red\n",
            "text/csv",
            400,
            "Incompatible input type for column 'k': expected long, found str." + WIDEN,
        ),
        (
            b"{not json",
            "application/json",
            400,
            "The body is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (
            [ROW],
            "application/json",
            400,
            "The JSON body must be an object with one of the fields ['dataframe_split', "
            "'dataframe_records', 'instances', 'inputs']; got a list",
        ),
        (
            {"dataframe_records": [ROW], "instances": [ROW]},
            "application/json",
            400,
            "The JSON body must have exactly one of the fields ['dataframe_split', "
            "'dataframe_records', 'instances', 'inputs'] (and optionally 'params'); got fields "
            "['dataframe_records', 'instances']",
        ),
        (
            {"dataframe_split": {"data": 3}},
            "application/json",
            400,
            "'dataframe_split' must be an object with a list 'data' (and optionally 'columns' "
            "and 'index'), as DataFrame.to_dict(orient='split') writes it",
        ),
        (
            {"dataframe_records": [ROW], "params": {"alpha": 1}},
            "application/json",
            400,
            "This model's signature declares no params; the request sent ['alpha']",
        ),
        (
            {"dataframe_records": [ROW]},
            "text/plain",
            415,
            "Unsupported Content-Type 'text/plain': send application/json, text/csv or "
            "application/vnd.apache.parquet",
        ),
    ],
)
def test_bad_requests_get_400_naming_the_field(sklearn_url, body, ctype, status, message):
    r = _post(sklearn_url, body, ctype)
    assert r.status_code == status
    assert r.json()["message"] == message
    assert r.json()["error_code"] == ("BAD_REQUEST" if status == 400 else r.json()["error_code"])
    # the server keeps serving after each of them
    assert _post(sklearn_url, {"dataframe_records": [ROW]}).json() == {"predictions": [1]}


def test_model_error_is_500_with_its_message_then_serving_goes_on(sklearn_url):
    r = _post(sklearn_url, {"dataframe_records": [{**ROW, "color": "purple"}]})
    assert r.status_code == 500
    assert r.json() == {
        "error_code": "INTERNAL_ERROR",
        "message": "The model failed: ValueError: Found unknown categories ['purple'] in column "
        "0 during transform",
    }
    assert _post(sklearn_url, {"dataframe_records": [ROW]}).status_code == 200


def test_body_over_the_limit_is_413(sklearn_url):
    big = {"dataframe_records": [ROW] * 100}  # about 3 KB, over the 0.001 MB limit
    r = _post(sklearn_url, big)
    assert r.status_code == 413
    size = len(json.dumps(big))
    assert r.json()["message"] == (
        f"The request body ({size} bytes) is over the server's limit of 1048 bytes; send "
        "smaller batches or start the server with a larger --max-body-mb"
    )


def _params_model():
    class Scaler:
        def predict(self, data, params=None):
            return (data["x"] * (params or {}).get("factor", 1.0)).to_numpy()

    df = pd.DataFrame({"x": [1.0, 2.0]})
    sig = infer_signature(df, np.array([1.0, 2.0]), params={"factor": 1.0})
    return autolog.models.log_model("python_function", Scaler(), "model", signature=sig).model_uri


def test_params_declared_by_the_signature_reach_the_model():
    uri = _params_model()
    autolog.end_run()
    with running(serving.app(uri)) as url:
        records = {"dataframe_records": [{"x": 1.0}, {"x": 2.0}]}
        assert _post(url, records).json() == {"predictions": [1.0, 2.0]}
        assert _post(url, {**records, "params": {"factor": 3}}).json() == {
            "predictions": [3.0, 6.0]
        }
        r = _post(url, {**records, "params": {"factor": "big"}})
        assert (r.status_code, r.json()["message"]) == (
            400,
            "Param 'factor' must be a double, got 'big'",
        )
        r = _post(url, {**records, "params": {"scale": 2}})
        assert r.json()["message"] == "Unknown params ['scale']: the signature declares ['factor']"


def test_slow_prediction_gets_503_after_the_timeout():
    import time

    class Slow:
        def predict(self, data, params=None):
            time.sleep(float(data["x"].iloc[0]))
            return data["x"].to_numpy()

    df = pd.DataFrame({"x": [0.0]})
    sig = infer_signature(df, np.array([0.0]))
    uri = autolog.models.log_model("python_function", Slow(), "model", signature=sig).model_uri
    autolog.end_run()
    with running(serving.app(uri, timeout=0.2)) as url:
        r = _post(url, {"dataframe_records": [{"x": 1.0}]})
        assert r.status_code == 503
        assert r.json()["message"] == (
            "The prediction took longer than the server's timeout of 0.2 s (start it with a "
            "larger --timeout)"
        )
        assert _post(url, {"dataframe_records": [{"x": 0.0}]}).json() == {"predictions": [0.0]}

"""The fast path of /invocations answers exactly as the general path does, over a real uvicorn.

Each request goes to two servers of the same model: one as ``serving.app`` builds it, one with
its fast path switched off (``app.fast = None``). The answers (status, JSON) must be equal, and
the fast path must have taken the requests it is for (so a fast path that silently fell back
everywhere fails here too).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from serving_helpers import running

import autolog
from autolog import serving
from autolog.serving_app import ScoringApp
from autolog.signature import infer_signature

J = b"application/json"


def _frame(n: int = 80, ints: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    if ints:
        return pd.DataFrame({c: rng.integers(-5, 6, size=n) for c in ("a", "b", "c")})
    return pd.DataFrame({c: rng.normal(size=n) for c in ("a", "b", "c")})


def _logreg(where: Path, ints: bool = False) -> str:
    """A LogisticRegression fitted on a DataFrame (so with feature names), saved to a path."""
    from sklearn.linear_model import LogisticRegression

    from integrations import sklearn

    X = _frame(ints=ints)
    m = LogisticRegression().fit(X, (X["a"] - X["b"] > 0).astype(int))
    sklearn.save_model(m, where / "logreg", signature=infer_signature(X, m.predict(X)))
    return str(where / "logreg")


def _xgboost() -> str:
    import xgboost as xgb

    from integrations import xgboost

    X = _frame()
    m = xgb.XGBRegressor(n_estimators=20, max_depth=3).fit(X, X["a"] * 2 - X["c"])
    uri = xgboost.log_model(m, name="model", signature=infer_signature(X, m.predict(X))).model_uri
    autolog.end_run()
    return uri


def _by_name_pipeline() -> str:
    """A pipeline that selects its columns by name: it cannot take a NumPy array."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from integrations import sklearn

    X = _frame()
    pipe = make_pipeline(
        ColumnTransformer([("s", StandardScaler(), ["c", "a"])], remainder="drop"), Ridge()
    ).fit(X, X["a"] + 3 * X["c"])
    sig = infer_signature(X, pipe.predict(X))
    uri = sklearn.log_model(pipe, name="model", signature=sig).model_uri
    autolog.end_run()
    return uri


@contextlib.contextmanager
def _fast_and_general(uri: str) -> Iterator[tuple[ScoringApp, str, str]]:
    fast = serving.app(uri, allow_pickle=True)
    general = serving.app(uri, allow_pickle=True)
    general.fast = None
    with running(fast) as fast_url, running(general) as general_url:
        yield fast, fast_url, general_url


@pytest.fixture(scope="module")
def logreg(tmp_path_factory) -> Iterator[tuple[ScoringApp, str, str]]:
    """The fast and the general server of one LogisticRegression, shared by this module."""
    with _fast_and_general(_logreg(tmp_path_factory.mktemp("logreg"))) as servers:
        yield servers


def _split(df: pd.DataFrame) -> dict:
    split = df.to_dict(orient="split")
    del split["index"]
    return {"dataframe_split": split}


def _ask(url: str, body, ctype: str = "application/json") -> tuple[int, object]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(url + "/invocations", content=content, headers={"Content-Type": ctype})
    assert r.headers["content-type"] == "application/json"
    return r.status_code, r.json()


def _same_answer(app, fast_url: str, general_url: str, body, fast: bool, ctype: str = "") -> tuple:
    """Both servers' answer to ``body`` (asserted equal); ``fast``: the fast path must take it."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    ctype = ctype or "application/json"
    taken = app.fast is not None and app.fast.parse(content, ctype.encode()) is not None
    assert taken is fast, content[:200]
    answer = _ask(fast_url, content, ctype)
    assert answer == _ask(general_url, content, ctype), content[:200]
    return answer


def test_numeric_requests_take_the_fast_path_with_the_same_predictions(logreg):
    app, fast_url, general_url = logreg
    model = app.model
    X = _frame(30)
    expected = model.predict(X).tolist()
    assert app.fast is not None and app.fast.array_ok
    assert _same_answer(app, fast_url, general_url, _split(X), True) == (
        200,
        {"predictions": expected},
    )
    # columns in another order, integers for double columns, a charset
    shuffled = _split(X[["c", "a", "b"]])
    assert _same_answer(app, fast_url, general_url, shuffled, True)[1] == {"predictions": expected}
    ints = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, -2, 0], [0, 2, 1]]}}
    got = _same_answer(app, fast_url, general_url, ints, True, "application/json; charset=utf-8")
    assert got == (200, {"predictions": model.predict(pd.DataFrame(
        [[1.0, -2.0, 0.0], [0.0, 2.0, 1.0]], columns=["a", "b", "c"])).tolist()})  # fmt: skip


WIDEN = " Only safe widening casts are applied (int32->int64, float32->float64, int->double)."
COLS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"dataframe_split": {"columns": ["a", "b"], "data": [[0.1, 0.2]]}},
            400,
            "Model is missing inputs ['c']: the signature requires them.",
        ),
        (
            {"dataframe_split": {"columns": COLS, "data": [[0.1, "x", 0.3]]}},
            400,
            "Incompatible input type for column 'b': expected double, found str." + WIDEN,
        ),
        (
            {"dataframe_split": {"columns": COLS, "data": [[0.1, True, 0.3]]}},
            400,
            "Incompatible input type for column 'b': expected double, found bool." + WIDEN,
        ),
        (
            {"dataframe_split": {"columns": ["a", "b", "b"], "data": [[0.1, 0.2, 0.3]]}},
            400,
            "Model is missing inputs ['c']: the signature requires them.",
        ),
        (
            {"dataframe_split": {"columns": COLS, "data": [[0.1, 0.2], [0.1, 0.2, 0.3]]}},
            500,  # pandas pads the short row with NaN, which the model refuses
            "The model failed: ValueError: Input X contains NaN.",
        ),
        (
            {"dataframe_split": {"columns": COLS, "data": [[0.1, None, 0.3]]}},
            500,
            "The model failed: ValueError: Input X contains NaN.",
        ),
        (
            {"dataframe_split": [{"a": 0.1, "b": 0.2, "c": 0.3}]},
            400,
            "'dataframe_split' must be an object with a list 'data' (and optionally 'columns' "
            "and 'index'), as DataFrame.to_dict(orient='split') writes it",
        ),
        (
            {"dataframe_split": {"a": {"0": 0.1}, "b": {"0": 0.2}, "c": {"0": 0.3}}},
            400,
            "'dataframe_split' must be an object with a list 'data' (and optionally 'columns' "
            "and 'index'), as DataFrame.to_dict(orient='split') writes it",
        ),
        (
            {"dataframe_split": {"columns": COLS, "data": [[0.1, 0.2, 0.3]]}, "params": {"k": 1}},
            400,
            "This model's signature declares no params; the request sent ['k']",
        ),
        (
            b'{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[0.1, 0.2, 0.3]]',
            400,
            "The body is not valid JSON: Expecting ',' delimiter: line 1 column 75 (char 74)",
        ),
        (
            b'{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[0.1, 0.2, \xff]]}}',
            400,
            "The body is not valid UTF-8: 'utf-8' codec can't decode byte 0xff in position 69: "
            "invalid start byte",
        ),
    ],
)
def test_what_the_fast_path_does_not_take_gets_the_general_paths_exact_answer(
    logreg, body, status, message
):
    app, fast_url, general_url = logreg
    got_status, got = _same_answer(app, fast_url, general_url, body, False)
    assert got_status == status
    assert got["message"].startswith(message), got["message"]


def test_extra_nan_and_empty_frames_answer_as_the_general_path(logreg):
    app, fast_url, general_url = logreg
    extra = {"dataframe_split": {"columns": [*COLS, "d"], "data": [[0.1, 0.2, 0.3, 9.0]]}}
    row = pd.DataFrame([[0.1, 0.2, 0.3]], columns=COLS)
    assert _same_answer(app, fast_url, general_url, extra, False) == (
        200,
        {"predictions": app.model.predict(row).tolist()},
    )
    # NaN (JSON's NaN literal) is a valid double: the model itself refuses it, with a 500
    nan = b'{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[0.1, NaN, 0.3]]}}'
    status, got = _same_answer(app, fast_url, general_url, nan, True)
    assert status == 500 and got["message"].startswith(
        "The model failed: ValueError: Input X contains NaN."
    )
    empty = {"dataframe_split": {"columns": COLS, "data": []}}
    status, got = _same_answer(app, fast_url, general_url, empty, False)
    assert status == 500 and "0 sample(s)" in got["message"], got


def test_a_long_signature_takes_integers_and_refuses_fractions_exactly(tmp_path):
    uri = _logreg(tmp_path, ints=True)
    X = _frame(10, ints=True)
    expected = autolog.load_model(uri, allow_pickle=True).predict(X).tolist()
    with _fast_and_general(uri) as (app, fast_url, general_url):
        assert [s.type.name for s in app.model.metadata.get_input_schema().inputs] == ["long"] * 3
        assert _same_answer(app, fast_url, general_url, _split(X), True) == (
            200,
            {"predictions": expected},
        )
        frac = {"dataframe_split": {"columns": COLS, "data": [[1, 2.5, 3]]}}
        status, got = _same_answer(app, fast_url, general_url, frac, False)
        assert (status, got["message"]) == (
            400,
            "Incompatible input type for column 'b': expected long, found float64." + WIDEN,
        )


def test_xgboost_missing_values_and_batches_match_load_model():
    uri = _xgboost()
    model = autolog.load_model(uri)
    X = _frame(50)
    X.iloc[3, 1] = np.nan
    expected = model.predict(X).tolist()
    with _fast_and_general(uri) as (app, fast_url, general_url):
        assert app.fast is not None and app.fast.array_ok
        body = json.dumps(_split(X)).encode()  # NaN literal for the missing value
        assert _same_answer(app, fast_url, general_url, body, True) == (
            200,
            {"predictions": expected},
        )


def test_a_model_that_needs_column_names_gets_a_dataframe():
    uri = _by_name_pipeline()
    X = _frame(20)
    expected = autolog.load_model(uri).predict(X).tolist()
    with _fast_and_general(uri) as (app, fast_url, general_url):
        assert app.fast is not None and not app.fast.array_ok
        status, got = _same_answer(app, fast_url, general_url, _split(X[["b", "c", "a"]]), True)
        assert status == 200
        np.testing.assert_array_equal(got["predictions"], expected)


def test_a_non_numeric_signature_falls_back_to_the_general_path():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from integrations import sklearn

    X = _frame(40).assign(color=["red", "blue"] * 20)
    pipe = make_pipeline(
        ColumnTransformer([("oh", OneHotEncoder(), ["color"])], remainder="passthrough"),
        LogisticRegression(),
    ).fit(X, (X["a"] > 0).astype(int))
    uri = sklearn.log_model(pipe, name="model", signature=infer_signature(X, pipe.predict(X)))
    autolog.end_run()
    with _fast_and_general(uri.model_uri) as (app, fast_url, general_url):
        assert app.fast is None
        status, got = _ask(fast_url, _split(X.head(4)))
        assert (status, got) == (200, {"predictions": pipe.predict(X.head(4)).tolist()})


def test_small_requests_to_a_fast_array_model_are_predicted_on_the_event_loop(logreg):
    from autolog import serving_fast

    app, fast_url, general_url = logreg
    X = _frame(5)
    body = _split(X)
    rows = app.fast.parse(json.dumps(body).encode(), J)
    expected = {"predictions": app.model.predict(X).tolist()}
    with httpx.Client() as c:
        for _ in range(serving_fast.INLINE_WINDOW):
            r = c.post(fast_url + "/invocations", json=body)
            assert r.json() == expected
    assert len(app.fast.recent) == serving_fast.INLINE_WINDOW
    assert app.fast.inline(rows) is (sorted(app.fast.recent)[15] < serving_fast.INLINE_BUDGET_S)
    app.fast.recent.extend([0.0] * serving_fast.INLINE_WINDOW)  # as a quick model would leave it
    assert app.fast.inline(rows)
    assert not app.fast.inline(np.zeros((serving_fast.INLINE_ROWS + 1, 3)))
    assert _ask(fast_url, body) == (200, expected)  # predicted inline now
    app.fast.recent.append(serving_fast.INLINE_MAX_S)  # one slow prediction: back to threads
    assert not app.fast.inline(rows)


def test_a_python_function_model_keeps_the_timeout_on_the_fast_path():
    import time

    class Slow:
        def predict(self, data, params=None):
            time.sleep(float(data["x"].iloc[0]))
            return data["x"].to_numpy()

    df = pd.DataFrame({"x": [0.0]})
    sig = infer_signature(df, np.array([0.0]))
    uri = autolog.models.log_model("python_function", Slow(), "model", signature=sig).model_uri
    autolog.end_run()
    app = serving.app(uri, timeout=0.3)
    assert app.fast is not None and not app.fast.array_ok
    quick = {"dataframe_split": {"columns": ["x"], "data": [[0.0]]}}
    with running(app) as url, httpx.Client() as c:
        for _ in range(30):
            assert c.post(url + "/invocations", json=quick).json() == {"predictions": [0.0]}
        assert not app.fast.inline(app.fast.parse(json.dumps(quick).encode(), J))
        slow = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}
        r = c.post(url + "/invocations", json=slow)
        assert (r.status_code, r.json()["message"]) == (
            503,
            "The prediction took longer than the server's timeout of 0.3 s (start it with a "
            "larger --timeout)",
        )

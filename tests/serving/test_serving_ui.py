"""The UI's model, version and run pages show how to serve the model."""

from __future__ import annotations

import html as htmllib

import numpy as np
import pandas as pd
from starlette.testclient import TestClient

import autolog
from autolog.signature import infer_signature
from autolog.ui.app import create_app


def test_model_and_run_pages_show_serve_and_curl(store):
    from sklearn.linear_model import LogisticRegression

    from integrations import sklearn

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "city": ["a", "b", "a", "b"]})
    m = LogisticRegression().fit(X[["x"]], [0, 0, 1, 1])
    info = sklearn.log_model(m, name="model", signature=infer_signature(X, np.array([0, 0, 1, 1])))
    autolog.end_run()
    autolog.register_model(info.model_uri, "churn")
    autolog.Client().set_registered_model_alias("churn", "champion", "1")
    with TestClient(
        create_app(store, host="127.0.0.1", port=5000), base_url="http://127.0.0.1:5000"
    ) as c:
        page = htmllib.unescape(c.get("/models/churn").text)
        run_page = htmllib.unescape(c.get(f"/runs/{info.run_id}").text)
    assert 'autolog models serve -m "models:/churn@champion" --port 5001' in page
    assert 'autolog models serve -m "models:/churn/1"' in page
    assert "curl -X POST http://127.0.0.1:5001/invocations" in page
    assert f'autolog models serve -m "runs:/{info.run_id}/model" --port 5001' in run_page
    assert """-d '{"dataframe_records": [{"x": 0, "city": ""}]}'""" in run_page

"""The logged-model page and the run page's link to it."""

from __future__ import annotations

import html

import numpy as np
from sklearn.linear_model import LinearRegression

import autolog
from autolog import models
from autolog.signature import infer_signature


def test_run_page_links_its_logged_model_and_the_page_shows_it(client, store):
    X = np.arange(12.0).reshape(6, 2)
    y = X @ [1.0, 2.0]
    reg = LinearRegression().fit(X, y)
    with autolog.start_run() as run:
        autolog.log_param("alpha", "0.5")
        autolog.log_metric("rmse", 0.25)
        info = models.log_model(
            "python_function", reg, "reg", signature=infer_signature(X, reg.predict(X))
        )
    autolog.register_model(info.model_uri, "prices")
    mid = info.model_id

    run_page = client.get(f"/runs/{run.info.run_id}").text
    assert f'href="/logged-models/{mid}"' in run_page

    r = client.get(f"/logged-models/{mid}")
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert f'<code id="model-uri">models:/{mid}</code>' in page
    assert f'autolog.load_model("models:/{mid}")' in page
    assert "<th>rmse</th><td>0.25</td><td>0</td><td>-</td>" in page
    assert "<tr><th>alpha</th><td>0.5</td></tr>" in page
    assert "<th>MLmodel</th>" in page and "<th>model.pkl</th>" in page
    assert '<a href="/models/prices">prices</a> version 1' in page
    assert "<code>tensor float64 (-1, 2)</code>" in page  # the signature's input
    assert f'<a href="/runs/{run.info.run_id}">{run.info.run_id}</a>' in page


def test_unknown_and_malformed_ids(client, store):
    missing = "m-" + "0" * 32
    r = client.get(f"/logged-models/{missing}")
    assert r.status_code == 404 and missing in html.unescape(r.text)
    r = client.get("/logged-models/nope")
    assert r.status_code == 400 and "Invalid logged model id 'nope'" in html.unescape(r.text)

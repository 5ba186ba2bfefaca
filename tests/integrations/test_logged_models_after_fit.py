"""After every integration's fit, last_logged_model() is the model just logged, and
load_model(model_uri) (models:/m-<hex>) predicts as the trained model does."""

from __future__ import annotations

import re

import numpy as np
import pytest

import autolog
from autolog import tracking


def check_last_model(expected_path: str = "model"):
    """The last logged model: READY, of the run just ended, with the run's params; the
    MLmodel carries its id."""
    run = tracking.last_active_run()
    model = autolog.last_logged_model()
    assert model is not None
    assert re.fullmatch(r"m-[0-9a-f]{32}", model.model_id)
    assert model.model_uri == f"models:/{model.model_id}"
    assert (model.source_run_id, model.artifact_path, model.name, model.status) == (
        run.info.run_id,
        expected_path,
        expected_path,
        "READY",
    )
    assert model.params == run.data.params
    info = autolog.models.get_model_info(model.model_uri)
    assert info.model_id == model.model_id
    return model


def test_sklearn() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    autolog.autolog()
    clf = LogisticRegression().fit(X, y)
    model = check_last_model()
    run = tracking.last_active_run()
    assert {m.key: m.value for m in model.metrics} == run.data.metrics
    assert {m.run_id for m in model.metrics} == {run.info.run_id}
    loaded = autolog.load_model(model.model_uri)
    assert np.array_equal(loaded.predict(X), clf.predict(X))


def test_xgboost() -> None:
    import xgboost as xgb

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    y = X[:, 0] * 2 + X[:, 1]
    autolog.autolog()
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=y), num_boost_round=5)
    model = check_last_model()
    out = autolog.load_model(model.model_uri).predict(X)
    assert np.array_equal(np.asarray(out), booster.predict(xgb.DMatrix(X)))


def test_lightgbm() -> None:
    import lightgbm as lgb

    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 3))
    y = X[:, 0] + rng.normal(scale=0.1, size=100)
    autolog.autolog()
    booster = lgb.train(
        {"verbose": -1, "num_leaves": 4}, lgb.Dataset(X, label=y), num_boost_round=5
    )
    model = check_last_model()
    out = autolog.load_model(model.model_uri).predict(X)
    assert np.array_equal(np.asarray(out), booster.predict(X))


def test_statsmodels() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    X = sm.add_constant(rng.normal(size=(50, 2)))
    y = X @ [1.0, 2.0, -1.0] + rng.normal(scale=0.1, size=50)
    autolog.autolog()
    results = sm.OLS(y, X).fit()
    model = check_last_model()
    out = autolog.load_model(model.model_uri).predict(X[:5])
    assert np.array_equal(np.asarray(out), results.predict(X[:5]))


def test_torch() -> None:
    import torch
    from test_torch import Net, data, loader, train

    autolog.autolog()
    torch.manual_seed(1)
    net = Net(hidden=6)
    train(net, torch.optim.SGD(net.parameters(), lr=0.05), loader(), epochs=2)
    autolog.end_run()
    model = check_last_model()
    X, _ = data(10, seed=5)
    with torch.no_grad():
        expected = net.eval()(X).numpy()
    assert np.array_equal(autolog.load_model(model.model_uri).predict(X.numpy()), expected)


def test_lightning(tmp_path) -> None:
    import torch
    from test_lightning import LitRegressor, loaders, trainer

    autolog.autolog()
    torch.manual_seed(0)
    lit = LitRegressor()
    train, val = loaders()
    trainer(tmp_path, max_epochs=2).fit(lit, train, val)
    model = check_last_model()
    X = torch.randn(6, 4, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = lit.eval()(X).numpy()
    assert np.array_equal(autolog.load_model(model.model_uri).predict(X.numpy()), expected)


@pytest.mark.parametrize("suffix", ["", "/"])
def test_models_uri_of_an_unknown_id_names_it(suffix: str) -> None:
    missing = "m-" + "0" * 32
    with pytest.raises(autolog.errors.LoggedModelNotFoundError, match=missing):
        autolog.load_model(f"models:/{missing}{suffix}")

"""integrations.sklearn under the contract kit (its own tests are in test_sklearn.py)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from autolog import testing

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
Y = X @ [1.0, -2.0, 0.5] + RNG.normal(scale=0.1, size=60)


ARTIFACTS = {"estimator.html", "model"}


class _Raising(LinearRegression):
    def fit(self, X, y, sample_weight=None):
        raise self.error


def _failing_fit(exc):
    model = _Raising()
    model.error = exc
    model.fit(X, Y)


def test_contract(store):
    testing.check_contract(
        "sklearn",
        train=lambda: LinearRegression().fit(X, Y),
        run_name="LinearRegression",
        params={"copy_X", "fit_intercept", "n_jobs", "positive", "tol"},
        metrics={
            "training_mean_absolute_error",
            "training_mean_squared_error",
            "training_r2_score",
            "training_root_mean_squared_error",
            "training_score",
        },
        artifacts=ARTIFACTS,
        fail=_failing_fit,
        nested=lambda: make_pipeline(StandardScaler(), LinearRegression()).fit(X, Y),
    )

"""XGBoost scenarios: native train with two eval sets, XGBClassifier with early stopping.

Imports only xgboost and numpy (the same file runs under MLflow's autolog). One thread: on a
shared 2-core machine OpenMP threads fighting other processes make a 1 s training take 5-20 s
at random, which hides any overhead; single-threaded timings are stable and are the 1-2 s
trainings the issue's budget is stated against.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xgboost as xgb


def _data(small: bool, seed: int = 0) -> tuple[np.ndarray, ...]:
    rows, cols = (300, 5) if small else (10_000, 20)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows + rows // 5, cols))
    signal = X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + rng.normal(scale=1.0, size=len(X))
    y = (signal > 0).astype(np.int64)
    return X[:rows], y[:rows], X[rows:], y[rows:]


def train_200_rounds(small: bool) -> Callable[[], object]:
    """xgboost.train, 200 rounds (10 small) on 10,000x20, evals on train and valid."""
    X, y, Xv, yv = _data(small)
    dtrain, dvalid = xgb.DMatrix(X, label=y), xgb.DMatrix(Xv, label=yv)
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "max_depth": 6,
        "nthread": 1,
    }
    rounds = 10 if small else 200

    def run() -> object:
        return xgb.train(
            params,
            dtrain,
            rounds,
            evals=[(dtrain, "train"), (dvalid, "valid")],
            verbose_eval=False,
        )

    return run


def classifier_early_stopping(small: bool) -> Callable[[], object]:
    """XGBClassifier(early_stopping_rounds=10) on 10,000x20 with a validation set."""
    X, y, Xv, yv = _data(small, seed=1)

    def run() -> object:
        clf = xgb.XGBClassifier(
            n_estimators=20 if small else 500,
            learning_rate=0.1,
            max_depth=6,
            early_stopping_rounds=10,
            eval_metric="logloss",
            n_jobs=1,
        )
        return clf.fit(X, y, eval_set=[(Xv, yv)], verbose=False)

    return run


SCENARIOS: dict[str, Callable[[bool], Callable[[], object]]] = {
    "xgboost.train 200 rounds 10000x20 two evals": train_200_rounds,
    "XGBClassifier early stopping 10000x20": classifier_early_stopping,
}

# Issue 6: under 5% for the 200-round trainings. The early-stopping fits take 0.4-0.6 s, on
# either side of DESIGN.md's 0.5 s line: they are held to 5% too, the stricter of its two rules
# there (5% of 0.4 s is 20 ms, under the 30 ms of a tiny fit).
BUDGETS: dict[str, dict] = {
    "xgboost.train 200 rounds 10000x20 two evals": {
        "max_ratio": 1.05,
        "source": "issue 6: 200-round trainings, under 5%",
    },
    "XGBClassifier early stopping 10000x20": {
        "max_ratio": 1.05,
        "source": "DESIGN 6: 5%, stricter than 30 ms here",
    },
}

"""scikit-learn scenarios: one fit each, on data prepared once by the factory.

Imports only scikit-learn and numpy (the same file runs under MLflow's autolog).
"""

from __future__ import annotations

from collections.abc import Callable


def _classification(rows: int, features: int = 20):
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=rows, n_features=features, n_informative=10, random_state=0
    )


def logistic_regression_iris(small: bool) -> Callable[[], object]:
    """LogisticRegression on iris (150 x 4, 3 classes): a tiny fit."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)

    def run() -> object:
        return LogisticRegression(max_iter=1000).fit(X, y)

    return run


def random_forest_5000x20(small: bool) -> Callable[[], object]:
    """RandomForestClassifier (100 trees) on 5,000 x 20, binary."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = _classification(300 if small else 5000)
    trees = 10 if small else 100

    def run() -> object:
        return RandomForestClassifier(n_estimators=trees, random_state=0).fit(X, y)

    return run


def pipeline_scaler_logreg(small: bool) -> Callable[[], object]:
    """Pipeline(StandardScaler, LogisticRegression) on iris: a tiny meta-estimator fit."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)

    def run() -> object:
        steps = [("scaler", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))]
        return Pipeline(steps).fit(X, y)

    return run


def grid_search_10x3(small: bool) -> Callable[[], object]:
    """GridSearchCV over 10 values of C x 3 folds (30 fits + refit), LogisticRegression, 5,000 x 20."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = _classification(300 if small else 5000)
    grid = {"C": list(np.logspace(-3, 3, 10))}

    def run() -> object:
        return GridSearchCV(LogisticRegression(max_iter=1000), grid, cv=3).fit(X, y)

    return run


SCENARIOS: dict[str, Callable[[bool], Callable[[], object]]] = {
    "logistic_regression_iris": logistic_regression_iris,
    "random_forest_5000x20": random_forest_5000x20,
    "pipeline_scaler_logreg": pipeline_scaler_logreg,
    "grid_search_10x3": grid_search_10x3,
}

# DESIGN.md section 6 / issue 5: tiny fits under 30 ms added, the others under 5 %.
BUDGETS: dict[str, dict] = {
    "logistic_regression_iris": {"max_added_ms": 30},
    "pipeline_scaler_logreg": {"max_added_ms": 30},
    "random_forest_5000x20": {"max_ratio": 1.05},
    "grid_search_10x3": {"max_ratio": 1.05},
}

# Why a budget is not met, rendered by the report under "Budgets not met".
NOTES: dict[str, str] = {
    "random_forest_5000x20": (
        "counted +6.19% of instructions on 2026-12-04 (icount.py, this scenario alone: 478.6 M "
        "added to 7.73 G; +2.63% on 2026-11-26). 178.7 M of it is libcrypto: the SHA-256 of the "
        "logged model's files (autolog/model_trust.py sha256_file, the trust-models work) over "
        "the forest's pickle; the training metrics' predict_proba over the 5,000 rows is 90 M. "
        "+6.31% again on 2026-12-05; hashing model.pkl while it is written (tried that day, "
        "not kept) left it unchanged: it saves re-reading the file (kernel time, which "
        "callgrind does not count), not the SHA-256 itself. 2026-12-05, training metrics, charts "
        "and estimator.html deferred to autolog's background thread (icount.py "
        "training_thread=True, this scenario alone): the training thread adds +4.69% (362.0 M "
        "to 7.724 G); every thread together is unchanged work (not re-counted: machine load)."
    ),
    "grid_search_10x3": (
        "counted +16.08% of instructions on 2026-12-04 (icount.py, the GridSearchCV alone; "
        "+16.38% before the metrics ran under sklearn.config_context(skip_parameter_validation="
        "True)). Not the environment: nothing in the counted fit runs pyarrow, importlib.metadata "
        "or an import. Parts: scikit-learn's HTML diagram 66 M (inspect.getdoc of the class, "
        "once per parameter and fitted attribute), training metrics 47 M and the confusion "
        "matrix 12 M (mostly NumPy's hash-based np.unique in scikit-learn's target checks), the "
        "charts' drawing and encoding, cv_results.csv, child runs and models; docs/sklearn.md "
        "'Cost'. 2026-12-05, the training metrics, charts and HTML diagram deferred to autolog's "
        "background thread: the training thread adds +3.18% (34.4 M to 1.081 G; icount.py "
        "training_thread=True, this scenario alone); the same work still runs on the background "
        "thread, which make bench's all-thread count includes."
    ),
}

"""The scikit-learn integration: what each kind of fit records, exactly, and the patching rules.

The metric functions and cross_val_score are imported here, at module import, before any
test calls autolog(): post-training metrics and CV runs must work for names imported early.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest, RandomForestClassifier, VotingClassifier
from sklearn.feature_selection import SelectFromModel, SelectKBest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    cross_val_score,
    cross_validate,
    learning_curve,
    permutation_test_score,
    validation_curve,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import estimator_html_repr

import autolog
from autolog import patching, tracking
from autolog.errors import AutologWarning
from integrations import sklearn as skl
from integrations.sklearn import html as skl_html

MODEL_FILES = {
    "model/MLmodel",
    "model/model.pkl",
    "model/requirements.txt",
    "model/python_env.yaml",
    "model/conda.yaml",
}
CLASSIFIER_METRICS = {
    "training_accuracy_score",
    "training_precision_score",
    "training_recall_score",
    "training_f1_score",
    "training_log_loss",
    "training_roc_auc",
    "training_score",
}
# A binary problem without pos_label=: MLflow's keys hold weighted averages (as MLflow's do);
# the binary scores of the positive label have keys of their own.
POS_LABEL_METRICS = {
    "training_precision_pos_label",
    "training_recall_pos_label",
    "training_f1_pos_label",
}
BINARY_METRICS = CLASSIFIER_METRICS | POS_LABEL_METRICS
REGRESSOR_METRICS = {
    "training_mean_squared_error",
    "training_root_mean_squared_error",
    "training_mean_absolute_error",
    "training_r2_score",
    "training_score",
}
CHILD_METRICS = {
    "mean_fit_time",
    "std_fit_time",
    "mean_score_time",
    "std_score_time",
    "mean_test_score",
    "std_test_score",
    "rank_test_score",
}

X_IRIS, Y_IRIS = load_iris(return_X_y=True)


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Tiny fits: BLAS thread pools only oversubscribe a small CI machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


class Majority(ClassifierMixin, BaseEstimator):
    """A user estimator defined before autolog() (found by walking BaseEstimator subclasses)."""

    def __init__(self, strategy="most_frequent"):
        self.strategy = strategy

    def fit(self, X, y):
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


# -- helpers -----------------------------------------------------------------------------------


def runs():
    return autolog.search_runs(output_format="list", order_by=["start_time", "run_id"])


def only_run():
    found = runs()
    assert len(found) == 1, [r.data.tags.get("estimator_name") for r in found]
    return found[0]


def files(run_id):
    base = tracking.Client().artifact_dir(run_id, "")
    if not base.exists():
        return set()
    return {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}


def user_tags(run):
    return {k: v for k, v in run.data.tags.items() if not k.startswith(("autolog.", "mlflow."))}


def mlmodel(run_id, path="model"):
    return yaml.safe_load((tracking.Client().artifact_dir(run_id, path) / "MLmodel").read_text())


def str_params(est):
    return {k: str(v) for k, v in est.get_params(deep=True).items()}


def is_png(run_id, name):
    data = tracking.Client().artifact_dir(run_id, name).read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    return data[:8] == b"\x89PNG\r\n\x1a\n" and width > 100 and height > 100


def binary_data(n=200, labels=("no", "yes")):
    X, y = make_classification(n_samples=n, n_features=6, random_state=0)
    return X, np.asarray(labels)[y]


# -- each family records exactly this ---------------------------------------------------------


def test_multiclass_classifier_params_metrics_tags_artifacts_model():
    reference = LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)  # before autolog()
    pred, proba = reference.predict(X_IRIS), reference.predict_proba(X_IRIS)
    autolog.autolog()

    model = LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)

    run = only_run()
    assert run.info.status == "FINISHED"
    assert run.data.params == str_params(model)
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    m = run.data.metrics
    assert m["training_accuracy_score"] == pytest.approx(accuracy_score(Y_IRIS, pred))
    assert m["training_score"] == pytest.approx(reference.score(X_IRIS, Y_IRIS))
    p, r, f, _ = sklearn.metrics.precision_recall_fscore_support(Y_IRIS, pred, average="weighted")
    assert (m["training_precision_score"], m["training_recall_score"]) == pytest.approx((p, r))
    assert m["training_f1_score"] == pytest.approx(f)
    assert m["training_log_loss"] == pytest.approx(sklearn.metrics.log_loss(Y_IRIS, proba))
    expected_auc = roc_auc_score(Y_IRIS, proba, multi_class="ovr", average="weighted")
    assert m["training_roc_auc"] == pytest.approx(expected_auc)
    assert user_tags(run) == {
        "estimator_name": "LogisticRegression",
        "estimator_class": "sklearn.linear_model._logistic.LogisticRegression",
    }
    assert run.data.tags["mlflow.autologging"] == "sklearn"
    # multiclass: a confusion matrix, no ROC / precision-recall curves
    assert files(run.info.run_id) == MODEL_FILES | {
        "estimator.html",
        "training_confusion_matrix.png",
    }
    assert is_png(run.info.run_id, "training_confusion_matrix.png")
    html = tracking.Client().artifact_dir(run.info.run_id, "estimator.html").read_text()
    assert "LogisticRegression" in html

    meta = mlmodel(run.info.run_id)
    assert meta["flavors"]["sklearn"] == {
        "pickled_model": "model.pkl",
        "serialization_format": "cloudpickle",
        "sklearn_version": sklearn.__version__,
        "code": None,
    }
    assert meta["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert json.loads(meta["signature"]["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}
    ]
    assert json.loads(meta["signature"]["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}
    ]
    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(X_IRIS), pred)


def test_binary_classifier_with_pos_label_sample_weight_and_curves():
    X, y = binary_data()
    w = np.linspace(0.5, 2.0, len(y))
    reference = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y, sample_weight=w)
    pred, proba = reference.predict(X), reference.predict_proba(X)
    skl.autolog(pos_label="yes")

    RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y, sample_weight=w)

    run = only_run()
    m = run.data.metrics
    assert set(m) == CLASSIFIER_METRICS
    expected = {
        "training_accuracy_score": accuracy_score(y, pred, sample_weight=w),
        "training_precision_score": sklearn.metrics.precision_score(
            y, pred, pos_label="yes", sample_weight=w
        ),
        "training_recall_score": sklearn.metrics.recall_score(
            y, pred, pos_label="yes", sample_weight=w
        ),
        "training_f1_score": f1_score(y, pred, pos_label="yes", sample_weight=w),
        "training_log_loss": sklearn.metrics.log_loss(y, proba, sample_weight=w),
        "training_roc_auc": roc_auc_score(y, proba[:, 1], sample_weight=w),
        "training_score": reference.score(X, y, sample_weight=w),
    }
    assert m == pytest.approx(expected)
    assert files(run.info.run_id) == MODEL_FILES | {
        "estimator.html",
        "training_confusion_matrix.png",
        "training_roc_curve.png",
        "training_precision_recall_curve.png",
    }
    for name in ("training_roc_curve.png", "training_precision_recall_curve.png"):
        assert is_png(run.info.run_id, name)
    meta = mlmodel(run.info.run_id)
    assert json.loads(meta["signature"]["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}}
    ]


def test_regressor_metrics():
    X, y = make_regression(n_samples=120, n_features=5, noise=5.0, random_state=0)
    pred = Ridge(alpha=2.0).fit(X, y).predict(X)
    autolog.autolog()

    model = Ridge(alpha=2.0).fit(X, y)

    run = only_run()
    assert run.data.params == str_params(model)
    assert run.data.metrics == pytest.approx(
        {
            "training_mean_squared_error": sklearn.metrics.mean_squared_error(y, pred),
            "training_root_mean_squared_error": sklearn.metrics.root_mean_squared_error(y, pred),
            "training_mean_absolute_error": sklearn.metrics.mean_absolute_error(y, pred),
            "training_r2_score": sklearn.metrics.r2_score(y, pred),
            "training_score": sklearn.metrics.r2_score(y, pred),
        }
    )
    assert user_tags(run)["estimator_name"] == "Ridge"
    assert files(run.info.run_id) == MODEL_FILES | {"estimator.html"}


def test_clusterer_inertia_and_silhouette():
    autolog.autolog()
    model = KMeans(n_clusters=3, n_init=2, random_state=0).fit(X_IRIS)
    run = only_run()
    assert run.data.params == str_params(model)
    assert run.data.metrics == pytest.approx(
        {
            "training_inertia": model.inertia_,
            "training_silhouette_score": sklearn.metrics.silhouette_score(X_IRIS, model.labels_),
        }
    )
    assert user_tags(run)["estimator_name"] == "KMeans"


def test_fit_predict_and_fit_transform_log_one_run_each():
    autolog.autolog()
    labels = KMeans(n_clusters=2, n_init=1, random_state=0).fit_predict(X_IRIS)
    assert len(labels) == len(X_IRIS)
    pca = PCA(n_components=2)
    Z = pca.fit_transform(X_IRIS)
    found = runs()
    assert [user_tags(r)["estimator_name"] for r in found] == ["KMeans", "PCA"]
    assert set(found[0].data.metrics) == {"training_inertia", "training_silhouette_score"}
    assert found[1].data.params == str_params(pca)
    assert found[1].data.metrics == {}
    # a transformer-only model predicts with transform once loaded
    loaded = autolog.load_model(f"runs:/{found[1].info.run_id}/model")
    np.testing.assert_allclose(loaded.predict(X_IRIS), Z)


def test_outlier_detector_logs_params_and_model():
    autolog.autolog()
    model = IsolationForest(n_estimators=10, random_state=0).fit(X_IRIS)
    run = only_run()
    assert run.data.params == str_params(model)
    assert run.data.metrics == {}
    assert files(run.info.run_id) == MODEL_FILES | {"estimator.html"}
    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(X_IRIS), model.predict(X_IRIS))


def test_lone_preprocessing_steps_make_no_run_but_keep_inner_fits_quiet():
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "c": ["x", "y", "x", "z"]})
    autolog.autolog()
    StandardScaler().fit(X_IRIS)
    SimpleImputer().fit_transform(frame[["a"]])
    OneHotEncoder().fit(frame[["c"]])
    SelectKBest(k=2).fit(X_IRIS, Y_IRIS)
    ColumnTransformer([("num", SimpleImputer(), ["a"]), ("cat", OneHotEncoder(), ["c"])]).fit(frame)
    # the LogisticRegression fitted inside the selector makes no run either
    SelectFromModel(LogisticRegression(max_iter=500)).fit(X_IRIS, Y_IRIS)
    assert runs() == []


# -- meta-estimators and searches --------------------------------------------------------------


def test_pipeline_with_column_transformer_on_a_frame_one_run_reloads_and_predicts_equal():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 120),
            "income": rng.normal(50, 15, 120),
            "color": rng.choice(["red", "green", "blue"], 120),
        }
    )
    y = (frame["age"] + (frame["color"] == "red") * 10 > 45).astype(int)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "income"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    autolog.autolog()
    pipe.fit(frame, y)

    run = only_run()
    assert run.data.params == str_params(pipe)
    assert {"prep__num__with_mean", "prep__cat__handle_unknown", "clf__C"} <= set(run.data.params)
    assert set(run.data.metrics) == BINARY_METRICS
    assert user_tags(run)["estimator_name"] == "Pipeline"
    meta = mlmodel(run.info.run_id)
    assert json.loads(meta["signature"]["inputs"]) == [
        {"type": "double", "name": "age", "required": True},
        {"type": "double", "name": "income", "required": True},
        {"type": "string", "name": "color", "required": True},
    ]
    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(np.asarray(loaded.predict(frame)), pipe.predict(frame))


def test_grid_search_n_jobs_2_parent_and_max_tuning_runs_children():
    grid = {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}
    autolog.autolog()
    search = GridSearchCV(LogisticRegression(max_iter=300), grid, cv=3, n_jobs=2)
    search.fit(X_IRIS, Y_IRIS)

    all_runs = runs()
    assert len(all_runs) == 1 + 5
    parents = [r for r in all_runs if r.info.parent_run_id is None]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in all_runs if r is not parent]
    assert {c.info.parent_run_id for c in children} == {parent.info.run_id}
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}

    # MLflow's params: the search's own (deep=False) and best_<param>
    assert parent.data.params == {
        "cv": "3",
        "error_score": "nan",
        "estimator": "LogisticRegression(max_iter=300)",
        "n_jobs": "2",
        "param_grid": str(grid),
        "pre_dispatch": "2*n_jobs",
        "refit": "True",
        "return_train_score": "False",
        "scoring": "None",
        "verbose": "0",
        "best_C": str(search.best_params_["C"]),
    }
    assert set(parent.data.metrics) == CLASSIFIER_METRICS | {"best_cv_score"}
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert user_tags(parent)["estimator_name"] == "GridSearchCV"
    best_files = {f.replace("model/", "best_estimator/") for f in MODEL_FILES}
    assert files(parent.info.run_id) >= MODEL_FILES | best_files | {"cv_results.csv"}
    table = list(csv.reader(io.StringIO(skl_artifact(parent.info.run_id, "cv_results.csv"))))
    assert table[0] == list(search.cv_results_)
    assert len(table) == 1 + 6
    logged = skl.load_model(f"runs:/{parent.info.run_id}/model")
    assert isinstance(logged, GridSearchCV) and logged.best_params_ == search.best_params_
    best = skl.load_model(f"runs:/{parent.info.run_id}/best_estimator")
    assert isinstance(best, LogisticRegression) and search.best_params_["C"] == best.C
    np.testing.assert_array_equal(best.predict(X_IRIS), search.best_estimator_.predict(X_IRIS))

    results = search.cv_results_
    ranked = sorted(range(6), key=lambda i: (results["rank_test_score"][i], i))[:5]
    base = str_params(search.estimator)
    expected_children = {
        str(grid["C"][i]): {
            "params": {**base, "C": str(grid["C"][i])},
            "rank": float(results["rank_test_score"][i]),
            "mean": results["mean_test_score"][i],
        }
        for i in ranked
    }
    got = {}
    for child in children:
        assert set(child.data.metrics) == CHILD_METRICS
        assert child.info.status == "FINISHED"
        got[child.data.params["C"]] = {
            "params": child.data.params,
            "rank": child.data.metrics["rank_test_score"],
            "mean": child.data.metrics["mean_test_score"],
        }
    assert got == expected_children


def test_search_training_metrics_are_its_best_estimators_from_one_prediction(monkeypatch):
    from sklearn.linear_model._base import LinearClassifierMixin

    X, y = binary_data(n=400, labels=(0, 1))
    grid = {"C": [0.01, 1.0]}
    decisions = []  # LogisticRegression's predict and predict_proba both go through it once
    original = LinearClassifierMixin.decision_function

    def counting(self, *args, **kwargs):
        decisions.append(type(self).__name__)
        return original(self, *args, **kwargs)

    with patching_disabled():
        monkeypatch.setattr(LinearClassifierMixin, "decision_function", counting)
        GridSearchCV(LogisticRegression(max_iter=500), grid, cv=3).fit(X, y)
        monkeypatch.undo()
    raw = len(decisions)
    autolog.autolog()
    original = LinearClassifierMixin.decision_function  # autolog's wrapper
    monkeypatch.setattr(LinearClassifierMixin, "decision_function", counting)
    search = GridSearchCV(LogisticRegression(max_iter=500), grid, cv=3).fit(X, y)
    monkeypatch.undo()
    # the training metrics took one prediction (predict is the argmax of predict_proba)
    assert len(decisions) == 2 * raw + 1

    parent = next(r for r in runs() if r.info.parent_run_id is None)
    with patching_disabled():
        pred, proba = search.predict(X), search.predict_proba(X)
    weighted = {"average": "weighted"}
    expected = {
        "training_accuracy_score": accuracy_score(y, pred),
        "training_precision_score": sklearn.metrics.precision_score(y, pred, **weighted),
        "training_recall_score": sklearn.metrics.recall_score(y, pred, **weighted),
        "training_f1_score": f1_score(y, pred, **weighted),
        "training_precision_pos_label": sklearn.metrics.precision_score(y, pred),
        "training_recall_pos_label": sklearn.metrics.recall_score(y, pred),
        "training_f1_pos_label": f1_score(y, pred),
        "training_log_loss": sklearn.metrics.log_loss(y, proba),
        "training_roc_auc": roc_auc_score(y, proba[:, 1]),
        "training_score": search.score(X, y),
        "best_cv_score": search.best_score_,
    }
    assert parent.data.metrics == pytest.approx(expected, rel=1e-12)
    assert np.array_equal(pred, search.classes_[np.argmax(proba, axis=1)])
    # the signatures autolog gave scikit-learn's __init__ functions while logging are gone
    for cls in (GridSearchCV, LogisticRegression):
        assert "__signature__" not in cls.__init__.__dict__


def skl_artifact(run_id, name):
    return tracking.Client().artifact_dir(run_id, name).read_text()


def test_max_tuning_runs_none_and_two():
    dist = {"C": [0.01, 0.1, 1.0, 10.0]}
    skl.autolog(max_tuning_runs=None)
    RandomizedSearchCV(LogisticRegression(max_iter=300), dist, n_iter=4, cv=2, random_state=0).fit(
        X_IRIS, Y_IRIS
    )
    assert len(runs()) == 1 + 4
    skl.autolog(max_tuning_runs=2)
    with autolog.start_run() as user_run:
        RandomizedSearchCV(LogisticRegression(max_iter=300), dist, n_iter=4, cv=2).fit(
            X_IRIS, Y_IRIS
        )
    children = [r for r in runs() if r.info.parent_run_id == user_run.info.run_id]
    assert len(children) == 2


def test_cross_val_score_imported_before_autolog_makes_one_run_with_fold_scores():
    autolog.autolog()
    scores = cross_val_score(LogisticRegression(max_iter=500), X_IRIS, Y_IRIS, cv=4)

    run = only_run()
    assert run.data.params == {
        **str_params(LogisticRegression(max_iter=500)),
        "cross_val_score.cv": "4",
        "cross_val_score.scoring": "None",
    }
    assert run.data.tags["autolog.sklearn.function"] == "cross_val_score"
    history = autolog.get_metric_history(run.info.run_id, "test_score")
    assert [(p.step, p.value) for p in history] == [(i, s) for i, s in enumerate(scores)]
    assert run.data.metrics["mean_test_score"] == pytest.approx(scores.mean())
    assert run.data.metrics["std_test_score"] == pytest.approx(scores.std())
    assert set(run.data.metrics) == {"test_score", "mean_test_score", "std_test_score"}


def test_cross_validate_and_validation_curve():
    autolog.autolog()
    result = cross_validate(Ridge(), X_IRIS, Y_IRIS, cv=3, return_train_score=True)
    run = only_run()
    keys = ("fit_time", "score_time", "test_score", "train_score")
    assert set(run.data.metrics) == {f"{p}{k}" for k in keys for p in ("", "mean_", "std_")}
    history = autolog.get_metric_history(run.info.run_id, "train_score")
    assert [p.value for p in history] == pytest.approx(list(result["train_score"]))

    train, test = validation_curve(
        Ridge(), X_IRIS, Y_IRIS, param_name="alpha", param_range=[0.1, 1.0, 10.0], cv=3
    )
    run = runs()[-1]
    assert run.data.params["validation_curve.param_name"] == "alpha"
    curve = autolog.get_metric_history(run.info.run_id, "mean_test_score")
    assert [(p.step, p.value) for p in curve] == [
        (i, pytest.approx(v)) for i, v in enumerate(test.mean(axis=1))
    ]
    assert len(runs()) == 2


def test_learning_curve_and_permutation_test_score():
    autolog.autolog()
    sizes, _, test = learning_curve(
        Ridge(), X_IRIS, Y_IRIS, train_sizes=[0.5, 1.0], cv=3, shuffle=True, random_state=0
    )
    curve = autolog.get_metric_history(runs()[-1].info.run_id, "mean_test_score")
    assert [(p.step, p.value) for p in curve] == [
        (int(s), pytest.approx(v)) for s, v in zip(sizes, test.mean(axis=1))
    ]
    score, permuted, pvalue = permutation_test_score(
        Ridge(), X_IRIS, Y_IRIS, cv=2, n_permutations=3, random_state=0
    )
    run = runs()[-1]
    assert run.data.metrics["test_score"] == pytest.approx(score)
    assert run.data.metrics["pvalue"] == pytest.approx(pvalue)
    history = autolog.get_metric_history(run.info.run_id, "permutation_score")
    assert [p.value for p in history] == pytest.approx(list(permuted))
    assert run.data.params["permutation_test_score.n_permutations"] == "3"
    assert len(runs()) == 2


def test_autolog_before_sklearn_is_imported(tmp_path):
    """In a fresh process: autolog() first, every scikit-learn name imported after it."""
    script = textwrap.dedent(
        """
        import json, sys
        import autolog
        autolog.set_tracking_uri(sys.argv[1])
        autolog.autolog()
        assert "sklearn" not in sys.modules
        from sklearn.metrics import accuracy_score
        from sklearn.model_selection import cross_val_score
        from sklearn.base import BaseEstimator
        from sklearn.datasets import load_iris
        from sklearn.svm import SVC

        class Constant(BaseEstimator):
            def fit(self, X, y=None):
                return self

        X, y = load_iris(return_X_y=True)
        model = SVC().fit(X, y)
        y_hat = model.predict(X)
        accuracy_score(y, y_hat)
        cross_val_score(SVC(), X, y, cv=2)
        Constant().fit(X)
        found = autolog.search_runs(output_format="list", order_by=["start_time", "run_id"])
        print(json.dumps([[r.data.tags.get("estimator_name"), sorted(r.data.metrics)]
                          for r in found]))
        """
    )
    (tmp_path / "script.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, str(tmp_path / "script.py"), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        [
            "SVC",
            sorted(
                CLASSIFIER_METRICS - {"training_log_loss", "training_roc_auc"}
                | {"accuracy_score_X"}
            ),
        ],
        ["SVC", ["mean_test_score", "std_test_score", "test_score"]],
        ["Constant", []],
    ]


# -- the patching contract ---------------------------------------------------------------------


def test_not_patched_records_nothing_and_disable_restores_everything():
    original_fit = LogisticRegression.__dict__["fit"]
    original_cell = accuracy_score.__closure__[
        accuracy_score.__code__.co_freevars.index("func")
    ].cell_contents
    model = LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
    accuracy_score(Y_IRIS, model.predict(X_IRIS))
    cross_val_score(LogisticRegression(max_iter=500), X_IRIS, Y_IRIS, cv=2)
    assert runs() == []

    autolog.autolog()
    assert LogisticRegression.__dict__["fit"] is not original_fit
    assert "__init_subclass__" in BaseEstimator.__dict__
    autolog.autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original_fit
    assert "__init_subclass__" not in BaseEstimator.__dict__
    cell = accuracy_score.__closure__[accuracy_score.__code__.co_freevars.index("func")]
    assert cell.cell_contents is original_cell is accuracy_score.__wrapped__
    LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
    cross_val_score(LogisticRegression(max_iter=500), X_IRIS, Y_IRIS, cv=2)
    assert runs() == []


def test_user_exception_propagates_unchanged_and_run_failed():
    autolog.autolog()
    error = ValueError("bad training data")

    class Exploding(BaseEstimator):
        def __init__(self, depth=3):
            self.depth = depth

        def fit(self, X, y=None):
            raise error

    with pytest.raises(ValueError) as caught:
        Exploding().fit(X_IRIS, Y_IRIS)
    assert caught.value is error
    run = only_run()
    assert run.info.status == "FAILED"
    assert run.data.params == {"depth": "3"}


def _break_log_batch(monkeypatch):
    """Every store.log_batch of this test raises OSError('disk on fire')."""

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(tracking._store(), "log_batch", broken)


def test_injected_store_failure_warns_once_and_returns_the_fit_result(monkeypatch):
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    monkeypatch.setattr(patching, "_last_warning", {})
    autolog.autolog()
    _break_log_batch(monkeypatch)
    model = LogisticRegression(max_iter=500)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(X_IRIS, Y_IRIS)
    assert result is model
    assert model.coef_.shape == (3, 4)
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1
    assert "disk on fire" in str(ours[0].message)


def test_silent_swallows_the_warning_too(monkeypatch):
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    monkeypatch.setattr(patching, "_last_warning", {})
    skl.autolog(silent=True)
    _break_log_batch(monkeypatch)
    model = LogisticRegression(max_iter=500)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert model.fit(X_IRIS, Y_IRIS) is model
    assert [w for w in caught if issubclass(w.category, AutologWarning)] == []


def test_injected_store_failure_raises_under_autolog_testing(monkeypatch):
    autolog.autolog()
    _break_log_batch(monkeypatch)
    with pytest.raises(OSError, match="disk on fire"):
        LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)


def test_nested_fits_log_once():
    class TwoStage(BaseEstimator):
        """A user meta-estimator: its own fit runs two other fits."""

        def __init__(self, C=1.0):
            self.C = C

        def fit(self, X, y):
            self.scaler_ = StandardScaler().fit(X)
            self.model_ = LogisticRegression(C=self.C, max_iter=500).fit(
                self.scaler_.transform(X), y
            )
            return self

    autolog.autolog()
    TwoStage(C=0.5).fit(X_IRIS, Y_IRIS)
    assert only_run().data.params == {"C": "0.5"}

    voting = VotingClassifier(
        [("lr", LogisticRegression(max_iter=500)), ("rf", RandomForestClassifier(n_estimators=5))],
        voting="soft",
    ).fit(X_IRIS, Y_IRIS)
    found = runs()
    assert len(found) == 2
    assert found[1].data.params == str_params(voting)
    assert "lr__C" in found[1].data.params


def test_custom_estimators_defined_after_autolog_are_logged():
    autolog.autolog()

    class Threshold(ClassifierMixin, BaseEstimator):
        def __init__(self, feature=0, cut=3.0):
            self.feature = feature
            self.cut = cut

        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def predict(self, X):
            return self.classes_[(np.asarray(X)[:, self.feature] > self.cut).astype(int)]

    class TunedLogistic(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            return super().fit(X, y, sample_weight=sample_weight)

    binary = Y_IRIS > 0
    model = Threshold(cut=5.5).fit(X_IRIS, binary)
    TunedLogistic(max_iter=500).fit(X_IRIS, Y_IRIS)
    Majority().fit(X_IRIS, Y_IRIS)  # defined at import, before autolog()

    first, second, third = runs()
    assert first.data.params == {"feature": "0", "cut": "5.5"}
    assert user_tags(first) == {
        "estimator_name": "Threshold",
        "estimator_class": f"{__name__}.Threshold",
    }
    pred = model.predict(X_IRIS)  # post-training: a model logged by autolog
    weighted = {"average": "weighted"}
    assert first.data.metrics == pytest.approx(
        {
            "training_accuracy_score": np.mean(pred == binary),
            "training_precision_score": sklearn.metrics.precision_score(binary, pred, **weighted),
            "training_recall_score": sklearn.metrics.recall_score(binary, pred, **weighted),
            "training_f1_score": f1_score(binary, pred, **weighted),
            "training_precision_pos_label": sklearn.metrics.precision_score(binary, pred),
            "training_recall_pos_label": sklearn.metrics.recall_score(binary, pred),
            "training_f1_pos_label": f1_score(binary, pred),
            "training_score": np.mean(pred == binary),
        }
    )
    assert user_tags(second)["estimator_name"] == "TunedLogistic"
    assert set(second.data.metrics) == CLASSIFIER_METRICS
    assert third.data.params == {"strategy": "most_frequent"}


def test_classes_of_libraries_with_their_own_integration_are_left_to_it():
    autolog.autolog()

    def fit(self, X, y=None):
        return self

    Foreign = type("XGBLike", (BaseEstimator,), {"__module__": "xgboost.fake", "fit": fit})
    assert not patching.is_patched(Foreign, "fit")
    Foreign().fit(X_IRIS)
    assert runs() == []


def test_three_threads_fitting_at_once_make_three_runs_with_their_own_params():
    autolog.autolog()
    barrier = threading.Barrier(3)
    errors = []

    def train(C):
        try:
            barrier.wait()
            LogisticRegression(C=C, max_iter=500).fit(X_IRIS, Y_IRIS)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=train, args=(C,)) for C in (0.1, 1.0, 10.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found = runs()
    assert sorted(r.data.params["C"] for r in found) == ["0.1", "1.0", "10.0"]
    assert {r.info.status for r in found} == {"FINISHED"}
    assert all(set(r.data.metrics) == CLASSIFIER_METRICS for r in found)


def test_user_run_gets_the_logging_and_artifacts_before_it_ends():
    autolog.autolog()
    with autolog.start_run() as run:
        LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
        assert autolog.active_run().info.run_id == run.info.run_id
        # written after the fit on autolog's background thread; reads through autolog wait
        assert {"estimator.html", "training_confusion_matrix.png"} <= files(run.info.run_id)
    assert autolog.get_run(run.info.run_id).info.status == "FINISHED"
    assert len(runs()) == 1


def test_exclusive_skips_user_runs():
    skl.autolog(exclusive=True)
    with autolog.start_run() as run:
        LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
    assert autolog.get_run(run.info.run_id).data.metrics == {}
    assert len(runs()) == 1


# -- post-training metrics ---------------------------------------------------------------------


def test_post_training_metrics_with_metric_functions_imported_before_autolog():
    assert sklearn.metrics.accuracy_score is accuracy_score  # the same object, not replaced
    X_train, y_train = X_IRIS[::2], Y_IRIS[::2]
    X_test, y_test = X_IRIS[1::2], Y_IRIS[1::2]
    autolog.autolog()
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    run_id = only_run().info.run_id

    y_pred = model.predict(X_test)
    acc = accuracy_score(y_test, y_pred)
    macro = f1_score(y_test, y_pred, average="macro")  # calls fbeta_score inside: logged once
    proba = model.predict_proba(X_test)
    auc = roc_auc_score(y_test, proba, multi_class="ovr")
    again = accuracy_score(y_test, y_pred, normalize=True)
    score = model.score(X_test, y_test)
    train_acc = accuracy_score(y_train, model.predict(X_train))
    accuracy_score(y_test, y_test)  # not a prediction of a logged model: nothing
    other = LogisticRegression(max_iter=500)
    with patching_disabled():
        other.fit(X_train, y_train)
    accuracy_score(y_test, other.predict(X_test))  # a model autolog did not log: nothing

    metrics = autolog.get_run(run_id).data.metrics
    post = {k: v for k, v in metrics.items() if not k.startswith("training_")}
    assert post == pytest.approx(
        {
            "accuracy_score_X_test": acc,
            "f1_score_X_test": macro,
            "roc_auc_score_X_test": auc,
            "accuracy_score-2_X_test": again,
            "LogisticRegression_score_X_test": score,
            "accuracy_score-3_X_train": train_acc,  # the call index counts per metric
        }
    )
    info = json.loads(skl_artifact(run_id, "metric_info.json"))
    assert info == {
        "LogisticRegression_score_X_test": "LogisticRegression.score(X=X_test, y=y_test)",
        "accuracy_score-2_X_test": "accuracy_score(y_true=y_test, y_pred=y_pred, normalize=True)",
        "accuracy_score_X_test": "accuracy_score(y_true=y_test, y_pred=y_pred)",
        "accuracy_score-3_X_train": "accuracy_score(y_true=y_train, y_pred=<ndarray>)",
        "f1_score_X_test": "f1_score(y_true=y_test, y_pred=y_pred, average='macro')",
        "roc_auc_score_X_test": "roc_auc_score(y_true=y_test, y_score=proba, multi_class='ovr')",
    }
    assert len(runs()) == 1


class patching_disabled:
    """Fit something without autolog for the span of a block."""

    def __enter__(self):
        autolog.autolog(disable=True)

    def __exit__(self, *exc):
        autolog.autolog()


def test_post_training_metric_on_a_slice_of_predict_proba_and_helper_functions():
    X, y = binary_data(labels=(0, 1))
    X_fit, y_fit, X_holdout, y_holdout = X[:150], y[:150], X[150:], y[150:]
    autolog.autolog()
    model = LogisticRegression(max_iter=500).fit(X_fit, y_fit)

    def evaluate(clf, data, target):  # the dataset is named after the caller's variable
        return roc_auc_score(target, clf.predict_proba(data)[:, 1])

    auc = evaluate(model, X_holdout, y_holdout)
    metrics = autolog.get_run(only_run().info.run_id).data.metrics
    assert metrics["roc_auc_score_X_holdout"] == pytest.approx(auc)


def test_post_training_metrics_can_be_turned_off():
    skl.autolog(log_post_training_metrics=False)
    model = LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
    accuracy_score(Y_IRIS, model.predict(X_IRIS))
    model.score(X_IRIS, Y_IRIS)
    assert set(only_run().data.metrics) == CLASSIFIER_METRICS


# -- flags ---------------------------------------------------------------------------------------


def test_input_example_no_models_and_sample_cap():
    skl.autolog(log_input_examples=True, metrics_max_rows=50, log_plots=False)
    LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
    run = runs()[-1]
    assert "model/input_example.json" in files(run.info.run_id)
    example = json.loads(skl_artifact(run.info.run_id, "model/input_example.json"))
    assert example == X_IRIS[:5].tolist()
    assert run.data.tags["autolog.sklearn.training_metrics_rows"] == "50"
    rows = np.sort(np.random.default_rng(0).choice(150, size=50, replace=False))
    with patching_disabled():
        reference = LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
    expected = accuracy_score(Y_IRIS[rows], reference.predict(X_IRIS[rows]))
    assert run.data.metrics["training_accuracy_score"] == pytest.approx(expected)
    assert "training_confusion_matrix.png" not in files(run.info.run_id)

    skl.autolog(log_models=False, log_plots=False)
    LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
    assert files(runs()[-1].info.run_id) == {"estimator.html"}


def test_charts_are_drawn_from_scikit_learns_confusion_matrix_and_curves():
    from autolog import plots

    X, y = binary_data(n=300)
    w = np.linspace(0.5, 2.0, len(y))
    skl.autolog(pos_label="yes", log_models=False)
    model = LogisticRegression(max_iter=500).fit(X, y, sample_weight=w)
    run = only_run()
    with patching_disabled():  # sklearn.metrics on its predictions would log post-training metrics
        pred, scores = model.predict(X), model.predict_proba(X)[:, 1]
        matrix = sklearn.metrics.confusion_matrix(y, pred, labels=["no", "yes"], sample_weight=w)
        fpr, tpr, _ = sklearn.metrics.roc_curve(y, scores, pos_label="yes", sample_weight=w)
        auc = roc_auc_score(y, scores, sample_weight=w)
        precision, recall, _ = sklearn.metrics.precision_recall_curve(
            y, scores, pos_label="yes", sample_weight=w
        )
        ap = sklearn.metrics.average_precision_score(y, scores, pos_label="yes", sample_weight=w)
    assert run.data.metrics["training_roc_auc"] == auc  # the same computation: exactly equal
    # the precision-recall steps from the highest threshold, without scikit-learn's end point
    p, r = precision[:-1][::-1], recall[:-1][::-1]
    steps = (np.concatenate([[0.0], np.repeat(r, 2)[:-1]]), np.repeat(p, 2))
    expected = {
        "training_confusion_matrix.png": plots.confusion_matrix_png(
            matrix, ["no", "yes"], "Confusion matrix (training data)"
        ),
        "training_roc_curve.png": plots.line_chart_png(
            [(f"AUC = {auc:.3f}", fpr, tpr)],
            "ROC curve (training data)",
            "False positive rate (positive label: yes)",
            "True positive rate",
            diagonal=True,
        ),
        "training_precision_recall_curve.png": plots.line_chart_png(
            [(f"AP = {ap:.3f}", *steps)],
            "Precision-recall curve (training data)",
            "Recall (positive label: yes)",
            "Precision",
        ),
    }
    for name, png in expected.items():
        assert tracking.Client().artifact_dir(run.info.run_id, name).read_bytes() == png, name


def test_html_lists_stored_fitted_attributes_without_evaluating_properties():
    class Counting(ClassifierMixin, BaseEstimator):
        evaluated = 0

        def __init__(self, c=1.0):
            self.c = c

        def fit(self, X, y):
            self.classes_ = np.unique(y)
            self.weights_ = np.zeros(X.shape[1])
            return self

        @property
        def expensive_(self):
            type(self).evaluated += 1
            return 42

        def predict(self, X):
            return np.full(len(X), self.classes_[0])

    autolog.autolog()
    Counting().fit(X_IRIS, Y_IRIS)
    html = skl_artifact(only_run().info.run_id, "estimator.html")
    assert Counting.evaluated == 0
    assert "weights_" in html and "classes_" in html and "expensive_" not in html
    with patching_disabled():
        assert "expensive_" in estimator_html_repr(Counting().fit(X_IRIS, Y_IRIS))


def test_html_fitted_attribute_values_are_brief_and_never_fully_printed():
    class Loud:
        printed = 0

        def __repr__(self):
            type(self).printed += 1
            return "Loud()"

    class Holder(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.unique(y)
            self.coef_ = np.arange(12.0)
            self.members_ = [LogisticRegression(C=c) for c in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)]
            self.table_ = {"score": np.arange(3.0), "name": "abc", "rank": 2}
            self.loud_ = Loud()
            self.best_ = LogisticRegression(C=9.0)
            return self

        def predict(self, X):
            return np.full(len(X), self.classes_[0])

    autolog.autolog()
    Holder().fit(X_IRIS, Y_IRIS)
    html = skl_artifact(only_run().info.run_id, "estimator.html")
    assert Loud.printed == 0
    # scikit-learn's own summaries of arrays, 4 items of a list, an ellipsis after them
    assert "[ 0., 1., 2.,..., 9.,10.,11.]" in html
    assert "[LogisticRegression(...), LogisticRegression(...), LogisticRegression(...), " in html
    assert "LogisticRegression(...), ...]" in html
    # reprlib sorts the keys and shortens the long text in the middle
    assert (
        "{&#x27;name&#x27;: &#x27;abc&#x27;, &#x27;rank&#x27;: 2, &#x27;score&#x27;: "
        "array(shape=(...dtype=float64)}" in html
    )
    assert "&lt;Loud&gt;" in html
    assert "C=9.0" not in html.split("Fitted attributes")[1]
    assert (skl_html.brief(3.5), skl_html.brief("x"), skl_html.brief(None)) == (3.5, "x", None)
    assert repr(skl_html.brief({"a": [np.zeros((2, 3))]})) == (
        "{'a': [array(shape=(2, 3), dtype=float64)]}"
    )


def test_html_is_scikit_learns_diagram_and_no_scikit_learn_helper_is_patched():
    import re

    from sklearn.utils._repr_html import fitted_attributes, params

    helpers = (params.get_docstring, fitted_attributes.get_docstring)
    seen_during_fit = []

    class Probe(RandomForestClassifier):
        def fit(self, X, y):
            seen_during_fit.append(
                "__signature__" in RandomForestClassifier.__init__.__dict__
                or (params.get_docstring, fitted_attributes.get_docstring) != helpers
            )
            return super().fit(X, y)

    autolog.autolog()
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X_IRIS, Y_IRIS)
    html = skl_artifact(only_run().info.run_id, "estimator.html")
    Probe(n_estimators=3, random_state=0).fit(X_IRIS, Y_IRIS)  # a second fit: nothing left over
    assert seen_during_fit == [False]
    assert (params.get_docstring, fitted_attributes.get_docstring) == helpers
    assert "__signature__" not in RandomForestClassifier.__init__.__dict__

    def ids(text):
        return re.sub(r"sk-(container|estimator)-id-\d+", "ID", text)

    assert "n_estimators: int, default=100" in html  # a parameter tooltip
    assert "estimators_: list of DecisionTreeClassifier" in html  # a fitted attribute tooltip
    assert ids(html) == ids(estimator_html_repr(skl_html.html_view(model)))


@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle"])
def test_flavor_pickles_with_protocol_5_and_reloads(tmp_path, fmt):
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X_IRIS, Y_IRIS)
    skl.save_model(model, tmp_path / "m", serialization_format=fmt)
    assert (tmp_path / "m" / "model.pkl").read_bytes()[:2] == b"\x80\x05"
    loaded = skl.load_model(tmp_path / "m", allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict_proba(X_IRIS), model.predict_proba(X_IRIS))


def test_flavor_skops_save_load_and_mlflow_fields(tmp_path):
    model = LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
    skl.save_model(model, tmp_path / "m", serialization_format="skops")
    meta = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    section = meta["flavors"]["sklearn"]
    assert section["pickled_model"] == "model.skops"
    assert section["serialization_format"] == "skops"
    assert isinstance(section["skops_trusted_types"], list)
    assert meta["flavors"]["python_function"]["model_path"] == "model.skops"
    assert meta["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert "skops" in (tmp_path / "m" / "requirements.txt").read_text()
    np.testing.assert_array_equal(
        skl.load_model(tmp_path / "m").predict(X_IRIS), model.predict(X_IRIS)
    )
    np.testing.assert_array_equal(
        autolog.load_model(tmp_path / "m").predict(X_IRIS), model.predict(X_IRIS)
    )

    skl.autolog(serialization_format="skops")
    LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS)
    run_id = only_run().info.run_id
    assert "model/model.skops" in files(run_id)
    assert isinstance(skl.load_model(f"runs:/{run_id}/model"), LogisticRegression)
    with pytest.raises(autolog.AutologError, match="serialization_format"):
        skl.autolog(serialization_format="json")


def test_log_model_into_a_run():
    model = Ridge().fit(X_IRIS, Y_IRIS)
    with autolog.start_run() as run:
        info = skl.log_model(model, "ridge", input_example=X_IRIS[:3])
    assert info.model_uri == f"runs:/{run.info.run_id}/ridge"
    np.testing.assert_allclose(
        skl.load_model(info.model_uri).predict(X_IRIS), model.predict(X_IRIS)
    )
    assert mlmodel(run.info.run_id, "ridge")["saved_input_example_info"]["type"] == "ndarray"


# -- the training metrics are scikit-learn's own values, exactly ---------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_training_metrics_are_exactly_scikit_learns(weighted):
    X, y_int = make_classification(
        n_samples=240, n_features=6, n_informative=4, n_classes=3, random_state=1
    )
    y = np.array(["ant", "bee", "cat"], dtype=object)[y_int]  # string labels, three classes
    w = np.linspace(0.2, 3.0, len(y)) if weighted else None
    autolog.autolog(log_models=False)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y, sample_weight=w)
    with patching_disabled():
        expected = mlflow_classifier_metrics(model, X, y, w, pos_label=None)
    # MLflow's one-vs-one AUC refuses sample weights: no training_roc_auc then, in either
    assert ("training_roc_auc" in expected) is (not weighted)
    assert runs()[-1].data.metrics == expected

    target = np.column_stack([X @ np.arange(1.0, 7.0), 10 * np.sin(X[:, 0])])  # two outputs
    reg = Ridge(alpha=3.0).fit(X, target, sample_weight=w)
    with patching_disabled():
        expected = mlflow_regressor_metrics(reg, X, target, w)
        per_output_roots = sklearn.metrics.root_mean_squared_error(target, reg.predict(X))
    assert runs()[-1].data.metrics == expected
    # MLflow's RMSE is the root of the averaged MSE, not the average of the outputs' roots
    assert expected["training_root_mean_squared_error"] != per_output_roots


def test_metric_configuration_is_autologs_own_and_the_users_is_left_as_it_was():
    """The metrics run under sklearn.config_context(skip_parameter_validation=True): scikit-learn's
    thread-local configuration is the user's again when the fit returns, and their metric calls
    validate their arguments as without autolog."""
    X, y = binary_data()
    autolog.autolog(log_models=False)
    before = sklearn.get_config()
    with sklearn.config_context(assume_finite=True):
        inside = sklearn.get_config()
        LogisticRegression().fit(X, y)
        assert sklearn.get_config() == inside
    assert sklearn.get_config() == before
    assert before["skip_parameter_validation"] is False
    assert set(runs()[-1].data.metrics) == BINARY_METRICS
    with pytest.raises(ValueError, match="normalize"):
        accuracy_score(y, y, normalize="yes")


def mlflow_classifier_metrics(model, X, y, w, pos_label):
    """The training metrics as MLflow 3's mlflow.sklearn.utils._get_classifier_metrics and
    _log_estimator_content call scikit-learn (a metric that raises is left out, as there)."""
    average = "weighted" if pos_label is None else "binary"
    pred, proba = model.predict(X), model.predict_proba(X)
    scores = proba[:, 1] if proba.shape[1] == 2 else proba
    calls = {
        "training_precision_score": lambda: sklearn.metrics.precision_score(
            y, pred, pos_label=pos_label, average=average, sample_weight=w
        ),
        "training_recall_score": lambda: sklearn.metrics.recall_score(
            y, pred, pos_label=pos_label, average=average, sample_weight=w
        ),
        "training_f1_score": lambda: f1_score(
            y, pred, pos_label=pos_label, average=average, sample_weight=w
        ),
        "training_accuracy_score": lambda: accuracy_score(y, pred, normalize=True, sample_weight=w),
        "training_log_loss": lambda: sklearn.metrics.log_loss(y, proba, sample_weight=w),
        "training_roc_auc": lambda: roc_auc_score(
            y, scores, average="weighted", sample_weight=w, multi_class="ovo"
        ),
        "training_score": lambda: model.score(X, y, sample_weight=w),
    }
    out = {}
    for key, call in calls.items():
        try:
            out[key] = call()
        except ValueError:
            pass
    return out


def mlflow_regressor_metrics(model, X, y, w):
    """As MLflow 3's mlflow.sklearn.utils._get_regressor_metrics computes them."""
    pred = model.predict(X)
    args = {"sample_weight": w, "multioutput": "uniform_average"}
    mse = sklearn.metrics.mean_squared_error(y, pred, **args)
    r2 = sklearn.metrics.r2_score(y, pred, **args)
    return {
        "training_mean_squared_error": mse,
        "training_mean_absolute_error": sklearn.metrics.mean_absolute_error(y, pred, **args),
        "training_r2_score": r2,
        "training_root_mean_squared_error": np.sqrt(mse),
        "training_score": model.score(X, y, sample_weight=w),
    }


# -- MLflow parity: same numbers under the same names, the best estimator, the flags -------------


@pytest.mark.parametrize("pos_label", [None, "no", "yes"])
def test_binary_metrics_are_mlflows_and_the_positive_labels_scores_have_keys_of_their_own(
    pos_label,
):
    X, y = binary_data(labels=("no", "yes"))
    w = np.linspace(0.5, 2.0, len(y))
    skl.autolog(pos_label=pos_label, log_models=False)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y, sample_weight=w)
    with patching_disabled():
        expected = mlflow_classifier_metrics(model, X, y, w, pos_label)
        pred = model.predict(X)
    if pos_label is None:  # MLflow's keys hold its weighted averages; "yes" is the greater label
        expected.update(
            training_precision_pos_label=sklearn.metrics.precision_score(
                y, pred, pos_label="yes", sample_weight=w
            ),
            training_recall_pos_label=sklearn.metrics.recall_score(
                y, pred, pos_label="yes", sample_weight=w
            ),
            training_f1_pos_label=f1_score(y, pred, pos_label="yes", sample_weight=w),
        )
    assert set(expected) == (BINARY_METRICS if pos_label is None else CLASSIFIER_METRICS)
    assert only_run().data.metrics == expected


def test_multiclass_roc_auc_is_mlflows_one_vs_one():
    X, y = make_classification(
        n_samples=240, n_features=6, n_informative=4, n_classes=3, random_state=1
    )
    skl.autolog(log_models=False)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with patching_disabled():
        expected = mlflow_classifier_metrics(model, X, y, None, None)
        proba = model.predict_proba(X)
    assert only_run().data.metrics == expected
    ovr = roc_auc_score(y, proba, multi_class="ovr", average="weighted")
    assert expected["training_roc_auc"] != ovr  # so the test tells the two apart


def search_frame():
    X, y = make_classification(
        n_samples=160, n_features=4, n_informative=3, n_redundant=0, random_state=2
    )
    return pd.DataFrame(X, columns=["a", "b", "c", "d"]), y


def halving_search(estimator, grid, **kwargs):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    return HalvingGridSearchCV(estimator, grid, random_state=0, **kwargs)


@pytest.mark.parametrize("kind", ["grid", "randomized", "halving"])
def test_searches_log_best_estimator_as_a_second_model_with_the_signature(kind):
    frame, y = search_frame()
    grid = {"C": [0.01, 0.1, 1.0]}
    base = LogisticRegression(max_iter=300)
    search = {
        "grid": lambda: GridSearchCV(base, grid, cv=3),
        "randomized": lambda: RandomizedSearchCV(base, grid, n_iter=3, cv=3, random_state=0),
        "halving": lambda: halving_search(base, grid, cv=3),
    }[kind]()
    skl.autolog(log_input_examples=True)
    search.fit(frame, y)

    parent = next(r for r in runs() if r.info.parent_run_id is None)
    run_id = parent.info.run_id
    expected_params = {k: str(v) for k, v in search.get_params(deep=False).items()}
    expected_params["best_C"] = str(search.best_params_["C"])
    assert parent.data.params == expected_params
    assert not any("__" in key for key in parent.data.params)

    model_meta, best_meta = mlmodel(run_id, "model"), mlmodel(run_id, "best_estimator")
    assert best_meta["artifact_path"] == "best_estimator"
    assert best_meta["signature"] == model_meta["signature"]
    assert [c["name"] for c in json.loads(best_meta["signature"]["inputs"])] == list(frame.columns)
    assert json.loads(best_meta["signature"]["outputs"]) == [{"type": "long", "required": True}]
    example = json.loads(skl_artifact(run_id, "best_estimator/input_example.json"))
    assert example["columns"] == list(frame.columns) and len(example["data"]) == 5

    best = skl.load_model(f"runs:/{run_id}/best_estimator")
    assert type(best) is LogisticRegression and search.best_params_["C"] == best.C
    with patching_disabled():
        expected = search.best_estimator_.predict(frame)
    np.testing.assert_array_equal(best.predict(frame), expected)
    pyfunc = autolog.load_model(f"runs:/{run_id}/best_estimator")  # signature enforced
    np.testing.assert_array_equal(np.asarray(pyfunc.predict(frame)), expected)
    assert type(skl.load_model(f"runs:/{run_id}/model")) is type(search)
    history = json.loads(parent.data.tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["model", "best_estimator"]


def test_deep_search_params_flag_logs_the_estimators_params_too():
    grid = {"C": [0.1, 1.0]}
    skl.autolog(deep_search_params=True, log_models=False)
    search = GridSearchCV(LogisticRegression(max_iter=300), grid, cv=2).fit(X_IRIS, Y_IRIS)
    parent = next(r for r in runs() if r.info.parent_run_id is None)
    assert parent.data.params == {**str_params(search), "best_C": str(search.best_params_["C"])}
    assert parent.data.params["estimator__max_iter"] == "300"


def test_search_without_refit_logs_itself_as_the_model_and_no_best_estimator():
    skl.autolog()
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2, refit=False)
    search.fit(X_IRIS, Y_IRIS)
    parent = next(r for r in runs() if r.info.parent_run_id is None)
    assert parent.data.metrics == {"best_cv_score": search.best_score_}
    assert not any(f.startswith("best_estimator/") for f in files(parent.info.run_id))
    logged = skl.load_model(f"runs:/{parent.info.run_id}/model")
    assert type(logged) is GridSearchCV and logged.best_params_ == search.best_params_


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3"])
def test_max_tuning_runs_must_be_a_non_negative_integer_or_none(bad):
    with pytest.raises(autolog.errors.IntegrationError) as caught:
        skl.autolog(max_tuning_runs=bad)
    assert str(caught.value) == (
        f"max_tuning_runs={bad!r} is not allowed; give the number of best candidates of a "
        "search to log as child runs (an integer >= 0), or None for all"
    )
    assert patching.patches_of("sklearn") == []  # nothing was enabled


def test_max_tuning_runs_zero_logs_no_children():
    skl.autolog(max_tuning_runs=0, log_models=False)
    GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2).fit(X_IRIS, Y_IRIS)
    assert len(runs()) == 1


class AddRatioInPlace(TransformerMixin, BaseEstimator):
    """A step that adds a column to the frame it is given, the caller's own, during fit."""

    def fit(self, X, y=None):
        X["ratio"] = X["a"] / X["b"]
        return self

    def transform(self, X):
        out = X.copy()
        out["ratio"] = out["a"] / out["b"]
        return out


@pytest.mark.parametrize("examples", [False, True])
def test_signature_and_example_come_from_the_input_before_fit(examples):
    frame, y = search_frame()
    original = frame.copy()
    pipe = Pipeline([("ratio", AddRatioInPlace()), ("clf", LogisticRegression(max_iter=300))])
    skl.autolog(log_input_examples=examples)
    pipe.fit(frame, y)
    assert list(frame.columns) == ["a", "b", "c", "d", "ratio"]  # fit did change the caller's X

    run_id = only_run().info.run_id
    meta = mlmodel(run_id)
    assert [c["name"] for c in json.loads(meta["signature"]["inputs"])] == ["a", "b", "c", "d"]
    if examples:
        example = json.loads(skl_artifact(run_id, "model/input_example.json"))
        assert example["columns"] == ["a", "b", "c", "d"]
        # autolog.models writes frames with pandas' to_json: 10 decimals
        np.testing.assert_allclose(example["data"], original.head(5).values, rtol=0, atol=1e-10)
    else:
        assert "model/input_example.json" not in files(run_id)
    loaded = autolog.load_model(f"runs:/{run_id}/model")  # the original columns pass the check
    with patching_disabled():
        expected = pipe.predict(original)
    np.testing.assert_array_equal(np.asarray(loaded.predict(original)), expected)


def test_binary_weighted_metrics_with_a_class_never_predicted_are_mlflows():
    X, y = binary_data(labels=(0, 1))
    y = np.where(np.arange(len(y)) < 150, 0, y)  # a majority of 0s: Majority predicts only 0
    skl.autolog(log_models=False)
    model = Majority().fit(X, y)
    with patching_disabled():
        pred = model.predict(X)
        expected = {
            key: fn(y, pred, pos_label=None, average="weighted", zero_division=0.0)
            for key, fn in (
                ("training_precision_score", sklearn.metrics.precision_score),
                ("training_recall_score", sklearn.metrics.recall_score),
                ("training_f1_score", f1_score),
            )
        }
    expected.update(
        training_accuracy_score=accuracy_score(y, pred),
        training_score=accuracy_score(y, pred),
        training_precision_pos_label=0.0,  # 1 is never predicted: zero_division's 0
        training_recall_pos_label=0.0,
        training_f1_pos_label=0.0,
    )
    assert only_run().data.metrics == expected


def test_registered_model_name_registers_the_search_as_mlflow_does():
    from autolog import registry

    skl.autolog(registered_model_name="tuned")
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2)
    search.fit(X_IRIS, Y_IRIS)
    parent = next(r for r in runs() if r.info.parent_run_id is None)
    versions = registry.search_model_versions("name = 'tuned'")
    assert [(v.version, v.run_id) for v in versions] == [("1", parent.info.run_id)]
    assert type(skl.load_model("models:/tuned/1")) is GridSearchCV

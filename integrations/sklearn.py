"""scikit-learn autologging: every fit, search, cross-validation and post-training metric.

Usage::

    import autolog
    autolog.autolog()            # or: from integrations import sklearn; sklearn.autolog(...)

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    model = LogisticRegression().fit(X_train, y_train)    # one run: params, metrics, model
    accuracy_score(y_test, model.predict(X_test))         # + metric accuracy_score_X_test

What each run holds (keys, artifacts, flags, caveats) is documented in docs/sklearn.md.

How it hooks in, without importing every scikit-learn module:

- Estimators. ``fit``/``fit_transform``/``fit_predict`` (logging) and ``predict``,
  ``predict_proba``, ``predict_log_proba``, ``decision_function``, ``score`` (post-training
  metrics) are patched on every ``BaseEstimator`` subclass, and on the scikit-learn mixins in
  its MRO, that define them in their own ``__dict__``. Classes that exist when autolog starts
  are found through ``__subclasses__()`` (``sklearn.utils.all_estimators()`` would import every
  scikit-learn module: seconds); classes created later (a scikit-learn module imported later, the
  user's own estimators) are patched from a ``BaseEstimator.__init_subclass__`` hook, removed on
  disable. Classes of libraries with their own integration (XGBoost, LightGBM, ...) are left to it.
- Functions. scikit-learn's public functions (every ``sklearn.metrics`` function,
  ``cross_val_score`` and friends) are wrapped by ``validate_params``, whose closure cell
  ``func`` holds the implementation. autolog swaps the content of that cell, so the function
  object users already hold, e.g. after ``from sklearn.metrics import accuracy_score`` done before
  ``autolog()``, runs through autolog; disable swaps it back. A function without that wrapper
  (none in the supported versions) is patched as a module attribute instead.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import itertools
import math
import numbers
import sys
import threading
import time
import types
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autolog import integration, models, patching, tracking
from autolog.errors import AutologError, ModelError
from autolog.models import MLflowSklearnFlavor

LIBRARY = "sklearn"
DISTRIBUTIONS = ("scikit-learn",)
SUPPORTED_VERSIONS = ">=1.3,<1.10"

INTEGRATION = "sklearn"

# -- keys -----------------------------------------------------------------------------------

TRAINING_PREFIX = "training_"
ESTIMATOR_NAME_TAG = "estimator_name"
ESTIMATOR_CLASS_TAG = "estimator_class"
FUNCTION_TAG = "autolog.sklearn.function"
METRICS_SAMPLE_TAG = "autolog.sklearn.training_metrics_rows"
BEST_PARAM_PREFIX = "best_"
BEST_CV_SCORE = "best_cv_score"
MODEL_ARTIFACT = "model"
CV_RESULTS_ARTIFACT = "cv_results.csv"
HTML_ARTIFACT = "estimator.html"
CONFUSION_MATRIX_ARTIFACT = "training_confusion_matrix.png"
ROC_CURVE_ARTIFACT = "training_roc_curve.png"
PR_CURVE_ARTIFACT = "training_precision_recall_curve.png"
METRIC_INFO_ARTIFACT = "metric_info.json"
UNKNOWN_DATASET = "unknown_dataset"

# Training metrics are computed on at most this many rows (a seeded random sample above it).
DEFAULT_METRICS_MAX_ROWS = 100_000
# silhouette_score is quadratic in rows: computed on a seeded sample of at most this many.
SILHOUETTE_MAX_ROWS = 1_000
INPUT_EXAMPLE_ROWS = 5
SERIALIZATION_FORMATS = ("cloudpickle", "pickle", "skops")

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
CV_FUNCTIONS = (
    "cross_validate",
    "cross_val_score",
    "cross_val_predict",
    "learning_curve",
    "validation_curve",
    "permutation_test_score",
)
# Arguments of the cross-validation functions logged as params "<function>.<argument>".
CV_LOGGED_ARGS = (
    "cv",
    "scoring",
    "method",
    "train_sizes",
    "param_name",
    "param_range",
    "n_permutations",
)
# Fitted on its own, an estimator from these modules makes no run (as in MLflow); its session
# still keeps the fits it makes inside quiet.
QUIET_MODULES = (
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
)
QUIET_CLASSES = ("sklearn.compose._column_transformer.ColumnTransformer",)
# sklearn.metrics functions that are not metrics.
NOT_METRICS = ("check_scoring", "get_scorer", "make_scorer", "get_scorer_names")


# -- patched methods ---------------------------------------------------------------------------


def _patched_fit(call: patching.OriginalCall, instance: Any, args: tuple, kwargs: dict) -> Any:
    """fit / fit_transform / fit_predict of an estimator: one run, unless a lone transformer."""
    if not _is_estimator(instance) or _is_quiet(type(instance)):
        return call(*args, **kwargs)
    session = patching.current_session()
    assert session is not None
    cfg = session.config
    run_id = session.run_id  # before the fit: a failing fit leaves a FAILED run
    store = tracking._store()
    with _cached_signatures(instance):
        store.log_batch(run_id, params=_params_of(instance), tags=_estimator_tags(instance))
    result = call(*args, **kwargs)
    X, y, sample_weight = _fit_inputs(call.wrapped, args, kwargs)
    _log_fitted(run_id, instance, X, y, sample_weight, cfg)
    return result


def _patched_predict(call: patching.OriginalCall, instance: Any, args: tuple, kwargs: dict) -> Any:
    """predict & co. of a model autolog logged: remember which run and dataset the result is of."""
    result = call(*args, **kwargs)
    run_id = _run_of_model(instance)
    if run_id is not None and _post_training_on():
        X = args[0] if args else next(iter(kwargs.values()), None)
        _register_prediction(result, run_id, _dataset_name(run_id, X))
    return result


def _patched_score(call: patching.OriginalCall, instance: Any, args: tuple, kwargs: dict) -> Any:
    """model.score(X, y) on a model autolog logged: logged as <Class>_score_<dataset>."""
    run_id = _run_of_model(instance)
    if run_id is None or not _post_training_on():
        return call(*args, **kwargs)
    result = call(*args, **kwargs)
    X = args[0] if args else next(iter(kwargs.values()), None)
    dataset = _dataset_name(run_id, X)
    command = _call_command(f"{type(instance).__name__}.score", call.wrapped, args, kwargs)
    _log_post_training_metric(run_id, f"{type(instance).__name__}_score", dataset, command, result)
    return result


def _make_patched_cv_function(name: str) -> patching.PatchFn:
    """cross_val_score & co.: one run for the outer call, fold scores as metrics."""

    def patched(call: patching.OriginalCall, instance: Any, args: tuple, kwargs: dict) -> Any:
        bound = _bind(call.wrapped, args, kwargs)
        estimator = bound.get("estimator")
        session = patching.current_session()
        assert session is not None
        run_id = session.run_id
        params: dict[str, Any] = {}
        tags = {FUNCTION_TAG: name}
        if _is_estimator(estimator):
            params.update(_params_of(estimator))
            tags.update(_estimator_tags(estimator))
        for arg in CV_LOGGED_ARGS:
            if arg in bound:
                params[f"{name}.{arg}"] = _param_value(bound[arg])
        tracking._store().log_batch(run_id, params=params, tags=tags)
        result = call(*args, **kwargs)
        points = _cv_metric_points(name, result)
        if points:
            ts = _now_ms()
            metrics = [(k, _as_float(v), ts, step) for k, v, step in points]
            tracking._store().log_batch(run_id, metrics=metrics)
        return result

    patched.__name__ = f"_patched_{name}"
    return patched


# -- what a fit logs -------------------------------------------------------------------------


def _log_fitted(
    run_id: str,
    est: Any,
    X: Any,
    y: Any,
    sample_weight: Any,
    cfg: integration.Config,
) -> None:
    """Everything logged once the fit returned; each part fails on its own."""
    with _cached_signatures(est):  # a search's best_estimator_ too
        silent = bool(cfg.silent)
        outcome = patching.guarded(
            INTEGRATION, _log_training_metrics, run_id, est, X, y, sample_weight, cfg, silent=silent
        )
        y_pred, plots = outcome if outcome is not None else (None, None)
        search = _is_search(est)
        if search:
            patching.guarded(INTEGRATION, _log_search, run_id, est, cfg, silent=silent)
        if cfg.log_models:
            model = est.best_estimator_ if search and hasattr(est, "best_estimator_") else est
            if not search or model is not est:
                patching.guarded(
                    INTEGRATION, _log_model_of_run, run_id, model, X, y_pred, cfg, silent=silent
                )
        _register_model(est, run_id)
        # Written during the fit (a few ms), so they exist when the run ends.
        patching.guarded(INTEGRATION, _write_html_repr, run_id, est, silent=silent)
        if plots is not None and cfg.get("log_plots", True):
            patching.guarded(INTEGRATION, _write_classifier_plots, run_id, *plots, silent=silent)


def _log_training_metrics(
    run_id: str, est: Any, X: Any, y: Any, sample_weight: Any, cfg: integration.Config
) -> tuple[Any, tuple | None]:
    """Metrics on (a sample of) the training data; returns (predictions, plot inputs)."""
    import numpy as np
    from sklearn import base

    cap = cfg.get("metrics_max_rows", DEFAULT_METRICS_MAX_ROWS)
    n_rows = _n_rows(X)
    tags: dict[str, Any] = {}
    if y is not None and n_rows is not None and cap is not None and n_rows > cap:
        X, y, sample_weight = _sample_rows(X, y, sample_weight, n_rows, cap)
        tags[METRICS_SAMPLE_TAG] = cap
    metrics: dict[str, float] = {}
    y_pred = None
    plots = None
    if y is not None and base.is_classifier(est):
        y_pred, plots = _classifier_metrics(est, X, y, sample_weight, cfg.get("pos_label"), metrics)
    elif y is not None and base.is_regressor(est):
        y_pred = _regressor_metrics(est, X, y, sample_weight, metrics)
    elif _is_clusterer(est):
        _clusterer_metrics(est, X, metrics)
    if y is not None and "training_score" not in metrics and hasattr(est, "score"):
        value = _score(est, X, y, sample_weight)
        if value is not None:
            metrics[TRAINING_PREFIX + "score"] = value
    if _is_search(est) and isinstance(getattr(est, "best_score_", None), (int, float, np.number)):
        metrics[BEST_CV_SCORE] = float(est.best_score_)
    ts = _now_ms()
    points = [(k, _as_float(v), ts, 0) for k, v in metrics.items()]
    if points or tags:
        tracking._store().log_batch(run_id, metrics=points, tags=tags)
    return y_pred, plots


def _classifier_metrics(
    est: Any, X: Any, y: Any, sw: Any, pos_label: Any, out: dict[str, float]
) -> tuple[Any, tuple | None]:
    import numpy as np
    from sklearn import metrics

    proba = None
    # a refitted search predicts with its best estimator: ask it directly
    best = getattr(est, "best_estimator_", None) if _is_search(est) else None
    predictor: Any = best if _is_estimator(best) else est
    has_proba = hasattr(predictor, "predict_proba")
    classes = getattr(est, "classes_", None)
    if has_proba and classes is not None and _predict_is_argmax_of_proba(predictor):
        # one prediction instead of two
        proba = _try_predict(predictor.predict_proba, X)
        ok = proba is not None and np.ndim(proba) == 2 and proba.shape[1] == len(classes)
        y_pred = classes.take(np.argmax(proba, axis=1), axis=0) if ok else None
    else:
        y_pred = _try_predict(predictor.predict, X)
        if y_pred is not None and has_proba:
            proba = _try_predict(predictor.predict_proba, X)
    if y_pred is None:
        return None, None
    y_true = np.asarray(y)
    if y_true.ndim > 1 and y_true.shape[1] > 1:  # multi-output / multilabel: subset accuracy only
        _try_metric(out, "accuracy_score", metrics.accuracy_score, y_true, y_pred, sample_weight=sw)
        return y_pred, None
    if classes is None or np.ndim(classes) != 1:
        classes = np.unique(np.concatenate([np.ravel(y_true), np.ravel(y_pred)]))
    classes = np.asarray(classes)
    average, positive = "weighted", None
    if len(classes) == 2:
        if pos_label is not None:
            average, positive = "binary", pos_label
        elif 1 in classes.tolist():
            average, positive = "binary", 1

    fast = _FastInputs.of(y_true, y_pred, sw)
    label_metrics = fast.label_metrics(average, positive) if fast else None
    if label_metrics is not None:
        out.update(label_metrics)
    else:
        _try_metric(out, "accuracy_score", metrics.accuracy_score, y_true, y_pred, sample_weight=sw)
        prf = _try(
            metrics.precision_recall_fscore_support,
            y_true,
            y_pred,
            average=average,
            pos_label=positive if positive is not None else 1,
            sample_weight=sw,
            zero_division=0,
        )
        if prf is not None:
            out[TRAINING_PREFIX + "precision_score"] = prf[0]
            out[TRAINING_PREFIX + "recall_score"] = prf[1]
            out[TRAINING_PREFIX + "f1_score"] = prf[2]

    scores = None  # binary: scores of plot_positive, for the ROC / PR plots
    plot_positive = positive if positive is not None else classes[-1]
    roc_scores = None  # what roc_auc_score is given
    if proba is not None and np.ndim(proba) == 2 and proba.shape[1] == len(classes):
        value = fast.log_loss(proba, classes) if fast else None
        if value is not None:
            out[TRAINING_PREFIX + "log_loss"] = value
        else:
            _try_metric(
                out, "log_loss", metrics.log_loss, y_true, proba, labels=classes, sample_weight=sw
            )
        if len(classes) == 2:
            column = np.flatnonzero(classes == plot_positive)
            scores = proba[:, int(column[0])] if len(column) else None
            roc_scores = proba[:, 1]  # roc_auc_score ranks by the score of the greater label
        elif len(classes) > 2:
            roc_scores = proba
    elif len(classes) == 2 and hasattr(predictor, "decision_function"):
        decision = _try_predict(predictor.decision_function, X)
        if decision is not None and np.ndim(decision) == 1:
            roc_scores = decision
            scores = decision if plot_positive == classes[1] else -decision
    curves = None  # binary: (fpr, tpr, precision, recall), for roc_auc and the plots
    if scores is not None and len(classes) == 2:
        curves = _binary_curves(y_true == plot_positive, scores, sw)
    if curves is not None and plot_positive == classes[1] and fast is not None:
        # the area under the curve drawn: the same value as the pairwise count below
        out[TRAINING_PREFIX + "roc_auc"] = float(_trapezoid(curves[1], curves[0]))
    elif roc_scores is not None:
        value = fast.roc_auc(roc_scores, classes) if fast else None
        if value is not None:
            out[TRAINING_PREFIX + "roc_auc"] = value
        elif np.ndim(roc_scores) == 1:
            _try_metric(out, "roc_auc", metrics.roc_auc_score, y_true, roc_scores, sample_weight=sw)
        else:
            _try_metric(
                out,
                "roc_auc",
                metrics.roc_auc_score,
                y_true,
                roc_scores,
                multi_class="ovr",
                average="weighted",
                labels=classes,
                sample_weight=sw,
            )
    if _score_is(est, "ClassifierMixin") and TRAINING_PREFIX + "accuracy_score" in out:
        out[TRAINING_PREFIX + "score"] = out[TRAINING_PREFIX + "accuracy_score"]
    sw_copy = None if sw is None else np.array(sw, copy=True)
    plots = (
        np.array(y_true, copy=True),
        y_pred,
        curves,
        classes,
        plot_positive if curves is not None else None,
        sw_copy,
    )
    return y_pred, plots


def _regressor_metrics(est: Any, X: Any, y: Any, sw: Any, out: dict[str, float]) -> Any:
    from sklearn import metrics

    y_pred = _try_predict(est.predict, X)
    if y_pred is None:
        return None
    fast = _FastInputs.of(y, y_pred, sw, numeric=True)
    values = fast.regression_metrics() if fast else None
    if values is not None:
        out.update(values)
    else:
        mse = _try_metric(
            out, "mean_squared_error", metrics.mean_squared_error, y, y_pred, sample_weight=sw
        )
        rmse = getattr(metrics, "root_mean_squared_error", None)
        if rmse is not None:
            _try_metric(out, "root_mean_squared_error", rmse, y, y_pred, sample_weight=sw)
        elif mse is not None:
            out[TRAINING_PREFIX + "root_mean_squared_error"] = math.sqrt(mse)
        _try_metric(
            out, "mean_absolute_error", metrics.mean_absolute_error, y, y_pred, sample_weight=sw
        )
        _try_metric(out, "r2_score", metrics.r2_score, y, y_pred, sample_weight=sw)
    if _score_is(est, "RegressorMixin") and TRAINING_PREFIX + "r2_score" in out:
        out[TRAINING_PREFIX + "score"] = out[TRAINING_PREFIX + "r2_score"]
    return y_pred


class _FastInputs:
    """Training metrics computed directly with numpy for plain 1-D targets.

    scikit-learn's metric functions spend ~0.5-5 ms each validating their inputs (most of the
    cost of logging a small fit); on the inputs accepted here the formulas below give the same
    values (tests compare them). Anything else (multi-output, NaN, mixed label types, odd
    weights) returns None and scikit-learn computes the metric.
    """

    def __init__(self, y_true: Any, y_pred: Any, w: Any):
        self.y_true = y_true
        self.y_pred = y_pred
        self.w = w  # float weights, ones when no sample_weight

    @classmethod
    def of(cls, y_true: Any, y_pred: Any, sw: Any, numeric: bool = False) -> _FastInputs | None:
        import numpy as np

        yt, yp = np.asarray(y_true), np.asarray(y_pred)
        if yt.ndim != 1 or yp.ndim != 1 or len(yt) != len(yp) or len(yt) == 0:
            return None
        if numeric or yt.dtype.kind == "f" or yp.dtype.kind == "f":
            if yt.dtype.kind not in "biuf" or yp.dtype.kind not in "biuf":
                return None
            if not (np.isfinite(yt).all() and np.isfinite(yp).all()):
                return None
        elif (yt.dtype.kind == "O" or yp.dtype.kind == "O") and any(
            type(v) is not str for v in (yt[0], yp[0])
        ):
            return None  # object labels other than strings: scikit-learn decides
        if sw is None:
            w = np.ones(len(yt))
        else:
            w = np.asarray(sw, dtype=float)
            if w.shape != yt.shape or not np.isfinite(w).all() or (w < 0).any():
                return None
        return cls(yt, yp, w)

    def label_metrics(self, average: str, positive: Any) -> dict[str, float] | None:
        import numpy as np

        try:
            labels, inverse = _unique_inverse(np.concatenate([self.y_true, self.y_pred]))
        except TypeError:  # labels that do not sort (mixed types)
            return None
        n, k, w = len(self.y_true), len(labels), self.w
        t, p = inverse[:n], inverse[n:]
        hit = t == p
        tp = np.bincount(t[hit], weights=w[hit], minlength=k)
        true_sum = np.bincount(t, weights=w, minlength=k)
        pred_sum = np.bincount(p, weights=w, minlength=k)
        if w.sum() <= 0:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(pred_sum > 0, tp / pred_sum, 0.0)
            recall = np.where(true_sum > 0, tp / true_sum, 0.0)
            denom = true_sum + pred_sum
            f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
        if average == "binary":
            where = np.flatnonzero(labels == positive)
            if len(where) != 1 or k > 2:
                return None
            i = int(where[0])
            values: tuple[Any, ...] = (precision[i], recall[i], f1[i])
        else:
            if true_sum.sum() <= 0:
                return None
            values = tuple(float(np.average(m, weights=true_sum)) for m in (precision, recall, f1))
        return {
            TRAINING_PREFIX + "accuracy_score": float(tp.sum() / w.sum()),
            TRAINING_PREFIX + "precision_score": float(values[0]),
            TRAINING_PREFIX + "recall_score": float(values[1]),
            TRAINING_PREFIX + "f1_score": float(values[2]),
        }

    def _class_index(self, classes: Any) -> Any:
        """Index of each true label in the sorted classes; None if one is not among them."""
        import numpy as np

        try:
            labels = np.unique(classes)
            index = np.searchsorted(labels, self.y_true)
        except TypeError:
            return None
        if len(labels) != len(classes) or (index >= len(labels)).any():
            return None
        if not (labels[index] == self.y_true).all():
            return None
        return index

    def log_loss(self, proba: Any, classes: Any) -> float | None:
        import numpy as np

        index = self._class_index(classes)
        if index is None or proba.dtype.kind != "f" or not np.isfinite(proba).all():
            return None
        if proba.min() < 0 or proba.max() > 1:
            return None
        eps = np.finfo(proba.dtype).eps
        chosen = np.clip(proba[np.arange(len(index)), index], eps, 1 - eps)
        return float(np.average(-np.log(chosen), weights=self.w))

    def roc_auc(self, scores: Any, classes: Any) -> float | None:
        """Binary: scores of the greater label; multiclass: one-vs-rest, prevalence-weighted."""
        import numpy as np

        index = self._class_index(classes)
        if index is None or scores.dtype.kind not in "fiu" or not np.isfinite(scores).all():
            return None
        if scores.ndim == 1:
            if len(classes) != 2 or len(np.unique(index)) != 2:
                return None
            return _weighted_auc(index == 1, scores, self.w)
        if scores.shape[1] != len(classes) or not np.allclose(scores.sum(axis=1), 1.0):
            return None
        aucs: list[Any] = []
        weights: list[Any] = []
        for c in range(len(classes)):
            auc = _weighted_auc(index == c, scores[:, c], self.w)
            if auc is None:
                return None  # a class absent from y_true: scikit-learn's rules apply
            aucs.append(auc)
            weights.append(self.w[index == c].sum())
        return float(np.average(aucs, weights=weights))

    def regression_metrics(self) -> dict[str, float] | None:
        import numpy as np

        yt, yp, w = self.y_true.astype(float), self.y_pred.astype(float), self.w
        if w.sum() <= 0:
            return None
        mse = float(np.average((yt - yp) ** 2, weights=w))
        numerator = float((w * (yt - yp) ** 2).sum())
        denominator = float((w * (yt - np.average(yt, weights=w)) ** 2).sum())
        if denominator == 0:
            r2 = 1.0 if numerator == 0 else 0.0
        else:
            r2 = 1 - numerator / denominator
        return {
            TRAINING_PREFIX + "mean_squared_error": mse,
            TRAINING_PREFIX + "root_mean_squared_error": math.sqrt(mse),
            TRAINING_PREFIX + "mean_absolute_error": float(np.average(np.abs(yt - yp), weights=w)),
            TRAINING_PREFIX + "r2_score": r2,
        }


def _unique_inverse(values: Any) -> tuple[Any, Any]:
    """``np.unique(values, return_inverse=True)``; small non-negative integers (class labels
    0..k-1, most often) are counted rather than sorted."""
    import numpy as np

    if values.dtype.kind in "iu" and len(values) and values.min() >= 0 and values.max() < 4096:
        present = np.bincount(values) > 0
        code = np.cumsum(present) - 1
        return np.flatnonzero(present).astype(values.dtype), code[values]
    return np.unique(values, return_inverse=True)


def _weighted_auc(positive: Any, scores: Any, w: Any) -> float | None:
    """Area under the ROC curve: the weighted chance a positive outscores a negative (ties 1/2)."""
    import numpy as np

    order = np.argsort(scores, kind="mergesort")
    s, pos, ww = scores[order], positive[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each group of ties
    pos_cum = np.cumsum(np.where(pos, ww, 0.0))[last]
    neg_cum = np.cumsum(np.where(pos, 0.0, ww))[last]
    total_pos, total_neg = pos_cum[-1], neg_cum[-1]
    if total_pos <= 0 or total_neg <= 0:
        return None
    pos_group = np.diff(np.r_[0.0, pos_cum])
    neg_group = np.diff(np.r_[0.0, neg_cum])
    neg_below = np.r_[0.0, neg_cum[:-1]]
    return float(np.sum(pos_group * (neg_below + 0.5 * neg_group)) / (total_pos * total_neg))


def _clusterer_metrics(est: Any, X: Any, out: dict[str, float]) -> None:
    from sklearn import metrics

    inertia: Any = getattr(est, "inertia_", None)
    if _is_number(inertia):
        out[TRAINING_PREFIX + "inertia"] = float(inertia)
    labels = getattr(est, "labels_", None)
    n = _n_rows(X)
    if labels is not None and n is not None and len(labels) == n:
        _try_metric(
            out,
            "silhouette_score",
            metrics.silhouette_score,
            X,
            labels,
            sample_size=min(n, SILHOUETTE_MAX_ROWS),
            random_state=0,
        )


def _score(est: Any, X: Any, y: Any, sw: Any) -> float | None:
    kwargs = {}
    if sw is not None and "sample_weight" in _arg_names(est.score):
        kwargs["sample_weight"] = sw
    value = _try_predict(est.score, X, y, **kwargs)
    return _as_float(value) if _is_number(value) else None


def _log_search(run_id: str, search: Any, cfg: integration.Config) -> None:
    """Parameter searches: best_* params, cv_results.csv, child runs for the best candidates."""
    store = tracking._store()
    best = getattr(search, "best_params_", None)
    if isinstance(best, dict):
        store.log_batch(
            run_id, params={BEST_PARAM_PREFIX + k: _param_value(v) for k, v in best.items()}
        )
    results = getattr(search, "cv_results_", None)
    if not isinstance(results, dict) or "params" not in results:
        return
    tracking.Client().log_text(run_id, _cv_results_csv(results), CV_RESULTS_ARTIFACT)
    _log_search_children(run_id, search, results, cfg)


def _log_search_children(
    parent_id: str, search: Any, results: dict[str, Any], cfg: integration.Config
) -> None:
    from autolog import context

    n = len(results["params"])
    limit = cfg.get("max_tuning_runs", 5)
    rank_key = "rank_test_score"
    if rank_key not in results:
        rank_key = next((k for k in results if k.startswith("rank_test_")), "")
    order = list(range(n))
    if rank_key:
        ranks = results[rank_key]
        order.sort(key=lambda i: (ranks[i], i))
    chosen = order if limit is None else order[: max(int(limit), 0)]
    if not chosen:
        return
    store = tracking._store()
    active = tracking.active_run()
    if active is not None and active.info.run_id == parent_id:
        experiment_id = active.info.experiment_id
    else:
        experiment_id = store.get_run(parent_id).info.experiment_id
    base_estimator = getattr(search, "estimator", None)
    base_params = _params_of(base_estimator) if _is_estimator(base_estimator) else {}
    tags: dict[str, Any] = {
        patching.INTEGRATION_TAG: INTEGRATION,
        tracking.PARENT_RUN_TAG: parent_id,
    }
    if _is_estimator(base_estimator):
        tags.update(_estimator_tags(base_estimator))
    tags.update(cfg.extra_tags or {})
    metric_keys = [k for k in results if k.startswith(("mean_", "std_", "rank_"))]
    ts = _now_ms()
    children = []
    for i in chosen:
        params = dict(base_params)
        params.update({k: _param_value(v) for k, v in results["params"][i].items()})
        rank = int(results[rank_key][i]) if rank_key else i + 1
        name = f"candidate-{i}-rank-{rank}"
        metrics = [
            (k, _as_float(results[k][i]), ts, 0) for k in metric_keys if _is_number(results[k][i])
        ]
        children.append((name, {**tags, tracking.RUN_NAME_TAG: name}, params, metrics))
    # one transaction for all of them, not a create_run + log_batch + set_terminated each
    store.create_finished_runs(
        experiment_id, children, parent_run_id=parent_id, user_id=context.current_user()
    )


def _cv_results_csv(results: dict[str, Any]) -> str:
    """cv_results_ as CSV, with the csv module (no pandas import in the fit)."""
    import csv
    import io

    import numpy as np

    columns = list(results)
    n = len(results["params"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    masked = {c: np.ma.getmaskarray(results[c]) for c in columns if np.ma.isMaskedArray(results[c])}
    for i in range(n):
        row = []
        for c in columns:
            if c in masked and masked[c][i]:
                row.append("")
                continue
            v = results[c][i]
            row.append(repr(float(v)) if isinstance(v, (float, np.floating)) else str(v))
        writer.writerow(row)
    return buf.getvalue()


def _cv_metric_points(name: str, result: Any) -> list[tuple[str, Any, int]]:
    """(key, value, step) of a cross-validation function's result: folds as steps."""
    import numpy as np

    points: list[tuple[str, Any, int]] = []

    def series(key: str, values: Any) -> None:
        arr = np.asarray(values, dtype=float).ravel()
        points.extend((key, v, i) for i, v in enumerate(arr))
        points.append((f"mean_{key}", float(np.mean(arr)), 0))
        points.append((f"std_{key}", float(np.std(arr)), 0))

    def curve(key: str, values: Any, steps: list[int]) -> None:
        arr = np.asarray(values, dtype=float)
        for step, row in zip(steps, arr):
            points.append((f"mean_{key}", float(np.mean(row)), step))
            points.append((f"std_{key}", float(np.std(row)), step))

    if name == "cross_val_score":
        series("test_score", result)
    elif name == "cross_validate":
        for key, values in result.items():
            if key not in ("estimator", "indices") and np.asarray(values).dtype.kind in "fiu":
                series(key, values)
    elif name == "permutation_test_score":
        score, permutation_scores, pvalue = result[:3]
        points.append(("test_score", float(score), 0))
        points.append(("pvalue", float(pvalue), 0))
        series("permutation_score", permutation_scores)
    elif name == "learning_curve":
        sizes = [int(s) for s in result[0]]
        keys = ("train_score", "test_score", "fit_time", "score_time")
        for key, values in zip(keys, result[1:]):
            curve(key, values, sizes)
    elif name == "validation_curve":
        steps = list(range(len(result[0])))
        curve("train_score", result[0], steps)
        curve("test_score", result[1], steps)
    return points


# -- the model ---------------------------------------------------------------------------------


class SklearnFlavor(MLflowSklearnFlavor):
    """MLflow's ``sklearn`` flavor: ``model.pkl`` (cloudpickle/pickle) or ``model.skops``.

    The MLmodel section holds MLflow's keys (``pickled_model``, ``serialization_format``,
    ``sklearn_version``, ``code``, and ``skops_trusted_types`` for skops), so
    ``mlflow.sklearn.load_model`` and ``mlflow.pyfunc.load_model`` read it.

    :param serialization_format: ``"cloudpickle"`` (default), ``"pickle"`` or ``"skops"``
        (loads without running arbitrary code; the types it had to trust are recorded).
    """

    name = "sklearn"
    requirements = ("scikit-learn", "cloudpickle")
    mlflow_loader_module = "mlflow.sklearn"

    def __init__(self, serialization_format: str = "cloudpickle"):
        if serialization_format not in SERIALIZATION_FORMATS:
            raise ModelError(
                f"serialization_format={serialization_format!r} is not supported; use one of "
                f"{list(SERIALIZATION_FORMATS)}"
            )
        self.serialization_format = serialization_format

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import sklearn

        fmt = self.serialization_format
        conf: dict[str, Any]
        if fmt == "skops":
            import skops.io

            data = skops.io.dumps(model)
            (path / "model.skops").write_bytes(data)
            conf = {
                "pickled_model": "model.skops",
                "skops_trusted_types": skops.io.get_untrusted_types(data=data),
            }
        else:
            import pickle

            # Protocol 5 (cloudpickle's default, so MLflow's too; any Python >= 3.8 loads it)
            # writes numpy arrays from their buffers: a 100-tree forest pickles in ~6 ms instead
            # of ~10 ms with protocol 4, which copies every array into a bytes object first.
            with open(path / "model.pkl", "wb") as f:
                if fmt == "cloudpickle":
                    import cloudpickle

                    cloudpickle.dump(model, f, protocol=5)
                else:
                    pickle.dump(model, f, protocol=5)
            conf = {"pickled_model": "model.pkl"}
        conf.update(sklearn_version=sklearn.__version__, serialization_format=fmt, code=None)
        return conf

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        if not hasattr(native, "predict") and hasattr(native, "transform"):
            return native.transform(data)  # a transformer-only model (PCA, a pipeline of them)
        return native.predict(data)

    def requirements_for(self, model: Any) -> list[str]:
        reqs = ["scikit-learn", "skops" if self.serialization_format == "skops" else "cloudpickle"]
        if self.serialization_format == "pickle":
            reqs.remove("cloudpickle")
        dist = models.distribution_of_module(type(model).__module__)
        if dist and dist not in reqs:
            reqs.append(dist)
        return reqs


FLAVOR = SklearnFlavor()


def _flavor(serialization_format: str) -> SklearnFlavor:
    return FLAVOR if serialization_format == "cloudpickle" else SklearnFlavor(serialization_format)


def save_model(
    sk_model: Any,
    path: str | Path,
    serialization_format: str = "cloudpickle",
    signature: Any = None,
    input_example: Any = None,
    **kwargs: Any,
) -> models.Model:
    """Save a scikit-learn model as an MLmodel directory (sklearn + python_function flavors).

    :param sk_model: the fitted estimator.
    :param path: a directory that does not exist yet (or is empty).
    :param serialization_format: ``"cloudpickle"`` (default), ``"pickle"`` or ``"skops"``.
    :param signature: a ModelSignature; None infers one from ``input_example``; False: none.
    :param input_example: a few rows of input, saved with the model.
    :param kwargs: passed to :func:`autolog.models.save_model` (pip_requirements, metadata, ...).
    """
    return models.save_model(
        _flavor(serialization_format), sk_model, path, signature, input_example, **kwargs
    )


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    serialization_format: str = "cloudpickle",
    signature: Any = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> models.ModelInfo:
    """Log a scikit-learn model into the active run (or ``run_id=``); see :func:`save_model`.

    :param artifact_path: where in the run's artifacts (default ``"model"``).
    :param registered_model_name: also register the model under this name.
    :return: a ModelInfo whose ``model_uri`` is ``runs:/<run_id>/<artifact_path>``.
    """
    return models.log_model(
        _flavor(serialization_format),
        sk_model,
        artifact_path,
        signature,
        input_example,
        registered_model_name=registered_model_name,
        **kwargs,
    )


def load_model(model_uri: str | Path, *, allow_pickle: bool | None = None) -> Any:
    """The scikit-learn estimator of a model URI (path, runs:/, models:/), in any format.

    :param allow_pickle: as for :func:`autolog.load_model`.
    """
    return models.load_flavor_model(model_uri, FLAVOR, allow_pickle=allow_pickle)


def _log_model_of_run(
    run_id: str, model: Any, X: Any, y_pred: Any, cfg: integration.Config
) -> None:
    signature: Any = False
    if cfg.log_model_signatures:
        signature = _infer_signature(model, X, y_pred) or False
    example = _head(X, INPUT_EXAMPLE_ROWS) if cfg.log_input_examples else None
    fmt = cfg.get("serialization_format", "cloudpickle")
    info = models.log_model(_flavor(fmt), model, MODEL_ARTIFACT, signature, example, run_id=run_id)
    name = cfg.registered_model_name
    if name:
        patching.guarded(INTEGRATION, _register, info.model_uri, name, silent=bool(cfg.silent))


def _register(model_uri: str, name: str) -> None:
    from autolog import registry  # type: ignore[attr-defined]

    registry.register_model(model_uri, name)


def _infer_signature(model: Any, X: Any, y_pred: Any) -> Any:
    """Inputs from the training data, outputs from the training predictions (no extra predict)."""
    from autolog.signature import ModelSignature, infer_schema

    try:
        inputs = infer_schema(X)
    except AutologError:
        return None
    outputs = None
    if y_pred is None and hasattr(model, "predict"):
        y_pred = _try_predict(model.predict, _head(X, INPUT_EXAMPLE_ROWS))
    if y_pred is not None:
        np = sys.modules["numpy"]
        if isinstance(y_pred, np.ndarray) and y_pred.ndim == 1 and not inputs.is_tensor_spec():
            import pandas as pd

            y_pred = pd.Series(y_pred)  # column inputs, 1-D output: one unnamed column (MLflow)
        try:
            outputs = infer_schema(y_pred)
        except AutologError:
            outputs = None
    return ModelSignature(inputs, outputs)


# -- post-training metrics ---------------------------------------------------------------------
#
# A model logged by a fit is remembered (by id, with a weak reference) with its run. predict &
# co. on it remember their result the same way, with the name of the variable the input was
# held in. A sklearn.metrics call (or model.score) outside any fit, given such a result (or a
# numpy view of it, e.g. proba[:, 1]), logs its value into that run as
# <metric>[-<call index>]_<dataset>, and rewrites metric_info.json with every call's command.

_registry_lock = threading.RLock()
_model_runs: dict[int, tuple[weakref.ref, str]] = {}
_predictions: dict[int, tuple[weakref.ref, str, str]] = {}
_dataset_ids: dict[str, dict[str, list[int]]] = {}
_metric_calls: dict[str, dict[str, list[tuple[str, str]]]] = {}
_tls = threading.local()


def _forget(table: dict[int, Any], key: int, ref: weakref.ref) -> None:
    """Drop an entry when its object is collected (not one that reused the id since)."""
    with _registry_lock:
        entry = table.get(key)
        if entry is not None and entry[0] is ref:
            del table[key]


def _remember(table: dict[int, Any], obj: Any, *values: Any) -> None:
    key = id(obj)
    try:
        ref: weakref.ref = weakref.ref(obj, functools.partial(_forget, table, key))
    except TypeError:  # no weak references to it (a list, a tuple): not tracked
        return
    with _registry_lock:
        table[key] = (ref, *values)


def _lookup(table: dict[int, Any], obj: Any) -> tuple | None:
    entry = table.get(id(obj))
    if entry is not None and entry[0]() is obj:
        return entry
    return None


def _register_model(model: Any, run_id: str) -> None:
    _remember(_model_runs, model, run_id)


def _run_of_model(model: Any) -> str | None:
    entry = _lookup(_model_runs, model)
    return entry[1] if entry is not None else None


def _register_prediction(result: Any, run_id: str, dataset: str) -> None:
    _remember(_predictions, result, run_id, dataset)


def _prediction_of(args: tuple, kwargs: dict) -> tuple[str, str] | None:
    """(run_id, dataset) of the first argument that is a tracked prediction (or a view of one)."""
    for arg in (*args, *kwargs.values()):
        if arg is None or isinstance(arg, (str, int, float, bool)):
            continue
        entry = _lookup(_predictions, arg)
        if entry is None:
            base = getattr(arg, "base", None)
            entry = _lookup(_predictions, base) if base is not None else None
        if entry is not None:
            return entry[1], entry[2]
    return None


def _post_training_on() -> bool:
    cfg = integration.config_for(INTEGRATION)
    return cfg is not None and bool(cfg.get("log_post_training_metrics", True))


def _quiet() -> bool:
    """No post-training metric here: inside a fit or score, or inside a metric."""
    return patching.current_session() is not None or getattr(_tls, "depth", 0) > 0


def _dataset_name(run_id: str, data: Any) -> str:
    name = _variable_name(data, UNKNOWN_DATASET)
    with _registry_lock:
        ids = _dataset_ids.setdefault(run_id, {}).setdefault(name, [])
        if id(data) in ids:
            index = ids.index(id(data))
        else:
            index = len(ids)
            ids.append(id(data))
    return _with_index(name, index)


def _with_index(name: str, index: int) -> str:
    # "-" cannot occur in a Python variable name: no clash with a real name
    return name if index == 0 else f"{name}-{index + 1}"


def _internal_frame(frame: types.FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    return (
        module == __name__
        or module.startswith(("autolog.", "wrapt.", "sklearn.", "functools", "contextlib"))
        or module in ("autolog", "wrapt", "sklearn")
    )


def _variable_name(obj: Any, fallback: str) -> str:
    """The name the caller holds ``obj`` under (climbing while it was passed in as an argument)."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and _internal_frame(frame):
        frame = frame.f_back
    for _ in range(64):
        if frame is None:
            break
        code = frame.f_code
        n_args = code.co_argcount + code.co_kwonlyargcount
        n_args += bool(code.co_flags & inspect.CO_VARARGS)
        n_args += bool(code.co_flags & inspect.CO_VARKEYWORDS)
        local_vars = frame.f_locals
        passed_in = False
        for arg_name in code.co_varnames[:n_args]:
            value = local_vars.get(arg_name)
            if value is obj or (
                isinstance(value, (tuple, dict))
                and any(v is obj for v in (value.values() if isinstance(value, dict) else value))
            ):
                passed_in = True
                break
        if passed_in:
            frame = frame.f_back
            continue
        for name, value in local_vars.items():
            if value is obj:
                return name
        break
    return fallback


def _call_command(fn_name: str, fn: Any, args: tuple, kwargs: dict) -> str:
    """``accuracy_score(y_true=y_test, y_pred=y_pred, normalize=False)``."""
    names = _arg_names(fn)

    def show(value: Any) -> str:
        if value is None or isinstance(value, (str, bool, int, float)):
            text = repr(value)
            return text if len(text) <= 34 else text[:32] + "...'"
        return _variable_name(value, f"<{type(value).__name__}>")

    parts = [f"{name}={show(v)}" for name, v in zip(names, args)]
    parts += [f"{name}={show(v)}" for name, v in kwargs.items()]
    return f"{fn_name}({', '.join(parts)})"


def _log_post_training_metric(
    run_id: str, metric_name: str, dataset: str, command: str, value: Any
) -> None:
    if not _is_number(value):
        return
    with _registry_lock:
        calls = _metric_calls.setdefault(run_id, {})
        done = calls.setdefault(metric_name, [])
        key = f"{_with_index(metric_name, len(done))}_{dataset}"
        done.append((key, command))
        info = dict(sorted(kv for entries in calls.values() for kv in entries))
    tracking._store().log_batch(run_id, metrics=[(key, _as_float(value), _now_ms(), 0)])
    tracking.Client().log_dict(run_id, info, METRIC_INFO_ARTIFACT)


def _make_metric(inner: Any, name: str) -> Any:
    """The replacement of a sklearn.metrics implementation: logs calls on tracked predictions."""

    @functools.wraps(inner)
    def metric(*args: Any, **kwargs: Any) -> Any:
        if _quiet() or not _post_training_on():
            return inner(*args, **kwargs)
        _tls.depth = getattr(_tls, "depth", 0) + 1
        try:
            result = inner(*args, **kwargs)
        finally:
            _tls.depth -= 1
        cfg = integration.config_for(INTEGRATION)
        silent = bool(cfg.silent) if cfg is not None else False
        patching.guarded(
            INTEGRATION, _on_metric_call, name, inner, args, kwargs, result, silent=silent
        )
        return result

    metric._autolog_sklearn = True  # type: ignore[attr-defined]
    return metric


def _on_metric_call(name: str, fn: Any, args: tuple, kwargs: dict, result: Any) -> None:
    found = _prediction_of(args, kwargs)
    if found is None or not _is_number(result):
        return
    run_id, dataset = found
    _log_post_training_metric(run_id, name, dataset, _call_command(name, fn, args, kwargs), result)


# -- artifacts: the HTML diagram and the plots ----------------------------------------------------


def flush(timeout: float | None = 60.0) -> None:
    """Nothing to wait for: the HTML diagram and the plots are written during the fit.

    Kept for code written against earlier versions, which wrote them in a background thread.
    """


def _write_html_repr(run_id: str, est: Any) -> None:
    from sklearn.utils import estimator_html_repr

    _cache_param_docs()
    tracking.Client().log_text(run_id, estimator_html_repr(_html_view(est)), HTML_ARTIFACT)


def _cache_param_docs() -> None:
    """Tooltips of the HTML diagram (parameters, fitted attributes) looked up once per class and name.

    scikit-learn >= 1.6 cleans the class docstring (``inspect.getdoc``) again for every row of
    those tables, and searches it with a regular expression for each row's link: about 5 ms of
    a 100-tree forest's diagram, 9 ms of a GridSearchCV's, for the same text each fit. The
    cached lookups return what scikit-learn's own return; unpatch() puts the originals back.
    """
    if not _enabled:
        return
    for name in ("params", "fitted_attributes"):
        module = sys.modules.get(f"sklearn.utils._repr_html.{name}")
        for attr in ("get_docstring", "generate_link_to_param_doc"):
            original = getattr(module, attr, None)
            if original is None or getattr(original, "_autolog_sklearn", False):
                continue
            cached = _docstring_lookups.get(original)
            if cached is None:
                cached = _docstring_lookups[original] = _cached_docstring_lookup(original)
            setattr(module, attr, cached)
            _attr_patches.append((module, attr, original, cached))


# One cached lookup per scikit-learn function, kept when autolog is disabled and enabled again
# (a notebook toggling autolog would otherwise clean every docstring again on the next fit).
_docstring_lookups: dict[Any, Any] = {}


# Each estimator __init__'s signature, worked out once per process (kept when autolog is
# disabled and enabled again, like the docstring lookups).
_init_signatures: weakref.WeakKeyDictionary[Any, inspect.Signature] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def _cached_signatures(est: Any) -> Iterator[None]:
    """While autolog reads ``est``: its class's ``__init__``, and those of the estimators it
    holds, carry their ``__signature__``.

    scikit-learn reads an estimator's parameter names and defaults from
    ``inspect.signature(cls.__init__)``, worked out again on every ``get_params()`` and
    ``repr()``: 19 times for a GridSearchCV's HTML diagram, a third of its cost.
    ``inspect.signature`` returns a function's ``__signature__`` attribute when it has one, so
    setting it, to the very Signature it would compute, makes those calls cheap and changes no
    result. Only scikit-learn's own classes (cloudpickle would copy the attribute into a model
    that pickles a user's class by value), and the attributes are removed on the way out: the
    user's own code (a search's clones, its get_params calls) runs as it would without autolog.
    """
    patched: list[Any] = []
    try:
        todo, visited = [est], 0
        while todo and visited < 64:
            obj = todo.pop()
            visited += 1
            init = type(obj).__init__
            init = getattr(init, "deprecated_original", init)
            if (
                isinstance(init, types.FunctionType)
                and init.__module__.startswith("sklearn.")  # a user's class may be pickled by value
                and "__signature__" not in init.__dict__
            ):
                signature = _init_signatures.get(init)
                if signature is None:
                    signature = _init_signatures[init] = inspect.signature(init)
                init.__signature__ = signature  # type: ignore[attr-defined]
                patched.append(init)
            for value in getattr(obj, "__dict__", {}).values():
                if _is_estimator(value):
                    todo.append(value)
                elif type(value) in (list, tuple):  # Pipeline steps, ensembles' (name, estimator)
                    for item in value[:32]:
                        if type(item) is tuple:
                            todo.extend(v for v in item if _is_estimator(v))
                        elif _is_estimator(item):
                            todo.append(item)
    except Exception:  # noqa: BLE001 - a signature it cannot work out: scikit-learn will
        pass
    try:
        yield
    finally:
        for init in patched:
            init.__dict__.pop("__signature__", None)


def _cached_docstring_lookup(original: Any) -> Any:
    lookup = functools.lru_cache(maxsize=4096)(original)

    def cached(estimator_class: Any, section_or_name: str, item: str) -> Any:
        try:
            return lookup(estimator_class, section_or_name, item)
        except TypeError:  # an unhashable class (a metaclass with __eq__): look it up as before
            return original(estimator_class, section_or_name, item)

    cached._autolog_sklearn = True  # type: ignore[attr-defined]
    return cached


def _html_view(est: Any) -> Any:
    """A shallow copy of ``est`` whose HTML lists the fitted attributes it stores, not computed ones.

    scikit-learn >= 1.8 lists an estimator's fitted attributes in its HTML by reading every
    public attribute, properties included: a forest's ``estimators_samples_`` and
    ``feature_importances_`` go through all its trees again (about 65 ms for 100 trees on
    5,000 rows, 4% of that fit). Attributes stored by ``fit`` (``coef_``, ``classes_``,
    ``estimators_``, ...) are listed as scikit-learn lists them, and so are those of a search's
    ``best_estimator_``. Other nested estimators (Pipeline steps) are shown as scikit-learn
    shows them.
    """
    view = copy.copy(est)
    if not hasattr(type(est), "_get_fitted_attr_html"):
        return view
    try:
        from sklearn.utils._repr_html.fitted_attributes import AttrsDict
    except ImportError:
        return view
    stored = sorted(vars(est).items())
    best = vars(est).get("best_estimator_") if _is_search(est) else None
    if _is_estimator(best):  # shown in the search's diagram: listed the same way
        view.best_estimator_ = _html_view(best)

    def stored_attributes(doc_link: str = "") -> Any:
        attrs: dict[str, dict[str, Any]] = {}
        for name, value in stored:
            if name.startswith("_") or not name.endswith("_"):
                continue
            if len(attrs) > 100:  # scikit-learn's own limit
                attrs["..."] = {"type_name": "...", "value": ""}
                break
            entry = {"type_name": type(value).__name__, "value": _brief(value)}
            if (
                hasattr(value, "shape")
                and hasattr(value, "dtype")
                and not isinstance(value, numbers.Number)
            ):
                entry.update(shape=value.shape, dtype=value.dtype)
            attrs[name] = entry
        return AttrsDict(fitted_attrs=attrs, estimator_class=type(est), doc_link=doc_link)

    view._get_fitted_attr_html = stored_attributes  # an instance attribute hides the method
    return view


class _Brief:
    """A value for the HTML's fitted-attribute table that prints as a short summary."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _brief(value: Any, depth: int = 0) -> Any:
    """What scikit-learn's table shows of ``value`` (4 items, short strings), built cheaply.

    The table prints containers with ``reprlib`` (4 items each), but reprlib calls the full
    ``repr`` of anything else first: of each of a forest's first 4 trees or a search's
    ``best_estimator_`` (scikit-learn's pretty-printer, ~0.3 ms each) and of every array in
    ``cv_results_``. Numbers, strings and top-level arrays (which scikit-learn summarizes
    itself) pass through; estimators become ``Name(...)``; nested arrays ``array(shape, dtype)``;
    containers keep their first 5 items (the table shows 4 and an ellipsis).
    """
    if value is None or isinstance(value, (bool, int, float, str, bytes, numbers.Number)):
        return value
    if depth == 0 and hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _Brief(f"array(shape={tuple(value.shape)}, dtype={value.dtype})")
    if depth < 2 and type(value) in (list, tuple):
        items = [_brief(v, depth + 1) for v in value[:5]]
        return items if type(value) is list else tuple(items)
    if depth < 2 and type(value) is dict:
        return {k: _brief(v, depth + 1) for k, v in itertools.islice(value.items(), 5)}
    if hasattr(value, "get_params"):
        return _Brief(f"{type(value).__name__}(...)")
    if isinstance(value, (list, tuple, dict, set)):
        return _Brief(f"{type(value).__name__} of {len(value)}")
    return _Brief(f"<{type(value).__name__}>")


def _write_classifier_plots(
    run_id: str, y_true: Any, y_pred: Any, curves: Any, classes: Any, positive: Any, sw: Any
) -> None:
    """Confusion matrix; for a binary classifier with scores, ROC and precision-recall curves
    (``curves``: what _binary_curves returned for them)."""
    from autolog import plots

    store = tracking._store()
    matrix = _confusion_matrix(y_true, y_pred, classes, sw)
    png = plots.confusion_matrix_png(
        matrix, [str(c) for c in classes], "Confusion matrix (training data)"
    )
    if png is not None:
        store.write_artifact_bytes(run_id, CONFUSION_MATRIX_ARTIFACT, png)
    if curves is None:  # not binary, no scores, one class only or scores not finite numbers
        return
    fpr, tpr, precision, recall = curves
    auc = float(_trapezoid(tpr, fpr))
    png = plots.line_chart_png(
        [(f"AUC = {auc:.3f}", fpr, tpr)],
        "ROC curve (training data)",
        f"False positive rate (positive label: {positive})",
        "True positive rate",
        diagonal=True,
    )
    if png is not None:
        store.write_artifact_bytes(run_id, ROC_CURVE_ARTIFACT, png)
    import numpy as np

    # average precision: precision at each threshold times the recall it adds (scikit-learn's)
    ap = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    # a step curve: the precision at a threshold holds from the previous recall up to its own
    step_x = np.concatenate([[0.0], np.repeat(recall, 2)[:-1]])
    step_y = np.repeat(precision, 2)
    png = plots.line_chart_png(
        [(f"AP = {ap:.3f}", step_x, step_y)],
        "Precision-recall curve (training data)",
        f"Recall (positive label: {positive})",
        "Precision",
    )
    if png is not None:
        store.write_artifact_bytes(run_id, PR_CURVE_ARTIFACT, png)


def _confusion_matrix(y_true: Any, y_pred: Any, classes: Any, sw: Any) -> Any:
    """scikit-learn's confusion_matrix(labels=classes), computed with numpy when labels sort."""
    import numpy as np

    labels = np.asarray(classes)
    yt, yp = np.ravel(y_true), np.ravel(y_pred)
    k = len(labels)
    if (  # classes 0..k-1 (most often): a label is its own row, no search needed
        sw is None
        and labels.dtype.kind in "iu"
        and yt.dtype.kind == yp.dtype.kind == "i"
        and len(yt) == len(yp) > 0
        and np.array_equal(labels, np.arange(k))
        and min(yt.min(), yp.min()) >= 0
        and max(yt.max(), yp.max()) < k
    ):
        return np.bincount(yt * k + yp, minlength=k * k).reshape(k, k).astype(np.int64)
    try:
        order = np.argsort(labels, kind="stable")
        ranked = labels[order]
        ti = np.clip(np.searchsorted(ranked, yt), 0, len(ranked) - 1)
        pi = np.clip(np.searchsorted(ranked, yp), 0, len(ranked) - 1)
        known = (ranked[ti] == yt) & (ranked[pi] == yp)  # labels outside classes: not counted
    except TypeError:  # labels that do not sort (mixed types)
        from sklearn import metrics

        return metrics.confusion_matrix(y_true, y_pred, labels=classes, sample_weight=sw)
    w = None if sw is None else np.asarray(sw, dtype=float)[known]
    cells = order[ti[known]] * k + order[pi[known]]
    counts = np.bincount(cells, weights=w, minlength=k * k).reshape(k, k)
    return counts if w is not None else counts.astype(np.int64)


def _binary_curves(positive: Any, scores: Any, sw: Any) -> tuple[Any, Any, Any, Any] | None:
    """(fpr, tpr, precision, recall) at every distinct score, highest threshold first, with
    ROC's (0, 0) start; None when a class is absent or a score is not a finite number."""
    import numpy as np

    s = np.asarray(scores, dtype=float)
    pos = np.asarray(positive, dtype=bool)
    if s.ndim != 1 or s.shape != pos.shape or not np.isfinite(s).all():
        return None
    if sw is None:  # counts are read at the last of tied scores: their order does not matter
        order = np.argsort(-s)  # (a stable sort costs 5x as much)
        s, pos = s[order], pos[order]
        last = np.append(np.flatnonzero(np.diff(s)), len(s) - 1)  # last of each distinct score
        tps = np.cumsum(pos)[last].astype(float)
        fps = (last + 1) - tps
    else:  # weighted sums: in a fixed order, so that they come out the same every time
        w = np.asarray(sw, dtype=float)
        order = np.argsort(-s, kind="mergesort")
        s, pos, w = s[order], pos[order], w[order]
        last = np.append(np.flatnonzero(np.diff(s)), len(s) - 1)
        tps = np.cumsum(np.where(pos, w, 0.0))[last]
        fps = np.cumsum(np.where(pos, 0.0, w))[last]
    if len(last) == 0 or tps[-1] <= 0 or fps[-1] <= 0:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tps + fps > 0, tps / (tps + fps), 1.0)
    recall = tps / tps[-1]
    return (
        np.concatenate([[0.0], fps / fps[-1]]),
        np.concatenate([[0.0], recall]),
        precision,
        recall,
    )


def _trapezoid(y: Any, x: Any) -> Any:
    import numpy as np

    return np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0)


# -- small helpers -----------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.number) and not isinstance(value, np.bool_)


def _as_float(value: Any) -> float:
    return value if type(value) is float else float(value)


def _is_estimator(obj: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(obj, base.BaseEstimator)


def _is_search(est: Any) -> bool:
    search = sys.modules.get("sklearn.model_selection._search")
    return search is not None and isinstance(est, search.BaseSearchCV)


def _is_clusterer(est: Any) -> bool:
    from sklearn import base

    check = getattr(base, "is_clusterer", None)
    if check is not None:
        return bool(check(est))
    return getattr(est, "_estimator_type", None) == "clusterer"


_quiet_classes: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def _is_quiet(cls: type) -> bool:
    """A preprocessing/imputation/feature-selection step or a ColumnTransformer."""
    quiet = _quiet_classes.get(cls)
    if quiet is None:
        quiet = any(
            c.__module__.startswith(QUIET_MODULES)
            or f"{c.__module__}.{c.__qualname__}" in QUIET_CLASSES
            for c in cls.__mro__
        )
        _quiet_classes[cls] = quiet
    return quiet


def _defining_class(est: Any, name: str) -> type | None:
    for cls in type(est).__mro__:
        if name in cls.__dict__:
            return cls
    return None


def _score_is(est: Any, mixin: str) -> bool:
    """True when est.score(X, y) is the accuracy (ClassifierMixin) / R2 (RegressorMixin) of
    est.predict(X): so the training metric already computed is the training score."""
    for _ in range(8):  # a pipeline's or a search's score is that of its final estimator
        owner = _defining_class(est, "score")
        if owner is None:
            return False
        where = (owner.__module__, owner.__qualname__)
        if where == ("sklearn.base", mixin):
            return True
        if where == ("sklearn.pipeline", "Pipeline"):
            est = est.steps[-1][1]
        elif _is_search(est) and getattr(est, "scoring", "") is None:
            est = getattr(est, "best_estimator_", None)
        else:
            return False
    return False


# Classifiers whose predict(X) is, in scikit-learn's code, classes_[argmax(predict_proba(X))].
_ARGMAX_PREDICT = {
    ("sklearn.ensemble._forest", "ForestClassifier"),
    ("sklearn.ensemble._bagging", "BaggingClassifier"),
    ("sklearn.tree._classes", "DecisionTreeClassifier"),
}


# predict_proba implementations that are increasing functions of LinearClassifierMixin's
# decision_function (a sigmoid, a softmax or a normalized sigmoid per row), whose predict is the
# argmax of that decision: the argmax of these probabilities, except where two decision values
# are within one rounding error of each other (the binary boundary |d| < 1e-16).
_MONOTONE_PROBA = {("sklearn.linear_model._logistic", "LogisticRegression")}


def _predict_is_argmax_of_proba(est: Any) -> bool:
    owner = _defining_class(est, "predict")
    where = (owner.__module__, owner.__qualname__) if owner is not None else None
    if where == ("sklearn.linear_model._base", "LinearClassifierMixin"):
        proba = _defining_class(est, "predict_proba")
        return proba is not None and (proba.__module__, proba.__qualname__) in _MONOTONE_PROBA
    if where not in _ARGMAX_PREDICT:
        return False
    return getattr(est, "n_outputs_", 1) == 1


def _param_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _params_of(est: Any) -> dict[str, Any]:
    """get_params(deep=True), values as text where they are not scalars (no dict flattening)."""
    return {str(k): _param_value(v) for k, v in est.get_params(deep=True).items()}


def _estimator_tags(est: Any) -> dict[str, str]:
    cls = type(est)
    return {
        ESTIMATOR_NAME_TAG: cls.__name__,
        ESTIMATOR_CLASS_TAG: f"{cls.__module__}.{cls.__name__}",
    }


@functools.lru_cache(maxsize=2048)
def _arg_names_of(fn: Any) -> tuple[str, ...]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return ()
    return tuple(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def _arg_names(fn: Any) -> tuple[str, ...]:
    """Parameter names of a function or bound method (without self)."""
    func = getattr(fn, "__func__", None)
    if func is not None:
        names = _arg_names_of(func)
        return names[1:] if names else names
    try:
        return _arg_names_of(fn)
    except TypeError:  # unhashable callable
        return ()


def _bind(fn: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments of a call by name, defaults included."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _fit_inputs(fit: Any, args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
    """X, y and sample_weight of a fit call, by position or by name."""
    names = _arg_names(fit) or ("X", "y")

    def get(index: int, name: str) -> Any:
        if len(args) > index:
            return args[index]
        return kwargs.get(name)

    X = get(0, names[0])
    y = get(1, names[1]) if len(names) > 1 else kwargs.get("y")
    if "sample_weight" in names:
        sample_weight = get(names.index("sample_weight"), "sample_weight")
    else:
        sample_weight = kwargs.get("sample_weight")
    return X, y, sample_weight


def _n_rows(X: Any) -> int | None:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(X)
    except TypeError:
        return None


def _head(X: Any, n: int) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[:n]
    try:
        return X[:n]
    except Exception:
        return None


def _sample_rows(X: Any, y: Any, sw: Any, n_rows: int, cap: int) -> tuple[Any, Any, Any]:
    import numpy as np
    from sklearn.utils import _safe_indexing

    rows = np.sort(np.random.default_rng(0).choice(n_rows, size=cap, replace=False))
    pick = lambda a: None if a is None else _safe_indexing(a, rows)  # noqa: E731
    return pick(X), pick(y), pick(sw)


def _try(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A metric that the data does not allow (one class, NaN scores, ...) is skipped."""
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


def _try_metric(out: dict[str, float], key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    value = _try(fn, *args, **kwargs)
    if _is_number(value):
        out[TRAINING_PREFIX + key] = float(value)
        return float(value)
    return None


def _try_predict(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """The estimator's own predict/score: whatever it raises means no metric, not our failure."""
    try:
        return fn(*args, **kwargs)
    except Exception:
        return None


# -- patching ----------------------------------------------------------------------------------

_METHOD_PATCHES: dict[str, patching.PatchFn] = {
    **{name: _patched_fit for name in FIT_METHODS},
    **{name: _patched_predict for name in PREDICT_METHODS},
    "score": _patched_score,
}
_enabled = False
_done_classes: weakref.WeakSet[type] = weakref.WeakSet()
_done_owners: weakref.WeakSet[type] = weakref.WeakSet()
_subclass_hook: tuple[type, bool, Any, Any] | None = None
_cell_patches: list[tuple[Any, Any, Any]] = []
_attr_patches: list[tuple[Any, str, Any, Any]] = []
_module_hooks: set[str] = set()


def _foreign(cls: type) -> bool:
    """A class of a library with its own integration (XGBClassifier, LGBMRegressor, ...)."""
    others = {lib for name, lib in integration.INTEGRATIONS.items() if name != INTEGRATION}
    return any(c.__module__.partition(".")[0] in others for c in cls.__mro__)


def _patchable(value: Any) -> bool:
    # plain functions and sklearn's available_if descriptors; not properties/class methods
    return inspect.isfunction(value) or type(value).__name__ == "_AvailableIfDescriptor"


def _patch_class(cls: type) -> None:
    from sklearn.base import BaseEstimator

    if cls in _done_classes:
        return
    _done_classes.add(cls)
    if _foreign(cls):
        return
    for owner in cls.__mro__:
        if owner is object or owner in _done_owners:
            continue
        module = owner.__module__ or ""
        if not (module.startswith("sklearn.") or issubclass(owner, BaseEstimator)):
            continue
        _done_owners.add(owner)
        for name, patch_fn in _METHOD_PATCHES.items():
            value = owner.__dict__.get(name)
            if value is not None and _patchable(value):
                patching.safe_patch(INTEGRATION, owner, name, patch_fn)


def _subclasses(cls: type) -> list[type]:
    seen: set[type] = set()
    stack: list[type] = [cls]
    out: list[type] = []
    while stack:
        subs: list[type] = type.__subclasses__(stack.pop())
        for sub in subs:
            if sub not in seen:
                seen.add(sub)
                out.append(sub)
                stack.append(sub)
    return out


def _install_subclass_hook(base: type) -> None:
    """Patch estimator classes created from now on (sklearn modules imported later, user classes)."""
    global _subclass_hook
    if _subclass_hook is not None:
        return
    had_own = "__init_subclass__" in base.__dict__
    own = base.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: type, **kwargs: Any) -> None:
        if own is not None:
            own.__func__(cls, **kwargs)
        else:
            super(base, cls).__init_subclass__(**kwargs)  # type: ignore[misc,arg-type]
        if _enabled:
            try:
                _patch_class(cls)
            except Exception as exc:  # a class statement of the user's never fails because of us
                cfg = integration.config_for(INTEGRATION)
                patching.report_error(INTEGRATION, exc, bool(cfg is not None and cfg.silent))

    hook: Any = classmethod(__init_subclass__)
    base.__init_subclass__ = hook  # type: ignore[assignment]
    _subclass_hook = (base, had_own, own, hook)


def _remove_subclass_hook() -> None:
    global _subclass_hook
    if _subclass_hook is None:
        return
    base, had_own, own, hook = _subclass_hook
    _subclass_hook = None
    if base.__dict__.get("__init_subclass__") is hook:
        if had_own:
            base.__init_subclass__ = own  # type: ignore[assignment]
        else:
            delattr(base, "__init_subclass__")


def _implementation_cell(fn: Any) -> Any:
    """The closure cell of validate_params' wrapper that holds the implementation, if any."""
    code = getattr(fn, "__code__", None)
    closure = getattr(fn, "__closure__", None)
    if code is None or not closure or "func" not in code.co_freevars:
        return None
    cell = closure[code.co_freevars.index("func")]
    inner = cell.cell_contents
    original = getattr(fn, "__wrapped__", None)
    if original is None:
        return None
    if inner is original or _is_our_replacement(inner):
        return cell
    return None


def _is_our_replacement(fn: Any) -> bool:
    """A metric replacement (_make_metric) or a safe_patch wrapper (the CV functions)."""
    return "_autolog_sklearn" in getattr(fn, "__dict__", {}) or (
        getattr(fn, "_self_autolog_integration", None) == INTEGRATION
    )


def _swap_cell(cell: Any, replacement: Any) -> None:
    original = cell.cell_contents
    cell.cell_contents = replacement
    _cell_patches.append((cell, original, replacement))


def _patch_metrics(module: Any) -> None:
    """Every function of sklearn.metrics logs its calls on tracked predictions."""
    for name in getattr(module, "__all__", ()):
        fn = getattr(module, name, None)
        if name in NOT_METRICS or not inspect.isfunction(fn):
            continue
        cell = _implementation_cell(fn)
        if cell is not None:
            if not _is_our_replacement(cell.cell_contents):
                _swap_cell(cell, _make_metric(cell.cell_contents, name))
        elif not _is_our_replacement(fn):
            replacement = _make_metric(fn, name)
            setattr(module, name, replacement)
            _attr_patches.append((module, name, fn, replacement))


def _patch_cv_functions(module: Any) -> None:
    """cross_val_score & co. make one run; the fits they make inside are quiet."""
    for name in CV_FUNCTIONS:
        fn = getattr(module, name, None)
        if fn is None:
            continue
        patch_fn = _make_patched_cv_function(name)
        cell = _implementation_cell(fn)
        if cell is not None:
            if _is_our_replacement(cell.cell_contents):
                continue  # already patched
            holder = types.SimpleNamespace(fn=cell.cell_contents)
            if patching.safe_patch(INTEGRATION, holder, "fn", patch_fn) is not None:
                _swap_cell(cell, holder.fn)
        else:
            patching.safe_patch(INTEGRATION, module, name, patch_fn)
            home = sys.modules.get(getattr(fn, "__module__", "") or "")
            if home is not None and getattr(home, name, None) is fn:
                patching.safe_patch(INTEGRATION, home, name, patch_fn)


def _on_module(name: str, apply: Any) -> None:
    """apply(module) now if it is imported, else when it is first imported."""
    module = sys.modules.get(name)
    if module is not None:
        apply(module)
        return
    if name in _module_hooks:
        return
    import wrapt

    def hook(mod: Any) -> None:
        _module_hooks.discard(name)  # wrapt fires a hook once, then forgets it
        if _enabled:
            patching.guarded(INTEGRATION, apply, mod)

    _module_hooks.add(name)
    wrapt.register_post_import_hook(hook, name)


def patch() -> None:
    """Patch every estimator class (now and created later), the metrics and the CV functions."""
    global _enabled
    from sklearn.base import BaseEstimator

    _enabled = True
    try:
        _install_subclass_hook(BaseEstimator)
        for cls in _subclasses(BaseEstimator):
            _patch_class(cls)
        _on_module("sklearn.metrics", _patch_metrics)
        _on_module("sklearn.model_selection", _patch_cv_functions)
    except BaseException:
        unpatch()
        raise


def unpatch() -> None:
    """Remove what safe_patch does not track: the subclass hook and the swapped closure cells."""
    global _enabled
    _enabled = False
    _remove_subclass_hook()
    while _cell_patches:
        cell, original, replacement = _cell_patches.pop()
        if cell.cell_contents is replacement:
            cell.cell_contents = original
    while _attr_patches:
        module, name, original, replacement = _attr_patches.pop()
        if getattr(module, name, None) is replacement:
            setattr(module, name, original)
    _done_classes.clear()
    _done_owners.clear()


def autolog(
    log_models: bool = True,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
    extra_tags: dict[str, Any] | None = None,
    registered_model_name: str | None = None,
    max_tuning_runs: int | None = 5,
    log_post_training_metrics: bool = True,
    serialization_format: str = "cloudpickle",
    pos_label: Any = None,
    log_plots: bool = True,
    metrics_max_rows: int | None = DEFAULT_METRICS_MAX_ROWS,
    force: bool = False,
) -> None:
    """Record every scikit-learn fit, search and cross-validation from now on.

    :param log_models: log the fitted estimator (the best one for a search) as ``model``.
    :param log_input_examples: save the first rows of the training input with the model.
    :param log_model_signatures: save the input/output signature (from the training data).
    :param disable: stop logging and remove every patch.
    :param exclusive: do not log into runs the user started.
    :param silent: no warnings from autolog's own failures.
    :param extra_tags: tags added to every run autolog starts.
    :param registered_model_name: register each logged model under this name.
    :param max_tuning_runs: child runs for the best k candidates of a search (None: all).
    :param log_post_training_metrics: log sklearn.metrics calls / model.score on predictions of
        logged models into their runs.
    :param serialization_format: ``"cloudpickle"`` (default), ``"pickle"`` or ``"skops"``.
    :param pos_label: the positive label for binary precision/recall/F1 (default: 1 when the
        labels contain 1, else weighted averages).
    :param log_plots: confusion matrix (and ROC / precision-recall curves when binary) as PNG.
    :param metrics_max_rows: training metrics on a seeded sample of at most this many rows
        (None: all rows).
    :param force: patch even a scikit-learn version outside SUPPORTED_VERSIONS.
    """
    if serialization_format not in SERIALIZATION_FORMATS:
        raise ModelError(
            f"serialization_format={serialization_format!r} is not supported; use one of "
            f"{list(SERIALIZATION_FORMATS)}"
        )
    integration.configure(__name__, locals())

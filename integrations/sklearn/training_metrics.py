"""Training metrics: scikit-learn's own metric functions on (a sample of) the training rows.

One prediction over the rows serves every metric and the charts: a classifier's ``predict`` is
taken as the argmax of its ``predict_proba`` where scikit-learn's code makes them the same
(forests, trees, bagging, LogisticRegression), and a search predicts with its
``best_estimator_``. The ROC curve drawn and ``training_roc_auc`` come from one
``roc_curve`` call (``roc_auc_score`` is ``auc(*roc_curve(...))`` for a binary problem).

Two halves: :func:`prepare` takes what needs the fitted estimator (the predictions, copies of
the labels) on the training thread; :func:`log_prepared` computes and logs the metrics from
them on autolog's background thread (integrations/sklearn/patches.py defers it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autolog import integration
from integrations.sklearn.common import (
    BEST_CV_SCORE,
    DEFAULT_METRICS_MAX_ROWS,
    METRICS_SAMPLE_TAG,
    SILHOUETTE_MAX_ROWS,
    TRAINING_PREFIX,
    arg_names,
    as_float,
    is_estimator,
    is_number,
    is_search,
    n_rows,
    now_ms,
    try_predict,
)

if TYPE_CHECKING:
    from store.sqlite import Store

# What the charts are drawn from: (y_true, y_pred, classes, sample_weight, curves, positive);
# curves: (fpr, tpr, precision, recall) of the positive label, as scikit-learn's roc_curve and
# precision_recall_curve return them, for a binary classifier with scores; else None.
ChartInputs = tuple[Any, Any, Any, Any, Any, Any]


class Prepared:
    """What the training metrics need once the fit returned, taken on the training thread:
    predictions and copies of the labels and weights, so the metrics can be computed later on
    the background thread (autolog.batching.defer) whatever the user does with the estimator."""

    __slots__ = (
        "kind",
        "y_true",
        "y_pred",
        "proba",
        "decision",
        "classes",
        "sw",
        "pos_label",
        "score_from_metric",
        "metrics",
        "tags",
        "ts",
    )

    def __init__(self, tags: dict[str, Any]):
        self.kind = ""  # "classifier" / "regressor": metrics left to compute
        self.y_true: Any = None
        self.y_pred: Any = None
        self.proba: Any = None
        self.decision: Any = None
        self.classes: Any = None
        self.sw: Any = None
        self.pos_label: Any = None
        self.score_from_metric = False  # est.score is the accuracy / R2 computed from y_pred
        self.metrics: dict[str, float] = {}  # those known already (score, inertia, best CV)
        self.tags = tags
        self.ts = now_ms()


def prepare(est: Any, X: Any, y: Any, sample_weight: Any, cfg: integration.Config) -> Prepared:
    """The training thread's share: predictions over (a sample of) the rows, est.score where
    it is not a metric computed from them, the clusterer's metrics, the best CV score."""
    import numpy as np
    from sklearn import base

    cap = cfg.get("metrics_max_rows", DEFAULT_METRICS_MAX_ROWS)
    rows = n_rows(X)
    tags: dict[str, Any] = {}
    if y is not None and rows is not None and cap is not None and rows > cap:
        X, y, sample_weight = _sample_rows(X, y, sample_weight, rows, cap)
        tags[METRICS_SAMPLE_TAG] = cap
    p = Prepared(tags)
    if y is not None and base.is_classifier(est):
        _prepare_classifier(p, est, X, y, sample_weight, cfg.get("pos_label"))
    elif y is not None and base.is_regressor(est):
        y_pred = try_predict(est.predict, X) if hasattr(est, "predict") else None
        if y_pred is not None:  # (a search with refit=False has no predict)
            p.kind, p.y_pred, p.y_true = "regressor", y_pred, _copy(y)
            p.sw, p.score_from_metric = _copy(sample_weight), _score_is(est, "RegressorMixin")
    elif _is_clusterer(est):
        _clusterer_metrics(est, X, p.metrics)
    if y is not None and not p.score_from_metric and hasattr(est, "score"):
        value = _score(est, X, y, sample_weight)
        if value is not None:
            p.metrics[TRAINING_PREFIX + "score"] = value
    if is_search(est) and isinstance(getattr(est, "best_score_", None), (int, float, np.number)):
        p.metrics[BEST_CV_SCORE] = float(est.best_score_)
    return p


def log_prepared(store: Store, run_id: str, p: Prepared) -> ChartInputs | None:
    """The metrics scikit-learn computes from what :func:`prepare` took, logged; returns the
    chart inputs. Needs no estimator: safe on the background thread."""
    metrics: dict[str, float] = {}
    charts = None
    if p.kind == "classifier":
        with metric_config():
            charts = _classifier_values(p, metrics)
    elif p.kind == "regressor":
        with metric_config():
            _regression_values(p.score_from_metric, p.y_true, p.y_pred, p.sw, metrics)
    metrics.update(p.metrics)
    points = [(k, as_float(v), p.ts, 0) for k, v in metrics.items()]
    if points or p.tags:
        store.log_batch(run_id, metrics=points, tags=p.tags)
    return charts


def _copy(a: Any) -> Any:
    """A copy the user cannot change after the fit returned (labels, weights)."""
    import numpy as np

    return None if a is None else np.array(a, copy=True)


def _predictions(est: Any, X: Any) -> tuple[Any, Any, Any]:
    """(predictor, y_pred, proba) over X; proba None without predict_proba."""
    import numpy as np

    best = getattr(est, "best_estimator_", None) if is_search(est) else None
    predictor: Any = best if is_estimator(best) else est  # what a refitted search predicts with
    has_proba = hasattr(predictor, "predict_proba")
    classes = getattr(est, "classes_", None)
    proba = None
    if has_proba and classes is not None and _predict_is_argmax_of_proba(predictor):
        proba = try_predict(predictor.predict_proba, X)
        ok = proba is not None and np.ndim(proba) == 2 and proba.shape[1] == len(classes)
        y_pred = classes.take(np.argmax(proba, axis=1), axis=0) if ok else None
    elif not hasattr(predictor, "predict"):  # a search with refit=False
        return predictor, None, None
    else:
        y_pred = try_predict(predictor.predict, X)
        if y_pred is not None and has_proba:
            proba = try_predict(predictor.predict_proba, X)
    return predictor, y_pred, proba


def _prepare_classifier(p: Prepared, est: Any, X: Any, y: Any, sw: Any, pos_label: Any) -> None:
    import numpy as np

    predictor, y_pred, proba = _predictions(est, X)
    if y_pred is None:
        return
    p.kind, p.y_true, p.y_pred, p.proba = "classifier", _copy(y), y_pred, proba
    p.sw, p.pos_label = _copy(sw), pos_label
    if p.y_true.ndim > 1 and p.y_true.shape[1] > 1:  # multi-output / multilabel
        return
    classes = getattr(est, "classes_", None)
    if classes is None or np.ndim(classes) != 1:
        classes = np.unique(np.concatenate([np.ravel(p.y_true), np.ravel(y_pred)]))
    p.classes = np.array(classes, copy=True)
    p.score_from_metric = _score_is(est, "ClassifierMixin")
    usable_proba = proba is not None and np.ndim(proba) == 2 and proba.shape[1] == len(classes)
    if not usable_proba and len(classes) == 2 and hasattr(predictor, "decision_function"):
        p.decision = try_predict(predictor.decision_function, X)


def _classifier_values(p: Prepared, out: dict[str, float]) -> ChartInputs | None:
    from sklearn import metrics

    y_true, y_pred, sw = p.y_true, p.y_pred, p.sw
    if p.classes is None:  # multi-output / multilabel: subset accuracy only
        _try_metric(out, "accuracy_score", metrics.accuracy_score, y_true, y_pred, sample_weight=sw)
        return None
    classes, pos_label = p.classes, p.pos_label
    _try_metric(out, "accuracy_score", metrics.accuracy_score, y_true, y_pred, sample_weight=sw)
    binary = len(classes) == 2
    positive = pos_label if binary and pos_label is not None else None
    if binary and pos_label is None:
        positive = 1 if 1 in classes.tolist() else classes[1]
        _weighted_and_positive(out, y_true, y_pred, sw, classes, positive)
    else:  # MLflow's names, MLflow's statistic: weighted averages unless pos_label is given
        _precision_recall_f1(out, PRF_KEYS, y_true, y_pred, sw, positive)
    plot_positive = positive if positive is not None else classes[-1]
    curves = _ranking_metrics(p.decision, y_true, p.proba, classes, plot_positive, sw, out)
    if p.score_from_metric and TRAINING_PREFIX + "accuracy_score" in out:
        out[TRAINING_PREFIX + "score"] = out[TRAINING_PREFIX + "accuracy_score"]
    return (y_true, y_pred, classes, sw, curves, plot_positive)


# MLflow's keys; and, for a binary problem without pos_label=, the binary scores of its
# positive label under keys of their own (MLflow's keys then hold weighted averages).
PRF_KEYS = ("precision_score", "recall_score", "f1_score")
PRF_POS_LABEL_KEYS = ("precision_pos_label", "recall_pos_label", "f1_pos_label")


def _precision_recall_f1(
    out: dict[str, float], keys: tuple[str, ...], y_true: Any, y_pred: Any, sw: Any, positive: Any
) -> None:
    """precision_score, recall_score and f1_score as MLflow calls them: average="binary" for
    ``positive``, else "weighted" (zero_division's default value, without its warning)."""
    from sklearn import metrics

    prf = _try(
        metrics.precision_recall_fscore_support,
        y_true,
        y_pred,
        average="weighted" if positive is None else "binary",
        pos_label=1 if positive is None else positive,
        sample_weight=sw,
        zero_division=0,
    )
    if prf is not None:
        for key, value in zip(keys, prf[:3]):
            out[TRAINING_PREFIX + key] = float(value)


def _weighted_and_positive(
    out: dict[str, float], y_true: Any, y_pred: Any, sw: Any, classes: Any, positive: Any
) -> None:
    """A binary problem without pos_label: MLflow's weighted averages and the binary scores of
    ``positive``, from one per-class precision_recall_fscore_support call.

    Why not two calls: each costs 14 M instructions on the GridSearchCV benchmark's 5,000 rows
    (mostly scikit-learn's input checks), 0.8% of that search. The weighted average is what
    scikit-learn's own ``average="weighted"`` computes from these per-class values
    (``numpy.average`` weighted by support, sklearn.utils.extmath._nanaverage; no NaN with
    zero_division=0), and a binary score is the per-class value of its label; tests compare
    both exactly with the two calls.
    """
    import numpy as np
    from sklearn import metrics

    per_class = _try(
        metrics.precision_recall_fscore_support,
        y_true,
        y_pred,
        labels=classes,
        average=None,
        sample_weight=sw,
        zero_division=0,
    )
    if per_class is None:
        return
    support = per_class[3]
    if not np.sum(support) > 0:  # weights summing to zero: scikit-learn's own fallback
        _precision_recall_f1(out, PRF_KEYS, y_true, y_pred, sw, None)
    else:
        for key, values in zip(PRF_KEYS, per_class[:3]):
            out[TRAINING_PREFIX + key] = float(np.average(values, weights=support))
    index = int(np.flatnonzero(classes == positive)[0])
    for key, values in zip(PRF_POS_LABEL_KEYS, per_class[:3]):
        out[TRAINING_PREFIX + key] = float(values[index])


def _ranking_metrics(
    decision: Any,
    y_true: Any,
    proba: Any,
    classes: Any,
    positive: Any,
    sw: Any,
    out: dict[str, float],
) -> Any:
    """log_loss and roc_auc; returns the binary curves of ``positive`` for the charts (or None)."""
    import numpy as np
    from sklearn import metrics

    scores = None  # binary: the scores of ``positive``, for its curves
    roc_scores = None  # what roc_auc_score is given
    if proba is not None and np.ndim(proba) == 2 and proba.shape[1] == len(classes):
        _try_metric(
            out, "log_loss", metrics.log_loss, y_true, proba, labels=classes, sample_weight=sw
        )
        if len(classes) == 2:
            column = np.flatnonzero(classes == positive)
            scores = proba[:, int(column[0])] if len(column) else None
            roc_scores = proba[:, 1]  # roc_auc_score ranks by the score of the greater label
        elif len(classes) > 2:
            roc_scores = proba  # one-vs-one, as MLflow (which ignores sample weights there)
    elif len(classes) == 2 and decision is not None and np.ndim(decision) == 1:
        roc_scores = decision  # (taken by _prepare_classifier)
        scores = decision if positive == classes[1] else -decision
    curves = binary_curves(y_true == positive, scores, sw) if scores is not None else None
    if curves is not None and positive == classes[1]:
        # roc_auc_score's own computation for a binary problem, on the curve already drawn
        out[TRAINING_PREFIX + "roc_auc"] = float(metrics.auc(curves[0], curves[1]))
    elif roc_scores is not None and np.ndim(roc_scores) == 1:
        _try_metric(out, "roc_auc", metrics.roc_auc_score, y_true, roc_scores, sample_weight=sw)
    elif roc_scores is not None:
        _try_metric(
            out,
            "roc_auc",
            metrics.roc_auc_score,
            y_true,
            roc_scores,
            multi_class="ovo",
            average="weighted",
            labels=classes,
            sample_weight=sw,
        )
    return curves


def binary_curves(positive: Any, scores: Any, sw: Any) -> tuple[Any, Any, Any, Any] | None:
    """scikit-learn's (fpr, tpr) and (precision, recall) of boolean ``positive`` by ``scores``;
    None when a class is absent or a score is not a finite number (no curve to draw)."""
    import numpy as np
    from sklearn import metrics

    s = np.asarray(scores, dtype=float)
    pos = np.asarray(positive, dtype=bool)
    if (
        s.ndim != 1
        or s.shape != pos.shape
        or not np.isfinite(s).all()
        or pos.all()
        or not pos.any()
    ):
        return None
    fpr, tpr, _ = metrics.roc_curve(pos, s, sample_weight=sw)
    precision, recall, _ = metrics.precision_recall_curve(pos, s, sample_weight=sw)
    if not (np.isfinite(fpr).all() and np.isfinite(tpr).all() and np.isfinite(precision).all()):
        return None  # weights summing to zero in a class
    return fpr, tpr, precision, recall


def _regression_values(
    score_is_r2: bool, y: Any, y_pred: Any, sw: Any, out: dict[str, float]
) -> None:
    import math

    from sklearn import metrics

    mse = _try_metric(
        out, "mean_squared_error", metrics.mean_squared_error, y, y_pred, sample_weight=sw
    )
    if mse is not None:
        # MLflow's: the root of the MSE averaged over outputs (not root_mean_squared_error's
        # average of per-output roots, another number when there are several outputs)
        out[TRAINING_PREFIX + "root_mean_squared_error"] = math.sqrt(mse)
    _try_metric(
        out, "mean_absolute_error", metrics.mean_absolute_error, y, y_pred, sample_weight=sw
    )
    _try_metric(out, "r2_score", metrics.r2_score, y, y_pred, sample_weight=sw)
    if score_is_r2 and TRAINING_PREFIX + "r2_score" in out:
        out[TRAINING_PREFIX + "score"] = out[TRAINING_PREFIX + "r2_score"]


def _clusterer_metrics(est: Any, X: Any, out: dict[str, float]) -> None:
    from sklearn import metrics

    inertia: Any = getattr(est, "inertia_", None)
    if is_number(inertia):
        out[TRAINING_PREFIX + "inertia"] = float(inertia)
    labels = getattr(est, "labels_", None)
    n = n_rows(X)
    if labels is not None and n is not None and len(labels) == n:
        with metric_config():
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
    if sw is not None and "sample_weight" in arg_names(est.score):
        kwargs["sample_weight"] = sw
    value = try_predict(est.score, X, y, **kwargs)
    return as_float(value) if is_number(value) else None


def _is_clusterer(est: Any) -> bool:
    from sklearn import base

    check = getattr(base, "is_clusterer", None)
    if check is not None:
        return bool(check(est))
    return getattr(est, "_estimator_type", None) == "clusterer"


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
        elif is_search(est) and getattr(est, "scoring", "") is None:
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


def _sample_rows(X: Any, y: Any, sw: Any, n_rows: int, cap: int) -> tuple[Any, Any, Any]:
    import numpy as np
    from sklearn.utils import _safe_indexing

    rows = np.sort(np.random.default_rng(0).choice(n_rows, size=cap, replace=False))
    pick = lambda a: None if a is None else _safe_indexing(a, rows)  # noqa: E731
    return pick(X), pick(y), pick(sw)


def metric_config() -> Any:
    """scikit-learn's public configuration for autolog's own metric calls: no parameter
    validation (``skip_parameter_validation``).

    Every argument autolog passes is one of its own literals, the training labels the fit
    accepted or the estimator's own predictions; scikit-learn's checks of the *data* (lengths,
    target types, labels) still run. Thread-local, so the user's other threads keep their
    configuration. Measured on the GridSearchCV benchmark: see docs/sklearn.md "Cost".
    """
    import sklearn

    return sklearn.config_context(skip_parameter_validation=True)


def _try(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A metric that the data does not allow (one class, NaN scores, ...) is skipped."""
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


def _try_metric(out: dict[str, float], key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    value = _try(fn, *args, **kwargs)
    if is_number(value):
        out[TRAINING_PREFIX + key] = float(value)
        return float(value)
    return None

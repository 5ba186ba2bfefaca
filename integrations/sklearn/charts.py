"""The training charts of a classifier, as PNG artifacts: drawn from scikit-learn's own values.

The confusion matrix is ``sklearn.metrics.confusion_matrix``; the ROC and precision-recall
curves are those ``roc_curve`` / ``precision_recall_curve`` returned to the training metrics
(one computation for the metric and its chart). autolog.plots draws them with Pillow. The
scikit-learn calls run under the training metrics' ``metric_config`` (no parameter validation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations.sklearn.common import (
    CONFUSION_MATRIX_ARTIFACT,
    PR_CURVE_ARTIFACT,
    ROC_CURVE_ARTIFACT,
)
from integrations.sklearn.training_metrics import metric_config

if TYPE_CHECKING:
    from store.sqlite import Store


def write_classifier_charts(
    store: Store,
    run_id: str,
    y_true: Any,
    y_pred: Any,
    classes: Any,
    sw: Any,
    curves: Any,
    positive: Any,
) -> None:
    """Confusion matrix; for a binary classifier with scores, ROC and precision-recall curves.

    Each chart is written on its own: one that storage refuses does not keep the next from
    being tried (and named among the run's missing artifacts); the first failure is raised."""
    from sklearn import metrics

    from autolog import plots

    with metric_config():
        matrix = metrics.confusion_matrix(y_true, y_pred, labels=classes, sample_weight=sw)
    png = plots.confusion_matrix_png(
        matrix, [str(c) for c in classes], "Confusion matrix (training data)"
    )
    charts = [(CONFUSION_MATRIX_ARTIFACT, png)]
    if curves is not None:  # None: not binary, no scores, one class only or no finite scores
        charts += _curve_charts(curves, positive)
    failure: Exception | None = None
    for name, chart in charts:
        if chart is None:
            continue
        try:
            store.write_artifact_bytes(run_id, name, chart)
        except Exception as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


def _curve_charts(curves: Any, positive: Any) -> list[tuple[str, bytes | None]]:
    from sklearn import metrics

    from autolog import plots

    fpr, tpr, precision, recall = curves
    with metric_config():
        area = metrics.auc(fpr, tpr)
    png = plots.line_chart_png(
        [(f"AUC = {area:.3f}", fpr, tpr)],
        "ROC curve (training data)",
        f"False positive rate (positive label: {positive})",
        "True positive rate",
        diagonal=True,
    )
    pr = plots.line_chart_png(
        [(f"AP = {_average_precision(precision, recall):.3f}", *_pr_steps(precision, recall))],
        "Precision-recall curve (training data)",
        f"Recall (positive label: {positive})",
        "Precision",
    )
    return [(ROC_CURVE_ARTIFACT, png), (PR_CURVE_ARTIFACT, pr)]


def _average_precision(precision: Any, recall: Any) -> float:
    """average_precision_score's own formula, on the curve it would compute again."""
    import numpy as np

    return float(-np.sum(np.diff(recall) * np.asarray(precision)[:-1]))


def _pr_steps(precision: Any, recall: Any) -> tuple[Any, Any]:
    """The step curve: the precision at a threshold holds from the previous recall to its own.

    scikit-learn lists the lowest threshold first and ends with the (recall 0, precision 1)
    point, which is no threshold: dropped, and the rest read from the highest threshold.
    """
    import numpy as np

    p, r = np.asarray(precision)[:-1][::-1], np.asarray(recall)[:-1][::-1]
    return np.concatenate([[0.0], np.repeat(r, 2)[:-1]]), np.repeat(p, 2)

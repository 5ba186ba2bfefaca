"""scikit-learn autologging: every fit, search, cross-validation and post-training metric.

Usage::

    import autolog
    autolog.autolog()            # or: from integrations import sklearn; sklearn.autolog(...)

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    model = LogisticRegression().fit(X_train, y_train)    # one run: params, metrics, model
    accuracy_score(y_test, model.predict(X_test))         # + metric accuracy_score_X_test

What each run holds (keys, artifacts, flags, caveats) is documented in docs/sklearn.md.

The package, by concern: ``common`` (keys, limits, shared helpers), ``patches`` (what is
patched and the patched ``fit``), ``training_metrics`` (sklearn.metrics on the training rows),
``charts`` (the training charts), ``searches`` (GridSearchCV & co., cross_val_score & co.),
``html`` (the estimator diagram), ``post_training`` (metrics on a logged model's predictions),
``flavor`` (the model format, save/log/load).
"""

from __future__ import annotations

from typing import Any

from autolog import integration
from autolog.errors import IntegrationError, ModelError
from integrations.sklearn.common import (
    DEFAULT_METRICS_MAX_ROWS,
    INTEGRATION,
    SERIALIZATION_FORMATS,
)
from integrations.sklearn.flavor import FLAVOR, SklearnFlavor, load_model, log_model, save_model
from integrations.sklearn.patches import patch, unpatch

LIBRARY = "sklearn"
DISTRIBUTIONS = ("scikit-learn",)
SUPPORTED_VERSIONS = ">=1.3,<1.10"

__all__ = [
    "DISTRIBUTIONS",
    "FLAVOR",
    "INTEGRATION",
    "LIBRARY",
    "SUPPORTED_VERSIONS",
    "SklearnFlavor",
    "autolog",
    "flush",
    "load_model",
    "log_model",
    "patch",
    "save_model",
    "unpatch",
]


def flush(timeout: float | None = 60.0) -> None:
    """Wait until the work every fit left to autolog's background thread is written.

    The training metrics, the charts and ``estimator.html`` of a fit are written after it
    returns. Reading a run through autolog (``get_run``, ``search_runs``, ``list_artifacts``,
    ``get_metric_history``, ...) waits for them, and so do ``end_run`` of a run you started and
    the interpreter's exit; call ``flush()`` before reading the store by other means (another
    process, the files). A failure of that work is reported here, as one warning. Calling it
    again, or with nothing pending, does nothing.

    :param timeout: seconds to wait at most (None: no limit).
    """
    from autolog import batching

    batching.flush_deferred(None, timeout)


def autolog(
    log_models: bool = True,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_datasets: bool = True,
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
    deep_search_params: bool = False,
    force: bool = False,
) -> None:
    """Record every scikit-learn fit, search and cross-validation from now on.

    :param log_models: log the fitted estimator as ``model``; for a search, also its
        ``best_estimator_`` as ``best_estimator``.
    :param log_input_examples: save the first rows of the training input with the model.
    :param log_model_signatures: save the input/output signature (from the training data).
    :param log_datasets: record the training set (X with y) as a run input (docs/datasets.md).
    :param disable: stop logging and remove every patch.
    :param exclusive: do not log into runs the user started.
    :param silent: no warnings from autolog's own failures.
    :param extra_tags: tags added to every run autolog starts.
    :param registered_model_name: register each logged model under this name.
    :param max_tuning_runs: child runs for the best k candidates of a search (None: all;
        0: none).
    :param log_post_training_metrics: log sklearn.metrics calls / model.score on predictions of
        logged models into their runs.
    :param serialization_format: ``"cloudpickle"`` (default), ``"pickle"`` or ``"skops"``.
    :param pos_label: the positive label of a binary problem: ``training_precision_score``,
        ``training_recall_score`` and ``training_f1_score`` are then its binary scores (as in
        MLflow); by default they are weighted averages, and the binary scores of 1 (or of the
        greater label) are logged as ``training_precision_pos_label`` & co.
    :param log_plots: confusion matrix (and ROC / precision-recall curves when binary) as PNG.
    :param metrics_max_rows: training metrics on a seeded sample of at most this many rows
        (None: all rows).
    :param deep_search_params: log a search's params with ``get_params(deep=True)`` (its
        estimator's as ``estimator__C``, ...) instead of MLflow's ``deep=False``.
    :param force: patch even a scikit-learn version outside SUPPORTED_VERSIONS.
    :raises IntegrationError: ``max_tuning_runs`` is not None or an integer >= 0.
    """
    _check_options(max_tuning_runs, serialization_format)
    integration.configure(__name__, locals())


def _check_options(max_tuning_runs: Any, serialization_format: str) -> None:
    """The options :func:`autolog` refuses, with the value and the fix in the message."""
    if max_tuning_runs is not None and (
        isinstance(max_tuning_runs, bool)
        or not isinstance(max_tuning_runs, int)
        or max_tuning_runs < 0
    ):
        raise IntegrationError(
            f"max_tuning_runs={max_tuning_runs!r} is not allowed; give the number of best "
            "candidates of a search to log as child runs (an integer >= 0), or None for all"
        )
    if serialization_format not in SERIALIZATION_FORMATS:
        raise ModelError(
            f"serialization_format={serialization_format!r} is not supported; use one of "
            f"{list(SERIALIZATION_FORMATS)}"
        )

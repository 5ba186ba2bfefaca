"""Keys, limits and the small helpers every module of the scikit-learn integration shares.

Imports neither scikit-learn nor numpy: they are looked up in ``sys.modules`` (a class of a
module not imported yet cannot be an instance) or imported inside the function that needs them.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time
import weakref
from typing import Any

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
BEST_ESTIMATOR_ARTIFACT = "best_estimator"
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


def now_ms() -> int:
    return int(time.time() * 1000)


def is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.number) and not isinstance(value, np.bool_)


def as_float(value: Any) -> float:
    return value if type(value) is float else float(value)


def is_estimator(obj: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(obj, base.BaseEstimator)


def is_search(est: Any) -> bool:
    search = sys.modules.get("sklearn.model_selection._search")
    return search is not None and isinstance(est, search.BaseSearchCV)


_quiet_classes: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def is_quiet(cls: type) -> bool:
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


def param_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def params_of(est: Any, deep: bool = True) -> dict[str, Any]:
    """get_params(deep), values as text where they are not scalars (no dict flattening)."""
    return {str(k): param_value(v) for k, v in est.get_params(deep=deep).items()}


def estimator_tags(est: Any) -> dict[str, str]:
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


def arg_names(fn: Any) -> tuple[str, ...]:
    """Parameter names of a function or bound method (without self)."""
    func = getattr(fn, "__func__", None)
    if func is not None:
        names = _arg_names_of(func)
        return names[1:] if names else names
    try:
        return _arg_names_of(fn)
    except TypeError:  # unhashable callable
        return ()


def bind(fn: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments of a call by name, defaults included."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def fit_inputs(fit: Any, args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
    """X, y and sample_weight of a fit call, by position or by name."""
    names = arg_names(fit) or ("X", "y")

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


def n_rows(X: Any) -> int | None:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(X)
    except TypeError:
        return None


def head(X: Any, n: int) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[:n]
    try:
        return X[:n]
    except Exception:
        return None


def try_predict(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """The estimator's own predict/score: whatever it raises means no metric, not our failure."""
    try:
        return fn(*args, **kwargs)
    except Exception:
        return None

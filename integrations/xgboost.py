"""Autologging for XGBoost: ``xgboost.train``, ``xgboost.cv`` and the scikit-learn wrappers.

    import xgboost as xgb
    from integrations import xgboost as xgb_autolog

    xgb_autolog.autolog()
    booster = xgb.train(params, dtrain, 200, evals=[(dtrain, "train"), (dvalid, "valid")])
    clf = xgb.XGBClassifier(early_stopping_rounds=10).fit(X, y, eval_set=[(X_val, y_val)])

Each training call logs one run: the params, every evaluation metric per iteration
(``train-logloss``, ``valid-auc``, step = iteration), ``best_iteration`` /
``stopped_iteration`` / ``best_*`` when early stopping was on, feature importance of every
type (JSON + PNG), and the model in XGBoost's own UBJ format (a wrapper stays an
``XGBClassifier`` etc. when loaded). ``xgboost.cv`` logs the per-iteration mean and std of
every metric. A wrapper's fit logs once: the ``xgboost.train`` it calls is quiet.
See docs/xgboost.md.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

from autolog import boosting, integration, models, patching

DISTRIBUTIONS = ("xgboost", "xgboost-cpu")
INTEGRATION = integration.Integration("xgboost", distributions=DISTRIBUTIONS, supported=">=2.0,<4")

NAME = "xgboost"
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")
MODEL_FORMATS = ("ubj", "json")
ESTIMATOR_NAME_TAG = boosting.ESTIMATOR_NAME_TAG
ESTIMATOR_CLASS_TAG = boosting.ESTIMATOR_CLASS_TAG
CV_MEAN, CV_STD = "-mean", "-std"

# train()/cv() arguments that are data, functions or outputs, not parameters.
_NOT_PARAMS = (
    "params",
    "dtrain",
    "evals",
    "obj",
    "evals_result",
    "xgb_model",
    "callbacks",
    "custom_metric",
    "folds",
    "fpreproc",
)
# DMatrix feature types -> signature column types ("c": categorical, passed through).
_COLUMN_TYPES: dict[str, Any] = {
    "float": "double",
    "q": "double",
    "int": "long",
    "i": "boolean",
    "c": {"type": "any"},
}


# -- the per-iteration callback -------------------------------------------------------------


@functools.cache
def _recorder_class() -> type:
    from xgboost.callback import TrainingCallback

    class Recorder(TrainingCallback):
        """Hands every iteration's evaluation results to a History (and never stops training)."""

        def __init__(self, history: boosting.History, cv: bool):
            super().__init__()
            self.history = history
            self.cv = cv
            self.start = 0  # rounds already in the model (training continuation)
            self.model: Any = None
            self._keys: dict[tuple[str, str], str] = {}

        def before_training(self, model: Any) -> Any:
            self.model = model
            try:
                self.start = model.num_boosted_rounds()
            except Exception:
                self.start = 0
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            try:
                keys = self._keys
                values: dict[str, float] = {}
                for data, metrics in evals_log.items():
                    for metric, log in metrics.items():
                        key = keys.get((data, metric))
                        if key is None:
                            key = keys[(data, metric)] = boosting.metric_key(data, metric)
                        if self.cv:
                            mean, std = log[-1]
                            values[key + CV_MEAN] = mean
                            values[key + CV_STD] = std
                        else:
                            values[key] = log[-1]
                self.history.record(epoch, values)
            except Exception as exc:
                if not self.history.failed:
                    self.history.fail(exc)
            return False

    return Recorder


# -- what is logged -----------------------------------------------------------------------------


def _early_stopping_asked(rounds: Any, callbacks: Any) -> bool:
    from xgboost.callback import EarlyStopping

    return bool(rounds) or any(isinstance(cb, EarlyStopping) for cb in callbacks or ())


def _log_early_stopping(run_id: str, recorder: Any, model: Any) -> None:
    """best_iteration is XGBoost's own (0-based, counting rounds of a continued model)."""
    best = model.attr("best_iteration")
    if best is None:
        return
    history = recorder.history
    last = history.last_step
    boosting.log_early_stopping(
        run_id,
        history,
        best_iteration=int(best),
        best_step=int(best) - recorder.start,
        stopped_iteration=None if last is None else recorder.start + last,
    )


def _importances(booster: Any, types: Any) -> dict[str, dict[str, Any]]:
    from xgboost.core import XGBoostError

    out = {}
    for imp_type in IMPORTANCE_TYPES if types is None else types:
        try:
            out[imp_type] = booster.get_score(importance_type=imp_type)
        except (XGBoostError, ValueError):
            continue  # e.g. gain and cover of a linear booster
    return out


def _dmatrix_signature(booster: Any, dtrain: Any) -> Any:
    """Inputs from the DMatrix's feature names and types, outputs from a 5-row prediction."""
    import numpy as np

    from autolog.signature import ColSpec, ModelSignature, Schema, TensorSpec

    names, types = dtrain.feature_names, dtrain.feature_types
    if names:
        types = types or ["float"] * len(names)
        inputs = Schema(
            [ColSpec(_COLUMN_TYPES.get(t, "double"), n) for n, t in zip(names, types, strict=True)]
        )
    else:
        inputs = Schema([TensorSpec(np.dtype("float64"), (-1, dtrain.num_col()))])
    outputs = None
    try:
        sample = dtrain.slice(list(range(min(boosting.EXAMPLE_ROWS, dtrain.num_row()))))
        pred = booster.predict(sample)
        outputs = Schema([TensorSpec(pred.dtype, (-1, *pred.shape[1:]))])
    except Exception:  # QuantileDMatrix and external memory cannot be sliced
        outputs = None
    return ModelSignature(inputs, outputs)


def _dmatrix_example(dtrain: Any) -> Any:
    """The first rows of a DMatrix as a frame (named features) or an array; NaN where missing.

    None for a QuantileDMatrix or categorical features, which keep bins or codes, not values.
    """
    import numpy as np
    import xgboost

    if isinstance(dtrain, xgboost.QuantileDMatrix) or "c" in (dtrain.feature_types or ()):
        return None
    rows = dtrain.get_data()[: boosting.EXAMPLE_ROWS]
    dense = np.full(rows.shape, np.nan)
    coo = rows.tocoo()
    dense[coo.row, coo.col] = coo.data
    if dtrain.feature_names:
        import pandas as pd

        return pd.DataFrame(dense, columns=dtrain.feature_names)
    return dense


def _log_booster_model(run_id: str, booster: Any, dtrain: Any, config: Any) -> None:
    signature = _dmatrix_signature(booster, dtrain) if config.log_model_signatures else None
    example = None
    if config.log_input_examples:
        example = patching.guarded(NAME, _dmatrix_example, dtrain, silent=config.silent)
    flavor = _flavor(config.get("model_format", "ubj"))
    boosting.log_model(NAME, flavor, booster, run_id, config, signature, example)


# -- the patched methods -------------------------------------------------------------------------


class _XGBoost(boosting.Template):
    """What XGBoost supplies to the shared train / cv / fit bodies."""

    name = NAME
    not_params = _NOT_PARAMS

    def recorder(self, history: boosting.History, cv: bool) -> Any:
        return _recorder_class()(history, cv=cv)

    def log_early_stopping(
        self, run_id: str, recorder: Any, model: Any, rounds: Any, callbacks: Any
    ) -> None:
        if _early_stopping_asked(rounds, callbacks):
            _log_early_stopping(run_id, recorder, model)

    def importances(self, booster: Any, types: Any) -> dict[str, dict[str, Any]]:
        return _importances(booster, types)

    def train_sets(self, arguments: dict[str, Any]) -> tuple[str, Any, list[tuple[str, Any, Any]]]:
        dtrain = arguments["dtrain"]
        evals = [(str(n), d, None) for d, n in arguments.get("evals") or ()]
        train_name = next((n for n, d, _ in evals if d is dtrain), "train")
        return train_name, dtrain, evals

    def log_trained(
        self, run_id: str, booster: Any, arguments: dict[str, Any], example: Any, config: Any
    ) -> None:
        _log_booster_model(run_id, booster, arguments["dtrain"], config)

    def log_fitted(self, run_id: str, estimator: Any, example: Any, config: Any) -> None:
        _log_estimator_model(run_id, estimator, example, config)

    def booster_of(self, estimator: Any) -> Any:
        return estimator.get_booster()

    def with_fit_callback(
        self, instance: Any, call: Any, args: tuple, kwargs: dict, recorder: Any
    ) -> tuple[tuple, dict, Any]:
        import xgboost

        # Random forests refuse callbacks; their single round is read from evals_result_.
        if isinstance(instance, (xgboost.XGBRFClassifier, xgboost.XGBRFRegressor)):
            return args, kwargs, None
        # the wrapper reads callbacks from the estimator: swap them for this fit only
        user_callbacks = instance.callbacks
        instance.callbacks = boosting.with_callback(user_callbacks, recorder)

        def undo() -> None:
            instance.callbacks = user_callbacks

        return args, kwargs, undo


_BOOSTING = _XGBoost()
_patched_train = _BOOSTING.patched_train
_patched_cv = _BOOSTING.patched_cv
_patched_fit = _BOOSTING.patched_fit


def _log_estimator_model(run_id: str, model: Any, example: Any, config: Any) -> None:
    flavor = _flavor(config.get("model_format", "ubj"))
    signature = None
    if config.log_model_signatures:
        signature = boosting.signature_from_example(flavor, model, example)
    boosting.log_model(NAME, flavor, model, run_id, config, signature, example)


# -- the flavor ----------------------------------------------------------------------------------


@functools.cache
def _installed_distribution() -> str:
    from importlib import metadata

    for dist in DISTRIBUTIONS:
        try:
            metadata.version(dist)
            return dist
        except metadata.PackageNotFoundError:
            continue
    return DISTRIBUTIONS[0]


def _model_class(name: str) -> type:
    """The XGBoost class named in MLmodel; nothing outside the xgboost package is imported."""
    import xgboost

    from autolog.errors import ModelLoadError

    module, _, cls_name = name.rpartition(".")
    if module != "xgboost" and not module.startswith("xgboost."):
        raise ModelLoadError(f"model_class {name!r} is not an XGBoost class")
    cls = getattr(importlib.import_module(module), cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, (xgboost.Booster, xgboost.XGBModel))):
        raise ModelLoadError(f"model_class {name!r} is not an XGBoost Booster or estimator")
    return cls


class XGBoostFlavor(models.Flavor):
    """A Booster or scikit-learn wrapper in XGBoost's own format (UBJ by default, or JSON)."""

    name = "xgboost"
    requirements = DISTRIBUTIONS[:1]
    mlflow_loader_module = "mlflow.xgboost"

    def __init__(self, model_format: str = "ubj"):
        if model_format not in MODEL_FORMATS:
            from autolog.errors import ModelError

            raise ModelError(f"model_format={model_format!r}: use one of {list(MODEL_FORMATS)}")
        self.model_format = model_format

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import xgboost

        data = f"model.{self.model_format}"
        model.save_model(path / data)
        cls = type(model)
        return {
            "data": data,
            "model_class": f"{cls.__module__}.{cls.__name__}",
            "model_format": self.model_format,
            "xgb_version": xgboost.__version__,
            "code": None,
        }

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        model = _model_class(conf.get("model_class", "xgboost.core.Booster"))()
        model.load_model(path / conf["data"])
        return model

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        import xgboost

        if isinstance(native, xgboost.Booster) and not isinstance(data, xgboost.DMatrix):
            data = xgboost.DMatrix(data, enable_categorical=True)
        return native.predict(data)

    def pyfunc_conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        return {"data": conf["data"]}

    def requirements_for(self, model: Any) -> list[str]:
        reqs = [_installed_distribution()]
        if type(model).__name__ != "Booster":
            reqs.append("scikit-learn")
        return reqs


FLAVOR = XGBoostFlavor()


def _flavor(model_format: str) -> XGBoostFlavor:
    return FLAVOR if model_format == FLAVOR.model_format else XGBoostFlavor(model_format)


def save_model(
    xgb_model: Any,
    path: Any,
    signature: Any = None,
    input_example: Any = None,
    *,
    model_format: str = "ubj",
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> models.Model:
    """Save a Booster or XGBoost estimator as an MLmodel directory at ``path``.

    :param xgb_model: an ``xgboost.Booster`` or ``XGBClassifier``/``XGBRegressor``/...
    :param path: a directory that does not exist yet (or is empty).
    :param signature: a ModelSignature; None infers one from ``input_example``.
    :param input_example: a few rows of input, saved beside the model.
    :param model_format: ``"ubj"`` (default) or ``"json"``.
    """
    return models.save_model(
        _flavor(model_format),
        xgb_model,
        path,
        signature,
        input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def log_model(
    xgb_model: Any,
    artifact_path: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    model_format: str = "ubj",
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> models.ModelInfo:
    """Log a Booster or XGBoost estimator into a run (default: the active one, or a new one).

    :return: the ModelInfo; ``model_info.model_uri`` loads it back.
    """
    return models.log_model(
        _flavor(model_format),
        xgb_model,
        artifact_path,
        signature,
        input_example,
        name=name,
        registered_model_name=registered_model_name,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        run_id=run_id,
    )


def load_model(model_uri: Any) -> Any:
    """The model at ``model_uri`` as it was saved: a Booster, or an ``XGBClassifier`` etc."""
    return models.load_flavor_model(model_uri, FLAVOR)


# -- enabling ------------------------------------------------------------------------------------


def _estimator_classes() -> list[type]:
    import xgboost.sklearn

    return boosting.wrapper_classes(xgboost.sklearn, xgboost.sklearn.XGBModel)


@INTEGRATION.patcher
def patch() -> None:
    import xgboost
    import xgboost.sklearn
    import xgboost.training

    # train is looked up under three names: xgboost.train, its home module, and the copy
    # xgboost.sklearn imported for the wrappers (quiet when a wrapper's fit calls it).
    for owner in (xgboost, xgboost.training, xgboost.sklearn):
        patching.safe_patch(NAME, owner, "train", _patched_train)
    for owner in (xgboost, xgboost.training):
        patching.safe_patch(NAME, owner, "cv", _patched_cv)
    for cls in _estimator_classes():
        if "fit" in vars(cls):
            patching.safe_patch(NAME, cls, "fit", _patched_fit)


@INTEGRATION.autolog
def autolog(
    importance_types: list[str] | None = None,
    log_importance_plots: bool = True,
    model_format: str = "ubj",
) -> None:
    """Log every XGBoost training (train, cv, scikit-learn wrappers' fit) from now on.

    :param importance_types: importance types to log (default: weight, gain, cover,
        total_gain, total_cover); ``[]`` logs none.
    :param log_importance_plots: also draw each importance type as a PNG bar chart.
    :param model_format: ``"ubj"`` (default) or ``"json"``.
    """
    if model_format not in MODEL_FORMATS:
        from autolog.errors import IntegrationError

        raise IntegrationError(f"model_format={model_format!r}: use one of {list(MODEL_FORMATS)}")

"""Autologging for LightGBM: ``lightgbm.train``, ``lightgbm.cv`` and the scikit-learn wrappers.

    import lightgbm as lgb
    from integrations import lightgbm as lgb_autolog

    lgb_autolog.autolog()
    booster = lgb.train(params, train_set, 200, valid_sets=[train_set, valid_set],
                        valid_names=["train", "valid"])
    clf = lgb.LGBMClassifier().fit(X, y, eval_set=[(X_val, y_val)],
                                   callbacks=[lgb.early_stopping(10)])

Each training call logs one run: the params, every evaluation metric per iteration
(``train-binary_logloss``, ``valid-auc``, step = iteration), ``best_iteration`` /
``stopped_iteration`` / ``best_*`` when early stopping was on, feature importance (split and
gain; JSON + PNG), and the model as LightGBM's text model file (a wrapper stays an
``LGBMClassifier`` etc. when loaded). ``lightgbm.cv`` logs the per-iteration mean and std of
every metric. A wrapper's fit logs once: the ``lightgbm.train`` it calls is quiet.
See docs/lightgbm.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autolog import boosting, integration, models, patching

DISTRIBUTIONS = ("lightgbm",)
INTEGRATION = integration.Integration("lightgbm", distributions=DISTRIBUTIONS, supported=">=4.0,<5")

NAME = "lightgbm"
IMPORTANCE_TYPES = ("split", "gain")
MODEL_FILE = "model.txt"
ESTIMATOR_FILE = "estimator.json"
ESTIMATOR_NAME_TAG = boosting.ESTIMATOR_NAME_TAG
ESTIMATOR_CLASS_TAG = boosting.ESTIMATOR_CLASS_TAG
CV_MEAN, CV_STD = "-mean", "-std"
BOOSTER_CLASS = "lightgbm.basic.Booster"

# train()/cv() arguments that are data, functions or models, not parameters.
_NOT_PARAMS = (
    "params",
    "train_set",
    "valid_sets",
    "feval",
    "init_model",
    "callbacks",
    "folds",
    "fpreproc",
    "valid_names",  # names of the eval sets: the metric keys and dataset names carry them
)


# -- the per-iteration callback -------------------------------------------------------------


class _Recorder:
    """A LightGBM callback handing each iteration's evaluation results to a History.

    ``order`` 20 is that of LightGBM's own ``record_evaluation``: after the user's unnumbered
    callbacks, before ``early_stopping`` (30), so the points logged are exactly the library's
    ``evals_result``.
    """

    def __init__(self, history: boosting.History, cv: bool):
        self.order = 20
        self.before_iteration = False
        self.history = history
        self.cv = cv
        self.begin = 0
        self.model: Any = None
        self._keys: dict[tuple[str, str], str] = {}

    def __call__(self, env: Any) -> None:
        try:
            self.model = env.model
            self.begin = env.begin_iteration
            keys = self._keys
            values: dict[str, float] = {}
            for item in env.evaluation_result_list or ():
                key = keys.get((item[0], item[1]))
                if key is None:
                    key = keys[(item[0], item[1])] = boosting.metric_key(item[0], item[1])
                if self.cv:
                    values[key + CV_MEAN] = item[2]
                    values[key + CV_STD] = item[4]
                else:
                    values[key] = item[2]
            self.history.record(env.iteration - env.begin_iteration, values)
        except Exception as exc:
            if not self.history.failed:
                self.history.fail(exc)


# -- what is logged -----------------------------------------------------------------------------


def _log_early_stopping(run_id: str, recorder: _Recorder, best_iteration: int) -> None:
    """best_iteration is LightGBM's own: 1-based (the number of iterations kept)."""
    if best_iteration <= 0:
        return  # no early stopping in this training
    history = recorder.history
    last = history.last_step
    boosting.log_early_stopping(
        run_id,
        history,
        best_iteration=best_iteration,
        best_step=best_iteration - 1 - recorder.begin,
        stopped_iteration=None if last is None else recorder.begin + last + 1,
    )


def _dataset_head(train_set: Any) -> Any:
    """The first rows of a Dataset's raw data, taken before training frees it (None if gone)."""
    data = getattr(train_set, "data", None)
    try:
        return boosting.head(data)
    except Exception:
        return None


def _names_signature(booster: Any) -> Any:
    """Inputs from the model's feature names when the raw data is gone (a file, or freed)."""
    import numpy as np

    from autolog.signature import ColSpec, ModelSignature, Schema, TensorSpec

    names = booster.feature_name()
    if names and names != [f"Column_{i}" for i in range(len(names))]:
        return ModelSignature(Schema([ColSpec("double", n) for n in names]))
    return ModelSignature(Schema([TensorSpec(np.dtype("float64"), (-1, len(names)))]))


def _log_model(run_id: str, model: Any, example: Any, config: Any) -> None:
    signature = None
    if config.log_model_signatures:
        if example is not None:
            signature = boosting.signature_from_example(FLAVOR, model, example)
        elif isinstance(model, _booster_class()):
            signature = _names_signature(model)
    boosting.log_model(NAME, FLAVOR, model, run_id, config, signature, example)


def _booster_class() -> type:
    import lightgbm

    return lightgbm.Booster


# -- the patched methods -------------------------------------------------------------------------


class _LightGBM(boosting.Template):
    """What LightGBM supplies to the shared train / cv / fit bodies."""

    name = NAME
    not_params = _NOT_PARAMS

    def recorder(self, history: boosting.History, cv: bool) -> Any:
        return _Recorder(history, cv=cv)

    def log_early_stopping(
        self, run_id: str, recorder: Any, model: Any, rounds: Any, callbacks: Any
    ) -> None:
        _log_early_stopping(run_id, recorder, getattr(model, "best_iteration", 0))

    def importances(self, booster: Any, types: Any) -> dict[str, dict[str, Any]]:
        names = booster.feature_name()
        return {
            imp_type: dict(
                zip(names, booster.feature_importance(importance_type=imp_type).tolist())
            )
            for imp_type in (IMPORTANCE_TYPES if types is None else types)
        }

    def train_example(self, arguments: dict[str, Any]) -> Any:
        return _dataset_head(arguments["train_set"])

    eval_default = "valid_{}"

    def train_sets(self, arguments: dict[str, Any]) -> tuple[str, Any, list[tuple[str, Any, Any]]]:
        train_set = arguments["train_set"]
        sets, names = arguments.get("valid_sets") or (), arguments.get("valid_names") or ()
        evals = []
        for i, d in enumerate([sets] if not isinstance(sets, (list, tuple)) else sets):
            default = "training" if d is train_set else f"valid_{i}"
            evals.append((str(names[i]) if i < len(names) else default, d, None))
        train_name = next((n for n, d, _ in evals if d is train_set), "train")
        return train_name, train_set, evals

    def log_trained(
        self, run_id: str, booster: Any, arguments: dict[str, Any], example: Any, config: Any
    ) -> None:
        _log_model(run_id, booster, example, config)

    def log_fitted(self, run_id: str, estimator: Any, example: Any, config: Any) -> None:
        _log_model(run_id, estimator, example, config)

    def booster_of(self, estimator: Any) -> Any:
        return estimator.booster_


_BOOSTING = _LightGBM()
_patched_train = _BOOSTING.patched_train
_patched_cv = _BOOSTING.patched_cv
_patched_fit = _BOOSTING.patched_fit


# -- the flavor ----------------------------------------------------------------------------------


def _estimator_state(model: Any) -> dict[str, Any]:
    """What a scikit-learn wrapper needs beside its booster to predict as it did."""
    params, unrestored = {}, []
    for key, value in model.get_params().items():
        try:
            if json.loads(json.dumps(value)) == value:
                params[key] = value
                continue
        except (TypeError, ValueError):
            pass
        unrestored.append(key)
    objective = model.objective_
    state: dict[str, Any] = {
        "class": type(model).__name__,
        "params": params,
        "unrestored_params": unrestored,
        "objective": objective if isinstance(objective, str) else None,
        "n_features_in": model.n_features_in_,
        "fitted_with_feature_names": bool(model._fitted_with_feature_names),
        "best_iteration": model.best_iteration_,
        "best_score": {k: dict(v) for k, v in model.best_score_.items()},
    }
    classes = getattr(model, "classes_", None) if hasattr(model, "_le") else None
    if classes is not None:
        state["classes"] = classes.tolist()
        state["classes_dtype"] = classes.dtype.str if classes.dtype.kind != "O" else "object"
    return state


def _estimator_from_state(state: dict[str, Any], booster: Any) -> Any:
    import lightgbm.sklearn
    import numpy as np

    from autolog.errors import ModelLoadError

    cls = getattr(lightgbm.sklearn, state["class"], None)
    if not (isinstance(cls, type) and issubclass(cls, lightgbm.sklearn.LGBMModel)):
        raise ModelLoadError(f"{state['class']!r} is not a LightGBM scikit-learn estimator")
    model = cls(**state["params"])
    model._Booster = booster
    model._n_features = booster.num_feature()
    model._n_features_in = state["n_features_in"]
    model._fitted_with_feature_names = state["fitted_with_feature_names"]
    model._best_iteration = state["best_iteration"]
    model._best_score = state["best_score"]
    model._evals_result = {}
    model._objective = state["objective"]
    if "classes" in state:
        from lightgbm.compat import _LGBMLabelEncoder

        encoder = _LGBMLabelEncoder().fit(
            np.asarray(state["classes"], dtype=state["classes_dtype"])
        )
        model._le = encoder
        model._classes = encoder.classes_
        model._n_classes = len(encoder.classes_)
        model._class_map = dict(zip(encoder.classes_, encoder.transform(encoder.classes_)))
    model.fitted_ = True
    return model


class LightGBMFlavor(models.Flavor):
    """A Booster or scikit-learn wrapper as LightGBM's text model file (no pickle).

    A wrapper also writes ``estimator.json`` (its params, classes, objective) to rebuild it.
    MLflow's loader reads Boosters directly; wrappers load through ``autolog.models``.
    """

    name = "lightgbm"
    requirements = ("lightgbm",)
    mlflow_loader_module = "mlflow.lightgbm"

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import lightgbm

        conf: dict[str, Any] = {"data": MODEL_FILE, "model_format": "text"}
        if isinstance(model, lightgbm.Booster):
            model.save_model(path / MODEL_FILE)
            conf["model_class"] = BOOSTER_CLASS
        else:
            model.booster_.save_model(path / MODEL_FILE)
            text = json.dumps(_estimator_state(model), indent=2, allow_nan=True)
            (path / ESTIMATOR_FILE).write_text(text, encoding="utf-8")
            cls = type(model)
            conf["model_class"] = f"{cls.__module__}.{cls.__name__}"
            conf["estimator"] = ESTIMATOR_FILE
        conf["lgb_version"] = lightgbm.__version__
        conf["code"] = None
        return conf

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        import lightgbm

        booster = lightgbm.Booster(model_file=str(path / conf["data"]))
        if conf.get("model_class", BOOSTER_CLASS) == BOOSTER_CLASS:
            return booster
        state = json.loads((path / conf["estimator"]).read_text(encoding="utf-8"))
        return _estimator_from_state(state, booster)

    def pyfunc_conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        if conf.get("model_class") == BOOSTER_CLASS:
            return {"data": conf["data"]}
        # MLflow's LightGBM loader unpickles wrappers; ours are text + JSON, loaded by autolog.
        return {"data": conf["data"], "loader_module": "autolog.models"}

    def requirements_for(self, model: Any) -> list[str]:
        reqs = list(self.requirements)
        if type(model).__name__ != "Booster":
            reqs.append("scikit-learn")
        return reqs


FLAVOR = LightGBMFlavor()


def save_model(
    lgb_model: Any,
    path: Any,
    signature: Any = None,
    input_example: Any = None,
    *,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> models.Model:
    """Save a Booster or LightGBM estimator as an MLmodel directory at ``path``.

    :param lgb_model: a ``lightgbm.Booster`` or ``LGBMClassifier``/``LGBMRegressor``/...
    :param path: a directory that does not exist yet (or is empty).
    :param signature: a ModelSignature; None infers one from ``input_example``.
    :param input_example: a few rows of input, saved beside the model.
    """
    return models.save_model(
        FLAVOR,
        lgb_model,
        path,
        signature,
        input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def log_model(
    lgb_model: Any,
    artifact_path: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> models.ModelInfo:
    """Log a Booster or LightGBM estimator into a run (default: the active one, or a new one).

    :return: the ModelInfo; ``model_info.model_uri`` loads it back.
    """
    return models.log_model(
        FLAVOR,
        lgb_model,
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
    """The model at ``model_uri`` as it was saved: a Booster, or an ``LGBMClassifier`` etc."""
    return models.load_flavor_model(model_uri, FLAVOR)


# -- enabling ------------------------------------------------------------------------------------


def _estimator_classes() -> list[type]:
    import lightgbm.sklearn

    return boosting.wrapper_classes(lightgbm.sklearn, lightgbm.sklearn.LGBMModel)


@INTEGRATION.patcher
def patch() -> None:
    import lightgbm
    import lightgbm.engine
    import lightgbm.sklearn

    # train is looked up under three names: lightgbm.train, its home module, and the copy
    # lightgbm.sklearn imported for the wrappers (quiet when a wrapper's fit calls it).
    for owner in (lightgbm, lightgbm.engine, lightgbm.sklearn):
        patching.safe_patch(NAME, owner, "train", _patched_train)
    for owner in (lightgbm, lightgbm.engine):
        patching.safe_patch(NAME, owner, "cv", _patched_cv)
    for cls in _estimator_classes():
        if "fit" in vars(cls):
            patching.safe_patch(NAME, cls, "fit", _patched_fit)


@INTEGRATION.autolog
def autolog(
    importance_types: list[str] | None = None,
    log_importance_plots: bool = True,
) -> None:
    """Log every LightGBM training (train, cv, scikit-learn wrappers' fit) from now on.

    :param importance_types: importance types to log (default: split and gain); ``[]`` logs
        none.
    :param log_importance_plots: also draw each importance type as a PNG bar chart.
    """

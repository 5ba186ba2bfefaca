"""The ``sklearn`` model flavor (MLflow's format), save/log/load, and the model a fit logs."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, NamedTuple

from autolog import integration, models, patching
from autolog.errors import AutologError, ModelError
from autolog.models import MLflowSklearnFlavor
from autolog.signature import ModelSignature
from integrations.sklearn.common import (
    BEST_ESTIMATOR_ARTIFACT,
    INPUT_EXAMPLE_ROWS,
    INTEGRATION,
    MODEL_ARTIFACT,
    SERIALIZATION_FORMATS,
    head,
    is_search,
    try_predict,
)


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
        classes = [type(model)]
        if is_search(model) and hasattr(model, "best_estimator_"):
            classes.append(type(model.best_estimator_))  # pickled inside the search
        for cls in classes:
            dist = models.distribution_of_module(cls.__module__)
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


class ModelInput(NamedTuple):
    """What the logged models keep of the training input, taken before ``fit`` ran (a step
    that changes X in place, e.g. adds a column, must not change the signature)."""

    inputs: Any  # the input Schema; None without signatures or when no schema describes X
    example: Any  # a copy of the first rows; None without log_input_examples


def capture_model_input(X: Any, cfg: integration.Config) -> ModelInput:
    from autolog.signature import infer_schema

    inputs = None
    if cfg.log_model_signatures:
        try:
            inputs = infer_schema(X)
        except AutologError:
            inputs = None
    example = None
    if cfg.log_input_examples:
        example = copy.deepcopy(head(X, INPUT_EXAMPLE_ROWS))
    return ModelInput(inputs, example)


def log_models_of_run(
    run_id: str, est: Any, X: Any, y_pred: Any, cfg: integration.Config, model_input: ModelInput
) -> list[str]:
    """The estimator as ``model``; a search's ``best_estimator_`` also as ``best_estimator``
    (MLflow's two models), with the same signature, example and requirements; returns the
    logged models' ids."""
    best = getattr(est, "best_estimator_", None) if is_search(est) else None
    signature: Any = False
    if model_input.inputs is not None:
        predictor = best if best is not None else est
        example = model_input.example if model_input.example is not None else X
        outputs = _outputs(predictor, example, y_pred, model_input.inputs.is_tensor_spec())
        signature = ModelSignature(model_input.inputs, outputs)
    fl = _flavor(cfg.get("serialization_format", "cloudpickle"))
    reqs = [models.pin(d) for d in fl.requirements_for(est)]
    example = model_input.example

    def log(model: Any, path: str) -> models.ModelInfo:
        return models.log_model(
            fl, model, path, signature, example, run_id=run_id, pip_requirements=reqs
        )

    info = log(est, MODEL_ARTIFACT)
    name = cfg.registered_model_name
    if name:
        patching.guarded(INTEGRATION, _register, info.model_uri, name, silent=bool(cfg.silent))
    infos = [info]
    if best is not None:
        infos.append(log(best, BEST_ESTIMATOR_ARTIFACT))
    return [i.model_id for i in infos if i.model_id is not None]


def _register(model_uri: str, name: str) -> None:
    from autolog import registry  # type: ignore[attr-defined]

    registry.register_model(model_uri, name)


def _outputs(model: Any, X: Any, y_pred: Any, tensor_inputs: bool) -> Any:
    """The output schema, from the training predictions (no extra predict) when there are."""
    from autolog.signature import infer_schema

    if y_pred is None and hasattr(model, "predict"):
        y_pred = try_predict(model.predict, copy.deepcopy(head(X, INPUT_EXAMPLE_ROWS)))
    if y_pred is None:
        return None
    np = sys.modules["numpy"]
    if isinstance(y_pred, np.ndarray) and y_pred.ndim == 1 and not tensor_inputs:
        import pandas as pd

        y_pred = pd.Series(y_pred)  # column inputs, 1-D output: one unnamed column (MLflow)
    try:
        return infer_schema(y_pred)
    except AutologError:
        return None

"""The Keras model: the ``keras`` flavor (native ``.keras`` file), its signature and example.

Split from integrations/keras.py (the patches) by concern, as DESIGN.md section 7 asks of an
integration over ~600 lines. Imports neither keras nor numpy at import time.
"""

from __future__ import annotations

import contextvars
import sys
import tempfile
from pathlib import Path
from typing import Any

from autolog import boosting, models
from autolog.errors import ModelError, ModelLoadError

MODEL_DIR = "data"
MODEL_FILE = "model.keras"
MODULE_FILE = "keras_module.txt"
BACKEND_DISTRIBUTIONS = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}


def is_array_like(x: Any) -> bool:
    """Arrays, tensors, DataFrames, and dicts or lists of them: sliceable without user code."""
    if isinstance(x, dict):
        return bool(x) and all(is_array_like(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return bool(x) and all(is_array_like(v) for v in x)
    return hasattr(x, "shape") and hasattr(x, "__getitem__")


# -- the flavor ----------------------------------------------------------------------------------

_LAMBDA_CODE = "a Keras model with a Lambda layer (its Python bytecode runs when it is loaded)"
_custom_objects: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "autolog_keras_custom_objects", default=None
)


class KerasFlavor(models.Flavor):
    """A ``keras.Model`` in Keras' native ``.keras`` file (MLflow's layout: ``data/model.keras``).

    Loaded with ``safe_mode=True``: a model whose Lambda layer holds Python bytecode loads only
    through autolog's pickle gate (a ``runs:/`` URI whose digests match, or the caller's
    ``allow_pickle=True`` / ``AUTOLOG_ALLOW_PICKLE=1``), exactly as a pickle would.
    """

    name = "keras"
    requirements = ("keras",)
    mlflow_loader_module = "mlflow.keras"

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import keras

        if not isinstance(model, keras.Model):
            raise ModelError(f"The keras flavor saves keras.Model objects, not {type(model)}")
        data = path / MODEL_DIR
        data.mkdir()
        model.save(data / MODEL_FILE)
        (data / MODULE_FILE).write_text("keras", encoding="utf-8")  # MLflow's loader reads it
        return {
            "data": MODEL_DIR,
            "keras_version": keras.__version__,
            "keras_backend": keras.backend.backend(),
            "save_exported_model": False,
        }

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        if conf.get("save_exported_model"):
            raise ModelLoadError(
                f"{path}: this Keras model was saved in the exported (TensorFlow SavedModel) "
                "format, which needs TensorFlow; autolog loads the native .keras format only"
            )
        folder = models.contained(path, conf.get("data", MODEL_DIR))
        file = folder / MODEL_FILE if folder.is_dir() else folder
        return _load_keras_file(path, file, _custom_objects.get())

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        pd = sys.modules.get("pandas")
        if pd is not None and isinstance(data, pd.DataFrame):
            data = data.to_numpy()
        return native.predict(data, verbose=0)

    def requirements_for(self, model: Any) -> list[str]:
        import keras

        backend = BACKEND_DISTRIBUTIONS.get(keras.backend.backend())
        return ["keras"] + ([backend] if backend else [])


FLAVOR = KerasFlavor()


def _load_keras_file(root: Path, file: Path, custom_objects: dict[str, Any] | None) -> Any:
    """``keras.saving.load_model(safe_mode=True)``; unsafe code only through the pickle gate."""
    import keras

    try:
        return keras.saving.load_model(file, custom_objects=custom_objects, safe_mode=True)
    except (ValueError, TypeError) as exc:
        if "safe_mode" not in str(exc):
            raise
        refused = exc
    rel = file.relative_to(root).as_posix()
    try:
        data = models.pickle_bytes(root, rel, _LAMBDA_CODE)
    except ModelLoadError as gate:
        raise ModelLoadError(
            f"{file}: Keras' safe_mode refuses to load this model: it holds Python code (a "
            f"Lambda layer) that would run when loaded. {gate}"
        ) from refused
    with tempfile.TemporaryDirectory() as tmp:
        checked = Path(tmp) / MODEL_FILE  # the bytes the gate checked are the bytes loaded
        checked.write_bytes(data)
        return keras.saving.load_model(checked, custom_objects=custom_objects, safe_mode=False)


def save_model(
    model: Any,
    path: Any,
    signature: Any = None,
    input_example: Any = None,
    *,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> models.Model:
    """Save a ``keras.Model`` as an MLmodel directory at ``path`` (``data/model.keras``).

    :param signature: a ModelSignature; None infers one from ``input_example``.
    :param input_example: a few rows of input (an array, or a dict of arrays), saved beside it.
    """
    return models.save_model(
        FLAVOR,
        model,
        path,
        signature,
        input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def log_model(
    model: Any,
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
    """Log a ``keras.Model`` into a run (default: the active one, or a new one)."""
    return models.log_model(
        FLAVOR,
        model,
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


def load_model(
    model_uri: Any,
    custom_objects: dict[str, Any] | None = None,
    *,
    allow_pickle: bool | None = None,
) -> Any:
    """The ``keras.Model`` at ``model_uri`` (compiled again when it was saved compiled).

    :param custom_objects: Keras' own argument: classes and functions of your code that the
        model's config names (or register them with ``keras.saving.register_keras_serializable``).
    :param allow_pickle: needed only for a model with a Lambda layer loaded by path (see
        :class:`KerasFlavor`).
    """
    token = _custom_objects.set(custom_objects)
    try:
        return models.load_flavor_model(model_uri, FLAVOR, allow_pickle=allow_pickle)
    finally:
        _custom_objects.reset(token)


# -- signature and input example ---------------------------------------------------------------


def _head(x: Any, n: int = boosting.EXAMPLE_ROWS) -> Any:
    """The first rows of array-like inputs (dicts and lists of arrays too), as numpy."""
    if isinstance(x, dict):
        rows = {str(k): _head(v, n) for k, v in x.items()}
        return None if any(v is None for v in rows.values()) else rows
    if isinstance(x, (list, tuple)):
        items = [_head(v, n) for v in x]
        return None if any(v is None for v in items) else (items[0] if len(items) == 1 else items)
    if not (hasattr(x, "shape") and hasattr(x, "__getitem__")):
        return None
    iloc = getattr(x, "iloc", None)
    if iloc is not None:
        return x.iloc[:n]
    import keras

    return keras.ops.convert_to_numpy(x[:n])


def _first_batch(x: Any) -> Any:
    """The inputs of the first batch of a PyDataset or a map-style torch DataLoader."""
    import keras

    if isinstance(x, keras.utils.PyDataset):
        batch = x[0]
    else:
        data = sys.modules.get("torch.utils.data")
        if data is None or not isinstance(x, data.DataLoader):
            return None
        dataset = x.dataset
        if isinstance(dataset, data.IterableDataset) or not hasattr(dataset, "__len__"):
            return None  # iterating again could consume the user's stream
        n = min(boosting.EXAMPLE_ROWS, len(dataset))
        batch = x.collate_fn([dataset[i] for i in range(n)])
    if isinstance(batch, (list, tuple)) and len(batch) in (1, 2, 3):
        batch = batch[0]  # Keras' (x,), (x, y), (x, y, sample_weight)
    return _head(batch)


def sample_inputs(x: Any, model: Any) -> Any:
    """A few input rows: sliced from arrays; one batch of a PyDataset or DataLoader when the
    model has no symbolic inputs to describe it (user code runs once, after training)."""
    if is_array_like(x):
        return _head(x)
    if _symbolic(model) is None:
        return _first_batch(x)
    return None


def _symbolic(model: Any) -> tuple[Any, Any] | None:
    """(inputs, outputs) of a Functional or built Sequential model; None for a subclass."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        return None
    return (inputs, outputs) if inputs and outputs else None


def _spec_schema(tensors: Any) -> Any:
    import keras
    import numpy as np

    from autolog.signature import Schema, TensorSpec

    def spec(t: Any, name: str | None) -> Any:
        shape = [-1 if d is None else int(d) for d in t.shape]
        return TensorSpec(np.dtype(keras.backend.standardize_dtype(t.dtype)), shape, name)

    flat = keras.tree.flatten(tensors)
    if len(flat) == 1:
        return Schema([spec(flat[0], None)])
    return Schema([spec(t, getattr(t, "name", None) or f"input_{i}") for i, t in enumerate(flat)])


def _predict_batch(model: Any, sample: Any) -> Any:
    """The model's outputs on a few rows as one batch: ``predict_on_batch`` runs the model
    once, where ``predict`` first builds a data adapter, an epoch iterator and callbacks."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(sample, pd.DataFrame):
        sample = sample.to_numpy()
    return model.predict_on_batch(sample)


def signature(model: Any, sample: Any) -> Any:
    """From the first rows the fit saw (outputs: the model's prediction on them); else from
    the model's symbolic inputs and outputs."""
    from autolog.signature import ModelSignature, infer_signature

    if sample is not None:
        return infer_signature(sample, _predict_batch(model, sample))
    symbolic = _symbolic(model)
    if symbolic is None:
        return None
    return ModelSignature(_spec_schema(symbolic[0]), _spec_schema(symbolic[1]))

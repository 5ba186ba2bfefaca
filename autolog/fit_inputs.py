"""What a fit records as run inputs: its training set and evaluation sets, one call per fit.

An integration calls, after logging its params::

    fit_inputs.log_fit_datasets(NAME, run_id, cfg, train=(X, y), evals=[("valid", X_val, y_val)])

Each set becomes a dataset (:mod:`autolog.data`) named as given, tagged
``mlflow.data.context`` = ``training`` or ``eval``. Understood: pandas frames and series,
numpy arrays, scipy sparse matrices, lists, torch tensors, files (a path), XGBoost ``DMatrix``,
LightGBM ``Dataset`` and torch ``DataLoader``; anything else is skipped. An eval set that is
the training object itself is not recorded again. Nothing is done when ``log_datasets`` is off,
and a failure is autolog's own (a warning; the fit goes on).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from autolog import data, patching
from autolog.data import Dataset, compute_digest

__all__ = ["dataset_for", "log_fit_datasets"]


def log_fit_datasets(
    integration: str,
    run_id: str,
    config: Any,
    train: tuple[Any, Any] | Callable[[], tuple[Any, Any]] | None = None,
    evals: Iterable[tuple[str, Any, Any]] = (),
    train_name: str = "train",
) -> None:
    """Record ``train`` = (features, targets) and ``evals`` = [(name, features, targets)].

    :param train: the pair, or a function giving it (called inside the guard).
    :param config: the integration's settings (``log_datasets``, ``silent``).
    """
    if not config.log_datasets:
        return
    patching.guarded(
        integration, _log, run_id, train, list(evals), train_name, silent=config.silent
    )


def _log(run_id: str, train: Any, evals: list[tuple[str, Any, Any]], name: str) -> None:
    from autolog import tracking

    if callable(train):
        train = train()
    inputs = []
    train_data = None if train is None else train[0]
    if train_data is not None:
        ds = dataset_for(train_data, train[1] if train is not None else None, name)
        if ds is not None:
            inputs.append(data.dataset_input(ds, data.TRAINING))
    for eval_name, features, targets in evals:
        if features is None or features is train_data:
            continue
        ds = dataset_for(features, targets, eval_name)
        if ds is not None:
            inputs.append(data.dataset_input(ds, data.EVAL))
    data.record_inputs(tracking._store(), run_id, inputs)


def dataset_for(
    features: Any, targets: Any = None, name: str = data.DEFAULT_NAME
) -> Dataset | None:
    """The dataset of a fit's input of any understood type; None for another type."""
    if features is None:
        return None
    kind = _kind(features)
    if kind == "DMatrix":
        return _dmatrix(features, name)
    if kind == "Dataset":
        return _lightgbm(features, name)
    if kind == "DataLoader":
        return _loader(features, name)
    if kind is None:
        return None
    return _plain(features, targets, name, kind)


def _kind(obj: Any) -> str | None:
    module = type(obj).__module__
    cls = type(obj).__name__
    if module.startswith("xgboost") and hasattr(obj, "num_row"):
        return "DMatrix"
    if module.startswith("lightgbm") and cls == "Dataset":
        return "Dataset"
    if module.startswith("torch.utils.data") or hasattr(obj, "batch_sampler"):
        return "DataLoader" if hasattr(obj, "dataset") else None
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, (pd.DataFrame, pd.Series)):
        return "pandas"
    if data._is_path(obj):
        return "file"
    if module.startswith("scipy.sparse"):
        return "scipy.sparse"
    if module.startswith("torch"):
        return "torch.Tensor" if hasattr(obj, "detach") else None
    if module == "numpy" or isinstance(obj, (list, tuple)):
        return "numpy"
    return None


def _plain(features: Any, targets: Any, name: str, kind: str) -> Dataset:
    if kind == "numpy" and not hasattr(features, "dtype"):
        import numpy as np

        features = np.asarray(features)
    if isinstance(targets, (list, tuple)):
        import numpy as np

        targets = np.asarray(targets)
    digest = compute_digest([features, targets])
    schema, profile = data._describe(features, targets, digest)
    if kind == "file":
        import os

        source, source_type = os.path.abspath(os.fspath(features)), "local"
    else:
        source, source_type = f"in-memory {kind}", "memory"
    return Dataset(name, digest, source, source_type, schema, profile)


def _dmatrix(dm: Any, name: str) -> Dataset:
    """Shape, feature names and types, a sample of rows (sliced out) and their labels.

    A QuantileDMatrix or an external-memory DMatrix cannot be sliced: its digest has no rows.
    """
    rows, cols = dm.num_row(), dm.num_col()
    names, types = list(dm.feature_names or ()), list(dm.feature_types or ())
    header = data._header("DMatrix", (rows, cols), feature_names=names, feature_types=types)
    positions = data.sample_positions(rows)
    try:
        sample = dm.slice(positions).get_data()
        body = sample.data.tobytes() + sample.indices.tobytes() + sample.indptr.tobytes()
    except Exception:  # cannot be sliced (QuantileDMatrix, external memory)
        body = b""
    labels = dm.get_label()
    if len(labels):
        body += labels[positions].tobytes()
    digest = compute_digest([(header, body)])
    if names:
        columns = [{"type": "double", "name": n, "required": False} for n in names]
        schema: dict[str, Any] = {"mlflow_colspec": columns}
    else:
        spec = {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, cols]}}
        schema = {"mlflow_tensorspec": {"features": _json([spec]), "targets": None}}
    profile = {"num_rows": rows, "num_columns": cols, "num_elements": rows * cols}
    return Dataset(name, digest, "in-memory DMatrix", "memory", schema, profile)


def _lightgbm(ds: Any, name: str) -> Dataset | None:
    """The raw data a Dataset was built from, with its label; a file's path when built from one.

    Once LightGBM has constructed the Dataset and freed the raw data, only its shape is left.
    """
    raw, label = ds.data, ds.label
    if raw is None:
        rows, cols = ds.num_data(), ds.num_feature()
        digest = compute_digest([(data._header("Dataset", (rows, cols)), b"")])
        profile = {"num_rows": rows, "num_columns": cols, "num_elements": rows * cols}
        return Dataset(name, digest, "in-memory Dataset", "memory", None, profile)
    kind = _kind(raw)
    if kind is None:
        return None
    found = _plain(raw, None if kind == "file" else label, name, kind)
    if kind != "file":
        found.source = "in-memory Dataset"
    return found


def _loader(loader: Any, name: str) -> Dataset:
    """A DataLoader's dataset: a TensorDataset's tensors sampled like arrays; another dataset
    by its class, length and at most LOADER_ITEMS items read evenly spaced."""
    dataset = loader.dataset
    tensors = getattr(dataset, "tensors", None)
    size = _length(dataset)
    profile: dict[str, Any]
    if tensors is not None:
        # sampled on the tensor's device: only the sampled rows are copied to the host
        samples = [t[data.sample_positions(len(t))].detach().cpu().numpy() for t in tensors]
        parts = [
            (data._header("numpy", t.shape, dtype=str(s.dtype)), s.tobytes())
            for t, s in zip(tensors, samples, strict=True)
        ]
        digest = compute_digest([(_loader_header(dataset, size), b""), *parts])
        schema = data._tensor_schema(samples[0], samples[1] if len(samples) > 1 else None)
        profile = data._table_profile(tuple(tensors[0].shape))
    else:
        items = _items(dataset, size)
        body = b"".join(_item_bytes(item) for item in items)
        digest = compute_digest([(_loader_header(dataset, size), body)])
        schema = _item_schema(items[0]) if items else None
        profile = {"num_rows": size}
    profile = {**profile, "batch_size": loader.batch_size}
    return Dataset(name, digest, "in-memory DataLoader", "memory", schema, profile)


def _loader_header(dataset: Any, size: int | None) -> bytes:
    cls = type(dataset)
    return data._header("DataLoader", [] if size is None else [size], dataset=cls.__qualname__)


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:  # an IterableDataset has no length
        return None


def _items(dataset: Any, size: int | None) -> list[Any]:
    if not size or not hasattr(dataset, "__getitem__"):
        return []
    step = max(1, size // data.LOADER_ITEMS)
    return [dataset[i] for i in range(0, size, step)][: data.LOADER_ITEMS]


def _item_bytes(item: Any) -> bytes:
    if isinstance(item, (tuple, list)):
        return b"".join(_item_bytes(x) for x in item)
    if isinstance(item, dict):
        return b"".join(_item_bytes(item[k]) for k in sorted(item, key=str))
    if hasattr(item, "detach"):
        return item.detach().cpu().numpy().tobytes()
    if hasattr(item, "tobytes"):
        return item.tobytes()
    return repr(item).encode()


def _item_schema(item: Any) -> dict[str, Any] | None:
    parts = list(item) if isinstance(item, (tuple, list)) else [item]
    specs = []
    for part in parts:
        arr = part.detach().cpu().numpy() if hasattr(part, "detach") else None
        if arr is None:
            return None
        specs.append(
            {"type": "tensor", "tensor-spec": {"dtype": str(arr.dtype), "shape": [-1, *arr.shape]}}
        )
    targets = _json(specs[1:]) if len(specs) > 1 else None
    return {"mlflow_tensorspec": {"features": _json(specs[:1]), "targets": targets}}


def _json(value: Any) -> str:
    import json

    return json.dumps(value)

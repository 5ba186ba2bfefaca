"""Datasets as run inputs: ``from_pandas``, ``from_numpy``, and what every fit records.

    import autolog
    ds = autolog.data.from_pandas(df, source="data/train.csv", name="churn", targets="label")
    ds.digest, ds.schema, ds.profile, ds.to_dict()
    autolog.log_input(ds, context="training")
    autolog.search_runs(filter_string=f"datasets.digest = '{ds.digest}'")

The digest (documented in docs/datasets.md, version 1) is 16 hex characters of BLAKE2b-64 over
``autolog-dataset-v1``, then per part (the features, then the targets if any) a JSON header
(kind, shape, column names and dtypes) and the bytes of a bounded sample of rows: every row up
to SAMPLE_ROWS rows, else SAMPLE_ROWS rows evenly spaced from the first to the last
(``i * (n - 1) // (SAMPLE_ROWS - 1)``). A 1,000,000 x 20 float frame digests in well under
5 ms (benchmarks/datasets_bench.py); the schema, which reads every value for missing ones, is
inferred once per distinct object and content.

Integrations record their training and evaluation sets with one call,
:func:`autolog.fit_inputs.log_fit_datasets`. Imports no numpy or pandas at import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from store.entities import Dataset as DatasetEntity
from store.entities import DatasetInput, InputTag

__all__ = [
    "CONTEXT_TAG",
    "DATASETS_TAG",
    "Dataset",
    "compute_digest",
    "from_numpy",
    "from_pandas",
]

CONTEXT_TAG = "mlflow.data.context"  # MLflow's input tag: training, eval, ...
DATASETS_TAG = "mlflow.datasets"  # MLflow's run tag: [{"name", "hash", "model"}, ...]
TRAINING, EVAL = "training", "eval"
SAMPLE_ROWS = 1024
DIGEST_VERSION = b"autolog-dataset-v1"
FILE_EDGE_BYTES = 65536  # a file's digest reads its first and last 64 KiB, plus its size
LOADER_ITEMS = 32  # a DataLoader over a generic dataset: at most this many items read
DEFAULT_NAME = "dataset"


class Dataset:
    """A dataset as recorded: name, digest, source, schema and profile (MLflow's shape).

    Build one with :func:`from_pandas` or :func:`from_numpy`. ``schema`` and ``profile`` are
    dicts; :meth:`to_dict` gives the stored form (JSON text).
    """

    def __init__(
        self,
        name: str,
        digest: str,
        source: str,
        source_type: str,
        schema: dict[str, Any] | None,
        profile: dict[str, Any] | None,
        targets: str | None = None,
    ):
        self.name = name
        self.digest = digest
        self.source = source
        self.source_type = source_type
        self.schema = schema
        self.profile = profile
        self.targets = targets

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, digest={self.digest!r}, source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dataset) and self.to_dict() == other.to_dict()

    def to_dict(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source,
            "source_type": self.source_type,
            "schema": None if self.schema is None else json.dumps(self.schema),
            "profile": None if self.profile is None else json.dumps(self.profile),
        }

    def to_entity(self) -> DatasetEntity:
        """The store's record of this dataset."""
        d = self.to_dict()
        return DatasetEntity(
            self.name, self.digest, self.source_type, self.source, d["schema"], d["profile"]
        )


# -- digests ------------------------------------------------------------------------------------


def sample_positions(n: int) -> Any:
    """Row positions of the digest's sample: all rows up to SAMPLE_ROWS, else evenly spaced."""
    import numpy as np

    if n <= SAMPLE_ROWS:
        return np.arange(n, dtype=np.int64)
    return np.arange(SAMPLE_ROWS, dtype=np.int64) * (n - 1) // (SAMPLE_ROWS - 1)


def _header(kind: str, shape: Sequence[int], **extra: Any) -> bytes:
    return json.dumps({"kind": kind, "shape": [int(x) for x in shape], **extra}).encode()


def _pandas_part(data: Any) -> tuple[bytes, bytes]:
    """(header, sample bytes) of a DataFrame or Series."""
    import pandas as pd

    frame = data.to_frame() if isinstance(data, pd.Series) else data
    header = _header(
        "pandas",
        frame.shape,
        columns=[str(c) for c in frame.columns],
        dtypes=[str(t) for t in frame.dtypes],
    )
    sample = frame.take(sample_positions(len(frame)))
    try:
        body = pd.util.hash_pandas_object(sample, index=False).to_numpy().tobytes()
    except TypeError:  # unhashable cells (lists, dicts): their text instead
        body = repr(sample.to_numpy().tolist()).encode()
    return header, body


def _numpy_part(data: Any) -> tuple[bytes, bytes]:
    """(header, sample bytes) of an array (rows along the first axis)."""
    import numpy as np

    arr = np.asarray(data)
    header = _header("numpy", arr.shape, dtype=str(arr.dtype))
    sample = arr if arr.ndim == 0 else arr[sample_positions(arr.shape[0])]
    if arr.dtype.kind == "O":
        return header, repr(sample.tolist()).encode()
    return header, np.ascontiguousarray(sample).tobytes()


def _sparse_part(data: Any) -> tuple[bytes, bytes]:
    sample = data.tocsr()[sample_positions(data.shape[0])]
    header = _header("scipy.sparse", data.shape, dtype=str(data.dtype), nnz=int(data.nnz))
    return header, sample.data.tobytes() + sample.indices.tobytes() + sample.indptr.tobytes()


def _file_part(path: str) -> tuple[bytes, bytes]:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        body = f.read(FILE_EDGE_BYTES)
        if size > 2 * FILE_EDGE_BYTES:
            f.seek(size - FILE_EDGE_BYTES)
        body += f.read(FILE_EDGE_BYTES)
    return _header("file", [size]), body


def _part(data: Any) -> tuple[bytes, bytes]:
    """(header, sample bytes) of one part of a dataset, by its type."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, (pd.DataFrame, pd.Series)):
        return _pandas_part(data)
    if _is_path(data):
        return _file_part(os.fspath(data))
    if type(data).__module__.startswith("scipy.sparse"):
        return _sparse_part(data)
    if type(data).__module__.startswith("torch"):
        return _numpy_part(data.detach().cpu().numpy())
    return _numpy_part(data)


def compute_digest(parts: Iterable[Any]) -> str:
    """The digest of a dataset made of ``parts`` (features, then targets), None parts skipped."""
    h = hashlib.blake2b(DIGEST_VERSION, digest_size=8)
    for part in parts:
        if part is None:
            continue
        header, body = part if isinstance(part, tuple) else _part(part)
        h.update(header)
        h.update(body)
    return h.hexdigest()


def _is_path(data: Any) -> bool:
    return isinstance(data, (str, os.PathLike))


# -- schema and profile, once per distinct object ----------------------------------------------

_cache_lock = threading.Lock()
# id(object) -> (weak reference, digest, schema, profile): a fit on the same object again reuses
# them while its content (its digest) is unchanged
_described: dict[int, tuple[Any, str, Any, Any]] = {}
_MAX_CACHED = 64


def _cached(obj: Any, digest: str) -> tuple[Any, Any] | None:
    entry = _described.get(id(obj))
    if entry is not None and entry[0]() is obj and entry[1] == digest:
        return entry[2], entry[3]
    return None


def _remember(obj: Any, digest: str, schema: Any, profile: Any) -> None:
    try:
        ref = weakref.ref(obj)
    except TypeError:  # lists and other objects without weak references: not cached
        return
    with _cache_lock:
        if len(_described) >= _MAX_CACHED:
            _described.clear()
        _described[id(obj)] = (ref, digest, schema, profile)


def _colspec_schema(frame: Any) -> dict[str, Any] | None:
    from autolog.errors import SignatureInferenceError
    from autolog.signature import infer_schema

    try:
        return {"mlflow_colspec": infer_schema(frame).to_dict()}
    except SignatureInferenceError:
        return None


def _tensor_schema(features: Any, targets: Any = None) -> dict[str, Any] | None:
    from autolog.errors import SignatureInferenceError
    from autolog.signature import infer_schema

    try:
        spec = {
            "features": infer_schema(features).to_json(),
            "targets": None if targets is None else infer_schema(targets).to_json(),
        }
    except SignatureInferenceError:
        return None
    return {"mlflow_tensorspec": spec}


def _table_profile(shape: Sequence[int]) -> dict[str, int]:
    rows = int(shape[0]) if len(shape) else 1
    cols = 1
    for dim in shape[1:]:
        cols *= int(dim)
    return {"num_rows": rows, "num_columns": cols, "num_elements": rows * cols}


def _describe(features: Any, targets: Any, digest: str) -> tuple[Any, Any]:
    """(schema, profile) of features (+ targets), inferred once per object and content."""
    hit = _cached(features, digest)
    if hit is not None:
        return hit
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(features, (pd.DataFrame, pd.Series)):
        schema = _colspec_schema(features)
        profile = _table_profile(features.shape)
    elif _is_path(features):
        schema, profile = None, {"num_bytes": os.path.getsize(os.fspath(features))}
    else:
        if type(features).__module__.startswith("torch"):
            features = features.detach().cpu().numpy()
        if not type(features).__module__.startswith("scipy.sparse"):
            import numpy as np

            features = np.asarray(features)
        schema = _tensor_schema(features, None if targets is None else _as_array(targets))
        profile = _table_profile(features.shape)
    _remember(features, digest, schema, profile)
    return schema, profile


def _as_array(data: Any) -> Any:
    import numpy as np

    if type(data).__module__.startswith("torch"):
        return data.detach().cpu().numpy()
    return np.asarray(data)


# -- public constructors -----------------------------------------------------------------------


def _source(source: Any, kind: str) -> tuple[str, str]:
    """(source, source_type): an absolute file path ("local"), or "in-memory <kind>"."""
    if source is None:
        return f"in-memory {kind}", "memory"
    if not _is_path(source) or not os.fspath(source):
        from autolog.errors import AutologError

        raise AutologError(f"source={source!r} is not a path; give the file the data came from.")
    text = os.fspath(source)
    if "://" in text:
        return text, "uri"
    return os.path.abspath(text), "local"


def from_pandas(
    df: Any,
    source: str | os.PathLike[str] | None = None,
    name: str | None = None,
    targets: str | None = None,
    digest: str | None = None,
) -> Dataset:
    """A dataset of a pandas DataFrame.

    :param source: the file or URI the frame was read from (default: "in-memory pandas").
    :param name: the dataset's name (default: "dataset").
    :param targets: the name of the target column, which must be one of the frame's columns.
    :param digest: a digest of your own instead of the computed one.
    """
    import pandas as pd

    from autolog.errors import AutologError

    if not isinstance(df, pd.DataFrame):
        raise AutologError(f"from_pandas takes a pandas DataFrame, not {type(df).__name__}.")
    if targets is not None and targets not in df.columns:
        raise AutologError(
            f"targets={targets!r} is not a column of the frame; its columns: {list(df.columns)}."
        )
    src, src_type = _source(source, "pandas")
    digest = digest or compute_digest([df])
    schema, profile = _describe(df, None, digest)
    return Dataset(name or DEFAULT_NAME, digest, src, src_type, schema, profile, targets)


def from_numpy(
    features: Any,
    source: str | os.PathLike[str] | None = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> Dataset:
    """A dataset of a numpy array of features (rows along the first axis) and optional targets.

    :param source: the file or URI the arrays came from (default: "in-memory numpy").
    :param targets: an array of targets (one per row), part of the digest and the schema.
    """
    import numpy as np

    features = np.asarray(features)
    src, src_type = _source(source, "numpy")
    targets = None if targets is None else np.asarray(targets)
    digest = digest or compute_digest([features, targets])
    schema, profile = _describe(features, targets, digest)
    return Dataset(name or DEFAULT_NAME, digest, src, src_type, schema, profile)


# -- recording ---------------------------------------------------------------------------------


def dataset_input(dataset: Dataset, context: str | None = None, tags: Any = None) -> DatasetInput:
    """The store's DatasetInput: the dataset, its context tag and any other tags."""
    from autolog.errors import AutologError

    if not isinstance(dataset, Dataset):
        raise AutologError(
            f"log_input takes a dataset from autolog.data.from_pandas / from_numpy, not "
            f"{type(dataset).__name__}."
        )
    items = [InputTag(str(k), str(v)) for k, v in dict(tags or {}).items()]
    if context is not None:
        items = [t for t in items if t.key != CONTEXT_TAG] + [InputTag(CONTEXT_TAG, str(context))]
    return DatasetInput(dataset.to_entity(), items)


def record_inputs(store: Any, run_id: str, inputs: Sequence[DatasetInput]) -> None:
    """log_inputs, then the run's ``mlflow.datasets`` tag listing every dataset it used (on a
    REST store's background lane during an autologged fit)."""
    if inputs:
        from store.base import run_or_defer

        run_or_defer(store, _record_inputs, store, run_id, list(inputs))


def _record_inputs(store: Any, run_id: str, inputs: list[DatasetInput]) -> None:
    store.log_inputs(run_id, inputs)
    run = store.get_run(run_id)
    listed = json.loads(run.data.tags.get(DATASETS_TAG) or "[]")
    seen = {(d.get("name"), d.get("hash")) for d in listed if isinstance(d, dict)}
    for item in run.inputs.dataset_inputs:
        ds = item.dataset
        if (ds.name, ds.digest) not in seen:
            seen.add((ds.name, ds.digest))
            entry: dict[str, Any] = {"name": ds.name, "hash": ds.digest}
            if ds.source_type == "local":
                entry["path"] = ds.source
            listed.append({**entry, "model": None})
    text = json.dumps(listed, separators=(",", ":"))
    if text != run.data.tags.get(DATASETS_TAG):
        store.set_tag(run_id, DATASETS_TAG, text)

"""Model signatures: what a model takes and returns, inferred from data and enforced at predict.

The JSON written into an MLmodel file is MLflow's, so either library reads the other's models::

    signature:
      inputs: '[{"type": "double", "name": "x", "required": true}]'
      outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
      params: null

Frames (pandas DataFrame/Series, lists of records, dicts of scalars or lists) are described
column by column with :class:`ColSpec`; arrays (numpy, scipy sparse, torch, dicts of arrays)
with :class:`TensorSpec`, whose first dimension is -1 (any batch size).

:func:`enforce_schema` is what ``PyFuncModel.predict`` runs on its input:

- a missing required column raises :class:`~autolog.errors.SchemaEnforcementError` naming it;
- extra columns are dropped with one warning;
- only safe widening casts are applied (int32->int64, float32->float64, int->double);
  any other type mismatch raises naming the column, the expected and the found type;
- a tensor needs the signature's dtype and its fixed dimensions.

Neither numpy nor pandas is imported with this module: they are imported by the functions
that need them, and torch is only looked at when the caller has imported it already.

The code, by concern: :mod:`autolog.signature_schema` (the types and their JSON),
:mod:`autolog.signature_enforce` (:func:`enforce_schema`), and inference here; every name is
importable from this module.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from autolog.errors import SignatureInferenceError
from autolog.signature_enforce import (  # noqa: F401  (importable from here, as before the split)
    _WIDENING_HINT,
    enforce_schema,
)
from autolog.signature_schema import (  # noqa: F401  (importable from here, as before the split)
    _TORCH_TO_NUMPY,
    ColSpec,
    DataType,
    ModelSignature,
    Schema,
    TensorSpec,
    _dtype_name,
    _is_missing,
    _is_ndarray,
    _is_sparse,
    _is_torch_tensor,
    _python_kinds,
    _torch_dtype_name,
)

__all__ = [
    "ColSpec",
    "DataType",
    "ModelSignature",
    "Schema",
    "TensorSpec",
    "enforce_schema",
    "infer_signature",
]


# ---------------------------------------------------------------------------------------------
# inference


def infer_signature(model_input: Any, model_output: Any = None, params: dict | None = None):
    """Describe a model from an example of its input and (optionally) of its output.

    :param model_input: a DataFrame, Series, numpy array, scipy sparse matrix, torch tensor,
        dict of arrays, dict of scalars or lists, list of records, list or scalar.
    :param model_output: the model's prediction on ``model_input``, same kinds accepted.
    :param params: inference params with their default values (scalars or lists of scalars).
    :return: a :class:`ModelSignature`.
    :raises SignatureInferenceError: for data of a type no schema describes.
    """
    inputs = infer_schema(model_input) if model_input is not None else None
    outputs = infer_schema(model_output) if model_output is not None else None
    return ModelSignature(inputs, outputs, _infer_params(params) if params else None)


def infer_schema(data: Any) -> Schema:
    """The :class:`Schema` of one dataset (see :func:`infer_signature` for the kinds)."""
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(data, pd.DataFrame):
            return Schema(
                [
                    ColSpec(
                        _pandas_type(data[c], c), name=str(c), required=not _has_missing(data[c])
                    )
                    for c in data.columns
                ]
            )
        if isinstance(data, pd.Series):
            name = None if data.name is None else str(data.name)
            return Schema(
                [ColSpec(_pandas_type(data, name), name=name, required=not _has_missing(data))]
            )
    if _is_ndarray(data):
        return Schema([_tensor_spec(data)])
    if _is_sparse(data):
        return Schema([TensorSpec(data.dtype, (-1, *data.shape[1:]))])
    if _is_torch_tensor(data):
        return Schema([_torch_spec(data)])
    if isinstance(data, Mapping):
        return _infer_mapping(data)
    if isinstance(data, (list, tuple)):
        return _infer_list(data)
    return Schema([ColSpec(_scalar_type(data, "value"))])


def _tensor_spec(arr: Any, name: str | None = None) -> TensorSpec:
    if arr.dtype.kind == "O":
        kinds = _python_kinds(arr.ravel()[:1000])
        if kinds == {str}:
            return TensorSpec("str", (-1, *arr.shape[1:]), name)
        if kinds == {bytes}:
            return TensorSpec("bytes", (-1, *arr.shape[1:]), name)
    if arr.dtype.kind in "cmV":
        raise SignatureInferenceError(
            f"Cannot describe an array of dtype {arr.dtype} in a signature"
        )
    shape = (-1, *arr.shape[1:]) if arr.ndim else ()
    return TensorSpec(arr.dtype, shape, name)


def _torch_spec(t: Any, name: str | None = None) -> TensorSpec:
    shape = tuple(t.shape)
    return TensorSpec(_torch_dtype_name(t), (-1, *shape[1:]) if shape else (), name)


def _infer_mapping(data: Mapping) -> Schema:
    if not data:
        raise SignatureInferenceError("Cannot infer a schema from an empty dict")
    if any(not isinstance(k, str) for k in data):
        raise SignatureInferenceError(f"Dict keys must be strings, got {list(data)[:5]!r}")
    values = list(data.values())
    if all(_is_ndarray(v) for v in values):
        return Schema([_tensor_spec(v, k) for k, v in data.items()])
    if all(_is_torch_tensor(v) for v in values):
        return Schema([_torch_spec(v, k) for k, v in data.items()])
    # A dict of scalars is one record; a dict of lists is a frame given column by column.
    specs = []
    for k, v in data.items():
        column = list(v) if isinstance(v, (list, tuple)) or _is_ndarray(v) else [v]
        specs.append(ColSpec(_values_type(column, k), k, required=not _any_missing(column)))
    return Schema(specs)


def _infer_list(data: list | tuple) -> Schema:
    if not data:
        raise SignatureInferenceError("Cannot infer a schema from an empty list")
    if all(isinstance(r, Mapping) for r in data):
        columns: dict[str, list] = {}
        for row in data:
            for k in row:
                columns.setdefault(str(k), [])
        for row in data:
            for k in columns:
                columns[k].append(row.get(k))
        return Schema(
            [
                ColSpec(_values_type(v, k), k, required=not _any_missing(v))
                for k, v in columns.items()
            ]
        )
    if all(isinstance(r, (list, tuple)) for r in data) or any(_is_ndarray(r) for r in data):
        # A nested list of numbers is a tensor the caller did not wrap in numpy.
        import numpy as np

        try:
            arr = np.asarray(data)
        except ValueError as e:
            raise SignatureInferenceError(f"Cannot infer a schema from a ragged list: {e}")
        return Schema([_tensor_spec(arr)])
    return Schema([ColSpec(_values_type(list(data), "value"))])


def _any_missing(values: list) -> bool:
    return any(_is_missing(v) for v in values)


def _scalar_type(v: Any, where: Any) -> DataType:
    import datetime as dt

    if isinstance(v, bool):
        return DataType.boolean
    if isinstance(v, int):
        return DataType.long
    if isinstance(v, float):
        return DataType.double
    if isinstance(v, str):
        return DataType.string
    if isinstance(v, (bytes, bytearray)):
        return DataType.binary
    if isinstance(v, (dt.date, dt.datetime)):
        return DataType.datetime
    np = sys.modules.get("numpy")
    if np is not None and isinstance(v, np.generic):
        return _numpy_type(v.dtype, where)
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(v, pd.Timestamp):
        return DataType.datetime
    raise SignatureInferenceError(
        f"Cannot describe {where!r} in a signature: unsupported value type {type(v).__name__}"
    )


def _values_type(values: list, where: Any) -> DataType:
    """One DataType for a column of Python values; ints and floats mixed give double."""
    types = {_scalar_type(v, where) for v in values if not _is_missing(v)}
    if not types:
        raise SignatureInferenceError(f"Cannot infer the type of {where!r}: all values are missing")
    if len(types) == 1:
        return types.pop()
    if types <= {DataType.long, DataType.integer, DataType.double, DataType.float}:
        return DataType.double
    raise SignatureInferenceError(
        f"Column {where!r} mixes types {sorted(t.name for t in types)}; a signature needs one"
    )


def _numpy_type(dtype: Any, where: Any) -> DataType:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return DataType.boolean
    if kind == "i":
        return DataType.integer if size <= 4 else DataType.long
    if kind == "u":
        if size <= 2:
            return DataType.integer
        if size <= 4:
            return DataType.long
    if kind == "f":
        return DataType.float if size <= 4 else DataType.double
    if kind == "U":
        return DataType.string
    if kind == "S":
        return DataType.binary
    if kind == "M":
        return DataType.datetime
    raise SignatureInferenceError(
        f"Cannot describe column {where!r} of dtype {dtype} in a signature"
    )


def _has_missing(s: Any) -> bool:
    return bool(s.isna().any())


def _pandas_type(s: Any, where: Any) -> DataType:
    import pandas as pd

    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # Categoricals are described by their categories and passed through unchanged.
        return _pandas_type(pd.Series(dtype.categories), where)
    if isinstance(dtype, pd.StringDtype):
        return DataType.string
    if isinstance(dtype, pd.DatetimeTZDtype):
        return DataType.datetime
    if dtype.kind == "O":
        inferred = pd.api.types.infer_dtype(s, skipna=True)
        by_name = {
            "string": DataType.string,
            "bytes": DataType.binary,
            "boolean": DataType.boolean,
            "integer": DataType.long,
            "floating": DataType.double,
            "mixed-integer-float": DataType.double,
            "datetime": DataType.datetime,
            "datetime64": DataType.datetime,
            "date": DataType.datetime,
        }
        if inferred in by_name:
            return by_name[inferred]
        raise SignatureInferenceError(
            f"Cannot describe column {where!r} in a signature: its values are {inferred}"
        )
    return _numpy_type(dtype, where)


def _infer_params(params: dict) -> list[dict[str, Any]]:
    out = []
    for name, default in params.items():
        if isinstance(default, (list, tuple)):
            t, shape, value = _values_type(list(default), name), [-1], list(default)
        else:
            t, shape, value = _scalar_type(default, name), None, default
        if t is DataType.binary:
            raise SignatureInferenceError(f"Param {name!r}: binary params are not supported")
        out.append({"name": str(name), "type": t.name, "default": value, "shape": shape})
    return out


# ---------------------------------------------------------------------------------------------
# enforcement

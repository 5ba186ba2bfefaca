"""Enforcing a signature's input schema on the data given to ``predict``.

Split out of :mod:`autolog.signature` (which re-exports :func:`enforce_schema`; its docstring
lists the rules). numpy and pandas are imported by the functions that need them.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import Any

from autolog.errors import SchemaEnforcementError
from autolog.signature_schema import (
    ColSpec,
    DataType,
    Schema,
    TensorSpec,
    _dtype_name,
    _is_ndarray,
    _is_sparse,
    _is_torch_tensor,
    _python_kinds,
    _torch_dtype_name,
)

_WIDENING_HINT = (
    "Only safe widening casts are applied (int32->int64, float32->float64, int->double)."
)


def enforce_schema(data: Any, schema: Schema) -> Any:
    """Check ``data`` against ``schema``; return it, converted where a safe cast was needed.

    :param data: the model input (the kinds :func:`infer_signature` accepts).
    :param schema: the model signature's input schema.
    :raises SchemaEnforcementError: naming the missing columns, or the column (or tensor), the
        expected and the found type or shape.
    """
    if schema.is_tensor_spec():
        return _enforce_tensors(data, schema)
    return _enforce_columns(data, schema)


def _found_type(s: Any) -> str:
    import pandas as pd

    if s.dtype.kind == "O" and not isinstance(s.dtype, pd.StringDtype):
        inferred = pd.api.types.infer_dtype(s, skipna=True)
        return f"object ({inferred} values)"
    return str(s.dtype)


def _mismatch(where: str, expected: Any, found: str, hint: str = "") -> SchemaEnforcementError:
    return SchemaEnforcementError(
        f"Incompatible input type for {where}: expected {expected}, found {found}. "
        f"{_WIDENING_HINT}{hint}"
    )


def _enforce_series(s: Any, spec: ColSpec, where: str) -> Any:
    """Return the series, safely widened to the spec's type, or raise."""
    import pandas as pd

    t = spec.type
    if not isinstance(t, DataType):
        return s  # MLflow's complex types (array, object, map, any) are not enforced here.
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        _enforce_series(pd.Series(dtype.categories), spec, where)
        return s
    kind = dtype.kind
    found = _found_type(s)
    if t is DataType.string:
        if isinstance(dtype, pd.StringDtype) or kind == "U":
            return s
        if kind == "O" and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
            return s
        raise _mismatch(where, "string", found)
    if t is DataType.binary:
        if kind == "S" or (
            kind == "O" and pd.api.types.infer_dtype(s, skipna=True) in ("bytes", "empty")
        ):
            return s
        raise _mismatch(where, "binary", found)
    if t is DataType.datetime:
        if kind == "M":
            return s
        if kind == "O" and pd.api.types.infer_dtype(s, skipna=True) in (
            "datetime",
            "date",
            "datetime64",
        ):
            return pd.to_datetime(s)
        raise _mismatch(where, "datetime", found)
    if t is DataType.boolean:
        if kind == "b":
            return s
        if kind == "O" and pd.api.types.infer_dtype(s, skipna=False) == "boolean":
            return s.astype(bool)
        raise _mismatch(where, "boolean", found)
    return _enforce_number(s, t, where, found)


def _enforce_number(s: Any, t: DataType, where: str, found: str) -> Any:
    """The numeric series ``s`` safely widened to the numeric type ``t``, or raise."""
    import numpy as np
    import pandas as pd

    dtype = s.dtype
    kind = dtype.kind
    target = np.dtype(t.value)
    if kind not in "iuf":
        raise _mismatch(where, t.name, found)
    # Nullable extension dtypes (Int64, Float64) compare by their numpy twin.
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)
    if numpy_dtype == target:
        return s
    if t in (DataType.integer, DataType.long) and kind == "f":
        hint = ""
        if bool(s.isna().any()):
            hint = (
                " Integer columns with missing values arrive as floats: declare the column"
                " as double in the signature, or fill the missing values."
            )
        raise _mismatch(where, t.name, found, hint)
    if t is DataType.double and kind in "iu":
        ok = True  # int -> double is allowed even for int64, as MLflow allows it.
    else:
        ok = bool(np.can_cast(numpy_dtype, target, casting="safe"))
    if not ok:
        raise _mismatch(where, t.name, found)
    if isinstance(dtype, np.dtype):
        return s.astype(target)
    # Nullable extension arrays (Int32, Float32, ...): floats take NaN for a missing value,
    # integers stay nullable when something is missing.
    if target.kind == "f":
        values = s.to_numpy(dtype=target, na_value=np.nan)
    elif bool(s.isna().any()):
        return s.astype("Int64" if t is DataType.long else "Int32")
    else:
        values = s.to_numpy(dtype=target)
    return pd.Series(values, index=s.index, name=s.name)


def _as_frame(data: Any, schema: Schema) -> Any:
    """Turn the column-shaped inputs a signature describes into a DataFrame."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    names = [str(n) for n in schema.input_names()]
    if isinstance(data, Mapping):
        if all(isinstance(v, (list, tuple)) or _is_ndarray(v) for v in data.values()):
            return pd.DataFrame({str(k): v for k, v in data.items()})
        return pd.DataFrame([{str(k): v for k, v in data.items()}])
    if isinstance(data, (list, tuple)) and data and all(isinstance(r, Mapping) for r in data):
        return pd.DataFrame(list(data))
    if _is_ndarray(data):
        if data.ndim == 2 and data.shape[1] == len(names):
            return pd.DataFrame(data, columns=names)
        if data.ndim == 1 and len(names) == 1:
            return pd.DataFrame({names[0]: data})
        raise SchemaEnforcementError(
            f"Input array of shape {data.shape} does not match the signature's "
            f"{len(names)} columns {names}"
        )
    if isinstance(data, (list, tuple)) and len(names) == 1:
        return pd.DataFrame({names[0]: list(data)})
    raise SchemaEnforcementError(
        f"Input of type {type(data).__name__} cannot be checked against a column signature "
        f"{names}; pass a pandas DataFrame"
    )


def _enforce_columns(data: Any, schema: Schema) -> Any:
    import pandas as pd

    if not schema.has_input_names():
        return _enforce_unnamed_columns(data, schema)
    original = data
    df = _as_frame(data, schema)
    label_of = {str(c): c for c in df.columns}
    names = [str(n) for n in schema.input_names()]
    missing = [x.name for x in schema.inputs if x.required and x.name not in label_of]
    wanted = set(names)
    extra = [c for c in df.columns if str(c) not in wanted]
    if missing:
        msg = f"Model is missing inputs {missing}: the signature requires them."
        if extra:
            msg += f" Note that there were extra inputs: {[str(c) for c in extra]}."
        raise SchemaEnforcementError(msg)
    if extra:
        warnings.warn(
            f"Dropping input columns that are not in the model signature: {[str(c) for c in extra]}",
            UserWarning,
            stacklevel=3,
        )
    present = [x for x in schema.inputs if x.name in label_of]
    labels = [label_of[x.name] for x in present]
    changed: dict[Any, Any] = {}
    for spec, label in zip(present, labels, strict=True):
        col = df[label]
        if isinstance(col, pd.DataFrame):
            raise SchemaEnforcementError(f"Input has duplicate column {spec.name!r}")
        out = _enforce_series(col, spec, f"column {spec.name!r}")
        if out is not col:
            changed[label] = out
    if not changed and list(df.columns) == labels:
        return original if isinstance(original, pd.DataFrame) else df
    df = df[labels]
    for label, col in changed.items():
        df[label] = col
    return df


def _enforce_unnamed_columns(data: Any, schema: Schema) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if len(data.columns) != len(schema):
            raise SchemaEnforcementError(
                f"Input has {len(data.columns)} columns but the signature expects {len(schema)}"
            )
        changed = {}
        for i, spec in enumerate(schema.inputs):
            col = data.iloc[:, i]
            out = _enforce_series(col, spec, f"column {i}")
            if out is not col:
                changed[i] = out
        if not changed:
            return data
        data = data.copy()
        for i, col in changed.items():
            data.isetitem(i, col)
        return data
    if len(schema) != 1:
        raise SchemaEnforcementError(
            f"The signature expects {len(schema)} unnamed columns; pass a DataFrame"
        )
    spec = schema.inputs[0]
    if isinstance(data, pd.Series):
        return _enforce_series(data, spec, "the input")
    if isinstance(data, (list, tuple)) and not any(
        isinstance(v, (list, tuple, Mapping)) for v in data
    ):
        _enforce_series(pd.Series(list(data), dtype=object if data else None), spec, "the input")
        return data
    if _is_ndarray(data) and data.ndim == 1:
        return _enforce_series(pd.Series(data), spec, "the input").to_numpy()
    if not isinstance(data, (list, tuple, Mapping)) and not _is_ndarray(data):
        _enforce_series(pd.Series([data], dtype=object), spec, "the input")
    return data


def _enforce_tensors(data: Any, schema: Schema) -> Any:
    specs = schema.inputs
    if len(specs) == 1 and not isinstance(data, Mapping):
        return _enforce_tensor(data, specs[0], "the input tensor")
    if not isinstance(data, Mapping):
        raise SchemaEnforcementError(
            f"The signature expects named tensors {schema.input_names()}; pass a dict of arrays, "
            f"not {type(data).__name__}"
        )
    names = [x.name for x in specs]
    missing = [n for n in names if n not in data]
    if missing:
        raise SchemaEnforcementError(
            f"Model is missing inputs {missing}: the signature requires them."
        )
    extra = [k for k in data if k not in names]
    if extra:
        warnings.warn(
            f"Dropping inputs that are not in the model signature: {extra}",
            UserWarning,
            stacklevel=3,
        )
    return {x.name: _enforce_tensor(data[x.name], x, f"tensor {x.name!r}") for x in specs}


def _check_shape(shape: tuple, spec: TensorSpec, where: str) -> None:
    expected = spec.shape
    if len(shape) != len(expected) or any(
        e != -1 and e != a for e, a in zip(expected, shape, strict=False)
    ):
        what = "rank" if len(shape) != len(expected) else "shape"
        raise SchemaEnforcementError(
            f"Wrong {what} for {where}: expected shape {expected} (-1: any size), "
            f"found shape {shape}"
        )


def _enforce_tensor(x: Any, spec: TensorSpec, where: str) -> Any:
    import numpy as np

    expected = spec.dtype_name
    if _is_torch_tensor(x):
        found = _torch_dtype_name(x)
        _check_shape(tuple(x.shape), spec, where)
        if found != expected:
            raise SchemaEnforcementError(
                f"Incompatible dtype for {where}: expected {expected}, found {found}"
            )
        return x
    if _is_sparse(x):
        _check_shape(tuple(x.shape), spec, where)
        if _dtype_name(x.dtype) != expected:
            raise SchemaEnforcementError(
                f"Incompatible dtype for {where}: expected {expected}, found {x.dtype}"
            )
        return x
    pd = sys.modules.get("pandas")
    loose = not _is_ndarray(x)  # lists and frames carry no dtype of their own to respect
    if pd is not None and isinstance(x, (pd.DataFrame, pd.Series)):
        x = x.to_numpy()
    elif loose:
        try:
            x = np.asarray(x)
        except ValueError as e:
            raise SchemaEnforcementError(f"Cannot read {where} as an array: {e}")
    _check_shape(tuple(x.shape), spec, where)
    found = x.dtype
    wanted_kinds = {str} if expected == "str" else {bytes}
    if (
        expected in ("str", "bytes")
        and found.kind == "O"
        and _python_kinds(x.ravel()[:1000]) <= wanted_kinds
    ):
        return x
    if _dtype_name(found) == expected:
        return x
    if (
        loose
        and expected not in ("str", "bytes", "object")
        and np.can_cast(found, np.dtype(expected), "safe")
    ):
        return x.astype(expected)
    raise SchemaEnforcementError(
        f"Incompatible dtype for {where}: expected {expected}, found {found}. Tensor inputs must "
        f"match the signature's dtype (convert with .astype({expected!r}) if that is safe)"
    )

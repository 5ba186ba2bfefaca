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
"""

from __future__ import annotations

import enum
import json
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from autolog.errors import SchemaEnforcementError, SignatureInferenceError

__all__ = [
    "ColSpec",
    "DataType",
    "ModelSignature",
    "Schema",
    "TensorSpec",
    "enforce_schema",
    "infer_signature",
]

_WIDENING_HINT = (
    "Only safe widening casts are applied (int32->int64, float32->float64, int->double)."
)


class DataType(enum.Enum):
    """Column types of a :class:`ColSpec`, named as in MLflow's schema JSON."""

    boolean = "bool"
    integer = "int32"
    long = "int64"
    float = "float32"
    double = "float64"
    string = "str"
    binary = "bytes"
    datetime = "datetime64[ns]"

    def __repr__(self) -> str:
        return self.name

    def to_numpy(self) -> Any:
        """The numpy dtype this type maps to."""
        import numpy as np

        return np.dtype(self.value)


class ColSpec:
    """One column: a type, an optional name and whether it must be present.

    :param type: a :class:`DataType` or its name (``"double"``); MLflow's complex types
        (array, object, map, any) are kept as their JSON dict and are not enforced.
    :param name: the column name; ``None`` for a positional column.
    :param required: ``False`` when the column may be absent or hold missing values.
    """

    def __init__(self, type: DataType | str | dict, name: str | None = None, required: bool = True):
        if isinstance(type, str):
            try:
                type = DataType[type]
            except KeyError:
                raise SignatureInferenceError(
                    f"Unsupported column type {type!r}; expected one of {[t.name for t in DataType]}"
                )
        self.type: DataType | dict = type
        self.name = name
        self.required = bool(required)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any]
        d = {"type": self.type.name} if isinstance(self.type, DataType) else dict(self.type)
        if self.name is not None:
            d["name"] = self.name
        d["required"] = self.required
        return d

    @classmethod
    def from_json_dict(cls, d: Mapping[str, Any]) -> ColSpec:
        d = dict(d)
        name = d.pop("name", None)
        required = d.pop("required", True)
        required = True if required is None else required
        t = d["type"]
        return cls(t if t in DataType.__members__ else d, name=name, required=required)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ColSpec) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        kind = repr(self.type) if isinstance(self.type, DataType) else self.type.get("type")
        req = "required" if self.required else "optional"
        return f"{self.name!r}: {kind} ({req})" if self.name is not None else f"{kind} ({req})"


class TensorSpec:
    """An array: a numpy dtype and a shape where -1 stands for a variable dimension.

    :param type: a numpy dtype or its name (``"float64"``).
    :param shape: the shape, ``-1`` for variable dimensions (the batch dimension first).
    :param name: the name of this tensor among several, ``None`` for a single one.
    """

    required = True

    def __init__(self, type: Any, shape: tuple[int, ...] | list[int], name: str | None = None):
        self._dtype_name = _dtype_name(type)
        self.shape = tuple(int(s) for s in shape)
        self.name = name

    @property
    def type(self) -> Any:
        """The numpy dtype."""
        import numpy as np

        return np.dtype(self._dtype_name)

    @property
    def dtype_name(self) -> str:
        return self._dtype_name

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.name is not None:
            d["name"] = self.name
        d["type"] = "tensor"
        d["tensor-spec"] = {"dtype": self._dtype_name, "shape": list(self.shape)}
        return d

    @classmethod
    def from_json_dict(cls, d: Mapping[str, Any]) -> TensorSpec:
        spec = d["tensor-spec"]
        return cls(spec["dtype"], spec["shape"], d.get("name"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorSpec) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        t = f"Tensor({self._dtype_name!r}, {self.shape!r})"
        return f"{self.name!r}: {t}" if self.name is not None else t


def _dtype_name(dtype: Any) -> str:
    """MLflow's spelling of a numpy dtype: 'float64', 'str' for unicode, 'bytes' for bytes."""
    if isinstance(dtype, str) and dtype in ("str", "bytes", "object"):
        return dtype
    import numpy as np

    dt = np.dtype(dtype)
    if dt.kind == "U":
        return "str"
    if dt.kind == "S":
        return "bytes"
    return dt.name


class Schema:
    """A list of all-:class:`ColSpec` or all-:class:`TensorSpec` inputs (or outputs)."""

    def __init__(self, inputs: list[ColSpec] | list[TensorSpec] | list[ColSpec | TensorSpec]):
        inputs = list(inputs)
        if not inputs:
            raise SignatureInferenceError("A schema needs at least one column or tensor")
        kinds = {type(x) for x in inputs}
        if len(kinds) > 1:
            raise SignatureInferenceError("A schema cannot mix ColSpec and TensorSpec")
        named = {x.name is not None for x in inputs}
        if len(named) > 1:
            raise SignatureInferenceError(
                f"A schema cannot mix named and unnamed inputs: {[x.name for x in inputs]}"
            )
        self.inputs: list[Any] = inputs

    def __len__(self) -> int:
        return len(self.inputs)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.inputs)

    def is_tensor_spec(self) -> bool:
        return isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        return self.inputs[0].name is not None

    def input_names(self) -> list[str | int]:
        return [x.name if x.name is not None else i for i, x in enumerate(self.inputs)]

    def required_input_names(self) -> list[str | int]:
        return [
            x.name if x.name is not None else i for i, x in enumerate(self.inputs) if x.required
        ]

    def input_types(self) -> list[Any]:
        return [x.type for x in self.inputs]

    def to_dict(self) -> list[dict[str, Any]]:
        return [x.to_dict() for x in self.inputs]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | list) -> Schema:
        items = json.loads(text) if isinstance(text, str) else text
        return cls(
            [
                TensorSpec.from_json_dict(x) if x["type"] == "tensor" else ColSpec.from_json_dict(x)
                for x in items
            ]
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return repr(self.inputs)


class ModelSignature:
    """Inputs, outputs and (optionally) inference params of a model.

    :param inputs: a :class:`Schema` of the model input, or ``None``.
    :param outputs: a :class:`Schema` of the model output, or ``None``.
    :param params: MLflow's param schema, kept as its JSON (list or string), or ``None``.
    """

    def __init__(
        self,
        inputs: Schema | None = None,
        outputs: Schema | None = None,
        params: Any = None,
    ):
        self.inputs = inputs
        self.outputs = outputs
        self.params = json.loads(params) if isinstance(params, str) else params

    def to_dict(self) -> dict[str, str | None]:
        """MLflow's form: each part a JSON string, so the MLmodel YAML stays compact."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": json.dumps(self.params) if self.params else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSignature:
        inputs, outputs = d.get("inputs"), d.get("outputs")
        return cls(
            Schema.from_json(inputs) if inputs else None,
            Schema.from_json(outputs) if outputs else None,
            d.get("params") or None,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSignature) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (
            f"inputs:\n  {self.inputs!r}\noutputs:\n  {self.outputs!r}\nparams:\n  {self.params!r}"
        )


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


def _is_ndarray(data: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(data, np.ndarray)


def _is_sparse(data: Any) -> bool:
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(data)


def _is_torch_tensor(data: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(data, torch.Tensor)


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


# torch dtypes by their name after "torch."; bfloat16 and complex types have no numpy twin.
_TORCH_TO_NUMPY = {
    "bool": "bool",
    "uint8": "uint8",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "float16": "float16",
    "float32": "float32",
    "float64": "float64",
}


def _torch_dtype_name(t: Any) -> str:
    key = str(t.dtype).removeprefix("torch.")
    if key not in _TORCH_TO_NUMPY:
        raise SignatureInferenceError(
            f"torch dtype {t.dtype} has no numpy equivalent for a signature"
        )
    return _TORCH_TO_NUMPY[key]


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


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float):
        return v != v
    pd = sys.modules.get("pandas")
    return pd is not None and (v is pd.NA or v is pd.NaT)


def _any_missing(values: list) -> bool:
    return any(_is_missing(v) for v in values)


def _python_kinds(values: Any) -> set[type]:
    kinds: set[type] = set()
    for v in values:
        if _is_missing(v):
            continue
        kinds.add(
            str if isinstance(v, str) else bytes if isinstance(v, (bytes, bytearray)) else type(v)
        )
    return kinds


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
    import numpy as np
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

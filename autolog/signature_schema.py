"""The signature types: :class:`DataType`, :class:`ColSpec`, :class:`TensorSpec`,
:class:`Schema`, :class:`ModelSignature`, and their MLflow JSON.

Split out of :mod:`autolog.signature` (which re-exports every name here; its docstring
describes the format), with the tests of what kind of data a value is, which inference and
enforcement share.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from autolog.errors import SignatureInferenceError


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


def _is_ndarray(data: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(data, np.ndarray)


def _is_sparse(data: Any) -> bool:
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(data)


def _is_torch_tensor(data: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(data, torch.Tensor)


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


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float):
        return v != v
    pd = sys.modules.get("pandas")
    return pd is not None and (v is pd.NA or v is pd.NaT)


def _python_kinds(values: Any) -> set[type]:
    kinds: set[type] = set()
    for v in values:
        if _is_missing(v):
            continue
        kinds.add(
            str if isinstance(v, str) else bytes if isinstance(v, (bytes, bytearray)) else type(v)
        )
    return kinds

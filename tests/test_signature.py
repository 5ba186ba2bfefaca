"""Signature inference (MLflow's JSON) and enforcement (the issue's table)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from autolog.errors import SchemaEnforcementError, SignatureInferenceError
from autolog.signature import (
    ColSpec,
    DataType,
    ModelSignature,
    Schema,
    TensorSpec,
    enforce_schema,
    infer_signature,
)


def _inputs(data):
    return json.loads(infer_signature(data).to_dict()["inputs"])


def test_dataframe_json_is_mlflows():
    df = pd.DataFrame({"x": [1.0, 2.0], "n": [1, 2]})
    sig = infer_signature(df, np.array([0, 1]))
    assert sig.to_dict() == {
        "inputs": '[{"type": "double", "name": "x", "required": true}, '
        '{"type": "long", "name": "n", "required": true}]',
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
        "params": None,
    }


def test_pandas_column_types_and_optional_columns():
    df = pd.DataFrame(
        {
            "d": [1.0, np.nan, 3.0],
            "f": np.array([1, 2, 3], dtype="float32"),
            "l": [1, 2, 3],
            "i": np.array([1, 2, 3], dtype="int32"),
            "b": [True, False, True],
            "s": ["a", None, "c"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "y": [b"a", b"b", b"c"],
            "c": pd.Categorical(["u", "v", "u"]),
            "ni": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    got = {c["name"]: (c["type"], c["required"]) for c in _inputs(df)}
    assert got == {
        "d": ("double", False),
        "f": ("float", True),
        "l": ("long", True),
        "i": ("integer", True),
        "b": ("boolean", True),
        "s": ("string", False),
        "t": ("datetime", True),
        "y": ("binary", True),
        "c": ("string", True),
        "ni": ("long", False),
    }


def test_series_named_and_unnamed():
    assert _inputs(pd.Series([1.0], name="y")) == [
        {"type": "double", "name": "y", "required": True}
    ]
    assert _inputs(pd.Series(["a", "b"])) == [{"type": "string", "required": True}]


def test_numpy_tensor_has_variable_batch_dimension():
    assert _inputs(np.zeros((5, 3, 2), dtype="float32")) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3, 2]}}
    ]
    assert _inputs(np.array(["a", "b"]))[0]["tensor-spec"] == {"dtype": "str", "shape": [-1]}


def test_scipy_sparse():
    m = sp.csr_matrix(np.eye(4, 6))
    assert _inputs(m) == [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 6]}}]
    assert _inputs(sp.csc_matrix(m))[0]["tensor-spec"]["shape"] == [-1, 6]


def test_lists_and_dicts():
    assert _inputs([{"a": 1, "b": "x"}, {"a": 2}]) == [
        {"type": "long", "name": "a", "required": True},
        {"type": "string", "name": "b", "required": False},
    ]
    assert _inputs({"a": 1.5, "b": "x"}) == [
        {"type": "double", "name": "a", "required": True},
        {"type": "string", "name": "b", "required": True},
    ]
    assert _inputs({"a": [1, 2], "b": [0.5, None]}) == [
        {"type": "long", "name": "a", "required": True},
        {"type": "double", "name": "b", "required": False},
    ]
    assert _inputs(["a", "b"]) == [{"type": "string", "required": True}]
    assert _inputs([[1, 2], [3, 4]]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1, 2]}}
    ]
    assert _inputs({"x": np.zeros((2, 3)), "ids": np.zeros(2, dtype="int32")}) == [
        {"name": "x", "type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}},
        {"name": "ids", "type": "tensor", "tensor-spec": {"dtype": "int32", "shape": [-1]}},
    ]


def test_torch_tensor():
    torch = pytest.importorskip("torch")
    assert _inputs(torch.zeros(4, 3)) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}
    ]
    with pytest.raises(SignatureInferenceError, match="bfloat16"):
        infer_signature(torch.zeros(2, 2, dtype=torch.bfloat16))


def test_unsupported_data_names_the_column():
    with pytest.raises(SignatureInferenceError, match="'dt'"):
        infer_signature(pd.DataFrame({"dt": pd.to_timedelta([1, 2], unit="s")}))
    with pytest.raises(SignatureInferenceError, match="'m'"):
        infer_signature(pd.DataFrame({"m": [1, "a"]}))
    with pytest.raises(SignatureInferenceError):
        infer_signature(np.array([1 + 2j]))


def test_params_schema():
    sig = infer_signature(np.zeros((1, 2)), params={"k": 3, "names": ["a", "b"]})
    assert json.loads(sig.to_dict()["params"]) == [
        {"name": "k", "type": "long", "default": 3, "shape": None},
        {"name": "names", "type": "string", "default": ["a", "b"], "shape": [-1]},
    ]


def test_round_trip_and_mlflow_complex_types_are_kept():
    sig = infer_signature(pd.DataFrame({"a": [1.0], "s": ["x"]}), np.array([[0.1, 0.9]]))
    assert ModelSignature.from_dict(sig.to_dict()) == sig
    # MLflow's array/object column types are read and written back unchanged.
    raw = '[{"type": "array", "items": {"type": "string"}, "name": "tags", "required": true}]'
    back = ModelSignature.from_dict({"inputs": raw, "outputs": None})
    assert back.to_dict()["inputs"] == raw


def test_schema_rejects_mixed_specs():
    with pytest.raises(SignatureInferenceError):
        Schema([ColSpec("double", "a"), TensorSpec("float64", (-1,), "b")])
    with pytest.raises(SignatureInferenceError, match="'complex'"):
        ColSpec("complex", "a")


def test_import_loads_no_ml_library():
    code = (
        "import sys, autolog.signature as s; s.infer_signature([{'a': 1}]);"
        "print(sorted(m for m in ('numpy', 'pandas', 'torch', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- enforcement --------------------------------------------------------------------------

FRAME = pd.DataFrame(
    {
        "a": [1.0, 2.0],
        "n": np.array([1, 2], dtype="int64"),
        "f": np.array([0.5, 1.5], dtype="float32"),
        "s": ["x", "y"],
        "opt": [1.0, np.nan],
    }
)
SCHEMA = infer_signature(FRAME).inputs
TENSOR = Schema([TensorSpec("float64", (-1, 4))])

WIDENING = "Only safe widening casts"


@pytest.mark.parametrize(
    ("case", "data", "outcome"),
    [
        ("missing column", FRAME.drop(columns=["a", "s"]), "Model is missing inputs ['a', 's']"),
        ("extra column", FRAME.assign(z=1), "warns: Dropping input columns"),
        ("optional column absent", FRAME.drop(columns=["opt"]), "ok"),
        ("int->double", FRAME.assign(a=[1, 2]), "ok: a float64"),
        ("int32->int64", FRAME.assign(n=np.array([1, 2], dtype="int32")), "ok: n int64"),
        ("float32->float64", FRAME.assign(a=np.array([1, 2], dtype="float32")), "ok: a float64"),
        (
            "float64->float32 refused",
            FRAME.assign(f=[0.5, 1.5]),
            "column 'f': expected float, found float64",
        ),
        (
            "string->double refused",
            FRAME.assign(a=["1", "2"]),
            "column 'a': expected double, found",
        ),
        (
            "double->long refused, with a hint about missing values",
            FRAME.assign(n=[1.0, np.nan]),
            "column 'n': expected long, found float64",
        ),
        ("columns reordered", FRAME[FRAME.columns[::-1]], "ok: columns in signature order"),
    ],
)
def test_enforcement_table_columns(case, data, outcome):
    if outcome.startswith("ok"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = enforce_schema(data, SCHEMA)
        assert list(out.columns) == [c for c in SCHEMA.input_names() if c in data.columns]
        if outcome.startswith("ok: ") and "order" not in outcome:
            col, dtype = outcome[4:].split()
            assert str(out[col].dtype) == dtype
            pd.testing.assert_series_equal(out[col], data[col].astype(dtype))
    elif outcome.startswith("warns: "):
        with pytest.warns(UserWarning, match=outcome[7:]) as rec:
            out = enforce_schema(data, SCHEMA)
        assert "['z']" in str(rec[0].message)
        assert "z" not in out.columns
    else:
        with pytest.raises(SchemaEnforcementError) as info:
            enforce_schema(data, SCHEMA)
        assert outcome in str(info.value)
        if "found" in outcome:
            assert WIDENING in str(info.value)
        if "missing values" in case:
            assert "Integer columns with missing values" in str(info.value)


def test_int32_signature_refuses_int64():
    schema = Schema([ColSpec(DataType.integer, "i")])
    with pytest.raises(SchemaEnforcementError, match="column 'i': expected integer, found int64"):
        enforce_schema(pd.DataFrame({"i": np.array([1], dtype="int64")}), schema)


def test_unchanged_frame_is_returned_as_is():
    assert enforce_schema(FRAME, SCHEMA) is FRAME


def test_categorical_and_string_dtypes_pass_for_string_columns():
    schema = Schema([ColSpec("string", "c")])
    cat = pd.DataFrame({"c": pd.Categorical(["a", "b"])})
    assert enforce_schema(cat, schema) is cat
    s = pd.DataFrame({"c": pd.array(["a", None], dtype="string")})
    assert enforce_schema(s, schema) is s
    with pytest.raises(SchemaEnforcementError, match="expected string"):
        enforce_schema(pd.DataFrame({"c": pd.Categorical([1, 2])}), schema)


def test_records_and_arrays_against_column_signature():
    schema = Schema([ColSpec("double", "a"), ColSpec("string", "b")])
    out = enforce_schema([{"a": 1, "b": "x"}], schema)
    assert out["a"].dtype == np.float64
    with pytest.raises(SchemaEnforcementError, match=r"missing inputs \['b'\]"):
        enforce_schema({"a": 1.0}, schema)


@pytest.mark.parametrize(
    ("case", "data", "outcome"),
    [
        ("matching", np.zeros((3, 4)), "ok"),
        ("wrong rank", np.zeros(4), "Wrong rank for the input tensor: expected shape (-1, 4)"),
        ("wrong fixed dim", np.zeros((3, 5)), "Wrong shape for the input tensor"),
        (
            "wrong dtype",
            np.zeros((3, 4), dtype="float32"),
            "expected float64, found float32",
        ),
        ("int array refused", np.zeros((3, 4), dtype="int64"), "expected float64, found int64"),
        ("python list cast safely", [[1, 2, 3, 4]], "ok"),
        ("sparse matching", sp.csr_matrix(np.eye(2, 4)), "ok"),
        ("sparse wrong dim", sp.csr_matrix(np.eye(2, 3)), "Wrong shape"),
    ],
)
def test_enforcement_table_tensors(case, data, outcome):
    if outcome == "ok":
        out = enforce_schema(data, TENSOR)
        assert out.dtype == np.float64
    else:
        with pytest.raises(SchemaEnforcementError) as info:
            enforce_schema(data, TENSOR)
        assert outcome in str(info.value)


def test_torch_tensor_enforcement():
    torch = pytest.importorskip("torch")
    schema = Schema([TensorSpec("float32", (-1, 2))])
    t = torch.zeros(3, 2)
    assert enforce_schema(t, schema) is t
    with pytest.raises(SchemaEnforcementError, match="expected float32, found float64"):
        enforce_schema(torch.zeros(3, 2, dtype=torch.float64), schema)
    with pytest.raises(SchemaEnforcementError, match="Wrong rank"):
        enforce_schema(torch.zeros(3), schema)


def test_named_tensors():
    schema = infer_signature({"x": np.zeros((2, 3)), "ids": np.zeros(2, dtype="int64")}).inputs
    ok = {"x": np.ones((5, 3)), "ids": np.arange(5)}
    assert set(enforce_schema(ok, schema)) == {"x", "ids"}
    with pytest.raises(SchemaEnforcementError, match=r"missing inputs \['ids'\]"):
        enforce_schema({"x": np.ones((5, 3))}, schema)
    with pytest.warns(UserWarning, match="extra"):
        out = enforce_schema({**ok, "extra": np.ones(1)}, schema)
    assert "extra" not in out

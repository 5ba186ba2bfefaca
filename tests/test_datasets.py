"""Datasets as run inputs: the documented digest, from_pandas / from_numpy, log_input, search."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import autolog
from autolog import data
from store.entities import Dataset, DatasetInput, InputTag
from store.errors import InvalidValueError, RunNotFoundError, SearchSyntaxError


def reference_digest(parts: list[tuple[dict, bytes]]) -> str:
    """docs/datasets.md, written out again: BLAKE2b-64 over the version, then per part its
    JSON header and its sample's bytes."""
    h = hashlib.blake2b(digest_size=8)
    h.update(b"autolog-dataset-v1")
    for header, body in parts:
        h.update(json.dumps(header).encode())
        h.update(body)
    return h.hexdigest()


def rows(n: int) -> np.ndarray:
    if n <= 1024:
        return np.arange(n)
    return np.array([i * (n - 1) // 1023 for i in range(1024)])


def frame(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {"x": rng.random(n), "k": rng.integers(0, 5, n), "s": ["a", "b", "c"] * (n // 3)}
    )


def test_numpy_digest_is_the_documented_algorithm() -> None:
    arr = np.arange(5000 * 3, dtype=np.float64).reshape(5000, 3)
    y = np.arange(5000) % 2
    header_x = {"kind": "numpy", "shape": [5000, 3], "dtype": "float64"}
    header_y = {"kind": "numpy", "shape": [5000], "dtype": "int64"}
    expected = reference_digest(
        [(header_x, arr[rows(5000)].tobytes()), (header_y, y[rows(5000)].tobytes())]
    )
    ds = data.from_numpy(arr, targets=y)
    assert ds.digest == expected
    # a small array hashes every row; this value pins the algorithm (version 1)
    small = data.from_numpy(np.array([[1.0, 2.0], [3.0, 4.0]]))
    body = np.array([[1.0, 2.0], [3.0, 4.0]]).tobytes()
    assert small.digest == reference_digest(
        [({"kind": "numpy", "shape": [2, 2], "dtype": "float64"}, body)]
    )
    assert small.digest == "808014f0094c007a"


def test_pandas_digest_is_the_documented_algorithm() -> None:
    df = frame()
    header = {
        "kind": "pandas",
        "shape": [3000, 3],
        "columns": ["x", "k", "s"],
        "dtypes": [str(t) for t in df.dtypes],  # "object" or "str", by pandas version
    }
    sample = pd.util.hash_pandas_object(df.iloc[rows(3000)], index=False).to_numpy().tobytes()
    assert data.from_pandas(df).digest == reference_digest([(header, sample)])


def test_digest_changes_with_the_data_and_not_with_the_index() -> None:
    df = frame()
    digest = data.from_pandas(df).digest
    assert data.from_pandas(df.set_axis(range(10, 3010))).digest == digest
    changed = df.copy()
    changed.loc[1023 * 2, "x"] += 1.0  # a sampled row (2998 // 1023 * ... see rows())
    assert data.from_pandas(changed).digest != digest
    assert data.from_pandas(df.iloc[:-1]).digest != digest  # the shape is part of it
    assert data.from_pandas(df.rename(columns={"x": "z"})).digest != digest
    assert data.from_numpy(np.ones((3, 2))).digest != data.from_numpy(np.ones((2, 3))).digest


def test_digest_is_stable_across_processes() -> None:
    code = (
        "import numpy as np, pandas as pd; from autolog import data;"
        "df = pd.DataFrame({'x': np.arange(5000) / 7, 's': ['a', 'b'] * 2500});"
        "print(data.from_pandas(df).digest, data.from_numpy(np.arange(5000.0)).digest)"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    df = pd.DataFrame({"x": np.arange(5000) / 7, "s": ["a", "b"] * 2500})
    here = f"{data.from_pandas(df).digest} {data.from_numpy(np.arange(5000.0)).digest}"
    assert outs == {here}


def test_from_pandas_records_name_source_schema_profile(tmp_path) -> None:
    df = pd.DataFrame({"a": [1.0, 2.0, None], "b": ["x", "y", "z"], "y": [0, 1, 0]})
    ds = data.from_pandas(df, source=tmp_path / "train.csv", name="churn", targets="y")
    assert ds.to_dict() == {
        "name": "churn",
        "digest": ds.digest,
        "source": str(tmp_path / "train.csv"),
        "source_type": "local",
        "schema": json.dumps(
            {
                "mlflow_colspec": [
                    {"type": "double", "name": "a", "required": False},
                    {"type": "string", "name": "b", "required": True},
                    {"type": "long", "name": "y", "required": True},
                ]
            }
        ),
        "profile": json.dumps({"num_rows": 3, "num_columns": 3, "num_elements": 9}),
    }
    assert ds.targets == "y"
    assert data.from_pandas(df).source == "in-memory pandas"
    assert data.from_pandas(df).name == "dataset"


def test_bad_arguments_name_the_fix() -> None:
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(autolog.AutologError, match=r"targets='label' is not a column.*\['a'\]"):
        data.from_pandas(df, targets="label")
    with pytest.raises(
        autolog.AutologError, match="from_pandas takes a pandas DataFrame, not list"
    ):
        data.from_pandas([1, 2])
    with pytest.raises(autolog.AutologError, match="not dict"), autolog.start_run():
        autolog.log_input({"name": "x"})


def test_log_input_stores_a_dataset_once_and_tags_the_run(store) -> None:
    df = frame(12)
    ds = data.from_pandas(df, name="train")
    with autolog.start_run() as first:
        autolog.log_input(ds, context="training")
        autolog.log_input(ds, context="training")
    with autolog.start_run() as second:
        autolog.log_input(ds, context="eval", tags={"fold": "1"})
    assert store.conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 1
    assert store.conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] == 2
    run = autolog.get_run(first.info.run_id)
    assert run.inputs.dataset_inputs == [
        DatasetInput(ds.to_entity(), [InputTag("mlflow.data.context", "training")])
    ]
    tags = autolog.get_run(second.info.run_id).inputs.dataset_inputs[0].tags
    assert tags == [InputTag("fold", "1"), InputTag("mlflow.data.context", "eval")]
    assert json.loads(run.data.tags["mlflow.datasets"]) == [
        {"name": "train", "hash": ds.digest, "model": None}
    ]
    [record] = store.search_datasets(digest=ds.digest)
    assert (record.experiment_id, record.dataset, record.run_count) == ("0", ds.to_entity(), 2)


def test_search_runs_by_dataset_digest_name_and_context() -> None:
    a, b = data.from_numpy(np.ones((4, 2)), name="a"), data.from_numpy(np.zeros((4, 2)), name="b")
    with autolog.start_run() as r1:
        autolog.log_input(a, "training")
        autolog.log_input(b, "eval")
    with autolog.start_run() as r2:
        autolog.log_input(b, "training")
    with autolog.start_run() as r3:
        pass

    def ids(f: str) -> set[str]:
        return {r.info.run_id for r in autolog.search_runs(filter_string=f, output_format="list")}

    one, two, three = r1.info.run_id, r2.info.run_id, r3.info.run_id
    assert ids(f"datasets.digest = '{a.digest}'") == {one}
    assert ids(f"datasets.digest = '{b.digest}'") == {one, two}
    # each comparison matches any of the run's datasets (as MLflow's): r1 has b and a training set
    assert ids("datasets.name = 'b' and datasets.context = 'training'") == {one, two}
    assert ids("datasets.name = 'a' and datasets.context = 'training'") == {one}
    assert ids("dataset.name IN ('a', 'zzz')") == {one}
    assert ids("datasets.name LIKE 'b%'") == {one, two}
    assert ids("datasets.context = 'eval'") == {one}
    assert ids("datasets.name IS NULL") == {three}
    with pytest.raises(SearchSyntaxError, match="unknown dataset key 'size'"):
        autolog.search_runs(filter_string="datasets.size = '1'")
    with pytest.raises(SearchSyntaxError, match="does not support <"):
        autolog.search_runs(filter_string="datasets.name < 'a'")
    with pytest.raises(SearchSyntaxError, match="cannot be ordered by datasets"):
        autolog.search_runs(order_by=["datasets.name"])


def test_store_log_inputs_checks_its_arguments(store) -> None:
    run = store.create_run(0)
    with pytest.raises(InvalidValueError, match="Dataset digest '' is invalid"):
        store.log_inputs(run.info.run_id, [DatasetInput(Dataset("n", "", "memory", "x"))])
    with pytest.raises(InvalidValueError, match="takes DatasetInput"):
        store.log_inputs(run.info.run_id, [Dataset("n", "d", "memory", "x")])
    with pytest.raises(RunNotFoundError, match="No run with id 'nope'"):
        store.log_inputs("nope", [DatasetInput(Dataset("n", "d", "memory", "x"))])
    store.log_inputs(run.info.run_id, [])
    assert store.get_run(run.info.run_id).inputs.dataset_inputs == []


def test_client_log_inputs_and_run_to_dict() -> None:
    client = autolog.Client()
    run = client.create_run("0")
    entity = Dataset("d", "abc", "local", "/data/x.csv", None, '{"num_rows": 1}')
    client.log_inputs(
        run.info.run_id, [DatasetInput(entity, [InputTag("mlflow.data.context", "eval")])]
    )
    got = client.get_run(run.info.run_id)
    assert got.to_dict()["inputs"] == {
        "dataset_inputs": [
            {
                "dataset": {
                    "name": "d",
                    "digest": "abc",
                    "source_type": "local",
                    "source": "/data/x.csv",
                    "schema": None,
                    "profile": '{"num_rows": 1}',
                },
                "tags": [{"key": "mlflow.data.context", "value": "eval"}],
            }
        ]
    }
    assert json.loads(got.data.tags["mlflow.datasets"]) == [
        {"name": "d", "hash": "abc", "path": "/data/x.csv", "model": None}
    ]

"""Parquet in and out: batch scoring chunk by chunk, and Parquet request bodies to the server."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from serving_helpers import cli_env, running

import autolog
from autolog import serving
from autolog.serving import BadRequest
from autolog.serving_batch import predict_file
from autolog.signature import infer_signature

PARQUET = "application/vnd.apache.parquet"


@pytest.fixture
def logreg(tmp_path):
    """(model URI, its training frame): a LogisticRegression on 4 double columns, logged."""
    from sklearn.linear_model import LogisticRegression

    from integrations import sklearn

    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(250, 4)), columns=[f"f{i}" for i in range(4)])
    m = LogisticRegression().fit(X, (X["f0"] + X["f3"] > 0).astype(int))
    info = sklearn.log_model(m, name="model", signature=infer_signature(X, m.predict(X)))
    autolog.end_run()
    return info.model_uri, X


def _write(df: pd.DataFrame, path, row_group_size: int = 70) -> None:
    pq.write_table(
        pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=row_group_size
    )


def test_parquet_is_scored_chunk_by_chunk_into_parquet_csv_and_json(tmp_path, logreg):
    uri, X = logreg
    model = autolog.load_model(uri)
    expected = model.predict(X).tolist()
    _write(X, tmp_path / "in.parquet")
    assert pq.ParquetFile(tmp_path / "in.parquet").num_row_groups == 4
    n = predict_file(
        model, str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"), chunk_rows=64
    )
    assert n == 250
    out = pq.ParquetFile(tmp_path / "out.parquet")
    assert out.schema_arrow.names == ["prediction"]
    assert out.read().to_pandas()["prediction"].tolist() == expected
    assert out.num_row_groups == 4  # one per chunk of 64 rows: 64, 64, 64, 58
    predict_file(model, str(tmp_path / "in.parquet"), str(tmp_path / "out.json"), chunk_rows=64)
    assert json.loads((tmp_path / "out.json").read_text()) == {"predictions": expected}
    predict_file(model, str(tmp_path / "in.parquet"), str(tmp_path / "out.csv"), chunk_rows=100)
    assert pd.read_csv(tmp_path / "out.csv")["prediction"].tolist() == expected


def test_parquet_from_stdin_through_the_cli(tmp_path, logreg, tracking_dir):
    uri, X = logreg
    expected = autolog.load_model(uri).predict(X).tolist()
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(X, preserve_index=False), buf)
    r = subprocess.run(
        [sys.executable, "-m", "autolog", "models", "predict", "-m", uri, "-i", "-",
         "--input-format", "parquet", "-o", "-", "--output-format", "parquet",
         "--chunk-rows", "100", "--no-progress"],
        env=cli_env(tracking_dir), input=buf.getvalue(), capture_output=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert pq.read_table(io.BytesIO(r.stdout)).column("prediction").to_pylist() == expected


def test_a_parquet_chunk_off_the_signature_names_the_rows_and_the_column(tmp_path, logreg):
    uri, X = logreg
    model = autolog.load_model(uri)
    _write(X.drop(columns="f3"), tmp_path / "missing.parquet")
    with pytest.raises(BadRequest) as e:
        predict_file(model, str(tmp_path / "missing.parquet"), str(tmp_path / "o.csv"))
    assert (
        str(e.value) == "Rows 0-249: Model is missing inputs ['f3']: the signature requires them."
    )
    _write(X.astype({"f2": str}), tmp_path / "strings.parquet")
    with pytest.raises(BadRequest) as e:
        predict_file(
            model, str(tmp_path / "strings.parquet"), str(tmp_path / "o.csv"), chunk_rows=100
        )
    assert str(e.value) == (
        "Rows 0-99: Incompatible input type for column 'f2': expected double, found str. Only "
        "safe widening casts are applied (int32->int64, float32->float64, int->double)."
    )


def test_the_server_scores_a_parquet_body(logreg):
    uri, X = logreg
    expected = autolog.load_model(uri).predict(X.head(30)).tolist()
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(X.head(30), preserve_index=False), buf)
    with running(serving.app(uri)) as url:
        r = httpx.post(
            url + "/invocations", content=buf.getvalue(), headers={"Content-Type": PARQUET}
        )
        assert (r.status_code, r.json()) == (200, {"predictions": expected})
        r = httpx.post(
            url + "/invocations", content=b"PAR1 not parquet", headers={"Content-Type": PARQUET}
        )
        assert r.status_code == 400
        assert r.json()["message"].startswith("Cannot read the body as Parquet: ArrowInvalid: ")

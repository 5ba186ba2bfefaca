"""Batch scoring of a file (``autolog models predict``), chunk by chunk.

Memory is bounded by the chunk size, not the file: CSV, JSON Lines and Parquet inputs are read
``chunk_rows`` rows at a time, each chunk is checked against the signature (the same casts and
errors as the scoring server), predicted and written out before the next is read. A ``.json``
input is one document in a scoring-server format (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``, or a plain list of records) and is read whole.

Outputs: CSV (a ``prediction`` column, ``prediction_<i>`` columns for 2-D outputs, or the
model's own columns), JSON (``{"predictions": [...]}``, exactly what ``POST /invocations``
answers for the whole input) and Parquet (the CSV's columns). ``-`` reads stdin / writes stdout.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from autolog.errors import AutologError
from autolog.serving import BadRequest, _jsonable, cast_columns, frame_or_tensor, predict

__all__ = ["FORMATS", "predict_file"]

FORMATS = ("csv", "json", "jsonl", "parquet")
DEFAULT_CHUNK_ROWS = 10_000


def format_of(path: str, given: str | None, what: str) -> str:
    """The file format: ``given``, else the extension; ``-`` without ``given`` means CSV."""
    fmt = given or ("csv" if path == "-" else Path(path).suffix.lower().lstrip("."))
    if fmt not in FORMATS:
        raise AutologError(
            f"Cannot tell the {what} format of {path!r}: name a .csv, .json, .jsonl or .parquet "
            f"file, or pass --{what}-format ({'|'.join(FORMATS)})"
        )
    return fmt


def _chunks(src: str, fmt: str, schema: Any, rows: int) -> Iterator[Any]:
    import pandas as pd

    stream: Any = sys.stdin.buffer if src == "-" else src
    if fmt == "csv":
        strings = {}
        if schema is not None and schema.has_input_names():
            strings = {
                s.name: str for s in schema.inputs if getattr(s.type, "name", "") == "string"
            }
        with pd.read_csv(stream, chunksize=rows, dtype=strings or None) as reader:
            for chunk in reader:
                yield cast_columns(chunk, schema)
    elif fmt == "jsonl":
        with pd.read_json(stream, lines=True, chunksize=rows) as reader:
            for chunk in reader:
                yield cast_columns(chunk, schema)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        source = io.BytesIO(sys.stdin.buffer.read()) if src == "-" else src
        for batch in pq.ParquetFile(source).iter_batches(batch_size=rows):
            yield cast_columns(batch.to_pandas(), schema)
    else:
        yield from _json_document(stream, schema, rows)


def _json_document(stream: Any, schema: Any, rows: int) -> Iterator[Any]:
    import pandas as pd

    if isinstance(stream, str):
        with open(stream, "rb") as f:
            doc = json.load(f)
    else:
        doc = json.load(stream)
    if isinstance(doc, list):
        doc = {"dataframe_records": doc}
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in doc]
    if not isinstance(doc, dict) or len(keys) != 1:
        raise BadRequest(
            "A JSON input must be a list of records or an object with exactly one of "
            "'dataframe_split', 'dataframe_records', 'instances', 'inputs'"
        )
    data = frame_or_tensor(keys[0], doc[keys[0]], schema)
    if isinstance(data, pd.DataFrame):
        for start in range(0, len(data), rows):
            yield data.iloc[start : start + rows]
    else:
        yield data


def _frame(pred: Any, index: Any) -> Any:
    import pandas as pd

    if isinstance(pred, pd.DataFrame):
        return pred
    if isinstance(pred, pd.Series):
        return pred.rename("prediction").to_frame()
    if isinstance(pred, dict):
        return pd.DataFrame({str(k): _jsonable(v) for k, v in pred.items()})
    arr = pred.detach().cpu().numpy() if hasattr(pred, "detach") else pred
    import numpy as np

    arr = np.asarray(arr)
    if arr.ndim <= 1:
        return pd.DataFrame({"prediction": arr.reshape(-1)})
    return pd.DataFrame(arr.reshape(len(arr), -1)).add_prefix("prediction_")


class _Writer:
    """Writes prediction chunks as they come; closes the JSON array or Parquet file at the end."""

    def __init__(self, dst: str, fmt: str):
        self.fmt = fmt
        self.out: IO[bytes] = sys.stdout.buffer if dst == "-" else open(dst, "wb")  # noqa: SIM115
        self.first = True
        self.parquet: Any = None
        if fmt == "json":
            self.out.write(b'{"predictions": [')

    def write(self, pred: Any, index: Any) -> None:
        if self.fmt == "json":
            items = _jsonable(pred)
            items = items if isinstance(items, list) else [items]
            text = json.dumps(items)[1:-1]
            if text:
                self.out.write((b"" if self.first else b", ") + text.encode())
                self.first = False
            return
        frame = _frame(pred, index)
        if self.fmt == "csv":
            self.out.write(frame.to_csv(index=False, header=self.first).encode())
        elif self.fmt == "jsonl":
            self.out.write(frame.to_json(orient="records", lines=True).encode())
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.out, table.schema)
            self.parquet.write_table(table)
        self.first = False

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write(b"]}\n")
        if self.parquet is not None:
            self.parquet.close()
        self.out.flush()
        if self.out is not sys.stdout.buffer:
            self.out.close()


def predict_file(
    model: Any,
    src: str,
    dst: str,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    params: dict | None = None,
    progress: bool = True,
) -> int:
    """Score ``src`` into ``dst`` with a loaded model, ``chunk_rows`` rows at a time.

    :returns: the number of rows scored.
    :raises BadRequest: a chunk that does not match the signature (naming the column), with
        the row range it came from.
    """
    if chunk_rows < 1:
        raise AutologError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    in_fmt = format_of(src, input_format, "input")
    out_fmt = format_of(dst, output_format, "output")
    schema = model.metadata.get_input_schema()
    bar = _progress(progress)
    writer = _Writer(dst, out_fmt)
    done = 0
    try:
        for chunk in _chunks(src, in_fmt, schema, chunk_rows):
            n = len(chunk) if hasattr(chunk, "__len__") else 1
            try:
                pred = predict(model, chunk, params)
            except BadRequest as e:
                raise BadRequest(f"Rows {done}-{done + n - 1}: {e}") from e
            writer.write(pred, getattr(chunk, "index", None))
            done += n
            bar.update(n)
    finally:
        writer.close()
        bar.close()
    return done


def _progress(enabled: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional: no bar without it
        enabled = False
    if not enabled:

        class _NoBar:
            def update(self, n: int) -> None: ...
            def close(self) -> None: ...

        return _NoBar()
    return tqdm(unit=" rows", file=sys.stderr, disable=None, desc="predict")

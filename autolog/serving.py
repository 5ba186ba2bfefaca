"""A scoring server for any model ``autolog.load_model`` loads, speaking MLflow's protocol.

``autolog models serve -m URI`` (or :func:`app` for the ASGI app itself) answers:

- ``POST /invocations`` with ``Content-Type: application/json`` and one of
  ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``,
  ``{"dataframe_records": [{...}, ...]}``, ``{"instances": [...]}`` or ``{"inputs": ...}``,
  plus ``"params": {...}`` where the signature declares params; or ``text/csv`` (a header
  row); or ``application/vnd.apache.parquet`` when pyarrow is installed. The answer is
  ``{"predictions": ...}``, as MLflow's ``mlflow models serve`` gives it.
- ``GET /ping`` and ``/health`` (200 once the model is loaded) and ``/version``.

Errors are MLflow's JSON, ``{"error_code": ..., "message": ...}``: a malformed body, a missing
column or a wrong type -> 400 naming the field or column; a body over the size limit -> 413;
an unsupported content type -> 415; an exception from the model -> 500 with its message; a
prediction slower than the timeout -> 503. The server keeps serving after each of them.

JSON values are cast to the signature's column types the way MLflow's scorer does (JSON has
one number type, so ``1`` may fill a ``double`` or a ``float`` column); anything else is left
to the signature enforcement of ``PyFuncModel.predict``.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Mapping
from typing import Any

from autolog.errors import AutologError, SchemaEnforcementError

__all__ = ["BadRequest", "app", "parse_request", "predictions_json", "serve"]

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
DEFAULT_MAX_BODY_MB = 100
DEFAULT_TIMEOUT_S = 60.0


class BadRequest(AutologError):
    """The request cannot be scored as sent; the message names the field or column."""

    def __init__(self, message: str, status: int = 400, code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status = status
        self.code = code


# ---------------------------------------------------------------------------------------------
# request bodies -> model input


def parse_request(body: bytes, content_type: str | None, model: Any) -> tuple[Any, dict | None]:
    """(model input, params) from an ``/invocations`` body, or :class:`BadRequest`."""
    mime, charset = _content_type(content_type)
    if charset not in ("utf-8", "utf8"):
        raise BadRequest(f"Unsupported charset {charset!r}: send UTF-8", 415)
    schema = model.metadata.get_input_schema()
    if mime == JSON:
        return _parse_json(_decode(body), schema, _param_specs(model))
    if mime == CSV:
        return _parse_csv(_decode(body), schema), None
    if mime == PARQUET:
        return _parse_parquet(body, schema), None
    raise BadRequest(
        f"Unsupported Content-Type {content_type!r}: send {JSON}, {CSV} or {PARQUET}", 415
    )


def _content_type(header: str | None) -> tuple[str, str]:
    if not header:
        raise BadRequest(f"No Content-Type header: send {JSON}, {CSV} or {PARQUET}", 415)
    mime, *rest = (p.strip() for p in header.split(";"))
    opts = dict(p.partition("=")[::2] for p in rest if p)
    unknown = sorted(set(opts) - {"charset"})
    if unknown:
        raise BadRequest(f"Unsupported Content-Type parameters {unknown} in {header!r}", 415)
    return mime.lower(), opts.get("charset", "utf-8").strip('"').lower()


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"The body is not valid UTF-8: {e}")


def _parse_json(text: str, schema: Any, param_specs: dict | None) -> tuple[Any, dict | None]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadRequest(f"The body is not valid JSON: {e}")
    if not isinstance(doc, dict):
        raise BadRequest(
            f"The JSON body must be an object with one of the fields {list(FORMATS)}; "
            f"got a {type(doc).__name__}"
        )
    found = [k for k in FORMATS if k in doc]
    unknown = sorted(k for k in doc if k not in FORMATS and k != "params")
    if len(found) != 1 or unknown:
        got = sorted(doc)
        raise BadRequest(
            f"The JSON body must have exactly one of the fields {list(FORMATS)} "
            f"(and optionally 'params'); got fields {got}"
        )
    key = found[0]
    params = _check_params(doc.get("params"), param_specs)
    return frame_or_tensor(key, doc[key], schema), params


def frame_or_tensor(key: str, value: Any, schema: Any) -> Any:
    """The model input a JSON field of one of the four :data:`FORMATS` describes."""
    import pandas as pd

    tensors = schema is not None and schema.is_tensor_spec()
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise BadRequest(
                "'dataframe_split' must be an object with a list 'data' (and optionally "
                "'columns' and 'index'), as DataFrame.to_dict(orient='split') writes it"
            )
        extra = sorted(set(value) - {"data", "columns", "index"})
        if extra:
            raise BadRequest(f"Unknown fields {extra} in 'dataframe_split'")
        try:
            df = pd.DataFrame(value["data"], columns=value.get("columns"), index=value.get("index"))
        except (ValueError, TypeError) as e:
            raise BadRequest(f"Cannot read 'dataframe_split' as a table: {e}")
        return tensor_from_frame(df, schema) if tensors else cast_columns(df, schema)
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise BadRequest("'dataframe_records' must be a list of objects (one per row)")
        df = pd.DataFrame(value)
        return tensor_from_frame(df, schema) if tensors else cast_columns(df, schema)
    return _tf_serving(key, value, schema, tensors)


def _tf_serving(key: str, value: Any, schema: Any, tensors: bool) -> Any:
    """``instances`` (one entry per row) and ``inputs`` (rows or named columns)."""
    import numpy as np
    import pandas as pd

    if isinstance(value, dict):
        if tensors:
            return {k: _array(v, f"{key}.{k}", schema) for k, v in value.items()}
        try:
            return cast_columns(_columns_frame(value), schema)
        except ValueError as e:
            raise BadRequest(f"Cannot read '{key}' as named columns: {e}")
    if not isinstance(value, list):
        raise BadRequest(f"'{key}' must be a list (one entry per row) or an object of columns")
    if value and all(isinstance(r, dict) for r in value):
        if tensors:
            names = list(value[0])
            return {n: _array([r.get(n) for r in value], f"{key}.{n}", schema) for n in names}
        return cast_columns(pd.DataFrame(value), schema)
    if tensors:
        return _array(value, key, schema)
    arr = _array(value, key, None)
    if schema is not None and schema.has_input_names() and arr.ndim in (1, 2):
        names = [str(n) for n in schema.input_names()]
        cols = arr.reshape(len(arr), -1) if arr.ndim == 1 and len(names) > 1 else arr
        if cols.ndim == 2 and cols.shape[1] == len(names):
            return cast_columns(pd.DataFrame(cols, columns=names), schema)
        if cols.ndim == 1 and len(names) == 1:
            return cast_columns(pd.DataFrame({names[0]: cols}), schema)
        raise BadRequest(
            f"'{key}' has rows of {cols.shape[1] if cols.ndim == 2 else 1} values but the "
            f"signature has {len(names)} columns {names}"
        )
    return arr if arr.dtype != np.dtype(object) else value


def tensor_from_frame(df: Any, schema: Any) -> Any:
    """A table sent to a tensor signature: one array (one tensor) or a dict of column arrays."""
    if len(schema.inputs) == 1:
        return _array(df.to_numpy(), "the input", schema)
    return {str(c): _array(df[c].to_numpy(), f"columns.{c}", schema) for c in df.columns}


def _columns_frame(value: dict) -> Any:
    import pandas as pd

    if all(isinstance(v, list) for v in value.values()):
        return pd.DataFrame(value)
    return pd.DataFrame([value])


def _array(value: Any, where: str, schema: Any) -> Any:
    import numpy as np

    dtype = None
    if schema is not None and schema.is_tensor_spec():
        specs = {str(s.name): s for s in schema.inputs}
        spec = specs.get(where.partition(".")[2]) if "." in where else schema.inputs[0]
        if spec is not None and spec.dtype_name not in ("str", "bytes", "object"):
            dtype = spec.type
    try:
        return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError) as e:
        raise BadRequest(f"Cannot read '{where}' as an array: {e}")


def cast_columns(df: Any, schema: Any) -> Any:
    """Cast a parsed frame's columns to the signature's numeric types where that loses nothing.

    JSON and CSV have one number type, so an integer column may fill a ``double`` or a
    ``float`` column and a float column a ``float`` one; a string where a number is declared,
    or a fraction where an integer is, is left for enforcement to reject naming the column.
    """
    import numpy as np
    import pandas as pd

    if schema is None or not schema.has_input_names():
        return df
    numeric = {"integer", "long", "float", "double"}
    for spec in schema.inputs:
        name = getattr(spec.type, "name", None)
        if spec.name not in df.columns or name not in numeric:
            continue
        col = df[spec.name]
        if isinstance(col, pd.DataFrame):
            continue  # a duplicate column: enforcement names it
        kind = col.dtype.kind
        target = np.dtype(spec.type.value)
        if kind in "iu" or (kind == "f" and target.kind == "f"):
            df[spec.name] = col.astype(target)
        elif kind == "O" and col.isna().all():
            df[spec.name] = pd.Series(np.nan, index=col.index, dtype="float64")
    return df


def _parse_csv(text: str, schema: Any) -> Any:
    import pandas as pd

    strings = {}
    if schema is not None and schema.has_input_names():
        strings = {s.name: str for s in schema.inputs if getattr(s.type, "name", "") == "string"}
    try:
        df = pd.read_csv(io.StringIO(text), dtype=strings or None)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise BadRequest(f"Cannot read the body as CSV with a header row: {e}")
    if schema is not None and schema.is_tensor_spec():
        return tensor_from_frame(df, schema)
    return cast_columns(df, schema)


def _parse_parquet(body: bytes, schema: Any) -> Any:
    import pandas as pd

    try:
        df = pd.read_parquet(io.BytesIO(body))
    except ImportError as e:
        raise BadRequest(f"This server cannot read Parquet: {e}", 415)
    except Exception as e:  # pyarrow raises its own ArrowInvalid family for a bad file
        raise BadRequest(f"Cannot read the body as Parquet: {type(e).__name__}: {e}")
    return cast_columns(df, schema)


# ---------------------------------------------------------------------------------------------
# params


def _param_specs(model: Any) -> dict[str, dict] | None:
    sig = model.metadata.signature
    specs = getattr(sig, "params", None) if sig is not None else None
    return {str(p["name"]): p for p in specs} if specs else None


_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "string": (str,),
}


def _check_params(params: Any, specs: dict[str, dict] | None) -> dict | None:
    """The request's params with the signature's defaults filled in, or :class:`BadRequest`."""
    if params is None:
        return {n: s.get("default") for n, s in specs.items()} if specs else None
    if not isinstance(params, dict):
        raise BadRequest(f"'params' must be an object of name -> value, got {params!r}")
    if not specs:
        raise BadRequest(
            f"This model's signature declares no params; the request sent {sorted(params)}"
        )
    unknown = sorted(set(params) - set(specs))
    if unknown:
        raise BadRequest(f"Unknown params {unknown}: the signature declares {sorted(specs)}")
    out = {n: s.get("default") for n, s in specs.items()}
    for name, value in params.items():
        spec = specs[name]
        kinds = _PARAM_TYPES.get(str(spec.get("type")))
        values = value if spec.get("shape") and isinstance(value, list) else [value]
        bad = kinds is not None and any(
            not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds) for v in values
        )
        if bad or (spec.get("shape") and not isinstance(value, list)):
            shape = " list" if spec.get("shape") else ""
            raise BadRequest(f"Param {name!r} must be a {spec.get('type')}{shape}, got {value!r}")
        out[name] = value
    return out


# ---------------------------------------------------------------------------------------------
# predictions -> JSON


def _jsonable(obj: Any) -> Any:
    pd = _pandas()
    if pd is not None:
        if isinstance(obj, pd.DataFrame):
            return obj.to_dict(orient="records")
        if isinstance(obj, (pd.Series, pd.Index)):
            return obj.tolist()
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if hasattr(obj, "detach"):  # a torch tensor
        return obj.detach().cpu().numpy().tolist()
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _pandas() -> Any:
    import sys

    return sys.modules.get("pandas")


def _default(obj: Any) -> Any:
    converted = _jsonable(obj)
    if converted is obj:
        return str(obj)  # datetimes, decimals: what MLflow's encoder does for them too
    return converted


def predictions_json(raw: Any) -> bytes:
    """``{"predictions": ...}`` as MLflow's scorer writes it (DataFrames as records)."""
    return json.dumps({"predictions": _jsonable(raw)}, default=_default).encode()


# ---------------------------------------------------------------------------------------------
# the ASGI app


def app(
    model_uri: str | os.PathLike[str],
    *,
    allow_pickle: bool = False,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Any:
    """The scoring server for ``model_uri`` as an ASGI app (the model is loaded now).

    :param model_uri: anything ``autolog.load_model`` accepts, passed to it unchanged.
    :param allow_pickle: load a pickled model from a plain path (``load_model(allow_pickle=True)``).
    :param max_body_mb: larger request bodies are refused with 413.
    :param timeout: seconds a prediction may take before the request gets 503.
    """
    from autolog.serving_app import build_app

    return build_app(
        load(model_uri, allow_pickle=allow_pickle),
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        timeout=timeout,
    )


def load(model_uri: str | os.PathLike[str], *, allow_pickle: bool = False) -> Any:
    """``autolog.load_model(model_uri)``; ``allow_pickle`` is passed only when asked for."""
    import inspect

    from autolog.models import load_model

    # Where load_model has no pickle gate (older autolog) there is nothing to open.
    if allow_pickle and "allow_pickle" in inspect.signature(load_model).parameters:
        return load_model(model_uri, allow_pickle=True)  # type: ignore[call-arg]
    return load_model(model_uri)


def predict(model: Any, data: Any, params: dict | None) -> Any:
    """``model.predict``; a signature mismatch becomes :class:`BadRequest` (400)."""
    try:
        return model.predict(data, params) if params is not None else model.predict(data)
    except SchemaEnforcementError as e:
        raise BadRequest(str(e))


async def predict_async(model: Any, data: Any, params: dict | None, timeout: float) -> Any:
    """:func:`predict` in a worker thread; past ``timeout`` seconds, :class:`BadRequest` (503)."""
    return await in_thread(timeout, predict, model, data, params)


async def in_thread(timeout: float, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in the default executor, so the event loop keeps answering meanwhile."""
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(None, fn, *args)
    try:
        return await asyncio.wait_for(fut, timeout)
    except (asyncio.TimeoutError, TimeoutError):
        raise BadRequest(
            f"The prediction took longer than the server's timeout of {timeout:g} s "
            "(start it with a larger --timeout)",
            503,
            "TEMPORARILY_UNAVAILABLE",
        )


def serve(
    model_uri: str,
    *,
    host: str = "127.0.0.1",
    port: int = 5001,
    workers: int = 1,
    allow_pickle: bool = False,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
    timeout: float = DEFAULT_TIMEOUT_S,
    graceful_timeout: float = 30.0,
) -> None:
    """Serve ``model_uri`` with uvicorn until SIGINT/SIGTERM (in-flight requests finish first)."""
    import uvicorn

    settings = {"allow_pickle": allow_pickle, "max_body_mb": max_body_mb, "timeout": timeout}
    common: dict[str, Any] = dict(
        host=host,
        port=port,
        access_log=False,
        timeout_graceful_shutdown=graceful_timeout,
        log_level=os.environ.get("AUTOLOG_SERVE_LOG_LEVEL", "info"),
    )
    if workers <= 1:
        served = app(model_uri, **settings)  # type: ignore[arg-type]
        _freeze_heap()
        uvicorn.run(served, **common)  # type: ignore[arg-type]
        return
    from autolog.models import get_model_info

    get_model_info(model_uri)  # a wrong URI fails here, once, not in every worker
    os.environ["AUTOLOG_SERVE_MODEL_URI"] = str(model_uri)
    os.environ["AUTOLOG_SERVE_SETTINGS"] = json.dumps(settings)
    uvicorn.run("autolog.serving:_app_from_env", factory=True, workers=workers, **common)


def _app_from_env() -> Any:
    """The app each uvicorn worker process builds (``--workers N``)."""
    settings = json.loads(os.environ.get("AUTOLOG_SERVE_SETTINGS", "{}"))
    served = app(os.environ["AUTOLOG_SERVE_MODEL_URI"], **settings)
    _freeze_heap()
    return served


def _freeze_heap() -> None:
    """Exempt what loading the model allocated (its library, pandas, scipy: hundreds of
    thousands of objects) from the garbage collector's full collections, which otherwise walk
    it all now and then and stop every request meanwhile. Only the server's own process calls
    this, never :func:`app` (it would freeze a caller's heap)."""
    import gc

    gc.collect()
    gc.freeze()

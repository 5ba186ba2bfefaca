"""MLflow's ``mlflow.pyfunc`` names: :func:`load_model` and :func:`spark_udf`.

``spark_udf`` scores a Spark DataFrame with any pyfunc model (scikit-learn, XGBoost, torch,
...) as a pandas UDF::

    from autolog import pyfunc
    predict = pyfunc.spark_udf(spark, "runs:/<run_id>/model", result_type="double")
    scored = df.withColumn("prediction", predict())          # columns named by the signature
    scored = df.withColumn("prediction", predict("x1", "x2"))  # or given, in signature order

How the model reaches the executors. The driver resolves the URI and loads the model once
(so a model that cannot load fails here, before any task), then ships the model directory with
``SparkContext.addFile`` (recursive); each executor's Python worker loads it from its copy once
and keeps it for every later batch and task in that process (a cache keyed by the model).
On a cluster this needs nothing shared: the files travel with the job.

Trust. The executors unpickle only what the driver's pickle gate approved: the driver sends the
SHA-256 digests of the files it approved (those recorded when the model was logged, for
``runs:/`` and ``models:/``; else, after the caller's explicit opt-in or for a format needing
no pickle, those of the directory it read) and each executor refuses a copy whose bytes differ.
No opt-in is turned on behind the caller's back.

Importing this module imports no pyspark, pandas or numpy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autolog import model_trust, models
from autolog.errors import ModelError
from autolog.models import load_model

__all__ = ["load_model", "spark_udf"]

_SCALAR_TYPES = ("double", "float", "long", "int", "integer", "string", "boolean", "short")
_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def _shipped_name(digests: dict[str, str]) -> str:
    import hashlib

    text = "\n".join(f"{k} {v}" for k, v in sorted(digests.items()))
    return "autolog-model-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def _driver_side(model_uri: str, allow_pickle: bool | None) -> tuple[Path, Any, dict[str, str]]:
    """(model directory, loaded model, digests the executors must find): the gate runs here."""
    model = models.load_model(model_uri, allow_pickle=allow_pickle)
    if model.flavor.name == "spark":
        raise ModelError(
            f"{model_uri} is a Spark ML model: score it with integrations.spark.load_model("
            f"{model_uri!r}).transform(df), not as a UDF (executors cannot run Spark jobs)"
        )
    path, _mlmodel, ctx = models._open(model_uri, allow_pickle)
    digests = dict(ctx.digests) if ctx.digests is not None else model_trust.digests_of(path)
    return path, model, digests


def _load_on_worker(name: str, folder: str, digests: dict[str, str]) -> Any:
    """The model in this Python worker: loaded once from its shipped copy, checked by digest."""
    with _cache_lock:
        model = _cache.get(name)
        if model is not None:
            return model
        root = Path(folder)
        mlmodel = models.Model.load(root)
        model_trust.verify(
            root, models.MLMODEL_FILE, (root / models.MLMODEL_FILE).read_bytes(), digests
        )
        model_trust.check_paths(root, dict(mlmodel.flavors))
        flavor, conf, pyfunc = models._resolve_flavor(mlmodel, root)
        ctx = model_trust.LoadContext(root, f"spark_udf:{name}", digests, allow_pickle=False)
        native = models._load_native(flavor, root, conf, ctx)
        model = _cache[name] = models.PyFuncModel(mlmodel, flavor, native, pyfunc, root)
        return model


def _spark_type(result_type: Any) -> Any:
    from pyspark.sql.types import DataType

    if isinstance(result_type, DataType):
        return result_type
    if not isinstance(result_type, str):
        raise ModelError(
            f"result_type must be a pyspark DataType or a type string such as 'double' or "
            f"'array<double>', not {result_type!r}"
        )
    from_ddl: Any = getattr(DataType, "fromDDL", None)  # pyspark >= 4.0
    if from_ddl is None:  # pyspark 3.5: the parser pandas_udf itself uses
        from pyspark.sql.types import _parse_datatype_string as from_ddl
    try:
        return from_ddl(result_type)
    except Exception as e:
        raise ModelError(
            f"result_type {result_type!r} is not a Spark type; use e.g. 'double', 'string', "
            f"'array<double>' or a pyspark.sql.types DataType ({e})"
        ) from e


def _as_series(prediction: Any, result_type: Any, rows: int) -> Any:
    """The model's output as one pandas Series of ``result_type``."""
    import numpy as np
    import pandas as pd
    from pyspark.sql.types import ArrayType

    if isinstance(prediction, pd.DataFrame):
        prediction = prediction.iloc[:, 0] if prediction.shape[1] == 1 else prediction.to_numpy()
    if isinstance(prediction, pd.Series):
        values = prediction.to_numpy()
    else:
        values = np.asarray(prediction)
    if isinstance(result_type, ArrayType):
        if values.ndim == 1:
            values = values.reshape(rows, -1)
        return pd.Series(list(values))
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ModelError(
            f"The model returned {values.shape[1]} values per row; declare an array result_type "
            "(e.g. 'array<double>') to keep them"
        )
    series = pd.Series(values)
    name = result_type.typeName()
    if name in ("double", "float"):
        return series.astype("float64" if name == "double" else "float32")
    if name in ("long", "integer", "short"):
        return series.astype({"long": "int64", "integer": "int32", "short": "int16"}[name])
    if name == "string":
        return series.astype(str)
    if name == "boolean":
        return series.astype(bool)
    return series


def _frame(columns: Any, input_names: list[str]) -> Any:
    """One batch as the frame the model predicts on: columns named by the signature."""
    import pandas as pd

    if isinstance(columns, pd.DataFrame):  # udf(struct(...)): the struct's field names
        return columns
    if isinstance(columns, pd.Series):
        columns = (columns,)
    parts = [c.reset_index(drop=True) for c in columns]
    if len(parts) == 1 and isinstance(parts[0], pd.DataFrame):
        return parts[0]
    frame = pd.concat(parts, axis=1, ignore_index=True)
    names = input_names if len(input_names) == len(parts) else None
    frame.columns = names or [str(i) for i in range(len(parts))]
    return frame


def _scorer(name: str, digests: dict[str, str], names: list[str], rtype: Any) -> Any:
    """The pandas UDF (iterator of batches): the model loaded once per worker process."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    def predict(batches: Iterator[tuple[pd.Series, ...]]) -> Iterator[pd.Series]:
        from pyspark import SparkFiles

        model = _load_on_worker(name, SparkFiles.get(name), digests)
        for columns in batches:
            frame = _frame(columns, names)
            yield _as_series(model.predict(frame), rtype, len(frame))

    # pandas_udf reads the UDF kind from real type hints (postponed annotations are strings)
    predict.__annotations__ = {
        "batches": Iterator[tuple[pd.Series, ...]],
        "return": Iterator[pd.Series],
    }
    return pandas_udf(predict, returnType=rtype)  # type: ignore[call-overload]


def spark_udf(
    spark: Any,
    model_uri: str,
    result_type: Any = "double",
    *,
    allow_pickle: bool | None = None,
) -> Any:
    """A pandas UDF that scores Spark rows with the pyfunc model at ``model_uri``.

    :param spark: the SparkSession.
    :param model_uri: ``runs:/``, ``models:/`` or a path the driver can read.
    :param result_type: a pyspark DataType or its string ("double", "string",
        "array<double>"...): the type of the UDF's column.
    :param allow_pickle: as for :func:`autolog.load_model`, decided on the driver only.
    :return: ``udf(*columns)``: with no columns, those named by the model's input signature.
    """
    rtype = _spark_type(result_type)
    if rtype.typeName() not in _SCALAR_TYPES and rtype.typeName() != "array":
        raise ModelError(
            f"result_type {result_type!r} is not supported; use one of {list(_SCALAR_TYPES)} or "
            "an array of them"
        )
    path, model, digests = _driver_side(str(model_uri), allow_pickle)
    schema = model.metadata.get_input_schema()
    input_names = [str(n) for n in schema.input_names()] if schema is not None else []
    name = _shipped_name(digests)
    staging = Path(tempfile.gettempdir()) / "autolog-spark-udf" / name
    if not staging.exists():
        tmp = staging.with_name(f"{name}.{os.getpid()}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(path, tmp)
        try:
            tmp.rename(staging)
        except OSError:  # another process shipped the same model first
            shutil.rmtree(tmp, ignore_errors=True)
    sc = spark.sparkContext
    sc.addFile(str(staging), recursive=True)

    def udf(*columns: Any) -> Any:
        if not columns and not input_names:
            raise ModelError(
                f"{model_uri} has no input signature: pass the columns to score, e.g. "
                "udf('x1', 'x2')"
            )
        columns = columns or tuple(input_names)
        # no signature: the frame's columns take the names given (positional for Columns)
        names = input_names or [c if isinstance(c, str) else str(i) for i, c in enumerate(columns)]
        return _scorer(name, digests, names, rtype)(*columns)

    udf.__doc__ = f"Scores rows with {model_uri} (columns: {input_names or 'as given'})."
    return udf

"""Spark: the ``spark`` model flavor (MLlib's native format) and data-source autologging.

Usage::

    from integrations import spark
    spark.autolog()                      # record the data sources read during a run

    spark.log_model(pipeline_model, "model")          # runs:/<id>/model, MLlib's own save
    model = spark.load_model("runs:/<id>/model")      # the fitted model back (a local session
                                                      # is started when none is active)

This module is the Spark half of the pyspark integration (``integrations.pyspark_ml`` patches
``pyspark.ml`` and logs its models with :data:`FLAVOR`); like ``mlflow.spark`` it holds the
flavor and the data-source autologging, so the two modules are one integration split by concern.

The flavor writes what MLflow's ``mlflow.spark`` writes: the model saved by MLlib (no pickle)
in ``sparkml/`` as a ``PipelineModel`` (a lone model is wrapped in a one-stage pipeline, as
MLflow does), ``flavors.spark.model_data: sparkml`` and ``python_function.loader_module:
mlflow.spark``; so ``mlflow.spark.load_model`` and ``mlflow.pyfunc.load_model`` read our
models. :func:`load_model` returns the model that was logged (the one stage, unwrapped).

Data sources. Spark offers no public Python-side listener for batch reads (MLflow's datasource
autologging needs a JVM jar, ``mlflow-spark``, on the driver's classpath). So :func:`autolog`
patches the public reader API instead (``DataFrameReader.load/parquet/csv/json/orc/text/table``
and ``SparkSession.table``): a read made while a run is active is recorded on it, as MLflow's
tag ``sparkDatasourceInfo`` (``path=...,format=...`` lines, ``version=`` for Delta when the
read names one) and as run inputs; and every fit autologged by ``integrations.pyspark_ml``
records the sources of its training DataFrame (``DataFrame.inputFiles()`` and the relations of
its analyzed plan), however and whenever it was read. See docs/spark.md.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

from autolog import models, patching, tracking
from autolog.errors import ModelError, ModelLoadError

DATASOURCE_TAG = "sparkDatasourceInfo"  # MLflow's tag name and line format
MODEL_DATA = "sparkml"  # MLflow's folder name
PREDICTION_COL = "prediction"
_READER_METHODS = ("load", "parquet", "csv", "json", "orc", "text", "table")
_INTEGRATION = "spark"

# -- the flavor -----------------------------------------------------------------------------


def _session() -> Any:
    """The active SparkSession, or a local one (loading and pyfunc predict need a session)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    return (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .appName("autolog-spark-model")
        .getOrCreate()
    )


class SparkFlavor(models.Flavor):
    """A fitted ``pyspark.ml`` Transformer, saved by MLlib (``model.write().save``)."""

    name = "spark"
    requirements = ("pyspark",)
    mlflow_loader_module = "mlflow.spark"

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import pyspark
        from pyspark.ml import PipelineModel, Transformer

        if not isinstance(model, Transformer):
            raise ModelError(
                f"The spark flavor saves fitted pyspark.ml models (Transformers), not "
                f"{type(model).__name__}; fit the estimator first"
            )
        pipeline = model if isinstance(model, PipelineModel) else PipelineModel([model])
        # MLlib writes through Hadoop's FileSystem: an absolute file: URI, never a relative one
        pipeline.write().save((path / MODEL_DATA).resolve().as_uri())
        return {
            "pyspark_version": pyspark.__version__,
            "model_data": MODEL_DATA,
            "model_class": f"{type(model).__module__}.{type(model).__name__}",
            "wrapped_in_pipeline": not isinstance(model, PipelineModel),
        }

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        from pyspark.ml import PipelineModel

        folder = models.contained(path, conf["model_data"])
        if not folder.is_dir():
            raise ModelLoadError(f"{folder}: the MLlib model folder is missing")
        _session()
        pipeline = PipelineModel.load(folder.resolve().as_uri())
        if conf.get("wrapped_in_pipeline") and len(pipeline.stages) == 1:
            return pipeline.stages[0]
        return pipeline

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        """The prediction column of ``native.transform`` on a pandas or Spark DataFrame."""
        from pyspark.sql import DataFrame

        frame = data if isinstance(data, DataFrame) else _spark_frame(data)
        out = native.transform(frame)
        col = _prediction_col(native)
        if isinstance(data, DataFrame):
            return out
        return out.select(col).toPandas()[col].to_numpy()

    def pyfunc_conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        return {"data": conf["model_data"]}


FLAVOR = models.register_flavor(SparkFlavor())


def _prediction_col(model: Any) -> str:
    from pyspark.ml import PipelineModel

    last = model.stages[-1] if isinstance(model, PipelineModel) and model.stages else model
    try:
        return str(last.getOrDefault("predictionCol"))
    except Exception:  # a transformer with no prediction column (a feature stage)
        return PREDICTION_COL


def _spark_frame(data: Any) -> Any:
    """A Spark DataFrame of a pandas frame; columns of arrays become ML vectors."""
    import pandas as pd
    from pyspark.ml.functions import array_to_vector

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    vectors = [
        c
        for c in frame.columns
        if len(frame) and hasattr(frame[c].iloc[0], "__len__") and frame[c].dtype == object
    ]
    if vectors:
        frame = frame.assign(**{c: frame[c].map(lambda v: [float(x) for x in v]) for c in vectors})
    df = _session().createDataFrame(frame)
    for c in vectors:
        df = df.withColumn(c, array_to_vector(df[c]))
    return df


def save_model(spark_model: Any, path: str | Path, **kwargs: Any) -> models.Model:
    """Save a fitted pyspark.ml model as an MLmodel directory (MLlib's format, no pickle).

    :param kwargs: passed to :func:`autolog.models.save_model` (signature, metadata, ...).
    """
    return models.save_model(FLAVOR, spark_model, path, **kwargs)


def log_model(
    spark_model: Any, artifact_path: str | None = None, **kwargs: Any
) -> models.ModelInfo:
    """Log a fitted pyspark.ml model into the active run (``runs:/<run_id>/<artifact_path>``).

    :param kwargs: passed to :func:`autolog.models.log_model` (signature, registered_model_name).
    """
    return models.log_model(FLAVOR, spark_model, artifact_path, **kwargs)


def load_model(model_uri: str | Path) -> Any:
    """The fitted pyspark.ml model saved at ``model_uri`` (path, runs:/ or models:/)."""
    return models.load_flavor_model(model_uri, FLAVOR)


# -- run inputs ------------------------------------------------------------------------------


def source_line(source: dict[str, Any]) -> str:
    """One line of MLflow's ``sparkDatasourceInfo`` tag."""
    where = source.get("path") or source.get("table") or ""
    if source.get("format") == "delta" and source.get("version") is not None:
        return f"path={where},version={source['version']},format=delta"
    return f"path={where},format={source.get('format')}"


def record_inputs(run_id: str, sources: list[dict[str, Any]], context: str) -> None:
    """Record data sources on a run: MLflow's ``sparkDatasourceInfo`` tag, and each source as a
    dataset input (name: its path or table; digest: of the source's description, since reading
    the data would cost a Spark job; context ``train`` for a fit's DataFrame, ``read`` for a
    read during a run)."""
    if not sources:
        return
    client = tracking.Client()
    run = client.get_run(run_id)
    lines = [ln for ln in run.data.tags.get(DATASOURCE_TAG, "").splitlines() if ln]
    for source in sources:
        line = source_line(source)
        if line not in lines:
            lines.append(line)
    client.set_tag(run_id, DATASOURCE_TAG, "\n".join(lines))
    client.log_inputs(run_id, [_dataset_input(s, context) for s in sources])


def _dataset_input(source: dict[str, Any], context: str) -> Any:
    import hashlib

    from store.entities import Dataset, DatasetInput, InputTag

    text = json.dumps(source, sort_keys=True)
    kind = (
        "delta_table"
        if source.get("format") == "delta"
        else ("table" if source.get("table") else "path")
    )
    dataset = Dataset(
        name=str(source.get("table") or source.get("path")),
        digest=hashlib.blake2b(text.encode(), digest_size=8).hexdigest(),
        source_type=kind,
        source=text,
    )
    return DatasetInput(dataset, [InputTag("mlflow.data.context", context)])


def dataframe_sources(df: Any) -> list[dict[str, Any]]:
    """The data sources a DataFrame reads: file relations (path, format), tables, Delta."""
    sources = _plan_relations(df)
    listed = {s.get("path") for s in sources}
    try:
        files = df.inputFiles()  # public API: the files of every file relation
    except Exception:
        files = []
    if not sources:
        sources = [{"path": f, "format": _format_of(f)} for f in files if f not in listed]
    return sources


def _format_of(path: str) -> str | None:
    suffix = path.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    return {"parquet": "parquet", "csv": "csv", "json": "json", "orc": "orc", "txt": "text"}.get(
        suffix
    )


def _file_uri(path: str) -> str:
    """Hadoop writes local paths as ``file:/x``; ``file:///x`` is what inputFiles() and
    ``Path.as_uri()`` write."""
    if path.startswith("file:/") and not path.startswith("file://"):
        return "file://" + path[len("file:") :]
    return path


def _plan_relations(df: Any) -> list[dict[str, Any]]:
    """Relations of the analyzed logical plan, through py4j (classic Spark only).

    Private API, the last resort DESIGN.md section 3.8 allows: ``DataFrame._jdf`` and the
    Catalyst classes ``LogicalRelation``/``HadoopFsRelation``/``CatalogTable``; checked against
    pyspark 3.5 and 4.0-4.3. Anything unexpected yields no relation (inputFiles() remains).
    """
    jdf = getattr(df, "_jdf", None)
    if jdf is None:
        return []
    out: list[dict[str, Any]] = []
    try:
        leaves = jdf.queryExecution().analyzed().collectLeaves()
        it = leaves.iterator()
        while it.hasNext():
            leaf = it.next()
            if leaf.getClass().getSimpleName() != "LogicalRelation":
                continue
            source: dict[str, Any] = {}
            table = leaf.catalogTable()
            if table.isDefined():
                source["table"] = table.get().identifier().unquotedString()
            relation = leaf.relation()
            if relation.getClass().getSimpleName() == "HadoopFsRelation":
                roots = relation.location().rootPaths()
                paths = [_file_uri(str(roots.apply(i).toString())) for i in range(roots.size())]
                source["path"] = ",".join(paths)
                source["format"] = str(relation.fileFormat().toString()).lower()
            if source and source not in out:
                out.append(source)
    except Exception:
        return []
    return out


# -- data-source autologging -------------------------------------------------------------------

_lock = threading.Lock()
_enabled = False
_silent = False


def _reader_source(reader: Any, method: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    first = args[0] if args else kwargs.get("path", kwargs.get("tableName"))
    if method == "parquet" and len(args) > 1:  # parquet(*paths)
        first = list(args)
    if method == "table":
        return {"table": str(first), "format": "table"}
    fmt = method if method != "load" else kwargs.get("format")
    if fmt is None and len(args) > 1 and isinstance(args[1], str):
        fmt = args[1]
    if fmt is None:
        fmt = getattr(reader, "_autolog_format", None)
    path = ",".join(map(str, first)) if isinstance(first, (list, tuple)) else first
    source: dict[str, Any] = {"path": None if path is None else str(path), "format": fmt}
    version = getattr(reader, "_autolog_options", {}).get("versionAsOf")
    if fmt == "delta" and version is not None:
        source["version"] = version
    return source


def _patched_read(method: str) -> Any:
    def patched(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        result = call(*args, **kwargs)
        run = tracking.active_run()
        if run is not None:
            source = _reader_source(instance, method, args, kwargs)
            record_inputs(run.info.run_id, [source], "read")
        return result

    return patched


def _patched_format(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = call(*args, **kwargs)
    source = args[0] if args else kwargs.get("source")
    instance._autolog_format = None if source is None else str(source).lower()
    return result


def _patched_option(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = call(*args, **kwargs)
    if len(args) >= 2:
        options = getattr(instance, "_autolog_options", None) or {}
        options[str(args[0])] = args[1]
        instance._autolog_options = options
    return result


def _config() -> Any:
    from autolog.integration import Config

    return Config(silent=_silent) if _enabled else None


def _patch_reader(module: Any) -> None:
    owners = [module.DataFrameReader]
    connect = sys.modules.get("pyspark.sql.connect.readwriter")
    if connect is not None:
        owners.append(connect.DataFrameReader)
    for owner in owners:
        for method in _READER_METHODS:
            if callable(owner.__dict__.get(method)):
                patching.safe_patch(_INTEGRATION, owner, method, _patched_read(method), _config)
        patching.safe_patch(_INTEGRATION, owner, "format", _patched_format, _config)
        patching.safe_patch(_INTEGRATION, owner, "option", _patched_option, _config)


def _patch_session(module: Any) -> None:
    patching.safe_patch(_INTEGRATION, module.SparkSession, "table", _patched_read("table"), _config)


def autolog(disable: bool = False, silent: bool = False) -> None:
    """Record the data sources read while a run is active (see the module docstring).

    :param disable: stop recording and revert the patches.
    :param silent: no warnings from autolog's own failures.
    """
    global _enabled, _silent
    with _lock:
        _silent = silent
        if disable:
            _enabled = False
            patching.revert_patches(_INTEGRATION)
            return
        _enabled = True
        patching.when_imported(_INTEGRATION, "pyspark.sql.readwriter", _patch_reader)
        patching.when_imported(_INTEGRATION, "pyspark.sql.session", _patch_session)

"""pyspark.ml autologging: every ``Estimator.fit``, with MLflow's pyspark.ml names.

Usage::

    import autolog
    autolog.autolog()          # or: from integrations import pyspark_ml; pyspark_ml.autolog()

    model = Pipeline(stages=[indexer, assembler, LogisticRegression(maxIter=10)]).fit(train_df)
    preds = model.transform(eval_df)
    BinaryClassificationEvaluator().evaluate(preds)      # -> areaUnderROC_eval_df on the run

What one outermost ``fit`` records (docs/spark.md lists the keys):

- params: every Param the estimator defines, explicitly set or default (``getOrDefault``), by
  name; nested estimators (Pipeline stages, a CrossValidator's evaluator, OneVsRest's
  classifier) prefixed by their indexed class name (``LogisticRegression.maxIter``,
  ``VectorAssembler_2.inputCols``), as MLflow's ``_get_instance_param_map`` does;
- tags ``estimator_name`` / ``estimator_class``;
- CrossValidator / TrainValidationSplit: one finished child run per param map with its params
  and ``avg_<metric>`` / ``std_<metric>`` (``<metric>`` for TrainValidationSplit); on the
  parent ``best_<Stage.param>`` params, ``best_<child metric>`` and ``best_parameters.json``;
- training metrics from the fitted model's summary when it has one (``training_accuracy``,
  ``training_areaUnderROC``, ``training_r2``, ``training_rmse``, ... and ``training_objective``
  per iteration, from ``objectiveHistory``);
- post-training metrics: ``Evaluator.evaluate`` on the output of an autologged model's
  ``transform`` logs ``<metricName>[-<call>]_<dataset variable>`` into the fit's run;
- the data sources of the training DataFrame (``integrations.spark.record_inputs``);
- the model, ``spark`` flavor (MLlib's native save, no pickle) + ``python_function``, with a
  signature from the input DataFrame's schema (the columns the model reads).

Only the run is started on the training thread; everything else is handed to autolog's
background thread (``autolog.batching.defer``, as scikit-learn's metrics and charts are), which
ends the run once it is written (``batching.end_deferred``). Every read of the run through autolog
(``get_run``, ``search_runs``, the Client, ``load_model("runs:/...")``, the registry) waits for it
first, as do :func:`flush`, ``set_tracking_uri``, ``SparkContext.stop``, ``autolog(disable=True)``
and exit.

Direct fits of ``pyspark.ml.feature`` estimators (StringIndexer alone) record nothing, as in
MLflow; they are recorded as stages of a Pipeline. ``fit(df, [paramMaps])`` (several models at
once) is not logged. Every Estimator subclass is patched, those defined later included.
"""

from __future__ import annotations

import atexit
import inspect
import json
import threading
import time
import types
import weakref
from typing import Any

from autolog import batching, context, integration, models, patching, tracking
from integrations import spark as spark_module
from integrations.spark import FLAVOR, SparkFlavor  # noqa: F401  (the flavor of these models)

LIBRARY = "pyspark"
INTEGRATION = integration.Integration(LIBRARY, supported=">=3.5,<5", flavor="spark")

TAG_ESTIMATOR_NAME = "estimator_name"
TAG_ESTIMATOR_CLASS = "estimator_class"
BEST_PREFIX = "best_"
BEST_PARAMS_ARTIFACT = "best_parameters.json"
MODEL_ARTIFACT_PATH = "model"
OBJECTIVE_METRIC = "training_objective"
#: (metric key, summary attribute): read when the summary's class offers the attribute
SUMMARY_METRICS = (
    ("training_accuracy", "accuracy"),
    ("training_weightedPrecision", "weightedPrecision"),
    ("training_weightedRecall", "weightedRecall"),
    ("training_areaUnderROC", "areaUnderROC"),
    ("training_r2", "r2"),
    ("training_rmse", "rootMeanSquaredError"),
    ("training_mae", "meanAbsoluteError"),
    ("training_mse", "meanSquaredError"),
    ("training_explainedVariance", "explainedVariance"),
    ("training_aic", "aic"),
    ("training_deviance", "deviance"),
)
UNKNOWN_DATASET = "unknown_dataset"
#: the longest the interpreter's exit waits for the background work (a model save)
EXIT_WAIT_S = 600.0
_SPARK_TYPES = {
    "DoubleType": "double",
    "FloatType": "float",
    "IntegerType": "integer",
    "ShortType": "integer",
    "ByteType": "integer",
    "LongType": "long",
    "StringType": "string",
    "BooleanType": "boolean",
}

# -- params -----------------------------------------------------------------------------------


def _is_search(stage: Any) -> bool:
    from pyspark.ml.tuning import CrossValidator, TrainValidationSplit

    return isinstance(stage, (CrossValidator, TrainValidationSplit))


def _children(stage: Any) -> list[Any]:
    """The stages nested in ``stage``: Pipeline stages, Params-valued params (evaluator,
    classifier, the tuned estimator), in MLflow's depth-first order."""
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.param import Params

    if isinstance(stage, Pipeline):
        return list(stage.getStages())
    if isinstance(stage, PipelineModel):
        return list(stage.stages)
    out = []
    for param in stage.params:
        if stage.isDefined(param):
            value = stage.getOrDefault(param)
            if isinstance(value, Params):
                out.append(value)
    return out


def _walk(stage: Any) -> list[Any]:
    out = [stage]
    for child in _children(stage):
        out.extend(_walk(child))
    return out


def uid_names(estimator: Any) -> dict[str, str]:
    """uid -> ``ClassName``, or ``ClassName_<n>`` when the class occurs more than once."""
    counts: dict[str, int] = {}
    numbered: dict[str, tuple[str, int]] = {}
    for stage in _walk(estimator):
        cls = type(stage).__name__
        if stage.uid in numbered:
            continue
        counts[cls] = counts.get(cls, 0) + 1
        numbered[stage.uid] = (cls, counts[cls])
    return {uid: f"{c}_{n}" if counts[c] > 1 else c for uid, (c, n) in numbered.items()}


def param_map(instance: Any, names: dict[str, str], level: int = 0) -> dict[str, Any]:
    """Every defined Param of ``instance`` and of its nested stages (MLflow's key names)."""
    from pyspark.ml import Pipeline
    from pyspark.ml.param import Params

    prefix = "" if level == 0 else names[instance.uid] + "."
    search = _is_search(instance)
    out: dict[str, Any] = {}
    for param in instance.params:
        if not instance.isDefined(param):
            continue
        value = instance.getOrDefault(param)
        key = prefix + param.name
        if isinstance(instance, Pipeline) and param.name == "stages":
            out[key] = [names[s.uid] for s in value]
            for stage in value:
                out.update(param_map(stage, names, level + 1))
        elif search and param.name == "estimatorParamMaps":
            continue  # one child run per param map holds them
        elif search and param.name == "estimator":
            out[key] = names[value.uid]  # its params are on the child runs
        elif isinstance(value, Params):
            out[key] = names[value.uid]
            out.update(param_map(value, names, level + 1))
        else:
            out[key] = value
    return out


def _loggable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (str, int, float, bool)) else str(v) for k, v in params.items()}


def _estimator_tags(estimator: Any) -> dict[str, str]:
    cls = type(estimator)
    return {
        TAG_ESTIMATOR_NAME: cls.__name__,
        TAG_ESTIMATOR_CLASS: f"{cls.__module__}.{cls.__name__}",
    }


# -- the patched fit --------------------------------------------------------------------------


def _patched_fit(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    session = patching.current_session()
    extra = args[1] if len(args) > 1 else kwargs.get("params")
    featurizer = type(instance).__module__.startswith("pyspark.ml.feature")
    if session is None or featurizer or isinstance(extra, (list, tuple)):
        return call(*args, **kwargs)
    estimator = instance.copy(extra) if extra else instance
    dataset = args[0] if args else kwargs.get("dataset")
    names = uid_names(estimator)
    config = session.config
    params, tags = _loggable(param_map(estimator, names)), _estimator_tags(estimator)
    run_id = session.run_id
    _wait_at_exit()
    batching.defer(run_id, LIBRARY, _log_params, run_id, params, tags)
    if config.get("log_datasets", True) and dataset is not None:
        batching.defer(run_id, LIBRARY, _record_sources, run_id, dataset)
    model = call(*args, **kwargs)
    _after_fit(session, run_id, estimator, model, dataset, names)
    return model


def _log_params(run_id: str, params: dict[str, Any], tags: dict[str, str]) -> None:
    tracking._store().log_batch(run_id, params=params, tags=tags)


def _record_sources(run_id: str, dataset: Any) -> None:
    spark_module.record_inputs(run_id, spark_module.dataframe_sources(dataset), "train")


def _after_fit(
    session: Any, run_id: str, estimator: Any, model: Any, dataset: Any, names: dict[str, str]
) -> None:
    """Hand the rest to the background thread (docs/spark.md "Cost"); it ends the run the fit
    started."""
    config = session.config
    search = _is_search(estimator)
    final = model.bestModel if search else model
    if search:
        batching.defer(run_id, LIBRARY, log_search, run_id, estimator, model, names, config)
    if config.get("log_training_summary", True):
        batching.defer(run_id, LIBRARY, log_summary_metrics, run_id, final)
    if config.get("log_post_training_metrics", True):
        _remember(_model_runs, model, (run_id,))
    if config.log_models:
        saved = _snapshot(final)  # changes the user makes to the model after fit are not saved
        batching.defer(run_id, LIBRARY, _log_model, run_id, saved, dataset, config)
    if session.managed:
        session.managed = False
        batching.end_deferred(run_id, LIBRARY)


def _snapshot(model: Any) -> Any:
    """A copy of the fitted model with the same uid (PipelineModel.copy gives a new uid)."""
    from pyspark.ml import PipelineModel

    if isinstance(model, PipelineModel):
        copy = PipelineModel([_snapshot(stage) for stage in model.stages])
        copy.uid = model.uid
        return copy
    return model.copy()


def flush(timeout: float | None = None) -> bool:
    """Wait until everything the fits so far handed to the background thread is written.

    Every read of a run through autolog (``autolog.get_run``, ``search_runs``, the Client,
    ``load_model``, the registry) and ``SparkContext.stop`` already wait for it; so does the
    interpreter's exit. Call it before reading the store by other means (another process, the
    files). A failure of that work is reported here as one AutologWarning.

    :param timeout: seconds to wait at most (None: until done).
    :returns: False when the timeout passed first.
    """
    return batching.flush_deferred(None, timeout)


_exit_hook = False


def _wait_at_exit() -> None:
    """Have the exit wait up to EXIT_WAIT_S for the background work (a model save takes longer
    than autolog.batching's own 60 s exit wait on a busy machine), while the JVM still runs: on
    Windows pyspark's exit hook kills it, and atexit runs hooks last-registered first, this one
    after pyspark's (registered when the SparkContext started, before any fit); elsewhere the JVM
    outlives every exit hook (checked on pyspark 4.3's java_gateway.py)."""
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(_flush_at_exit)


def _flush_at_exit() -> None:
    try:
        batching.flush_deferred(None, EXIT_WAIT_S)
    except Exception:
        pass  # the exit goes on


def _now() -> int:
    return int(time.time() * 1000)


def log_summary_metrics(run_id: str, model: Any) -> None:
    """The scalar metrics and the objective history of the model's training summary."""
    from pyspark.ml import PipelineModel

    while isinstance(model, PipelineModel) and model.stages:
        model = model.stages[-1]
    if not getattr(model, "hasSummary", False):
        return
    summary = model.summary
    cls = type(summary)
    ts = _now()
    metrics = []
    for key, attr in SUMMARY_METRICS:
        if isinstance(inspect.getattr_static(cls, attr, None), property):
            metrics.append((key, float(getattr(summary, attr)), ts, 0))
    if isinstance(inspect.getattr_static(cls, "objectiveHistory", None), property):
        history = summary.objectiveHistory
        # tree ensembles report [0.0]: no iterations, no objective to plot
        if getattr(summary, "totalIterations", len(history)) > 0:
            metrics += [(OBJECTIVE_METRIC, float(v), ts, i) for i, v in enumerate(history)]
    if metrics:
        tracking._store().log_batch(run_id, metrics=metrics)


# -- parameter searches -------------------------------------------------------------------------


def search_metrics(estimator: Any, model: Any) -> tuple[dict[str, list[float]], str, int]:
    """(metric key -> value per param map, the key ranked on, index of the best param map)."""
    from pyspark.ml.tuning import CrossValidatorModel

    evaluator = estimator.getEvaluator()
    name = evaluator.getMetricName()
    if isinstance(model, CrossValidatorModel):
        ranked = "avg_" + name
        metrics = {ranked: [float(v) for v in model.avgMetrics]}
        std = getattr(model, "stdMetrics", None)
        if std:
            metrics["std_" + name] = [float(v) for v in std]
    else:
        ranked = name
        metrics = {ranked: [float(v) for v in model.validationMetrics]}
    values = metrics[ranked]
    pick = max if evaluator.isLargerBetter() else min
    best = pick(range(len(values)), key=lambda i: values[i])
    return metrics, ranked, best


def _tuning_maps(estimator: Any, names: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {f"{names.get(p.parent, p.parent)}.{p.name}": v for p, v in param_map_.items()}
        for param_map_ in estimator.getEstimatorParamMaps()
    ]


def log_search(run_id: str, estimator: Any, model: Any, names: dict[str, str], config: Any) -> None:
    """Child runs per param map; best params, best metric and best_parameters.json on the parent."""
    metrics, ranked, best = search_metrics(estimator, model)
    maps = _tuning_maps(estimator, names)
    client = tracking.Client()
    store = client.store
    store.log_batch(
        run_id,
        params=_loggable({BEST_PREFIX + k: v for k, v in maps[best].items()}),
        metrics=[(BEST_PREFIX + ranked, metrics[ranked][best], _now(), 0)],
    )
    client.log_text(run_id, json.dumps(_loggable(maps[best]), indent=2), BEST_PARAMS_ARTIFACT)
    tuned = estimator.getEstimator()
    tags: dict[str, Any] = {
        patching.INTEGRATION_TAG: LIBRARY,
        tracking.PARENT_RUN_TAG: run_id,
        **(config.extra_tags or {}),
    }
    ts = _now()
    children = []
    for i, pm in enumerate(estimator.getEstimatorParamMaps()):
        child = tuned.copy(pm)
        name = f"{names[estimator.uid]}-paramMap-{i}"
        child_tags = {**tags, **_estimator_tags(child), tracking.RUN_NAME_TAG: name}
        params = _loggable(param_map(child, names))
        child_metrics = [(k, v[i], ts, 0) for k, v in metrics.items()]
        children.append((name, child_tags, params, child_metrics))
    experiment_id = store.get_run(run_id).info.experiment_id
    store.create_finished_runs(
        experiment_id, children, parent_run_id=run_id, user_id=context.current_user()
    )


# -- the model ----------------------------------------------------------------------------------


def _flat_stages(model: Any) -> list[Any]:
    from pyspark.ml import PipelineModel

    if isinstance(model, PipelineModel):
        return [s for stage in model.stages for s in _flat_stages(stage)]
    return [model]


def feature_columns(model: Any, columns: list[str]) -> list[str]:
    """The input columns ``model`` reads, in order (produced ones excluded)."""
    produced: set[str] = set()
    needed: list[str] = []
    for stage in _flat_stages(model):
        for name in ("inputCol", "inputCols", "featuresCol"):
            if stage.hasParam(name) and stage.isDefined(stage.getParam(name)):
                value = stage.getOrDefault(name)
                for col in value if isinstance(value, list) else [value]:
                    if col in columns and col not in produced and col not in needed:
                        needed.append(col)
        for name in ("outputCol", "outputCols"):
            if stage.hasParam(name) and stage.isDefined(stage.getParam(name)):
                value = stage.getOrDefault(name)
                produced.update(value if isinstance(value, list) else [value])
    return needed


def signature_of(model: Any, df: Any) -> Any:
    """Inputs: the columns the model reads, typed from the DataFrame's schema; output: double.

    None when a column has a type MLflow's schema cannot name.
    """
    from autolog.signature import ColSpec, ModelSignature, Schema

    fields = {f.name: f for f in df.schema.fields}
    cols = feature_columns(model, list(fields))
    if not cols:
        return None
    specs = []
    for col in cols:
        kind = type(fields[col].dataType).__name__
        if kind == "VectorUDT":
            specs.append(ColSpec({"type": "sparkml_vector"}, col))
        elif kind in _SPARK_TYPES:
            specs.append(ColSpec(_SPARK_TYPES[kind], col))
        else:
            return None
    return ModelSignature(Schema(specs), Schema([ColSpec("double")]))


def _input_example(model: Any, df: Any) -> Any:
    from pyspark.ml.functions import vector_to_array

    cols = feature_columns(model, df.columns)
    vectors = {f.name for f in df.schema.fields if type(f.dataType).__name__ == "VectorUDT"}
    rows = df.select(
        [vector_to_array(df[c]).alias(c) if c in vectors else df[c] for c in cols]
    ).limit(5)
    return rows.toPandas()


def _log_model(run_id: str, model: Any, df: Any, config: Any) -> None:
    signature = signature_of(model, df) if config.log_model_signatures and df is not None else None
    example = _input_example(model, df) if config.log_input_examples and df is not None else None
    models.log_model(
        FLAVOR,
        model,
        MODEL_ARTIFACT_PATH,
        signature if signature is not None else False,
        example,
        registered_model_name=config.registered_model_name,
        run_id=run_id,
    )


# -- post-training metrics -----------------------------------------------------------------------

_lock = threading.RLock()
_model_runs: dict[int, tuple[Any, tuple]] = {}  # id(model) -> (weakref, (run_id,))
_predictions: dict[int, tuple[Any, tuple]] = {}  # id(df) -> (weakref, (run_id, dataset))
_dataset_ids: dict[tuple[str, str], list[int]] = {}
_metric_calls: dict[tuple[str, str], int] = {}


def _remember(table: dict[int, tuple[Any, tuple]], obj: Any, value: tuple) -> None:
    key = id(obj)

    def forget(_ref: Any, key: int = key) -> None:
        with _lock:
            table.pop(key, None)

    ref = weakref.ref(obj, forget)
    with _lock:
        table[key] = (ref, value)


def _recall(table: dict[int, tuple[Any, tuple]], obj: Any) -> tuple | None:
    with _lock:
        found = table.get(id(obj))
    if found is None or found[0]() is not obj:
        return None
    return found[1]


def _with_index(name: str, index: int) -> str:
    return name if index == 0 else f"{name}-{index + 1}"  # MLflow's naming


def _internal(frame: types.FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    return module.split(".")[0] in ("autolog", "wrapt", "pyspark") or module == __name__


def _variable_name(obj: Any) -> str:
    """The name the caller holds ``obj`` under (read from its frame, as MLflow does)."""
    frame = inspect.currentframe()
    while frame is not None and _internal(frame):
        frame = frame.f_back
    if frame is None:
        return UNKNOWN_DATASET
    for name, value in frame.f_locals.items():
        if value is obj and not name.startswith("_"):
            return name
    return UNKNOWN_DATASET


def _patched_transform(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = call(*args, **kwargs)
    known = _recall(_model_runs, instance)
    if known is not None:
        (run_id,) = known
        data = args[0] if args else kwargs.get("dataset")
        name = _variable_name(data)
        with _lock:
            ids = _dataset_ids.setdefault((run_id, name), [])
            if id(data) not in ids:
                ids.append(id(data))
            dataset = _with_index(name, ids.index(id(data)))
        _remember(_predictions, result, (run_id, dataset))
    return result


def _patched_evaluate(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    value = call(*args, **kwargs)
    data = args[0] if args else kwargs.get("dataset")
    known = _recall(_predictions, data)
    if known is None:
        return value
    run_id, dataset = known
    extra = args[1] if len(args) > 1 else kwargs.get("params")
    evaluator = instance.copy(extra) if extra else instance
    metric = evaluator.getMetricName()
    with _lock:
        index = _metric_calls.get((run_id, metric), 0)
        _metric_calls[(run_id, metric)] = index + 1
    point = (f"{_with_index(metric, index)}_{dataset}", float(value), _now(), 0)
    batching.defer(run_id, LIBRARY, _log_point, run_id, point)
    return value


def _log_point(run_id: str, point: tuple) -> None:
    tracking._store().log_batch(run_id, metrics=[point])


# -- patching and autolog ------------------------------------------------------------------------


def _patch_ml(base: Any) -> None:
    patching.patch_subclasses(LIBRARY, base.Estimator, {"fit": _patched_fit})
    patching.patch_subclasses(LIBRARY, base.Transformer, {"transform": _patched_transform})


def _patch_evaluation(module: Any) -> None:
    patching.patch_subclasses(LIBRARY, module.Evaluator, {"evaluate": _patched_evaluate})


def _patched_stop(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    batching.flush_deferred(None, None)  # a model save pending needs the SparkContext
    return call(*args, **kwargs)


def _patch_context(module: Any) -> None:
    patching.safe_patch(LIBRARY, module.SparkContext, "stop", _patched_stop)


@INTEGRATION.patcher
def patch() -> None:
    """Estimator.fit, Transformer.transform and Evaluator.evaluate (and their overrides), once
    pyspark.ml is imported: importing pyspark for SQL alone patches nothing. SparkContext.stop
    first waits for the background work."""
    patching.when_imported(LIBRARY, "pyspark.ml.base", _patch_ml)
    patching.when_imported(LIBRARY, "pyspark.ml.evaluation", _patch_evaluation)
    patching.when_imported(LIBRARY, "pyspark", _patch_context)


@INTEGRATION.unpatcher
def unpatch() -> None:
    """What the fits so far handed to the background thread is written before logging stops."""
    batching.flush_deferred(None, None)


@INTEGRATION.autolog
def autolog(log_post_training_metrics: bool = True, log_training_summary: bool = True) -> None:
    """Record every pyspark.ml ``fit`` from now on (see docs/spark.md).

    :param log_post_training_metrics: log ``Evaluator.evaluate`` results on an autologged
        model's output as ``<metricName>_<dataset>`` metrics of the fit's run.
    :param log_training_summary: log the metrics of the fitted model's training summary (one
        or two Spark jobs over the training data, on the driver's request).
    """

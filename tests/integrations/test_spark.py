"""pyspark.ml autologging, the spark flavor, data sources and spark_udf, on ONE SparkSession.

Every Spark test lives in this file: pytest runs with ``--dist loadfile``, so one file is one
worker and the session (local[2], the driver bound to 127.0.0.1) starts once.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import warnings
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from core import fakes
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import (
    LogisticRegression,
    LogisticRegressionModel,
    RandomForestClassifier,
)
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import StringIndexer, VectorAssembler
from pyspark.ml.regression import LinearRegression
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit
from pyspark.sql import SparkSession

import autolog
from autolog import integration, patching, pyfunc, testing, tracking
from autolog.errors import AutologWarning, ModelError, ModelLoadError
from integrations import pyspark_ml
from integrations import spark as ispark

ROWS = [
    (0.0, 1.0, "a", 0.0),
    (1.0, 0.0, "b", 0.0),
    (2.0, 1.0, "a", 0.0),
    (3.0, 0.0, "b", 1.0),
    (4.0, 1.0, "a", 0.0),
    (5.0, 0.0, "b", 1.0),
    (6.0, 1.0, "a", 1.0),
    (7.0, 0.0, "b", 1.0),
]
COLUMNS = ["x1", "x2", "cat", "label"]


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    # the executors' Python workers: this interpreter, not whatever `python3` PATH finds
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("autolog-tests")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def entry_point(tmp_path_factory):
    """The ``pyspark`` entry point, as pyproject.toml declares it, until the venv is reinstalled."""
    folder = tmp_path_factory.mktemp("spark-entry-point")
    fakes.write_entry_point(folder, "pyspark", "integrations.pyspark_ml")
    sys.path.insert(0, str(folder))
    integration.discover()
    yield
    sys.path.remove(str(folder))


@pytest.fixture
def on(entry_point):
    autolog.autolog()
    yield
    autolog.autolog(disable=True)


@pytest.fixture(scope="session")
def frame(spark):
    return spark.createDataFrame(ROWS, COLUMNS)


@pytest.fixture(scope="session")
def features(frame):
    return VectorAssembler(inputCols=["x1", "x2"], outputCol="features").transform(frame)


def only_run():
    (run,) = autolog.search_runs(output_format="list")
    return run


LR_PARAMS = {
    "aggregationDepth": "2",
    "elasticNetParam": "0.0",
    "family": "auto",
    "featuresCol": "features",
    "fitIntercept": "True",
    "labelCol": "label",
    "maxBlockSizeInMB": "0.0",
    "maxIter": "3",
    "predictionCol": "prediction",
    "probabilityCol": "probability",
    "rawPredictionCol": "rawPrediction",
    "regParam": "0.0",
    "standardization": "True",
    "threshold": "0.5",
    "tol": "1e-06",
}
LR_METRICS = {
    "training_accuracy",
    "training_weightedPrecision",
    "training_weightedRecall",
    "training_areaUnderROC",
    "training_objective",
}


def test_contract(spark, features, entry_point):
    testing.check_contract(
        "pyspark",
        train=lambda: LogisticRegression(maxIter=3).fit(features),
        run_name="LogisticRegression",
        params=set(LR_PARAMS),
        metrics=LR_METRICS,
        flags={"log_models": False},
        fail=lambda exc: Failing(exc).fit(features),
        nested=lambda: Pipeline(stages=[LogisticRegression(maxIter=2)]).fit(features),
    )


class Failing(LogisticRegression):
    """A user's estimator whose training raises the exception it is given."""

    def __init__(self, exc):
        super().__init__(maxIter=3)
        self.exc = exc

    def _fit(self, dataset):
        raise self.exc


def test_logistic_regression_exact_params_metrics_model(on, spark, features):
    model = LogisticRegression(maxIter=3).fit(features)
    run = only_run()
    assert run.data.params == LR_PARAMS
    assert run.data.tags["estimator_name"] == "LogisticRegression"
    assert run.data.tags["estimator_class"] == "pyspark.ml.classification.LogisticRegression"
    summary = model.summary
    assert run.data.metrics["training_accuracy"] == summary.accuracy
    assert run.data.metrics["training_areaUnderROC"] == summary.areaUnderROC
    history = autolog.Client().get_metric_history(run.info.run_id, "training_objective")
    assert [m.value for m in history] == summary.objectiveHistory
    assert [m.step for m in history] == list(range(len(summary.objectiveHistory)))
    # the model: MLlib's folder, no pickle; the signature from the DataFrame's schema
    uri = f"runs:/{run.info.run_id}/model"
    info = autolog.models.get_model_info(uri)
    assert set(info.flavors) == {"python_function", "spark"}
    assert info.flavors["spark"]["model_data"] == "sparkml"
    assert info.flavors["python_function"]["loader_module"] == "mlflow.spark"
    assert info.signature.to_dict()["inputs"] == json.dumps(
        [{"type": "sparkml_vector", "name": "features", "required": True}]
    )
    files = {p.relative_to(info.path).as_posix() for p in info.path.rglob("*") if p.is_file()}
    assert not any(f.endswith((".pkl", ".pickle")) for f in files)
    reloaded = ispark.load_model(uri)
    assert isinstance(reloaded, LogisticRegressionModel)
    expected = model.transform(features).select("prediction").toPandas()["prediction"]
    got = reloaded.transform(features).select("prediction").toPandas()["prediction"]
    assert got.tolist() == expected.tolist()
    # pyfunc: pandas in, predictions out (vectors as lists of numbers)
    pdf = pd.DataFrame({"features": [list(map(float, r[:2])) for r in ROWS]})
    assert autolog.load_model(uri).predict(pdf).tolist() == expected.tolist()


def test_a_fit_through_a_server_waits_only_for_its_run(
    on, spark, features, tmp_path, sent_requests
):
    """Through a tracking server (issue 19) the fit sends one request itself, the run's
    creation; params, metrics, the model and the run's end follow from autolog's threads. The
    run reads back whole through the server and its model predicts as the fitted one."""
    from autolog import batching
    from autolog.server.testing import shared_server

    autolog.set_tracking_uri(shared_server(tmp_path))
    LogisticRegression(maxIter=3).fit(features)  # the first fit also asks server-info once
    pyspark_ml.flush()
    sent_requests.clear()
    model = LogisticRegression(maxIter=3).fit(features)
    pyspark_ml.flush()
    batching.flush_deferred()
    autolog.Client().store.flush()
    assert [s for s in sent_requests if s[0] == "MainThread"] == [
        ("MainThread", "POST", "/api/2.0/mlflow/runs/create")
    ]
    deferred = [(m, p.rsplit("/", 1)[-1]) for t, m, p in sent_requests if t == "autolog-deferred"]
    assert len(deferred) + 1 == len(sent_requests)
    # params, then the metrics; the model's upload and records; the run's end last
    assert deferred[:2] == [("POST", "log-batch"), ("POST", "log-batch")]
    assert ("PUT", "staged") in deferred and ("POST", "logged-models") in deferred
    assert deferred[-2:] == [("POST", "set-tag"), ("POST", "update")]
    run = autolog.last_active_run()
    assert run.info.status == "FINISHED" and run.data.params == LR_PARAMS
    assert set(run.data.metrics) == LR_METRICS
    assert run.data.metrics["training_accuracy"] == model.summary.accuracy
    assert {f.path for f in autolog.Client().list_artifacts(run.info.run_id)} >= {"model"}
    reloaded = ispark.load_model(f"runs:/{run.info.run_id}/model")
    expected = model.transform(features).select("prediction").toPandas()["prediction"]
    got = reloaded.transform(features).select("prediction").toPandas()["prediction"]
    assert got.tolist() == expected.tolist()


def test_random_forest_exact_params(on, spark, features):
    RandomForestClassifier(numTrees=3, maxDepth=2, seed=7).fit(features)
    run = only_run()
    assert run.data.params == {
        "bootstrap": "True",
        "cacheNodeIds": "False",
        "checkpointInterval": "10",
        "featureSubsetStrategy": "auto",
        "featuresCol": "features",
        "impurity": "gini",
        "labelCol": "label",
        "leafCol": "",
        "maxBins": "32",
        "maxDepth": "2",
        "maxMemoryInMB": "256",
        "minInfoGain": "0.0",
        "minInstancesPerNode": "1",
        "minWeightFractionPerNode": "0.0",
        "numTrees": "3",
        "predictionCol": "prediction",
        "probabilityCol": "probability",
        "pruneTree": "True",
        "rawPredictionCol": "rawPrediction",
        "seed": "7",
        "subsamplingRate": "1.0",
    }
    assert set(run.data.metrics) == {
        "training_accuracy",
        "training_weightedPrecision",
        "training_weightedRecall",
        "training_areaUnderROC",
    }


def pipeline(max_iter=3):
    return Pipeline(
        stages=[
            StringIndexer(inputCol="cat", outputCol="cat_idx"),
            VectorAssembler(inputCols=["x1", "x2", "cat_idx"], outputCol="features"),
            LogisticRegression(maxIter=max_iter),
        ]
    )


def test_pipeline_params_prefixed_by_stage_and_reload_predicts_the_same(on, spark, frame):
    model = pipeline().fit(frame)
    run = only_run()
    expected_params = {
        "stages": "['StringIndexer', 'VectorAssembler', 'LogisticRegression']",
        "StringIndexer.handleInvalid": "error",
        "StringIndexer.inputCol": "cat",
        "StringIndexer.outputCol": "cat_idx",
        "StringIndexer.stringOrderType": "frequencyDesc",
        "VectorAssembler.handleInvalid": "error",
        "VectorAssembler.inputCols": "['x1', 'x2', 'cat_idx']",
        "VectorAssembler.outputCol": "features",
        **{f"LogisticRegression.{k}": v for k, v in LR_PARAMS.items()},
    }
    assert run.data.params == expected_params
    assert run.data.tags["estimator_name"] == "Pipeline"
    uri = f"runs:/{run.info.run_id}/model"
    info = autolog.models.get_model_info(uri)
    assert info.signature.to_dict()["inputs"] == json.dumps(
        [
            {"type": "string", "name": "cat", "required": True},
            {"type": "double", "name": "x1", "required": True},
            {"type": "double", "name": "x2", "required": True},
        ]
    )
    expected = model.transform(frame).select("prediction").toPandas()["prediction"].tolist()
    pdf = pd.DataFrame(ROWS, columns=COLUMNS)
    assert autolog.load_model(uri).predict(pdf[["cat", "x1", "x2"]]).tolist() == expected
    assert (
        ispark.load_model(uri)
        .transform(frame)
        .select("prediction")
        .toPandas()["prediction"]
        .tolist()
        == expected
    )


def test_lone_featurizer_fit_records_nothing(on, spark, frame):
    StringIndexer(inputCol="cat", outputCol="cat_idx").fit(frame)
    assert autolog.search_runs(output_format="list") == []


def test_cross_validator_parent_and_children(on, spark, features):
    lr = LogisticRegression(maxIter=2)
    grid = ParamGridBuilder().addGrid(lr.regParam, [0.0, 0.5]).build()
    evaluator = BinaryClassificationEvaluator()
    cv = CrossValidator(
        estimator=lr, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2, seed=3
    )
    cv_model = cv.fit(features)
    runs = autolog.search_runs(output_format="list", order_by=["start_time"])
    parent = next(r for r in runs if tracking.PARENT_RUN_TAG not in r.data.tags)
    children = sorted(
        (r for r in runs if r.data.tags.get(tracking.PARENT_RUN_TAG) == parent.info.run_id),
        key=lambda r: r.data.params["regParam"],
    )
    assert len(runs) == 3 and len(children) == 2
    assert parent.data.params == {
        "estimator": "LogisticRegression",
        "evaluator": "BinaryClassificationEvaluator",
        "BinaryClassificationEvaluator.labelCol": "label",
        "BinaryClassificationEvaluator.metricName": "areaUnderROC",
        "BinaryClassificationEvaluator.numBins": "1000",
        "BinaryClassificationEvaluator.rawPredictionCol": "rawPrediction",
        "collectSubModels": "False",
        "foldCol": "",
        "numFolds": "2",
        "parallelism": "1",
        "seed": "3",
        "best_LogisticRegression.regParam": str([0.0, 0.5][int(np.argmax(cv_model.avgMetrics))]),
    }
    assert [c.data.metrics["avg_areaUnderROC"] for c in children] == cv_model.avgMetrics
    assert [c.data.metrics["std_areaUnderROC"] for c in children] == cv_model.stdMetrics
    assert parent.data.metrics["best_avg_areaUnderROC"] == max(cv_model.avgMetrics)
    assert [c.data.params["regParam"] for c in children] == ["0.0", "0.5"]
    assert children[0].data.params == {**LR_PARAMS, "maxIter": "2"}
    assert all(c.info.status == "FINISHED" for c in children)
    best = autolog.Client().download_artifacts(parent.info.run_id, "best_parameters.json")
    assert json.loads(Path(best).read_text()) == {
        "LogisticRegression.regParam": [0.0, 0.5][int(np.argmax(cv_model.avgMetrics))]
    }


def test_evaluate_on_model_output_logs_post_training_metric(on, spark, features):
    model = LogisticRegression(maxIter=3).fit(features)
    eval_df = features.limit(6)
    evaluator = BinaryClassificationEvaluator()
    first = evaluator.evaluate(model.transform(eval_df))
    second = evaluator.evaluate(model.transform(eval_df), {evaluator.metricName: "areaUnderPR"})
    third = evaluator.evaluate(model.transform(features))
    metrics = only_run().data.metrics
    post = {k: v for k, v in metrics.items() if not k.startswith("training_")}
    assert post == {
        "areaUnderROC_eval_df": first,
        "areaUnderPR_eval_df": second,
        "areaUnderROC-2_features": third,
    }


def test_training_data_sources_and_reads_during_a_run(on, spark, tmp_path):
    pdf = pd.DataFrame(ROWS, columns=COLUMNS)
    parquet = tmp_path / "train.parquet"
    pdf.to_parquet(parquet)
    df = spark.read.parquet(str(parquet))
    pipeline().fit(df)
    run = only_run()
    uri = parquet.resolve().as_uri()
    assert run.data.tags["sparkDatasourceInfo"] == f"path={uri},format=parquet"
    (inp,) = run.inputs.dataset_inputs
    source = json.dumps({"format": "parquet", "path": uri}, sort_keys=True)
    assert (inp.dataset.name, inp.dataset.source_type, inp.dataset.source) == (uri, "path", source)
    assert [(t.key, t.value) for t in inp.tags] == [("mlflow.data.context", "train")]
    ispark.autolog()
    try:
        csv = tmp_path / "more.csv"
        pdf.to_csv(csv, index=False)
        with autolog.start_run() as active:
            spark.read.format("csv").option("header", "true").load(str(csv))
        tags = autolog.get_run(active.info.run_id).data.tags
        assert tags["sparkDatasourceInfo"] == f"path={csv},format=csv"
        spark.read.parquet(str(parquet))  # no active run: nothing to record into
    finally:
        ispark.autolog(disable=True)
    assert not patching.patches_of("spark")


def test_a_delta_read_records_its_version(spark, tmp_path):
    """Delta's own reader is not installed here: the source of a reader set up for a Delta
    table at a version (``format("delta").option("versionAsOf", ...)``) is recorded as MLflow
    records it."""
    ispark.autolog()
    try:
        reader = spark.read.format("delta").option("versionAsOf", 3)
        source = ispark._reader_source(reader, "load", (str(tmp_path / "events"),), {})
        assert source == {"path": str(tmp_path / "events"), "format": "delta", "version": 3}
        with autolog.start_run() as run:
            ispark.record_inputs(run.info.run_id, [source], "read")
    finally:
        ispark.autolog(disable=True)
    got = autolog.get_run(run.info.run_id)
    assert (
        got.data.tags["sparkDatasourceInfo"] == f"path={tmp_path / 'events'},version=3,format=delta"
    )
    (inp,) = got.inputs.dataset_inputs
    assert (inp.dataset.name, inp.dataset.source_type) == (str(tmp_path / "events"), "delta_table")
    assert json.loads(inp.dataset.source) == source


def test_train_validation_split_parent_and_children(on, spark, features):
    lr = LogisticRegression(maxIter=2)
    grid = ParamGridBuilder().addGrid(lr.regParam, [0.0, 0.1, 1.0]).build()
    tvs = TrainValidationSplit(
        estimator=lr, estimatorParamMaps=grid, evaluator=BinaryClassificationEvaluator(), seed=5
    )
    tvs_model = tvs.fit(features)
    runs = autolog.search_runs(output_format="list")
    (parent,) = [r for r in runs if tracking.PARENT_RUN_TAG not in r.data.tags]
    children = sorted(
        (r for r in runs if r.data.tags.get(tracking.PARENT_RUN_TAG) == parent.info.run_id),
        key=lambda r: float(r.data.params["regParam"]),
    )
    assert len(runs) == 4
    metrics = tvs_model.validationMetrics
    best = int(np.argmax(metrics))
    assert [c.data.metrics for c in children] == [{"areaUnderROC": m} for m in metrics]
    assert [c.data.params for c in children] == [
        {**LR_PARAMS, "maxIter": "2", "regParam": v} for v in ("0.0", "0.1", "1.0")
    ]
    assert [c.data.tags["mlflow.runName"] for c in children] == [
        f"TrainValidationSplit-paramMap-{i}" for i in range(3)
    ]
    assert all(c.info.status == "FINISHED" for c in children)
    assert parent.info.status == "FINISHED"
    summary = tvs_model.bestModel.summary
    assert parent.data.metrics == {
        "best_areaUnderROC": metrics[best],
        "training_accuracy": summary.accuracy,
        "training_weightedPrecision": summary.weightedPrecision,
        "training_weightedRecall": summary.weightedRecall,
        "training_areaUnderROC": summary.areaUnderROC,
        "training_objective": summary.objectiveHistory[-1],
    }
    assert parent.data.params == {
        "estimator": "LogisticRegression",
        "evaluator": "BinaryClassificationEvaluator",
        "BinaryClassificationEvaluator.labelCol": "label",
        "BinaryClassificationEvaluator.metricName": "areaUnderROC",
        "BinaryClassificationEvaluator.numBins": "1000",
        "BinaryClassificationEvaluator.rawPredictionCol": "rawPrediction",
        "collectSubModels": "False",
        "parallelism": "1",
        "seed": "5",
        "trainRatio": "0.75",
        "best_LogisticRegression.regParam": ["0.0", "0.1", "1.0"][best],
    }
    best_file = autolog.Client().download_artifacts(parent.info.run_id, "best_parameters.json")
    assert json.loads(Path(best_file).read_text()) == {
        "LogisticRegression.regParam": [0.0, 0.1, 1.0][best]
    }
    # the model logged is the best one
    uri = f"runs:/{parent.info.run_id}/model"
    expected = tvs_model.transform(features).select("prediction").toPandas()["prediction"]
    got = ispark.load_model(uri).transform(features).select("prediction").toPandas()
    assert got["prediction"].tolist() == expected.tolist()


def test_catalog_table_is_a_run_input_with_its_name(on, spark, frame):
    frame.write.mode("overwrite").saveAsTable("autolog_train")
    try:
        table = spark.table("autolog_train")
        pipeline().fit(table)
        run = only_run()
        (inp,) = run.inputs.dataset_inputs
        source = json.loads(inp.dataset.source)
        assert inp.dataset.name == "spark_catalog.default.autolog_train"
        assert inp.dataset.source_type == "table"
        assert source["table"] == "spark_catalog.default.autolog_train"
        assert source["format"] == "parquet"
        assert source["path"].endswith("/autolog_train")
        assert [(t.key, t.value) for t in inp.tags] == [("mlflow.data.context", "train")]
        assert run.data.tags["sparkDatasourceInfo"] == (f"path={source['path']},format=parquet")
    finally:
        spark.sql("DROP TABLE IF EXISTS autolog_train")


def test_linear_regression_summary_metrics_equal_the_models_summary(on, spark, features):
    lr = LinearRegression(maxIter=5, regParam=0.1, solver="l-bfgs")
    model = lr.fit(features)
    run = only_run()
    summary = model.summary
    metrics = run.data.metrics
    assert metrics == {
        "training_r2": summary.r2,
        "training_rmse": summary.rootMeanSquaredError,
        "training_mae": summary.meanAbsoluteError,
        "training_mse": summary.meanSquaredError,
        "training_explainedVariance": summary.explainedVariance,
        "training_objective": summary.objectiveHistory[-1],
    }
    history = autolog.Client().get_metric_history(run.info.run_id, "training_objective")
    assert len(summary.objectiveHistory) > 2
    assert [(m.step, m.value) for m in history] == list(enumerate(summary.objectiveHistory))


@pytest.fixture
def no_testing(monkeypatch):
    """AUTOLOG_TESTING off (autolog's own errors become warnings) and the rate limit reset."""
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    monkeypatch.setattr(patching, "_last_warning", {})
    monkeypatch.setattr(patching, "_suppressed", {})
    monkeypatch.setattr(tracking, "_unterminated", {})


def ours(caught):
    return [str(w.message) for w in caught if issubclass(w.category, AutologWarning)]


def test_a_failed_model_save_is_one_warning_and_the_run_finishes(
    on, spark, features, monkeypatch, no_testing
):
    def broken_write(self):
        raise OSError("no space left on device")

    monkeypatch.setattr(PipelineModel, "write", broken_write)
    with pytest.warns(AutologWarning) as caught:
        model = LogisticRegression(maxIter=3).fit(features)
        run = only_run()
    assert ours(caught) == [
        "autolog: logging for pyspark failed and was skipped; training is unaffected: "
        "ModelError: The spark flavor could not save LogisticRegressionModel: "
        "no space left on device"
    ]
    assert run.info.status == "FINISHED"
    assert run.data.params == LR_PARAMS
    assert run.data.metrics["training_accuracy"] == model.summary.accuracy
    assert set(run.data.metrics) == LR_METRICS
    assert [a.path for a in autolog.Client().list_artifacts(run.info.run_id)] == []
    assert tracking.active_run() is None


def parquet_training(spark, path):
    """The user's code: a Pipeline on a Parquet file, predictions and an evaluation of them."""
    df = spark.read.parquet(str(path))
    model = pipeline().fit(df)
    predictions = model.transform(df)
    auc = BinaryClassificationEvaluator().evaluate(predictions)
    coefficients = model.stages[-1].coefficients.toArray().tolist()
    return [predictions.select("prediction").toPandas()["prediction"].tolist(), coefficients, auc]


@pytest.mark.parametrize(
    "method",
    ["create_run", "log_batch", "log_inputs", "staged_artifact_dir", "set_terminated"],
)
def test_a_failing_write_leaves_the_fit_and_later_calls_unaffected(
    on, spark, tmp_path, store, method, no_testing
):
    from core.test_faults import Fault

    path = tmp_path / "train.parquet"
    pd.DataFrame(ROWS, columns=COLUMNS).to_parquet(path)
    autolog.autolog(disable=True)
    expected = parquet_training(spark, path)
    autolog.autolog()
    fault = Fault(store, method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = parquet_training(spark, path)
        pyspark_ml.flush()
        autolog.end_run()
        found = autolog.search_runs(output_format="list")
    assert got == expected
    assert fault.calls >= 1
    messages = ours(caught)
    assert len(messages) == 1, messages
    assert f"disk on fire in {method}" in messages[0]
    assert tracking.active_run() is None
    fault.heal()
    with autolog.start_run() as run:  # the store is back: a new run works, every run is ended
        autolog.log_metric("after", 1.0)
    assert autolog.get_run(run.info.run_id).data.metrics == {"after": 1.0}
    runs = store.search_runs(None)
    assert {r.info.run_id for r in found} <= {r.info.run_id for r in runs}
    assert [r.info.status for r in runs] == ["FINISHED"] * len(runs)


def test_the_fit_returns_before_the_model_is_written_and_reads_wait_for_it(
    on, spark, features, monkeypatch
):
    import threading

    release = threading.Event()
    original = PipelineModel.write

    def slow_write(self):
        assert release.wait(60)
        return original(self)

    monkeypatch.setattr(PipelineModel, "write", slow_write)
    model = LogisticRegression(maxIter=3).fit(features)  # returns while the save waits
    assert tracking.active_run() is None
    assert not pyspark_ml.flush(timeout=0.2)
    release.set()
    run = only_run()  # waits for the writer
    assert run.info.status == "FINISHED"
    reloaded = ispark.load_model(f"runs:/{run.info.run_id}/model")
    assert reloaded.coefficients == model.coefficients
    assert pyspark_ml.flush(timeout=0)


def test_registry_reads_and_a_new_tracking_uri_wait_for_the_background_save(
    entry_point, spark, features, monkeypatch, tmp_path
):
    import threading

    release = threading.Event()
    original = PipelineModel.write

    def slow_write(self):
        assert release.wait(60)
        return original(self)

    monkeypatch.setattr(PipelineModel, "write", slow_write)
    first = tracking.get_tracking_uri()
    pyspark_ml.autolog(registered_model_name="spark-lr")
    try:
        LogisticRegression(maxIter=3).fit(features)  # returns while the save waits
        release.set()
        # each read waits for the save (and the registration after it)
        assert autolog.last_logged_model().source_run_id == only_run().info.run_id
        (version,) = autolog.Client().get_latest_versions("spark-lr")
        assert version.version == "1"
        release.clear()
        model = LogisticRegression(maxIter=4).fit(features)
        release.set()
        autolog.set_tracking_uri(tmp_path / "elsewhere")  # the save lands in the first store
        assert autolog.search_runs(output_format="list") == []
        runs = autolog.Client(first).search_runs(order_by=["start_time DESC"])
        assert runs[0].data.params["maxIter"] == "4"
        assert runs[0].info.status == "FINISHED"
        autolog.set_tracking_uri(first)
        latest = ispark.load_model(f"runs:/{runs[0].info.run_id}/model")
        assert latest.coefficients == model.coefficients
    finally:
        pyspark_ml.autolog(disable=True)


EXITS_AFTER_A_FIT = """
import os, sys
import autolog
from pyspark.sql import SparkSession
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
autolog.set_tracking_uri(sys.argv[1])
autolog.autolog()  # before the session: autolog's own exit hooks run after pyspark's
spark = (SparkSession.builder.master("local[1]").config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.ui.enabled", "false")
         .getOrCreate())
df = spark.createDataFrame([(float(i), float(i % 2)) for i in range(20)], ["x", "label"])
df = VectorAssembler(inputCols=["x"], outputCol="features").transform(df)
LogisticRegression(maxIter=3).fit(df)
"""


def test_the_exit_waits_for_the_model_save_before_pyspark_stops_the_jvm(spark, tmp_path):
    import subprocess

    script = tmp_path / "fit_and_exit.py"
    script.write_text(EXITS_AFTER_A_FIT)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": os.getcwd()}
    env.pop("AUTOLOG_TESTING")  # the user's process
    runs = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, str(script), str(runs)], env=env, capture_output=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"AutologWarning" not in done.stderr
    autolog.set_tracking_uri(runs)
    (run,) = autolog.search_runs(output_format="list")
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) == LR_METRICS
    assert [a.path for a in autolog.Client().list_artifacts(run.info.run_id)] == ["model"]
    assert ispark.load_model(f"runs:/{run.info.run_id}/model").numFeatures == 1


# -- spark_udf --------------------------------------------------------------------------------


class LoadCounter:
    """A pyfunc model that appends its process id to a file each time it is unpickled."""

    def __init__(self, log: str):
        self.log = log

    def __setstate__(self, state):
        self.__dict__.update(state)
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")

    def predict(self, frame):
        return frame["a"].to_numpy() * 2.0 + frame["b"].to_numpy()


# Spark's Python workers cannot import this test module: the class travels by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_spark_udf_sklearn_100k_rows_equals_pandas_predict(spark, tmp_path):
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    target = train["a"] * 3.0 - train["b"]
    with autolog.start_run() as run:
        from integrations import sklearn as isk

        isk.log_model(LinearRegression().fit(train, target), "model", input_example=train[:5])
    uri = f"runs:/{run.info.run_id}/model"
    rows = pd.DataFrame({"a": rng.normal(size=100_000), "b": rng.normal(size=100_000)})
    sdf = spark.createDataFrame(rows)
    assert autolog.pyfunc.spark_udf is pyfunc.spark_udf  # MLflow spells it mlflow.pyfunc
    udf = autolog.pyfunc.spark_udf(spark, uri, result_type="double")
    scored = sdf.withColumn("prediction", udf()).toPandas()
    expected = pyfunc.load_model(uri).predict(scored[["a", "b"]])
    assert len(scored) == 100_000
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), np.asarray(expected))


def test_spark_udf_loads_once_per_worker_and_checks_the_driver_digests(spark, tmp_path):
    log = tmp_path / "loads.txt"
    with autolog.start_run() as run:
        autolog.models.log_model("python_function", LoadCounter(str(log)), "model")
    uri = f"runs:/{run.info.run_id}/model"
    log.write_text("")
    rows = pd.DataFrame({"a": np.arange(20_000, dtype=float), "b": np.ones(20_000)})
    sdf = spark.createDataFrame(rows).repartition(8)
    udf = pyfunc.spark_udf(spark, uri, "double")
    got = sdf.select("a", udf("a", "b").alias("p")).toPandas().sort_values("a")
    np.testing.assert_array_equal(got["p"].to_numpy(), rows["a"].to_numpy() * 2.0 + 1.0)
    pids = log.read_text().split()
    driver = str(os.getpid())
    workers = [p for p in pids if p != driver]
    assert pids.count(driver) == 1  # the driver's own check
    assert len(workers) == len(set(workers)) >= 1  # once per worker process, 8 tasks
    # a pickle loaded by path: refused on the driver unless the caller opts in
    path = autolog.models.get_model_info(uri).path
    with pytest.raises(ModelLoadError, match="refusing to unpickle"):
        pyfunc.spark_udf(spark, str(path), "double", allow_pickle=False)


def test_spark_udf_refuses_a_copy_that_differs_from_what_the_driver_approved(tmp_path):
    with autolog.start_run() as run:
        autolog.models.log_model("python_function", LoadCounter(str(tmp_path / "l")), "model")
    info = autolog.models.get_model_info(f"runs:/{run.info.run_id}/model")
    digests = autolog.model_trust.digests_of(info.path)
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(info.path, copy)
    (copy / "model.pkl").write_bytes(pickle.dumps(LoadCounter(str(tmp_path / "evil"))))
    with pytest.raises(ModelLoadError, match="changed after logging"):
        pyfunc._load_on_worker("test-copy", str(copy), digests)


def test_spark_udf_result_types_and_bad_input(spark, tmp_path):
    with autolog.start_run() as run:
        autolog.models.log_model("python_function", LoadCounter(str(tmp_path / "l")), "model")
    uri = f"runs:/{run.info.run_id}/model"
    sdf = spark.createDataFrame(pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0]}))
    as_text = pyfunc.spark_udf(spark, uri, "string")
    assert sdf.select(as_text("a", "b").alias("p")).toPandas()["p"].tolist() == ["2.0", "5.0"]
    as_array = pyfunc.spark_udf(spark, uri, "array<double>")
    got = sdf.select(as_array("a", "b").alias("p")).toPandas()["p"]
    assert [list(v) for v in got] == [[2.0], [5.0]]
    with pytest.raises(ModelError, match="result_type 'no such type'"):
        pyfunc.spark_udf(spark, uri, "no such type")
    with pytest.raises(ModelError, match="has no input signature"):
        pyfunc.spark_udf(spark, uri, "double")()

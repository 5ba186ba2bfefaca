"""The store and model micro-benchmarks against MLflow's sqlite tracking store, for reference.

Runs in the MLflow virtual environment (never imports autolog) as
``python -m benchmarks.micro_mlflow --out FILE``. Sizes are smaller than autolog's where MLflow
is slow (the per-point or per-call figures do not depend on the size).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.worker import write_json


def log_metric_single(mlflow: Any) -> dict[str, Any]:
    times = []
    with mlflow.start_run():
        mlflow.log_metric("warm", 1.0)
        for i in range(100):
            t0 = time.perf_counter()
            mlflow.log_metric("m", float(i), step=i)
            times.append(time.perf_counter() - t0)
    return {"value": statistics.median(times) * 1000, "unit": "ms", "calls": len(times)}


def ingestion(mlflow: Any) -> dict[str, Any]:
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    n, batch = 20_000, 1000  # MLflow's log_batch takes at most 1,000 metrics per call
    ts = int(time.time() * 1000)
    metrics = [Metric(f"metric_{i % 10}", i * 0.001, ts + i, i // 10) for i in range(n)]
    with mlflow.start_run() as run:
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            client.log_batch(run.info.run_id, metrics=metrics[i : i + batch])
        dt = time.perf_counter() - t0
    return {"value": n / dt, "unit": "points/s", "points": n, "batch": batch}


def history_read(mlflow: Any) -> dict[str, Any]:
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    ts = int(time.time() * 1000)
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        for i in range(0, 5000, 1000):
            client.log_batch(
                run_id,
                metrics=[Metric("loss", 1.0 / (j + 1), ts + j, j) for j in range(i, i + 1000)],
            )
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        hist = client.get_metric_history(run_id, "loss")
        times.append(time.perf_counter() - t0)
    assert len(hist) == 5000
    return {"value": statistics.median(times) * 1000, "unit": "ms", "points": len(hist)}


def log_small_model(mlflow: Any) -> dict[str, Any]:
    import importlib

    mlflow_sklearn = importlib.import_module("mlflow.sklearn")
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    times = []
    for _ in range(4):
        with mlflow.start_run():
            t0 = time.perf_counter()
            sig = infer_signature(X, model.predict(X))
            mlflow_sklearn.log_model(model, name="model", signature=sig)
            times.append(time.perf_counter() - t0)
    return {
        "value": statistics.median(times[1:]) * 1000,
        "unit": "ms",
        "first_ms": times[0] * 1000,
    }


BENCHMARKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "log_metric_single": log_metric_single,
    "ingestion": ingestion,
    "history_read": history_read,
    "log_small_model": log_small_model,
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.micro_mlflow")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import mlflow

    folder = Path(tempfile.mkdtemp(prefix="bench-micro-mlflow-"))
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.set_experiment(
        experiment_id=mlflow.create_experiment(
            "micro", artifact_location=(folder / "mlruns").as_uri()
        )
    )
    results: dict[str, Any] = {"mlflow_version": mlflow.__version__}
    for name, fn in BENCHMARKS.items():
        t0 = time.perf_counter()
        try:
            results[name] = fn(mlflow)
        except Exception:
            results[name] = {"error": traceback.format_exc(limit=10)}
        results[name]["seconds"] = time.perf_counter() - t0
        write_json(args.out, results)


if __name__ == "__main__":
    main()

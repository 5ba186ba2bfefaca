"""Spark measurements, by wall clock (Spark's work runs in the JVM, which CPU-time clocks of
the Python process do not see):

1. pyspark.ml fit: raw vs autolog (full logging) vs autolog(log_models=False), alternating fit
   by fit, on the scenarios of benchmarks/scenarios/spark.py;
2. spark_udf throughput: ``autolog.pyfunc.spark_udf`` vs a hand-written pandas UDF calling the
   same scikit-learn model, on 1,000,000 rows (each timed pass sums the predictions).

    python -m benchmarks.spark_bench [--repeats 3] [--rows 1000000] [--skip-fit] [--skip-udf]
        [--tracking-uri http://127.0.0.1:5000]
    PYTHONPATH=. .mlflow-venv/bin/python -m benchmarks.spark_bench --mlflow --skip-udf

With ``--tracking-uri`` autolog's fits log there (``python -m benchmarks --server --only
spark`` points it at an ``autolog server`` on a loopback port); through a server, each scenario
also records the requests a fit sent per thread and the last run as read back through the
server. Prints one JSON object. Not part of ``make bench`` (a Spark session per module run would add
minutes); run it alone on a quiet machine.
"""

# no `from __future__ import annotations`: pandas_udf reads the hand-written UDF's real hints
import argparse
import json
import statistics
import sys
import tempfile
import time
from typing import Any


def _time(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _switches(mlflow: bool, tracking_uri: str | None = None) -> dict[str, Any]:
    """How to turn logging off / full / without models, in autolog or in MLflow."""
    if mlflow:
        import mlflow as mlf

        mlf.set_tracking_uri("sqlite:///" + tempfile.mkdtemp(prefix="mlflow-spark-") + "/m.db")
        return {
            "off": lambda: mlf.pyspark.ml.autolog(disable=True),
            "full": lambda: mlf.pyspark.ml.autolog(),
            "no_models": lambda: mlf.pyspark.ml.autolog(log_models=False),
            "flush": lambda: None,  # MLflow writes everything during the fit
        }
    import autolog
    from benchmarks import worker

    autolog.set_tracking_uri(tracking_uri or tempfile.mkdtemp(prefix="autolog-spark-bench-"))
    server = _is_server(tracking_uri)
    return {
        "off": lambda: autolog.autolog(disable=True),
        "full": lambda: autolog.autolog(),
        "no_models": lambda: autolog.autolog(log_models=False),
        "flush": lambda: worker.drain(server),  # the pyspark integration's writer, the lane
    }


def _is_server(tracking_uri: str | None) -> bool:
    return (tracking_uri or "").startswith(("http://", "https://"))


class _TrainingClock:
    """Times the outermost ``Estimator._fit`` (the training itself, inside ``fit``): a fit's
    added time is its wall time minus that, measured in the same fit, so the difference between
    fits (large on a loaded machine) does not enter it."""

    def __init__(self) -> None:
        from pyspark.ml.pipeline import Pipeline
        from pyspark.ml.wrapper import JavaEstimator

        self.last = 0.0
        self._depth = 0
        for owner in (JavaEstimator, Pipeline):
            owner._fit = self._timed(owner.__dict__["_fit"])  # type: ignore[method-assign]

    def _timed(self, fit: Any) -> Any:
        def timed(estimator: Any, dataset: Any) -> Any:
            self._depth += 1
            started = time.perf_counter()
            try:
                return fit(estimator, dataset)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.last = time.perf_counter() - started

        return timed


def fit_overhead(
    repeats: int,
    mlflow: bool = False,
    only: str | None = None,
    tracking_uri: str | None = None,
    small: bool = False,
) -> dict[str, Any]:
    from benchmarks import worker
    from benchmarks.scenarios import spark as scenarios

    switch = _switches(mlflow, tracking_uri)
    clock = _TrainingClock()
    server = not mlflow and _is_server(tracking_uri)
    sent = worker.watch_requests() if server else []
    out: dict[str, Any] = {}
    for name, factory in scenarios.SCENARIOS.items():
        if only is not None and only not in name:
            continue
        run = factory(small)
        run()  # warm-up: JIT, first job
        times: dict[str, list[float]] = {"raw": [], "full": [], "no_models": []}
        written: dict[str, list[float]] = {"full": [], "no_models": []}
        added: dict[str, list[float]] = {"raw": [], "full": [], "no_models": []}
        res: dict[str, Any] = {}
        full_run = ""
        for _ in range(repeats):
            for mode in ("raw", "full", "no_models"):
                switch["off" if mode == "raw" else mode]()
                sent.clear()
                times[mode].append(_time(run))
                added[mode].append(times[mode][-1] - clock.last)
                # autolog writes the rest in the background: waited for here, untimed in the
                # fit's time (so no fit overlaps the previous one's writes) and reported apart
                if mode != "raw":
                    written[mode].append(_time(switch["flush"]))
                if sent:
                    worker.count_requests(res, mode, sent)
                if server and mode == "full":
                    full_run = _last_run_id()
            switch["off"]()
        if server:
            res["read_back"] = worker.read_back(full_run)
        med = {k: statistics.median(v) for k, v in times.items()}
        out[name] = {
            **res,
            "seconds": times,
            "background_s": written,
            "added_in_fit_s": added,
            "median_added_in_fit_s": {k: statistics.median(v) for k, v in added.items()},
            "median_training_s": statistics.median(
                t - a for mode in times for t, a in zip(times[mode], added[mode])
            ),
            "median_s": med,
            "added_pct": 100 * (med["full"] - med["raw"]) / med["raw"],
            "added_pct_no_models": 100 * (med["no_models"] - med["raw"]) / med["raw"],
        }
    return out


def _last_run_id() -> str:
    import autolog

    run = autolog.last_active_run()
    assert run is not None, "a logged fit left no run"
    return str(run.info.run_id)


def udf_throughput(rows: int, repeats: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf
    from sklearn.linear_model import LinearRegression

    import autolog
    from autolog import pyfunc
    from benchmarks.scenarios.spark import _spark
    from integrations import sklearn as isk

    spark = _spark()
    autolog.set_tracking_uri(tempfile.mkdtemp(prefix="autolog-spark-udf-"))
    rng = np.random.default_rng(0)
    train = pd.DataFrame({f"x{i}": rng.normal(size=500) for i in range(5)})
    est = LinearRegression().fit(train, train.sum(axis=1))
    with autolog.start_run() as run:
        isk.log_model(est, "model", input_example=train[:5])
    cols = list(train.columns)
    df = spark.range(rows).select(*[F.rand(seed=i).alias(c) for i, c in enumerate(cols)]).cache()
    df.count()

    @pandas_udf("double")  # type: ignore[call-overload]
    def by_hand(
        x0: pd.Series, x1: pd.Series, x2: pd.Series, x3: pd.Series, x4: pd.Series
    ) -> pd.Series:
        frame = pd.DataFrame({"x0": x0, "x1": x1, "x2": x2, "x3": x3, "x4": x4})
        return pd.Series(est.predict(frame))

    ours = pyfunc.spark_udf(spark, f"runs:/{run.info.run_id}/model", "double")

    def score(udf: Any) -> Any:
        return lambda: df.select(F.sum(udf(*cols))).collect()

    score(by_hand)()
    score(ours)()  # warm-up: workers started, model loaded
    times: dict[str, list[float]] = {"hand_written": [], "spark_udf": []}
    for _ in range(repeats):
        times["hand_written"].append(_time(score(by_hand)))
        times["spark_udf"].append(_time(score(ours)))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "rows": rows,
        "seconds": times,
        "rows_per_s": {k: rows / v for k, v in med.items()},
        "ratio_spark_udf_to_hand_written": med["spark_udf"] / med["hand_written"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--skip-udf", action="store_true")
    parser.add_argument("--mlflow", action="store_true", help="fits under mlflow.pyspark.ml")
    parser.add_argument("--scenario", help="only the fit scenarios whose name contains this")
    parser.add_argument("--small", action="store_true", help="the smoke-test data sizes")
    parser.add_argument("--tracking-uri", help="where autolog's fits log (default: a new folder)")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    if not args.skip_fit:
        result["fit"] = fit_overhead(
            args.repeats, args.mlflow, args.scenario, args.tracking_uri, args.small
        )
        print(json.dumps({"fit": result["fit"]}), file=sys.stderr, flush=True)  # kept if UDF fails
    if not args.skip_udf:
        result["spark_udf"] = udf_throughput(args.rows, args.repeats)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""The child process of the benchmark: times fits and writes one JSON file.

Run by benchmarks/harness.py as ``python -m benchmarks.worker <command> ...`` with the
repository on PYTHONPATH and a scratch folder as the working directory. The same file runs in
the project's virtual environment (engine ``autolog``) and in the MLflow one (engine
``mlflow``), so it imports only the standard library at its top; autolog is imported only by
the autolog engine, mlflow only by the mlflow engine.

Commands:

- ``fits``: every scenario of one scenario module, raw vs. logged, alternating in one process.
- ``rss``: one scenario fitted a few times in one mode; reports the process's peak RSS.
- ``icount``: one scenario, each mode fitted once to warm up and then once inside
  ``sys.call_tracing``, the marker that ``valgrind --tool=callgrind`` dumps its instruction
  counters around (see benchmarks/icount.py); writes which mode each marked call was.
- ``probe``: the in-process cost of ``import autolog`` and ``autolog.autolog()`` and which heavy
  modules they imported (run in a fresh process).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Set by benchmarks/server_fits.py: the tracking server's URL and the folder of its store.
SERVER_URL_VAR = "AUTOLOG_BENCH_SERVER_URL"
SERVER_STORE_VAR = "AUTOLOG_BENCH_SERVER_STORE"
SERVER_DB_VAR = "AUTOLOG_BENCH_SERVER_DB"  # `mlflow server`'s SQLite file (the mlflow engine)

# Modules that `import autolog` / `autolog.autolog()` must not import (DESIGN.md section 6).
HEAVY_MODULES = (
    "numpy",
    "pandas",
    "scipy",
    "sklearn",
    "xgboost",
    "lightgbm",
    "statsmodels",
    "torch",
    "sqlite_utils",
    "matplotlib",
)


def write_json(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=str)
    os.replace(tmp, path)


def load_scenarios(module: str) -> tuple[dict[str, Callable[[bool], Callable[[], object]]], Any]:
    mod = importlib.import_module(f"benchmarks.scenarios.{module}")
    return dict(mod.SCENARIOS), mod


class _NeverRaised(Warning):
    """Placeholder warning class: MLflow's own warnings are silenced, not counted."""


# -- engines: how to switch logging on and off, and what one fit logged ---------------------


def watch_requests() -> list[tuple[str, str, str]]:
    """Every HTTP request the REST store sends from now on (autolog.server.testing), in the
    list returned."""
    from autolog.server.testing import watch_requests as record

    sent: list[tuple[str, str, str]] = []
    record(sent)
    return sent


def drain(server: bool) -> None:
    """Wait for work integrations deferred to a background thread (e.g. sklearn's plots) and,
    through a server, for the REST store's lane: the fit's writes reached the server."""
    # a copy made in one step: the background thread may import while this iterates
    for name, mod in sys.modules.copy().items():
        if name.startswith("integrations.") and callable(getattr(mod, "flush", None)):
            mod.flush()
    if server:
        from autolog import batching, tracking

        batching.flush_deferred()
        tracking._store().flush()


def read_back(run_id: str) -> dict[str, Any]:
    """Server mode: the run as a client reads it through the server's REST API."""
    import autolog

    client = autolog.Client()
    run = client.get_run(run_id)
    return {
        "status": run.info.status,
        "params": len(run.data.params),
        "metrics": len(run.data.metrics),
        "tags": len(run.data.tags),
        "artifacts": sorted(f.path for f in client.list_artifacts(run_id)),
    }


class AutologEngine:
    """autolog in this process; its store in a scratch folder."""

    name = "autolog"

    def __init__(self, folder: Path):
        import autolog
        from autolog import tracking

        self.autolog = autolog
        self.tracking = tracking
        # Server mode (benchmarks/server_fits.py): log through `autolog server` at this URL and
        # read what landed from the server's own store folder, as another process would.
        self.server = os.environ.get(SERVER_URL_VAR) or None
        self.server_store: Any = None
        if self.server:
            from store.base import open_store

            autolog.set_tracking_uri(self.server)
            self.server_store = open_store(os.environ[SERVER_STORE_VAR], create=False)
        else:
            autolog.set_tracking_uri(str(folder / "autolog-runs"))
        self.modes: dict[str, Callable[[], None]] = {
            "raw": lambda: autolog.autolog(disable=True),
            "autolog": lambda: autolog.autolog(),
            "autolog_nomodel": lambda: autolog.autolog(log_models=False),
            "autolog_iterations": self._iterations_only,
        }
        from autolog.errors import AutologWarning

        self.warning_class: type[Warning] = AutologWarning

    def _iterations_only(self) -> None:
        """As little as autolog logs: no model, no signature, no importances (boosting)."""
        self.autolog.autolog(log_models=False, log_model_signatures=False)
        from autolog import integration

        for name in integration.names():  # the boosting ones: those with importance types
            module = importlib.import_module(integration.module_name(name))
            if "importance_types" in inspect.signature(module.autolog).parameters:
                module.autolog(log_models=False, log_model_signatures=False, importance_types=[])

    def watch_requests(self) -> list[tuple[str, str, str]]:
        """Server mode: :func:`watch_requests`; nothing is watched with a local store."""
        return watch_requests() if self.server else []

    def read_back(self, run_id: str) -> dict[str, Any]:
        return read_back(run_id)

    def _read_store(self) -> Any:
        """The store to read what a fit logged from: the local one, or the server's folder."""
        return self.server_store or self.tracking._store()

    def run_count(self) -> int:
        """Top-level runs (a search's child runs belong to its one run)."""
        store = self._read_store()
        sql = "SELECT count(*) FROM runs WHERE parent_run_id IS NULL"
        return int(store.conn.execute(sql).fetchone()[0])

    def last_run_summary(self) -> dict[str, Any]:
        from store.sqlite_points import RUN_KEY

        store = self._read_store()
        c = store.conn
        row = c.execute(
            "SELECT run_id, status FROM runs WHERE parent_run_id IS NULL "
            "ORDER BY start_time DESC, rowid DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return {}
        run_id, status = row
        one = lambda sql: c.execute(sql, [run_id]).fetchone()[0]  # noqa: E731
        files = 0
        base = store.run_artifact_base(run_id)
        if base.exists():
            files = sum(len(fs) for _, _, fs in os.walk(base))
        return {
            "run_id": run_id,
            "status": status,
            "child_runs": one("SELECT count(*) FROM runs WHERE parent_run_id = ?"),
            "params": one("SELECT count(*) FROM params WHERE run_id = ?"),
            "tags": one("SELECT count(*) FROM tags WHERE run_id = ?"),
            "metric_keys": one("SELECT count(*) FROM latest_metrics WHERE run_id = ?"),
            "metric_points": one(f"SELECT count(*) FROM metrics WHERE {RUN_KEY}"),
            "max_step": one(f"SELECT max(step) FROM metrics WHERE {RUN_KEY}"),
            "models": one("SELECT count(*) FROM models WHERE run_id = ?"),
            "artifact_files": files,
        }

    def drain(self) -> None:
        drain(bool(self.server))

    def close(self) -> None:
        self.autolog.autolog(disable=True)


class MlflowEngine:
    """mlflow.autolog() in this process; a sqlite tracking store in a scratch folder."""

    name = "mlflow"

    def __init__(self, folder: Path):
        import mlflow

        self.mlflow = mlflow
        server = os.environ.get(SERVER_URL_VAR)
        name = "bench"
        if server:  # `mlflow server` (benchmarks/server_fits.py): read its SQLite file after
            self.db = Path(os.environ[SERVER_DB_VAR])
            self.artifacts = self.db.parent / "artifacts"
            mlflow.set_tracking_uri(server)
            if mlflow.get_experiment_by_name(name) is None:
                mlflow.create_experiment(name)
        else:
            self.db = folder / "mlflow.db"
            mlflow.set_tracking_uri(f"sqlite:///{self.db}")
            # MLflow's default artifact root with a sqlite store is ./mlruns: keep it in scratch.
            self.artifacts = folder / "mlruns"
            if mlflow.get_experiment_by_name(name) is None:
                mlflow.create_experiment(name, artifact_location=self.artifacts.as_uri())
        mlflow.set_experiment(name)
        self.modes = {
            "raw": lambda: mlflow.autolog(disable=True),
            "mlflow": lambda: mlflow.autolog(silent=True),
        }
        self.warning_class: type[Warning] = _NeverRaised  # silent=True: nothing to count

    def _sql(self, sql: str, args: tuple = ()) -> Any:
        conn = sqlite3.connect(str(self.db))
        try:
            return conn.execute(sql, args).fetchone()
        finally:
            conn.close()

    _TOP = "run_uuid NOT IN (SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId')"

    def run_count(self) -> int:
        return int(self._sql(f"SELECT count(*) FROM runs WHERE {self._TOP}")[0])

    def last_run_summary(self) -> dict[str, Any]:
        row = self._sql(
            f"SELECT run_uuid, status FROM runs WHERE {self._TOP} ORDER BY start_time DESC LIMIT 1"
        )
        if row is None:
            return {}
        run_id, status = row

        def one(sql: str) -> Any:
            try:
                return self._sql(sql, (run_id,))[0]
            except sqlite3.Error:
                return None

        files = 0
        for base, _, fs in os.walk(self.artifacts):
            if run_id in base:
                files += len(fs)
        return {
            "status": status,
            "child_runs": one(
                "SELECT count(*) FROM tags WHERE key = 'mlflow.parentRunId' AND value = ?"
            ),
            "params": one("SELECT count(*) FROM params WHERE run_uuid = ?"),
            "tags": one("SELECT count(*) FROM tags WHERE run_uuid = ?"),
            "metric_keys": one("SELECT count(*) FROM latest_metrics WHERE run_uuid = ?"),
            "metric_points": one("SELECT count(*) FROM metrics WHERE run_uuid = ?"),
            "max_step": one("SELECT max(step) FROM metrics WHERE run_uuid = ?"),
            "models": one("SELECT count(*) FROM logged_models WHERE source_run_id = ?"),
            "artifact_files": files,
        }

    def drain(self) -> None:
        # (not flush_artifact_async_logging: it starts a run when none is active)
        if callable(getattr(self.mlflow, "flush_async_logging", None)):
            self.mlflow.flush_async_logging()

    def close(self) -> None:
        self.mlflow.autolog(disable=True)


def make_engine(name: str, folder: Path) -> AutologEngine | MlflowEngine:
    return AutologEngine(folder) if name == "autolog" else MlflowEngine(folder)


# -- fits ------------------------------------------------------------------------------------


def _timed(
    run: Callable[[], object], drain: Callable[[], None]
) -> tuple[float, float, float, float]:
    """One fit, timed four ways.

    Returns the wall time until run() returned; the wall time until the work an integration
    deferred to a background thread was done too (drain); the calling (training) thread's own
    CPU time over run() and drain() (waiting for a background thread costs it none); and the
    CPU time of the whole process, every thread plus waited-for child processes, over both.
    """
    gc.collect()
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0, h0 = time.process_time(), time.thread_time()
    t0 = time.perf_counter()
    run()
    t1 = time.perf_counter()
    drain()
    t2 = time.perf_counter()
    c1, h1 = time.process_time(), time.thread_time()
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = (ch1.ru_utime - ch0.ru_utime) + (ch1.ru_stime - ch0.ru_stime)
    return t1 - t0, t2 - t0, h1 - h0, (c1 - c0) + children


def count_requests(res: dict[str, Any], mode: str, sent: list[tuple[str, str, str]]) -> None:
    """Per mode: the requests one fit (and its drain) made, per thread, and those the training
    thread made besides ``runs/create`` (server mode; the lane must leave none there)."""
    per = res.setdefault("requests", {}).setdefault(mode, {"fits": 0, "by_thread": {}})
    per["fits"] += 1
    for thread, _, _ in sent:
        per["by_thread"][thread] = per["by_thread"].get(thread, 0) + 1
    main = [f"{m} {p}" for t, m, p in sent if t == "MainThread"]
    others = sorted({r for r in main if not r.endswith("/runs/create")})
    per["training_thread_other"] = sorted(set(per.get("training_thread_other", [])) | set(others))
    per["training_thread_per_fit"] = max(per.get("training_thread_per_fit", 0), len(main))


def cmd_fits(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{args.engine}-"))
    out: dict[str, Any] = {"engine": args.engine, "module": args.module, "scenarios": {}}
    write_json(args.out, out)
    try:
        engine = make_engine(args.engine, folder)
        scenarios, mod = load_scenarios(args.module)
    except Exception:
        out["error"] = traceback.format_exc(limit=8)
        write_json(args.out, out)
        return
    out["budgets"] = dict(getattr(mod, "BUDGETS", {}) or {})
    names = [n for n in scenarios if not args.only or n in args.only.split(",")]
    modes = [m for m in args.modes.split(",") if m in engine.modes]
    logged_modes = [m for m in modes if m != "raw"]
    sent = engine.watch_requests() if isinstance(engine, AutologEngine) else []
    for name in names:
        res: dict[str, Any] = {
            "times": {m: [] for m in modes},
            "cpu": {m: [] for m in modes},
            "drained": {m: [] for m in modes},
            "thread": {m: [] for m in modes},
            "cold": {},
        }
        out["scenarios"][name] = res
        try:
            engine.modes["raw"]()
            run = scenarios[name](args.small)
            res["runs_per_fit"] = {m: [] for m in logged_modes}
            res["warnings"] = []
            for i in range(args.warmup + args.repeats):
                order = modes[i % len(modes) :] + modes[: i % len(modes)]
                for mode in order:
                    engine.modes[mode]()
                    before = engine.run_count() if mode != "raw" else 0
                    sent.clear()
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", engine.warning_class)
                        dt, drained, thread_cpu, cpu = _timed(run, engine.drain)
                    if sent and i >= args.warmup:
                        count_requests(res, mode, sent)
                    if mode != "raw":
                        res["runs_per_fit"][mode].append(engine.run_count() - before)
                        for w in caught:
                            if issubclass(w.category, engine.warning_class) and (
                                len(res["warnings"]) < 5
                            ):
                                res["warnings"].append(f"{w.category.__name__}: {w.message}"[:300])
                    if i < args.warmup:
                        res["cold"].setdefault(mode, dt)
                    else:
                        res["times"][mode].append(dt)
                        res["cpu"][mode].append(cpu)
                        res["drained"][mode].append(drained)
                        res["thread"][mode].append(thread_cpu)
                    if mode == logged_modes[0] and i == args.warmup + args.repeats - 1:
                        res["logged"] = engine.last_run_summary()
                        if sent and res["logged"]:
                            assert isinstance(engine, AutologEngine)
                            res["read_back"] = engine.read_back(res["logged"]["run_id"])
                    elif mode == "autolog_nomodel" and i == args.warmup + args.repeats - 1:
                        res["logged_nomodel"] = engine.last_run_summary()
            engine.modes["raw"]()
        except Exception:
            res["error"] = traceback.format_exc(limit=12)
            try:
                engine.modes["raw"]()
            except Exception:
                pass
        write_json(args.out, out)
    engine.close()
    write_json(args.out, out)


# -- instruction counts (under callgrind) ---------------------------------------------------------


def cmd_icount(args: argparse.Namespace) -> None:
    """Fit one scenario per mode, marked for callgrind: see benchmarks/icount.py.

    Each mode is fitted once unmarked first (imports, caches and the store's first write are
    paid there, as in the timed runs' warm-up), then ``repeats`` times inside
    ``sys.call_tracing(fit_and_drain)``; callgrind started with
    ``--dump-before/--dump-after=_PyEval_CallTracing`` writes one counter dump per marked call,
    every thread's instructions included (the metric writer and artifact threads too, since
    the drain waits for them inside the call).
    """
    folder = Path(tempfile.mkdtemp(prefix="bench-icount-"))
    engine = make_engine("autolog", folder)
    assert isinstance(engine, AutologEngine)
    scenarios, _ = load_scenarios(args.module)
    run = scenarios[args.scenario](args.small)
    modes = args.modes.split(",")

    def fit_and_drain() -> None:
        run()
        engine.drain()

    for mode in modes:
        engine.modes[mode]()
        fit_and_drain()
    marked = []
    for _ in range(args.repeats):
        for mode in modes:
            engine.modes[mode]()
            gc.collect()
            sys.call_tracing(fit_and_drain, ())
            marked.append(mode)
    engine.close()
    write_json(args.out, {"marked": marked, "logged": engine.last_run_summary()})


# -- peak memory ---------------------------------------------------------------------------------


def cmd_rss(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-rss-{args.mode}-"))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine = None
    if args.mode != "raw":
        engine = make_engine(args.mode, folder)
        engine.modes[args.mode]()
    scenarios, _ = load_scenarios(args.module)
    run = scenarios[args.scenario](args.small)
    before_fits = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(args.fits):
        run()
        if engine is not None:
            engine.drain()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    write_json(
        args.out,
        {
            "mode": args.mode,
            "peak_rss_mib": peak / 1024,
            "start_rss_mib": base / 1024,
            "before_fits_rss_mib": before_fits / 1024,
            "fits": args.fits,
        },
    )


# -- import probe ----------------------------------------------------------------------------------


def cmd_probe(args: argparse.Namespace) -> None:
    """Run first thing in a fresh process: time `import autolog` and `autolog.autolog()`."""
    already = sorted(m for m in HEAVY_MODULES if m in sys.modules)
    c0, t0 = time.process_time(), time.perf_counter()
    import autolog

    c1, t1 = time.process_time(), time.perf_counter()
    after_import = sorted(m for m in HEAVY_MODULES if m in sys.modules)
    autolog.autolog()
    c2, t2 = time.process_time(), time.perf_counter()
    after_autolog = sorted(m for m in HEAVY_MODULES if m in sys.modules)
    print(
        json.dumps(
            {
                "import_ms": (t1 - t0) * 1000,
                "autolog_call_ms": (t2 - t1) * 1000,
                "import_cpu_ms": (c1 - c0) * 1000,
                "autolog_call_cpu_ms": (c2 - c1) * 1000,
                "heavy_before": already,
                "heavy_after_import": after_import,
                "heavy_after_autolog": after_autolog,
                "wrapt_imported": "wrapt" in sys.modules,
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fits")
    f.add_argument("--engine", choices=["autolog", "mlflow"], default="autolog")
    f.add_argument("--module", required=True)
    f.add_argument("--only", default="")
    f.add_argument("--modes", default="raw,autolog,autolog_nomodel")
    f.add_argument("--repeats", type=int, default=7)
    f.add_argument("--warmup", type=int, default=1)
    f.add_argument("--small", action="store_true")
    f.add_argument("--out", required=True)
    r = sub.add_parser("rss")
    r.add_argument("--mode", choices=["raw", "autolog", "mlflow"], required=True)
    r.add_argument("--module", required=True)
    r.add_argument("--scenario", required=True)
    r.add_argument("--fits", type=int, default=3)
    r.add_argument("--small", action="store_true")
    r.add_argument("--out", required=True)
    ic = sub.add_parser("icount")
    ic.add_argument("--module", required=True)
    ic.add_argument("--scenario", required=True)
    ic.add_argument("--modes", default="raw,autolog,autolog_nomodel")
    ic.add_argument("--repeats", type=int, default=1)
    ic.add_argument("--small", action="store_true")
    ic.add_argument("--out", required=True)
    sub.add_parser("probe")
    args = p.parse_args(argv)
    commands = {"fits": cmd_fits, "rss": cmd_rss, "icount": cmd_icount, "probe": cmd_probe}
    commands[args.command](args)


if __name__ == "__main__":
    main()

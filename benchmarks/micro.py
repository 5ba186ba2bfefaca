"""Micro-benchmarks of autolog's engine, store and models (in-process, one fresh process).

Run by the harness as ``python -m benchmarks.micro --out FILE [--small]``; writes JSON. Each
benchmark returns a dict whose ``value`` is the number compared with its budget (the unit is in
``unit``) plus the details behind it. Timings are medians over repeats in this one process, in
CPU time (the wall-clock medians beside them, ``wall_*``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sqlite3
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.worker import write_json


class _Clock:
    """CPU time of this process (the judged number) and wall time of one measured stretch.

    On this shared machine the wall clock also counts the time other processes held the cores;
    for single-threaded code CPU time is what the wall clock shows on a dedicated machine.
    """

    cpu = wall = 0.0

    def __enter__(self) -> _Clock:
        self._c0, self._t0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self._c0
        self.wall = time.perf_counter() - self._t0


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


# -- autolog/patching.py ----------------------------------------------------------------------


def nested_patched_call(small: bool) -> dict[str, Any]:
    """Extra cost of a patched method called inside another patched call (a nested fit)."""
    from autolog import patching
    from autolog.integration import Config

    class Plain:
        def inner(self) -> None:
            return None

        def outer(self, n: int, fn: Callable[[], None]) -> None:
            for _ in range(n):
                fn()

    class Patched(Plain):
        def inner(self) -> None:
            return None

        def outer(self, n: int, fn: Callable[[], None]) -> None:
            for _ in range(n):
                fn()

    cfg = Config()

    def through(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        return call(*args, **kwargs)  # logs nothing: no run is started

    patching.safe_patch("bench_inner", Patched, "inner", through, get_config=lambda: cfg)
    patching.safe_patch("bench_outer", Patched, "outer", through, get_config=lambda: cfg)
    patching.safe_patch("bench_outer", Plain, "outer", through, get_config=lambda: cfg)
    n = 20_000 if small else 200_000
    plain, patched = Plain(), Patched()
    try:

        def timed(obj: Any) -> float:
            gc.collect()
            with _Clock() as c:
                obj.outer(n, obj.inner)
            return c.cpu

        base, patched_t = [], []
        for _ in range(3 if small else 9):
            base.append(timed(plain))
            patched_t.append(timed(patched))
        per_call_us = (statistics.median(patched_t) - statistics.median(base)) / n * 1e6

        # The same patched method called as the outermost call with its integration disabled.
        patching.revert_patches("bench_inner")
        patching.safe_patch("bench_inner", Patched, "inner", through, get_config=lambda: None)
        m = n // 4

        def loop(obj: Any) -> float:
            gc.collect()
            fn = obj.inner
            with _Clock() as c:
                for _ in range(m):
                    fn()
            return c.cpu

        b2, d2 = [], []
        for _ in range(3 if small else 9):
            b2.append(loop(plain))
            d2.append(loop(patched))
        disabled_us = (statistics.median(d2) - statistics.median(b2)) / m * 1e6
    finally:
        patching.revert_patches("bench_inner")
        patching.revert_patches("bench_outer")
    return {
        "value": per_call_us,
        "unit": "us/call",
        "calls": n,
        "outermost_disabled_us": disabled_us,
        "note": "nested call to a patched method (goes straight to the original) minus an "
        "unpatched call; CPU time, median of repeats",
    }


# -- autolog/batching.py ----------------------------------------------------------------------------


def _busy(k: int) -> int:
    x = 0
    for j in range(k):
        x += j
    return x


def metric_record(small: bool) -> dict[str, Any]:
    """Per-iteration metric points via MetricBatcher.record on the training thread.

    The budget line simulates a fast training loop: 50 microseconds of pure-Python work per
    step (it holds the GIL, the worst case for the background writer's contention) and two
    points recorded per step, i.e. 40,000 points/s; the cost is the loop's extra time with
    recording, divided by the points, the final flush (waiting until every point is written)
    included. A tight loop of record() calls is reported too: its record-only time, and the
    time including the wait for the writer, which is bound by SQLite's insert rate.
    """
    import autolog
    from autolog import batching

    k = 1
    while True:  # calibrate ~50 us of work per step
        t0 = time.perf_counter()
        for _ in range(200):
            _busy(k)
        if (time.perf_counter() - t0) / 200 >= 50e-6:
            break
        k = int(k * 1.5) + 1
    steps = 2_000 if small else 20_000

    def loop(record: Callable[[str, float, int], None] | None) -> None:
        for i in range(steps):
            _busy(k)
            if record is not None:
                record("loss", 0.5, i)
                record("accuracy", 0.9, i)

    base, logged, base_cpu, logged_cpu = [], [], [], []
    for rep in range(2 if small else 7):
        for mode in ("base", "logged") if rep % 2 == 0 else ("logged", "base"):
            gc.collect()
            if mode == "base":
                c0, t0 = time.thread_time(), time.perf_counter()
                loop(None)
                base.append(time.perf_counter() - t0)
                base_cpu.append(time.thread_time() - c0)
                continue
            with autolog.start_run() as run:
                b = batching.batcher_for(run.info.run_id)
                c0, t0 = time.thread_time(), time.perf_counter()
                loop(b.record)
                b.flush()
                logged.append(time.perf_counter() - t0)
                logged_cpu.append(time.thread_time() - c0)
    points = 2 * steps
    # Judged: the least-disturbed repeats (minima). On this virtual machine the CPU time of the
    # same 1-second loop swings by tens of percent as other guests come and go; that noise only
    # ever adds time, so the minima estimate the undisturbed cost (as `timeit` advises), where a
    # difference of medians mixes in +-10 us/point of neighbour noise. Medians are reported too.
    per_point_cpu_us = (min(logged_cpu) - min(base_cpu)) / points * 1e6
    median_cpu_us = (statistics.median(logged_cpu) - statistics.median(base_cpu)) / points * 1e6
    per_point_wall_us = (statistics.median(logged) - statistics.median(base)) / points * 1e6
    step_us = statistics.median(base) / steps * 1e6

    n = 10_000 if small else 100_000
    record_only, drained = [], []
    for _ in range(2 if small else 3):
        with autolog.start_run() as run:
            b = batching.batcher_for(run.info.run_id)
            record = b.record
            gc.collect()
            t0 = time.perf_counter()
            for i in range(n // 2):
                record("loss", 0.5, i)
                record("accuracy", 0.9, i)
            t1 = time.perf_counter()
            b.flush()
            t2 = time.perf_counter()
            record_only.append((t1 - t0) / n * 1e6)
            drained.append((t2 - t0) / n * 1e6)
        stored = autolog.get_metric_history(run.info.run_id, "loss")
        assert len(stored) == n // 2, (len(stored), n // 2)
    return {
        "value": per_point_cpu_us,
        "unit": "us/point",
        "median_cpu_us": median_cpu_us,
        "wall_us": per_point_wall_us,
        "steps": steps,
        "work_per_step_us": step_us,
        "tight_record_only_us": statistics.median(record_only),
        "tight_incl_drain_us": statistics.median(drained),
        "note": f"{steps} steps of {step_us:.0f} us pure-Python work, 2 points recorded per "
        "step, final flush included; value: the training thread's own CPU time "
        "(time.thread_time) added per point, least-disturbed repeats (minima); median_cpu_us: "
        "the same from medians; wall_us: wall time added per point, which also "
        "counts waiting for the writer thread (it needs a free core); tight loop: record() only, and record() plus waiting "
        "for the writer to drain (SQLite-bound)",
    }


# -- store/sqlite.py -----------------------------------------------------------------------------


def log_metric_single(small: bool) -> dict[str, Any]:
    """autolog.log_metric: one point, its own transaction, in an active run."""
    import autolog

    n = 100 if small else 1000
    times, walls = [], []
    with autolog.start_run():
        autolog.log_metric("warm", 1.0)
        for i in range(n):
            with _Clock() as c:
                autolog.log_metric("m", float(i), step=i)
            times.append(c.cpu)
            walls.append(c.wall)
    times.sort()
    return {
        "value": _ms(times),
        "unit": "ms",
        "p95_ms": times[int(len(times) * 0.95)] * 1000,
        "wall_ms": _ms(walls),
        "calls": n,
    }


def _points(n: int, keys: int = 10) -> list[tuple[str, float, int, int]]:
    ts = int(time.time() * 1000)
    return [(f"metric_{i % keys}", i * 0.001, ts + i, i // keys) for i in range(n)]


def ingestion(small: bool) -> dict[str, Any]:
    """Store.log_batch vs. raw sqlite3 executemany into the same metrics table, same file."""
    import autolog
    from autolog import tracking

    store = tracking._store()
    n = 10_000 if small else 100_000
    batch = 5_000  # the batcher's hand-off size
    points = _points(n)
    chunks = [points[i : i + batch] for i in range(0, n, batch)]

    raw = sqlite3.connect(str(store.db_path), isolation_level=None, timeout=30)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = NORMAL")

    def ours() -> _Clock:
        with autolog.start_run() as run:
            run_id = run.info.run_id
            gc.collect()
            with _Clock() as c:
                for chunk in chunks:
                    store.log_batch(run_id, metrics=chunk)
            return c

    def sqlite_raw() -> _Clock:
        with autolog.start_run() as run:
            run_id = run.info.run_id
            key = raw.execute("SELECT run_key FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]
            rows_per_chunk = [
                [(key, k, step, ts, i, v) for i, (k, v, ts, step) in enumerate(chunk)]
                for chunk in chunks
            ]
            gc.collect()
            with _Clock() as c:
                for n_chunk, rows in enumerate(rows_per_chunk):
                    raw.execute("BEGIN IMMEDIATE")
                    raw.executemany(
                        "INSERT INTO metrics (run_key, key, step, timestamp, seq, value) "
                        f"VALUES (?, ?, ?, ?, ? + {n_chunk * batch}, ?)",
                        rows,
                    )
                    raw.execute("COMMIT")
            return c

    ours_t: list[_Clock] = []
    raw_t: list[_Clock] = []
    for i in range(2 if small else 5):
        pair = (ours, sqlite_raw) if i % 2 == 0 else (sqlite_raw, ours)
        for fn in pair:
            (ours_t if fn is ours else raw_t).append(fn())
    raw.close()
    ours_pps = n / statistics.median(c.cpu for c in ours_t)
    raw_pps = n / statistics.median(c.cpu for c in raw_t)
    wall_ratio = statistics.median(c.wall for c in raw_t) / statistics.median(
        c.wall for c in ours_t
    )
    return {
        "value": ours_pps / raw_pps,
        "unit": "x raw",
        "points": n,
        "batch": batch,
        "autolog_points_per_s": ours_pps,
        "raw_points_per_s": raw_pps,
        "wall_ratio": wall_ratio,
        "note": "log_batch also keeps latest_metrics up to date (one upsert per key per batch); "
        "raw sqlite3 builds its row tuples (run key and seq added) outside the timed loop",
    }


def history_read(small: bool) -> dict[str, Any]:
    """autolog.get_metric_history of a 5,000-point metric."""
    import autolog
    from autolog import tracking

    store = tracking._store()
    with autolog.start_run() as run:
        run_id = run.info.run_id
        ts = int(time.time() * 1000)
        store.log_batch(run_id, metrics=[("loss", 1.0 / (i + 1), ts + i, i) for i in range(5000)])
        store.log_batch(run_id, metrics=_points(20_000, keys=4))  # other keys in the same run
    times, walls = [], []
    for _ in range(5 if small else 30):
        with _Clock() as c:
            hist = autolog.get_metric_history(run_id, "loss")
        times.append(c.cpu)
        walls.append(c.wall)
    assert len(hist) == 5000
    return {
        "value": _ms(times),
        "unit": "ms",
        "first_ms": times[0] * 1000,
        "wall_ms": _ms(walls),
        "points": len(hist),
    }


# -- autolog/models.py --------------------------------------------------------------------------------


def log_small_model(small: bool) -> dict[str, Any]:
    """LogisticRegression on iris: infer the signature and log the model (with requirements)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import autolog
    from autolog.signature import infer_signature

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    try:
        skl = importlib.import_module("integrations.sklearn")
        log = skl.log_model
        via = "integrations.sklearn.log_model"
    except (ImportError, AttributeError):
        from autolog import models

        def log(m: Any, signature: Any = None) -> Any:
            return models.log_model(models.PICKLED_FLAVOR, m, signature=signature)

        via = "autolog.models.log_model (generic pickled flavor)"

    times, walls = [], []
    info = None
    for _ in range(3 if small else 15):
        with autolog.start_run():
            gc.collect()
            with _Clock() as c:
                sig = infer_signature(X, model.predict(X))
                info = log(model, signature=sig)
            times.append(c.cpu)
            walls.append(c.wall)
    assert info is not None
    path = Path(info.path) if getattr(info, "path", None) else None
    reqs = (path / "requirements.txt").read_text().split() if path else []
    return {
        "value": _ms(times[1:]),
        "unit": "ms",
        "first_ms": times[0] * 1000,
        "wall_ms": _ms(walls[1:]),
        "via": via,
        "requirements": reqs,
        "signature": info.signature is not None,
        "note": "signature inference + log_model; median of the calls after the first",
    }


BENCHMARKS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "nested_patched_call": nested_patched_call,
    "metric_record": metric_record,
    "log_metric_single": log_metric_single,
    "ingestion": ingestion,
    "history_read": history_read,
    "log_small_model": log_small_model,
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.micro")
    p.add_argument("--small", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import autolog

    folder = Path(tempfile.mkdtemp(prefix="bench-micro-"))
    autolog.set_tracking_uri(str(folder / "autolog-runs"))
    os.environ.pop("AUTOLOG_TESTING", None)
    results: dict[str, Any] = {}
    for name, fn in BENCHMARKS.items():
        t0 = time.perf_counter()
        try:
            results[name] = fn(args.small)
        except Exception:
            results[name] = {"error": traceback.format_exc(limit=10)}
        results[name]["seconds"] = time.perf_counter() - t0
        write_json(args.out, results)


if __name__ == "__main__":
    main()

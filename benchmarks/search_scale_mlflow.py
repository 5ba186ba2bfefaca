"""The MLflow side of benchmarks/search_scale.py, run with MLflow's own Python:

    python search_scale_mlflow.py FOLDER N REPEATS   -> one JSON line on stdout

Builds MLflow 3.17's SQLite schema with its SqlAlchemyStore, bulk-inserts the benchmark's runs
into MLflow's tables (the same rows as autolog's side), and times SqlAlchemyStore.search_runs
with the same filter, ordering and max_results.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_scale_data import FILTER, MAX_RESULTS, ORDER_BY, chunks  # noqa: E402


def main() -> None:
    folder, n, repeats = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    from mlflow.entities import ViewType
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db = folder / "mlflow.db"
    store = SqlAlchemyStore(f"sqlite:///{db}", str(folder / "mlflow-artifacts"))
    eid = store.create_experiment("bench")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    for c in chunks(n):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
            "status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, "
            "experiment_id) VALUES (?, ?, 'LOCAL', '', '', 'bench', 'FINISHED', ?, ?, '', "
            "'active', ?, ?)",
            [
                (rid, f"run-{rid[:6]}", s, s + 60_000, f"{folder}/{rid}", int(eid))
                for rid, s in c.runs
            ],
        )
        conn.executemany("INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)", c.params)
        conn.executemany("INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)", c.tags)
        rows = [(rid, k, v, ts, step, 0) for rid, k, v, ts, step in c.metrics]
        sql = "(run_uuid, key, value, timestamp, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)"
        conn.executemany(f"INSERT INTO metrics {sql}", rows)
        conn.executemany(f"INSERT INTO latest_metrics {sql}", rows)
        conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    out = {}
    for name, kw in (
        ("filtered", {"filter_string": FILTER, "order_by": ORDER_BY}),
        ("newest", {"filter_string": ""}),
    ):
        times, cpu = [], []
        for i in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            runs = store.search_runs(
                [eid], run_view_type=ViewType.ACTIVE_ONLY, max_results=MAX_RESULTS, **kw
            )
            slow = name == "filtered" and n >= 100_000
            if i or slow:  # at this size one search takes tens of seconds: no warm-up, once
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            if slow:
                break
        out[name] = {
            "median_ms": statistics.median(times),
            "all_ms": times,
            "median_cpu_ms": statistics.median(cpu),
            "n": len(runs),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

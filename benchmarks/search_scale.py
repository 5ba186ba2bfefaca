"""Search over many runs: autolog on SQLite and PostgreSQL, MLflow's SQL store beside them.

    .venv/bin/python -m benchmarks.search_scale [--sizes 10000,100000,1000000]
        [--mlflow-sizes 10000,100000] [--repeats 5] [--out benchmarks/search_scale.json]

Each size builds a store of N runs (10 params, 5 metrics, 3 tags each:
:mod:`benchmarks.search_scale_data`) by bulk insert (executemany in 20,000-run transactions on
SQLite, COPY on PostgreSQL; the secondary indexes made after the load, as a restore would) and
times ``search_runs`` with a filter on a metric and a param, ordered by a metric, 100 results
(full runs returned), plus the UI's default page (newest 100). Medians of ``--repeats`` after
one warm-up. PostgreSQL is a throwaway cluster started here (tests/services.py) with
``shared_buffers=1GB``; MLflow (3.17, SqlAlchemyStore on SQLite) runs in .mlflow-venv on the
same data; sizes it is not run at are estimated from its growth (said so in the output).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/services.py starts PostgreSQL

from benchmarks.search_scale_data import FILTER, MAX_RESULTS, ORDER_BY, chunks  # noqa: E402

MLFLOW_PYTHON = Path(os.environ.get("MLFLOW_PYTHON", "/work/main/.mlflow-venv/bin/python"))
_RUN_SQL = (
    "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, end_time, user_id, "
    "host, pid, parent_run_id, lifecycle_stage, artifact_uri, run_key) VALUES "
    "(?, ?, ?, 'FINISHED', ?, ?, 'bench', 'bench', 0, NULL, 'active', ?, ?)"
)
_LATEST_COLUMNS = "(run_id, key, value, timestamp, step, next_seq)"


def _run_rows(eid: int, runs: list[tuple], first_key: int) -> list[tuple]:
    """Rows of _RUN_SQL; the runs' integer keys count up from first_key."""
    return [
        (rid, eid, f"run-{rid[:6]}", s, s + 60_000, f"{eid}/{rid}/artifacts", first_key + i)
        for i, (rid, s) in enumerate(runs)
    ]


def _point_rows(runs: list[tuple], metrics: list[tuple], first_key: int) -> list[tuple]:
    """(run_key, key, step, timestamp, seq, value) of the (run_id, key, value, timestamp, step)
    metrics of a chunk: one point per run and key, so each one's seq is 0."""
    keys = {rid: first_key + i for i, (rid, _) in enumerate(runs)}
    return [(keys[rid], k, step, ts, 0, v) for rid, k, v, ts, step in metrics]


def _secondary_indexes(conn: Any) -> list[str]:
    """The DDL of the non-key indexes of runs/params/tags (dropped for the load; the metric
    points' table is its key, filled in its order)."""
    from store.sql.indexes import SEARCH_INDEXES

    return [
        "CREATE UNIQUE INDEX IF NOT EXISTS idx_runs_run_key ON runs (run_key)",
        "CREATE INDEX IF NOT EXISTS idx_runs_experiment_id_start_time ON runs (experiment_id, start_time)",
        *SEARCH_INDEXES,
    ]


_DROP = [
    "idx_runs_run_key",
    "idx_runs_experiment_id_start_time",
    "idx_latest_metrics_key_value",
    "idx_params_key_value",
    "idx_tags_key_value",
]


def load_sqlite(folder: Path, n: int) -> tuple[str, str]:
    import sqlite3

    from store.base import open_store

    uri = f"sqlite:///{folder}/autolog.db"
    store = open_store(uri)
    eid = store.create_experiment("bench")
    store.close()
    conn = sqlite3.connect(folder / "autolog.db", isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    for name in _DROP:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    first = 1
    for c in chunks(n):
        conn.execute("BEGIN")
        conn.executemany(_RUN_SQL, _run_rows(int(eid), c.runs, first))
        conn.executemany("INSERT INTO params VALUES (?, ?, ?)", c.params)
        conn.executemany("INSERT INTO tags VALUES (?, ?, ?)", c.tags)
        conn.executemany(
            "INSERT INTO metrics (run_key, key, step, timestamp, seq, value) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            _point_rows(c.runs, c.metrics, first),
        )
        conn.executemany(
            f"INSERT INTO latest_metrics {_LATEST_COLUMNS} VALUES (?, ?, ?, ?, ?, 1)", c.metrics
        )
        conn.execute("COMMIT")
        first += len(c.runs)
    for sql in _secondary_indexes(conn):
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.close()
    return uri, eid


def load_postgres(pg: Any, n: int) -> tuple[str, str]:
    import psycopg

    from store.base import open_store

    uri = pg.new_database()
    store = open_store(uri + f"?artifact_root={tempfile.gettempdir()}/bench-artifacts")
    eid = store.create_experiment("bench")
    store.close()
    with psycopg.connect(uri, autocommit=True) as conn:
        for name in _DROP:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        first = 1
        for c in chunks(n):
            runs = [
                (rid, e, name, "FINISHED", s, end, "bench", "bench", 0, "active", art, key)
                for rid, e, name, s, end, art, key in _run_rows(int(eid), c.runs, first)
            ]
            points = _point_rows(c.runs, c.metrics, first)
            latest = [(*row, 1) for row in c.metrics]
            first += len(c.runs)
            with conn.transaction(), conn.cursor() as cur:
                for sql, rows in (
                    (
                        "COPY runs (run_id, experiment_id, run_name, status, start_time, "
                        "end_time, user_id, host, pid, lifecycle_stage, artifact_uri, run_key)",
                        runs,
                    ),
                    ("COPY params (run_id, key, value)", c.params),
                    ("COPY tags (run_id, key, value)", c.tags),
                    ("COPY metrics (run_key, key, step, timestamp, seq, value)", points),
                    (f"COPY latest_metrics {_LATEST_COLUMNS}", latest),
                ):
                    # text format written whole: the values hold no tab, newline or backslash
                    with cur.copy(sql + " FROM STDIN") as copy:
                        copy.write("".join("\t".join(map(str, row)) + "\n" for row in rows))
        for sql in _secondary_indexes(conn):
            conn.execute(sql)
        # new runs' keys continue after the loaded ones
        conn.execute("SELECT setval(pg_get_serial_sequence('runs', 'run_key'), %s)", [first])
        conn.execute("VACUUM ANALYZE")
    return uri + f"?artifact_root={tempfile.gettempdir()}/bench-artifacts", eid


def time_searches(uri: str, eid: str, repeats: int) -> dict[str, Any]:
    from store.base import open_store

    store = open_store(uri)
    out: dict[str, Any] = {}
    for name, kw in (
        ("filtered", {"filter_string": FILTER, "order_by": ORDER_BY}),
        ("newest", {}),
    ):
        times, cpu = [], []
        runs: list = []
        for i in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            runs = store.search_runs([eid], max_results=MAX_RESULTS, **kw)
            if i:
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
        out[name] = {
            "median_ms": statistics.median(times),
            "all_ms": times,
            # this process's CPU: all of SQLite's work, only the client's part of PostgreSQL's
            "median_cpu_ms": statistics.median(cpu),
            "n": len(runs),
        }
        if name == "filtered":
            values = [r.data.metrics["m1"] for r in runs]
            assert values == sorted(values, reverse=True) and all(
                r.data.metrics["m0"] > 0.5 and r.data.params["p0"] == "v3" for r in runs
            ), "the search returned runs that do not match"
    store.close()
    return out


def mlflow_side(folder: Path, n: int, repeats: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            str(MLFLOW_PYTHON),
            str(ROOT / "benchmarks" / "search_scale_mlflow.py"),
            str(folder),
            str(n),
            str(repeats),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=ROOT,
    )
    if out.returncode:
        raise RuntimeError(f"MLflow side failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _growth(points: dict[int, float]) -> float | None:
    """The exponent k of time ~ size**k between the two largest measured sizes."""
    sizes = sorted(points)
    if len(sizes) < 2:
        return None
    a, b = sizes[-2], sizes[-1]
    return math.log(points[b] / points[a]) / math.log(b / a)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--mlflow-sizes", default="10000,100000")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "search_scale.json"))
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    mlflow_sizes = [int(s) for s in args.mlflow_sizes.split(",") if s]
    backends = args.backends.split(",")
    result: dict[str, Any] = {
        "load_before": os.getloadavg(),
        "cpus": os.cpu_count(),
        "filter": FILTER,
        "order_by": ORDER_BY,
        "max_results": MAX_RESULTS,
        "repeats": args.repeats,
        "sizes": {},
    }
    pg = None
    if "postgres" in backends:
        import services

        pg = services.start_postgres(["-c shared_buffers=1GB", "-c work_mem=64MB"])
    try:
        for n in sizes:
            row: dict[str, Any] = {}
            work = Path(tempfile.mkdtemp(prefix=f"autolog-search-{n}-"))
            try:
                if "sqlite" in backends:
                    t0 = time.perf_counter()
                    uri, eid = load_sqlite(work, n)
                    row["sqlite"] = {
                        "load_s": time.perf_counter() - t0,
                        **time_searches(uri, eid, args.repeats),
                    }
                    print(n, "sqlite", row["sqlite"]["filtered"]["median_ms"], file=sys.stderr)
                if pg is not None:
                    t0 = time.perf_counter()
                    uri, eid = load_postgres(pg, n)
                    row["postgres"] = {
                        "load_s": time.perf_counter() - t0,
                        **time_searches(uri, eid, args.repeats),
                    }
                    print(n, "postgres", row["postgres"]["filtered"]["median_ms"], file=sys.stderr)
                if n in mlflow_sizes:
                    row["mlflow"] = mlflow_side(work, n, args.repeats)
                    print(n, "mlflow", row["mlflow"]["filtered"]["median_ms"], file=sys.stderr)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            result["sizes"][str(n)] = row
            _save(Path(args.out), result)  # what is done so far
    finally:
        if pg is not None:
            pg.stop()
    measured = {
        int(n): r["mlflow"]["filtered"]["median_ms"]
        for n, r in result["sizes"].items()
        if "mlflow" in r
    }
    k = _growth(measured)
    if k is not None:  # (else the file's earlier estimate stays)
        result["mlflow_growth_exponent"] = k
        top = max(measured)
        for n in sizes:
            if n not in measured:
                result["sizes"][str(n)]["mlflow_estimated_ms"] = measured[top] * (n / top) ** k
    result["load_after"] = os.getloadavg()
    print(table(_save(Path(args.out), result)))


def _save(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write result over the file's earlier one, keeping what this run did not measure: the
    other sizes and backends (a size re-measured on one backend keeps the others' numbers),
    and search_scale_pg's "postgres" key. The whole, as written."""
    whole = json.loads(path.read_text()) if path.exists() else {}
    sizes = whole.get("sizes", {})
    for n, row in result["sizes"].items():
        sizes[n] = {**sizes.get(n, {}), **row}
    whole |= {**result, "sizes": sizes}
    path.write_text(json.dumps(whole, indent=1) + "\n")
    return whole


def _ms(row: dict[str, Any], side: str, what: str = "filtered") -> str:
    if side not in row:
        return "-"
    cell = f"{row[side][what]['median_ms']:.1f} ms"
    cpu = row[side][what].get("median_cpu_ms")
    return f"{cell} ({cpu:.1f} CPU)" if cpu is not None and side != "postgres" else cell


def table(result: dict[str, Any]) -> str:
    lines = [
        "| runs | autolog SQLite | autolog PostgreSQL | MLflow 3.17 (SQLite) "
        "| SQLite newest 100 | PostgreSQL newest 100 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, row in result["sizes"].items():
        ml = _ms(row, "mlflow")
        if "mlflow_estimated_ms" in row:
            ml = f"~{row['mlflow_estimated_ms'] / 1000:.0f} s (estimated)"
        cells = [_ms(row, "sqlite"), _ms(row, "postgres"), ml]
        cells += [_ms(row, "sqlite", "newest"), _ms(row, "postgres", "newest")]
        lines.append(f"| {int(n):,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_section(path: Path = ROOT / "benchmarks" / "search_scale.json") -> str:
    """REPORT.md's section on search over many runs, from the last search_scale run ("" if none)."""
    if not path.exists():
        return ""
    r = json.loads(path.read_text())
    k = r.get("mlflow_growth_exponent")
    growth = "" if k is None else f" MLflow's time grows as runs^{k:.2f} between its two sizes;"
    return (
        "\n## Search over many runs\n\n"
        f"`python -m benchmarks.search_scale` (medians of {r.get('repeats', 5)} after a warm-up; "
        f"filter `{r['filter']}`, order by `{', '.join(r['order_by'])}`, "
        f"{r['max_results']} runs returned with their data). Stores of N runs with 10 params, "
        "5 metrics and 3 tags each, bulk-loaded. Wall time; in parentheses this process's CPU "
        "time, which for SQLite and MLflow is all the work (the machine was shared: load "
        f"average {r['load_before'][0]:.1f} before, {r['load_after'][0]:.1f} after, on "
        f"{r['cpus']} cores).{growth} sizes MLflow was not run at are estimated from it.\n\n"
        + table(r)
        + "\n\nDesign and discussion: [docs/postgres.md](../docs/postgres.md#search-that-scales).\n"
    )


if __name__ == "__main__":
    main()

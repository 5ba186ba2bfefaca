"""Tracking server benchmarks: ingestion through `autolog server` and through `mlflow server`
(same machine, same SQLite backend type, same worker count, same client), and search_runs
through the server against the same store opened locally.

    python -m benchmarks.server_bench                 # 8 clients x 20 runs x 1,000 points, 2,000 runs searched
    python -m benchmarks.server_bench --full          # 8 x 100 x 1,000 (the issue's size), 10,000 runs
    python -m benchmarks.server_bench --no-mlflow     # autolog's server only
    python -m benchmarks.server_bench --fit-only      # fit overhead: local store vs the server
    python -m benchmarks.server_bench --ingest-only   # ingestion only (both servers)
    python -m benchmarks.server_bench --workers 2     # both servers with 2 worker processes

Each client is a process with its own RestStore (autolog's client, httpx; MLflow's server
ignores the idempotency key it adds): it creates its runs, waits for the others, then sends one
log_batch of 1,000 points per run. Throughput counts from the moment all clients start logging
to the last answer, so process start-up and imports are left out on both sides. MLflow's
server is ``.mlflow-venv/bin/mlflow server`` (full mlflow, `make test` installs it); it is
skipped with a note when that is missing. Results print as JSON, with the load average.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

MLFLOW_BIN = Path(__file__).resolve().parent.parent / ".mlflow-venv" / "bin" / "mlflow"


WARMUP = "warmup-"  # the name of each client's untimed run


def _client(url: str, worker: int, runs: int, points: int, start: Any, out: Any) -> None:
    from store.base import open_store

    s = open_store(url)
    exp = s.get_experiment_by_name("bench")
    exp_id = exp.experiment_id if exp else "0"
    ids = [s.create_run(exp_id, run_name=f"w{worker}-{r}").info.run_id for r in range(runs)]
    batch = [("loss", float(i), 1_700_000_000_000 + i, i) for i in range(points)]
    # One batch before the clock starts, into a run of its own (left out of the counts), so
    # the first timed requests do not pay for a cold server (statements not yet prepared).
    s.log_batch(s.create_run(exp_id, run_name=f"{WARMUP}{worker}").info.run_id, metrics=batch)
    # The clients' own pauses are not the server's latency: eight identical clients started
    # together run their full garbage collections at the same moment, and on this 2-core
    # machine that held every request in flight 50-100 ms (seen as all eight clients' slowest
    # requests starting within 50 ms of each other). Nothing made before this point is
    # collected again.
    gc.collect()
    gc.freeze()
    start.wait()
    latencies = []
    for rid in ids:
        t = time.perf_counter()
        s.log_batch(rid, metrics=batch)
        latencies.append(time.perf_counter() - t)
    out.put((time.perf_counter(), latencies))
    s.close()


def cpu_seconds(root: int) -> float | None:
    """CPU time (user + system) used so far by process root and its descendants (Linux /proc),
    a measure that a busy machine disturbs far less than wall time."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])))
    if root not in stats:
        return None
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(stats[pid][1] for pid in tree) / os.sysconf("SC_CLK_TCK")


def rss_mb(root: int) -> float | None:
    """Resident memory (VmRSS) of process root and its children, in MB (Linux /proc)."""
    pids = [root] + [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat")
                     if _ppid(p) == root]  # fmt: skip
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines()
                      if line.startswith("VmRSS:"))  # fmt: skip
    return round(total / 1024, 1) if total else None


def _ppid(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def stored_points(db: Path) -> dict[str, int]:
    """Metric rows in a server's SQLite file, and distinct (run, step) among them, the clients'
    warm-up runs left out: equal to the points sent when nothing was lost or written twice
    (autolog's schema or MLflow's)."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
        run, name = ("run_uuid", "name") if "run_uuid" in cols else ("run_key", "run_name")
        rows, distinct = conn.execute(
            f"SELECT count(*), count(DISTINCT m.{run} || '/' || step) FROM metrics m "
            f"JOIN runs r ON r.{run} = m.{run} WHERE r.{name} NOT LIKE '{WARMUP}%'"
        ).fetchone()
    finally:
        conn.close()
    return {"stored_points": rows, "distinct_run_steps": distinct}


def ingestion(
    url: str,
    clients: int,
    runs: int,
    points: int,
    server_pid: int | None = None,
    db: Path | None = None,
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    q, start = ctx.Queue(), ctx.Barrier(clients + 1)
    procs = [
        ctx.Process(target=_client, args=(url, w, runs, points, start, q)) for w in range(clients)
    ]
    for p in procs:
        p.start()
    start.wait()
    t = time.perf_counter()
    cpu0 = cpu_seconds(server_pid) if server_pid else None
    rss0 = rss_mb(server_pid) if server_pid else None
    done = [q.get() for _ in procs]
    cpu1 = cpu_seconds(server_pid) if server_pid else None
    rss1 = rss_mb(server_pid) if server_pid else None
    for p in procs:
        p.join()
    wall = max(end for end, _ in done) - t
    lat = sorted(x for _, lats in done for x in lats)
    return {
        "clients": clients, "runs": clients * runs, "points": clients * runs * points,
        "points_per_s": round(clients * runs * points / wall),
        "p50_ms": round(1000 * statistics.median(lat), 1),
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
        "wall_s": round(wall, 2),
        # one per client: a worker holds a client's keep-alive connection, so with several
        # workers the clients of the one holding more connections wait longer
        "client_p50_ms": sorted(round(1000 * statistics.median(lats), 1) for _, lats in done),
        "server_cpu_ms_per_batch": (
            round(1000 * (cpu1 - cpu0) / (clients * runs), 2)
            if cpu0 is not None and cpu1 is not None else None
        ),
        "server_rss_mb_before_after": [rss0, rss1],
        **(stored_points(db) if db is not None else {}),
    }  # fmt: skip


def search(
    url: str, local_uri: str, n_runs: int, server_pid: int | None = None, repeat: int = 5
) -> dict[str, Any]:
    """Median wall time of search_runs locally and through the server, and the CPU time each
    used (through the server: this process's plus the server's), the measure a busy machine
    disturbs least."""
    from store.base import open_store

    local = open_store(local_uri)
    local.create_finished_runs(
        0,
        [
            (f"s{i}", {"t": str(i % 7)}, {"p": i}, [("acc", i / n_runs, 0, 0)])
            for i in range(n_runs)
        ],
    )
    remote = open_store(url)

    def best(store: Any, pid: int | None) -> tuple[float, float]:
        times, cpus = [], []
        for _ in range(repeat):
            cpu0, server0 = time.process_time(), cpu_seconds(pid) if pid else 0.0
            t = time.perf_counter()
            got = store.search_runs(
                None, "metrics.acc > 0.5", ["metrics.acc DESC"], max_results=None
            )
            times.append(time.perf_counter() - t)
            server1 = cpu_seconds(pid) if pid else 0.0
            cpus.append(time.process_time() - cpu0 + ((server1 or 0.0) - (server0 or 0.0)))
        assert len(got) == n_runs - n_runs // 2 - 1
        return statistics.median(times), statistics.median(cpus)

    (local_s, local_cpu), (server_s, server_cpu) = best(local, None), best(remote, server_pid)
    out = {
        "runs": n_runs,
        "local_ms": round(1000 * local_s, 1),
        "server_ms": round(1000 * server_s, 1),
        "ratio": round(server_s / local_s, 2),
        "local_cpu_ms": round(1000 * local_cpu, 1),
        "server_cpu_ms": round(1000 * server_cpu, 1),
        "cpu_ratio": round(server_cpu / local_cpu, 2),
    }
    local.close()
    remote.close()
    return out


def _fits() -> dict[str, Any]:
    import numpy as np
    import xgboost as xgb
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4000, 20)), rng.integers(0, 2, 4000)
    dtrain, dvalid = xgb.DMatrix(X[:3000], y[:3000]), xgb.DMatrix(X[3000:], y[3000:])
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "nthread": 1}
    return {
        "sklearn_random_forest": lambda: RandomForestClassifier(50, n_jobs=1).fit(X, y),
        "sklearn_tiny_linear": lambda: LinearRegression().fit(X[:100, :3], y[:100]),
        "xgboost_train_200_rounds": lambda: xgb.train(
            params, dtrain, 200, evals=[(dtrain, "train"), (dvalid, "valid")], verbose_eval=False
        ),
    }


def fit_overhead(url: str, local: Path, repeat: int = 5) -> dict[str, Any]:
    """Median wall time of each fit: no autolog, autolog into a local store, autolog into the
    server at url (full logging, models included). Through the server the fit returns before
    its background writes are sent (store/rest_lane.py); they are waited for after each timed
    fit (``drain_ms``: the time the lane still needed), so fits do not queue behind each other."""
    import autolog

    drains: list[float] = []

    def median_ms(fn: Any) -> float:
        fn()  # warm-up (imports, first run of the experiment)
        flush = getattr(autolog.Client().store, "flush", None)
        times = []
        for _ in range(repeat):
            if flush is not None:
                flush()
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
            if flush is not None:
                t = time.perf_counter()
                flush()
                drains.append(time.perf_counter() - t)
        return round(1000 * statistics.median(times), 1)

    out: dict[str, Any] = {}
    for name, fit in _fits().items():
        autolog.autolog(disable=True)
        raw = median_ms(fit)
        row = {"raw_ms": raw}
        for where, uri in (("local", str(local)), ("server", url)):
            autolog.set_tracking_uri(uri)
            autolog.autolog(log_models=True)
            ms = median_ms(fit)
            row[f"{where}_ms"] = ms
            row[f"{where}_added_ms"] = round(ms - raw, 1)
            row[f"{where}_added_pct"] = round(100 * (ms - raw) / raw, 1)
        row["server_drain_ms"] = round(1000 * statistics.median(drains), 1)
        drains.clear()
        autolog.autolog(disable=True)
        out[name] = row
    return out


class MlflowServer:
    """``mlflow server`` over a fresh SQLite file, one worker, on a free loopback port."""

    def __init__(self, folder: Path, workers: int = 1, binary: Path = MLFLOW_BIN):
        from autolog.server.testing import free_port

        self.folder, self.workers, self.port = folder, workers, free_port()
        self.binary = binary
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MlflowServer:
        import httpx

        self.folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(self.binary), "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.workers),
            "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
            "--artifacts-destination", str(self.folder / "artifacts"),
        ]  # fmt: skip
        log = open(self.folder / "server.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {self.folder / 'server.log'}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"mlflow server did not answer within 180 s ({self.folder}).")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:  # its workers can outlive a SIGTERM
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _ingest_autolog(tmp: Path, workers: int, runs: int, repeats: int) -> dict[str, Any]:
    """autolog's ingestion ``repeats`` times, each on a fresh server and file. One run's p99
    is its 8th-slowest request of 800, and it moved by 40% between two runs a minute apart
    here, so the run with the median p99 is reported whole, beside every run's numbers and
    the medians. (MLflow's, at minutes a run, runs once.)"""
    from autolog.server.testing import LocalServer

    each = []
    for i in range(repeats):
        folder = tmp / f"ingest-{i}"
        with LocalServer(folder, workers=workers) as server:
            assert server.proc is not None
            got = ingestion(server.url, 8, runs, 1000, server.proc.pid, folder / "autolog.db")
        print(json.dumps(got), flush=True)
        if got["stored_points"] != got["points"] or got["distinct_run_steps"] != got["points"]:
            raise RuntimeError(f"points lost or written twice: {got}")
        each.append(got)
    keys = ("points_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_batch")
    by_p99 = sorted(each, key=lambda r: r["p99_ms"])
    return {
        "ingestion_autolog": by_p99[(len(by_p99) - 1) // 2],
        "ingestion_autolog_runs": [{k: r[k] for k in keys} for r in each],
        "ingestion_autolog_medians": {k: statistics.median(r[k] for r in each) for k in keys},
    }


def main() -> None:
    from autolog.server.testing import LocalServer

    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--fit-only", action="store_true", help="only the fit overhead")
    ap.add_argument("--ingest-only", action="store_true", help="only the ingestion")
    ap.add_argument("--repeat", type=int, default=5, help="timed fits per case (median)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes of both servers")
    ap.add_argument(
        "--ingest-repeats", type=int, default=5,
        help="autolog ingestion runs, each on a fresh server and file (the median one is kept)",
    )  # fmt: skip
    args = ap.parse_args()
    runs, searched = (100, 10_000) if args.full else (20, 2_000)
    results: dict[str, Any] = {"load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.ingest_only:
            with LocalServer(Path(tmp) / "fit-server") as server:
                results["fit_overhead"] = fit_overhead(
                    server.url, Path(tmp) / "fit-local", args.repeat
                )
            print(json.dumps(results["fit_overhead"]), flush=True)
        if args.fit_only:
            print(json.dumps(results, indent=2))
            return
        results["workers"] = args.workers
        results.update(_ingest_autolog(Path(tmp), args.workers, runs, args.ingest_repeats))
        if args.no_mlflow or not MLFLOW_BIN.exists() or not shutil.which(str(MLFLOW_BIN)):
            results["ingestion_mlflow"] = f"skipped ({MLFLOW_BIN} missing or --no-mlflow)"
        else:
            with MlflowServer(Path(tmp) / "mlflow", workers=args.workers) as mserver:
                assert mserver.proc is not None
                results["ingestion_mlflow"] = ingestion(
                    mserver.url, 8, runs, 1000, mserver.proc.pid, mserver.folder / "mlflow.db"
                )
            mine, theirs = results["ingestion_autolog_medians"], results["ingestion_mlflow"]
            results["throughput_ratio"] = round(mine["points_per_s"] / theirs["points_per_s"], 1)
        if args.ingest_only:
            results["load_average_after"] = os.getloadavg()
            print(json.dumps(results, indent=2))
            return
        folder = Path(tmp) / "search"
        with LocalServer(folder) as server:
            assert server.proc is not None
            results["search"] = search(server.url, str(folder), searched, server.proc.pid)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

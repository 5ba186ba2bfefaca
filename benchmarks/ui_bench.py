"""UI response times over a big store: `python -m benchmarks.ui_bench [--runs 10000] [--points 1000000]`.

Builds (or reuses, with --store DIR) a store holding N runs (params, latest metrics, tags) and
one run with a P-point metric history, starts the UI in uvicorn on a free port and times real
HTTP requests with httpx:

- the runs page (HTML, 50 runs per page): the first response after the server starts, then
  the median of repeated loads, sorted by start time, by a metric, by a param, filtered, and
  the last page;
- the runs API (JSON);
- the metric-history API on the P-point history: the first (uncached) response and repeats,
  downsampled to 1000 and 4000 points; plus, for scale, reading every point through
  ``store.get_metric_history``.

Budgets (DESIGN / issue 10): runs page first response under 300 ms with 10,000 runs; history
API under 300 ms with 1,000,000 points. Prints a table and writes JSON with --out FILE.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

BUDGET_MS = 300.0


def build_store(folder: Path, n_runs: int, n_points: int) -> tuple[str, str]:
    """Fill a store through its public write API; returns (experiment_id, id of the long run)."""
    from store.sqlite import Store

    store = Store(folder / "autolog.db", folder / "artifacts")
    eid = store.create_experiment("bench")
    rng = random.Random(0)
    t0 = 1_700_000_000_000
    models = ["forest", "boost", "linear", "svm", "knn"]
    started = time.perf_counter()
    for i in range(n_runs):
        rid = uuid.uuid4().hex
        store.create_run(
            eid,
            run_name=f"run-{i:05d}",
            start_time=t0 + i * 1000,
            tags={"mlflow.autologging": rng.choice(["sklearn", "xgboost", "lightgbm"]), "i": i},
            run_id=rid,
        )
        store.log_batch(
            rid,
            metrics=[
                ("accuracy", rng.random(), t0, 0),
                ("f1", rng.random(), t0, 0),
                ("loss", rng.random() * 2, t0, 9),
            ],
            params={
                "model": rng.choice(models),
                "max_depth": rng.randint(2, 12),
                "learning_rate": round(rng.uniform(0.001, 0.3), 4),
                "n_estimators": rng.choice([50, 100, 200, 400]),
            },
        )
        store.set_terminated(rid, "FINISHED", end_time=t0 + i * 1000 + rng.randint(100, 60_000))
    print(f"  {n_runs} runs written in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    long_run = store.create_run(eid, run_name="long-history").info.run_id
    started = time.perf_counter()
    chunk = 100_000
    for start in range(0, n_points, chunk):
        store.log_batch(
            long_run,
            metrics=[
                (
                    "train_loss",
                    math.exp(-s / 200_000) + 0.05 * math.sin(s / 50) + rng.random() * 0.01,
                    t0 + s,
                    s,
                )
                for s in range(start, min(n_points, start + chunk))
            ],
        )
    store.set_terminated(long_run, "FINISHED")
    print(f"  {n_points} points written in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return eid, long_run


class Server:
    """The UI app in uvicorn on 127.0.0.1:<free port>, in a thread."""

    def __init__(self, folder: Path):
        import uvicorn

        from autolog.ui.app import server_app

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        app = server_app(str(folder), host="127.0.0.1", port=self.port)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def timed(client, url: str, params: dict | None = None) -> tuple[float, float, int]:
    """(wall ms, CPU ms of this process: client and server together, response bytes)."""
    cpu = time.process_time()
    start = time.perf_counter()
    r = client.get(url, params=params)
    ms = (time.perf_counter() - start) * 1000
    cpu_ms = (time.process_time() - cpu) * 1000
    if r.status_code != 200:
        raise SystemExit(f"{url} {params}: HTTP {r.status_code}: {r.text[:300]}")
    return ms, cpu_ms, len(r.content)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--store", help="store folder to build once and reuse")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)

    import httpx

    folder = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="autolog-ui-bench-"))
    meta = folder / "bench.json"
    if meta.exists():
        eid, long_run = json.loads(meta.read_text())
        print(f"reusing {folder}", file=sys.stderr)
    else:
        print(f"building {folder}", file=sys.stderr)
        eid, long_run = build_store(folder, args.runs, args.points)
        meta.write_text(json.dumps([eid, long_run]))

    rows: list[dict] = []

    def record(name: str, samples: list[tuple[float, float, int]], budget: bool = True) -> None:
        """samples[0] is the first request of its kind; the rest are repeats."""
        rest = samples[1:] or samples
        rows.append(
            {
                "case": name,
                "first_ms": round(samples[0][0], 1),
                "median_ms": round(statistics.median(w for w, _, _ in rest), 1),
                "max_ms": round(max(w for w, _, _ in rest), 1),
                "first_cpu_ms": round(samples[0][1], 1),
                "median_cpu_ms": round(statistics.median(c for _, c, _ in rest), 1),
                "bytes": samples[0][2],
                "budget_ms": BUDGET_MS if budget else None,
            }
        )

    page = f"/experiments/{eid}"
    history = f"/api/runs/{long_run}/metric-history"
    n = args.repeat + 1
    with Server(folder) as base, httpx.Client(base_url=base, timeout=60) as client:
        # the first request after the server started, then repeats
        record(
            f"runs page, {args.runs} runs, newest first", [timed(client, page) for _ in range(n)]
        )
        for label, params in [
            ("sorted by metric", {"sort": "metrics.accuracy", "dir": "desc"}),
            ("sorted by param", {"sort": "params.max_depth", "dir": "asc"}),
            ("filtered", {"filter": "metrics.accuracy > 0.5 and params.model = 'forest'"}),
            ("last page", {"page": str(math.ceil((args.runs + 1) / 50))}),
        ]:
            record(f"runs page, {label}", [timed(client, page, params) for _ in range(n)])
        api = {"experiment_id": eid, "sort": "metrics.f1"}
        record(
            "runs API, 50 runs sorted by metric",
            [timed(client, "/api/runs", api) for _ in range(n)],
        )
        for max_points in (1000, 4000):
            # the first request reads every point (uncached), repeats are served from the cache
            params = {"key": "train_loss", "max_points": str(max_points)}
            record(
                f"history API, {args.points} points -> {max_points}",
                [timed(client, history, params) for _ in range(n)],
            )
        # never cached: a different step window per request, every one reads ~all points
        samples = []
        for i in range(n):
            window = {
                "key": "train_loss",
                "max_points": "1000",
                "max_step": str(args.points - 1 - i),
            }
            samples.append(timed(client, history, window))
        record(f"history API, {args.points} points -> 1000, never cached", samples)

    from store.sqlite import Store

    store = Store(folder / "autolog.db", folder / "artifacts")
    cpu, start = time.process_time(), time.perf_counter()
    count = len(store.get_metric_history(long_run, "train_loss"))
    wall, cpu_ms = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
    record(f"for scale: store.get_metric_history, all {count} points", [(wall, cpu_ms, 0)], False)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nUI benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} (wall ms grow with load; CPU ms do not)"
    )
    print(
        f"{'case':<56} {'first':>7} {'median':>7} {'max':>7} {'cpu 1st':>8} {'cpu med':>8}  budget"
    )
    for r in rows:
        verdict = ""
        if r["budget_ms"]:
            ok = r["first_ms"] < r["budget_ms"] and r["median_ms"] < r["budget_ms"]
            verdict = "ok" if ok else "OVER"
        print(
            f"{r['case']:<56} {r['first_ms']:>7.1f} {r['median_ms']:>7.1f} {r['max_ms']:>7.1f} "
            f"{r['first_cpu_ms']:>8.1f} {r['median_cpu_ms']:>8.1f}  {verdict}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

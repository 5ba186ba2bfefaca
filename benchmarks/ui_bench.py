"""UI response times over a big store: `python -m benchmarks.ui_bench [--runs 100000] [--points 1000000]`.

Builds (or reuses, with --store DIR) a store holding N runs (params, latest metrics, tags; one
run in 50 a child of one of N/2500 parameter searches, one in 100 deleted) and one run with a
P-point metric history, starts the UI in uvicorn on a free port and times real HTTP requests
with httpx, each also timed inside the server (from the request reaching the app to the last
byte of its response: the "server ms" the budgets are about):

- the runs page (HTML, default columns, 50 top-level runs per page with their children): the
  first response after the server starts, then the median of repeated loads, sorted by start
  time, by a metric, by a param, filtered (two filters), a page picked with jump-to-page, the
  last page, the deleted-runs view and the chart view;
- the count API a filtered page's browser asks for after the page (not budgeted), for both
  filters; the runs API (JSON);
- the metric-history API on the P-point history: the first (uncached) response and repeats,
  downsampled to 1000 and 4000 points; plus, for scale, reading every point through
  ``store.get_metric_history``.

Budgets (issue 27): with 100,000 runs, the runs page under 300 ms server time and a filtered
search under 500 ms; the history API under 300 ms with 1,000,000 points (issue 10). Prints a
table and writes JSON with --out FILE.
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
from pathlib import Path

BUDGET_MS = 300.0
FILTER_BUDGET_MS = 500.0
CHUNK = 5000
CHILDREN_PER_SEARCH = 50


def _spec(rng: random.Random, i: int) -> tuple[str, dict, dict, list[tuple]]:
    """One run as create_finished_runs takes it: (name, tags, params, metrics)."""
    t0 = 1_700_000_000_000
    tags = {"mlflow.autologging": rng.choice(["sklearn", "xgboost", "lightgbm"]), "i": i}
    params = {
        "model": rng.choice(["forest", "boost", "linear", "svm", "knn"]),
        "max_depth": rng.randint(2, 12),
        "learning_rate": round(rng.uniform(0.001, 0.3), 4),
        "n_estimators": rng.choice([50, 100, 200, 400]),
    }
    metrics = [
        ("accuracy", rng.random(), t0, 0),
        ("f1", rng.random(), t0, 0),
        ("loss", rng.random() * 2, t0, 9),
    ]
    return f"run-{i:06d}", tags, params, metrics


def build_store(folder: Path, n_runs: int, n_points: int) -> tuple[str, str]:
    """Fill a store through its public write API; returns (experiment_id, id of the long run).

    Runs are written in batches (create_finished_runs, one transaction per 5,000 runs), as a
    parameter search records its candidates; a run at a time would take an hour at 100,000."""
    from store.sqlite import Store

    store = Store(folder / "autolog.db", folder / "artifacts")
    eid = store.create_experiment("bench")
    rng = random.Random(0)
    started = time.perf_counter()
    n_children = n_runs // CHILDREN_PER_SEARCH
    n_searches = max(1, n_children // CHILDREN_PER_SEARCH)
    top = n_runs - n_children - n_searches
    for start in range(0, top, CHUNK):
        store.create_finished_runs(
            eid, [_spec(rng, i) for i in range(start, min(top, start + CHUNK))]
        )
    searches = store.create_finished_runs(eid, [_spec(rng, top + i) for i in range(n_searches)])
    i = top + n_searches
    for k, parent in enumerate(searches):
        size = n_children // n_searches + (k < n_children % n_searches)
        store.create_finished_runs(
            eid, [_spec(rng, i + j) for j in range(size)], parent_run_id=parent
        )
        i += size
    ids = [r.info.run_id for r in store.search_runs([eid], "", [], n_runs // 100, 0)]
    for rid in ids:
        store.delete_run(rid)
    print(f"  {n_runs} runs written in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    long_run = store.create_run(eid, run_name="long-history").info.run_id
    t0 = 1_700_000_000_000
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


class ServerTimer:
    """ASGI wrapper: how long the app took for the last request, to its last body byte, in
    wall time and in CPU time of the process (the client meanwhile waits for the response,
    so that CPU time is the server's; it does not grow with the machine's load)."""

    def __init__(self, app):
        self.app = app
        self.last_ms = float("nan")
        self.last_cpu_ms = float("nan")

    async def __call__(self, scope, receive, send):
        start, cpu = time.perf_counter(), time.process_time()

        async def timed_send(message):
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_ms = (time.perf_counter() - start) * 1000
                self.last_cpu_ms = (time.process_time() - cpu) * 1000

        await self.app(scope, receive, timed_send)


class Server:
    """The UI app in uvicorn on 127.0.0.1:<free port>, in a thread."""

    def __init__(self, folder: Path):
        import uvicorn

        from autolog.ui.serve import server_app

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.timer = ServerTimer(server_app(str(folder), host="127.0.0.1", port=self.port))
        config = uvicorn.Config(self.timer, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def timed(client, server: Server, url: str, params: dict | None = None) -> tuple:
    """(wall ms, CPU ms of this process: client and server together, response bytes, server
    ms, server CPU ms)."""
    cpu = time.process_time()
    start = time.perf_counter()
    r = client.get(url, params=params)
    ms = (time.perf_counter() - start) * 1000
    cpu_ms = (time.process_time() - cpu) * 1000
    if r.status_code != 200:
        raise SystemExit(f"{url} {params}: HTTP {r.status_code}: {r.text[:300]}")
    return ms, cpu_ms, len(r.content), server.timer.last_ms, server.timer.last_cpu_ms


def run_cases(server: Server, client, eid: str, long_run: str, args, record) -> None:
    page = f"/experiments/{eid}"
    n = args.repeat + 1

    def cases(url: str, params: dict | None = None) -> list[tuple]:
        return [timed(client, server, url, params) for _ in range(n)]

    # the first request after the server started, then repeats
    record(f"runs page, {args.runs} runs, newest first", cases(page))
    filters = {
        "filtered: metric and param": "metrics.accuracy > 0.5 and params.model = 'forest'",
        "filtered: param LIKE, tag": "params.model LIKE 'bo%' and tags.i = '777'",
    }
    for label, params in [
        ("sorted by metric", {"sort": "metrics.accuracy", "dir": "desc"}),
        ("sorted by param", {"sort": "params.max_depth", "dir": "asc"}),
        *((label, {"filter": f}) for label, f in filters.items()),
        ("jump to page 1000", {"page": "1000"}),
        ("last page", {"page": str(math.ceil(args.runs / 50))}),
        ("deleted runs view", {"deleted": "1"}),
        ("chart view", {"view": "chart"}),
    ]:
        budget = FILTER_BUDGET_MS if "filter" in params else BUDGET_MS
        record(f"runs page, {label}", cases(page, params), budget)
    # what a filtered page leaves to the browser: the count of every match
    for label, f in filters.items():
        flt = {"experiment_id": eid, "filter": f}
        record(f"count API, {label}", cases("/api/runs/count", flt), None)
    api = {"experiment_id": eid, "sort": "metrics.f1"}
    record("runs API, 50 runs sorted by metric", cases("/api/runs", api))
    history = f"/api/runs/{long_run}/metric-history"
    for max_points in (1000, 4000):
        # the first request reads every point (uncached), repeats are served from the cache
        params = {"key": "train_loss", "max_points": str(max_points)}
        record(f"history API, {args.points} points -> {max_points}", cases(history, params))
    # never cached: a different step window per request, every one reads ~all points
    samples = []
    for i in range(n):
        window = {"key": "train_loss", "max_points": "1000", "max_step": str(args.points - 1 - i)}
        samples.append(timed(client, server, history, window))
    record(f"history API, {args.points} points -> 1000, never cached", samples)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
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

    def record(name: str, samples: list[tuple], budget: float | None = BUDGET_MS) -> None:
        """samples[0] is the first request of its kind; the rest are repeats."""
        rest = samples[1:] or samples
        rows.append(
            {
                "case": name,
                "first_ms": round(samples[0][0], 1),
                "median_ms": round(statistics.median(s[0] for s in rest), 1),
                "max_ms": round(max(s[0] for s in rest), 1),
                "first_server_ms": round(samples[0][3], 1),
                "median_server_ms": round(statistics.median(s[3] for s in rest), 1),
                "median_cpu_ms": round(statistics.median(s[1] for s in rest), 1),
                "median_server_cpu_ms": round(statistics.median(s[4] for s in rest), 1),
                "bytes": samples[0][2],
                "budget_ms": budget,
            }
        )

    with Server(folder) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        run_cases(server, client, eid, long_run, args, record)

    from store.sqlite import Store

    store = Store(folder / "autolog.db", folder / "artifacts")
    cpu, start = time.process_time(), time.perf_counter()
    count = len(store.get_metric_history(long_run, "train_loss"))
    wall, cpu_ms = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
    scale = f"for scale: store.get_metric_history, all {count} points"
    record(scale, [(wall, cpu_ms, 0, wall, cpu_ms)], None)
    report(rows)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


def report(rows: list[dict]) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nUI benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} (wall ms grow with load; CPU ms do not)"
    )
    print(
        f"{'case':<52} {'srv 1st':>7} {'srv med':>7} {'srv cpu':>7} {'wall med':>8} {'max':>7}"
        "  budget (server ms)"
    )
    for r in rows:
        verdict = ""
        if r["budget_ms"]:
            ok = max(r["first_server_ms"], r["median_server_ms"]) < r["budget_ms"]
            verdict = f"{'ok' if ok else 'OVER'} < {r['budget_ms']:.0f}"
        print(
            f"{r['case']:<52} {r['first_server_ms']:>7.1f} {r['median_server_ms']:>7.1f} "
            f"{r['median_server_cpu_ms']:>7.1f} {r['median_ms']:>8.1f} {r['max_ms']:>7.1f}  {verdict}"
        )


if __name__ == "__main__":
    sys.exit(main())

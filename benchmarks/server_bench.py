"""Tracking server benchmarks: ingestion through `autolog server` (points/s, request latency)
and search_runs through the server against the same store opened locally.

    python -m benchmarks.server_bench                 # 8 clients x 20 runs x 1,000 points, 2,000 runs searched
    python -m benchmarks.server_bench --full          # 8 x 100 x 1,000 (the issue's size), 10,000 runs

Each client is a process with its own RestStore; one log_batch per run carries 1,000 points.
The server is a subprocess on 127.0.0.1 over a fresh SQLite store (one worker: SQLite has one
writer at a time, more workers only add lock waits). Results print as JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _client(url: str, worker: int, runs: int, points: int, out: Any) -> None:
    from store.base import open_store

    s = open_store(url)
    latencies = []
    for r in range(runs):
        rid = s.create_run(0, run_name=f"w{worker}-{r}").info.run_id
        batch = [("loss", float(i), 1_700_000_000_000 + i, i) for i in range(points)]
        t = time.perf_counter()
        s.log_batch(rid, metrics=batch)
        latencies.append(time.perf_counter() - t)
    s.close()
    out.put(latencies)


def ingestion(url: str, clients: int, runs: int, points: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(url, w, runs, points, q)) for w in range(clients)]
    t = time.perf_counter()
    for p in procs:
        p.start()
    lat = sorted(x for _ in procs for x in q.get())
    for p in procs:
        p.join()
    wall = time.perf_counter() - t
    return {
        "clients": clients, "runs": clients * runs, "points": clients * runs * points,
        "points_per_s": round(clients * runs * points / wall),
        "p50_ms": round(1000 * statistics.median(lat), 1),
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
        "wall_s": round(wall, 2),
    }  # fmt: skip


def search(url: str, local_uri: str, n_runs: int, repeat: int = 5) -> dict[str, Any]:
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

    def best(store: Any) -> float:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            got = store.search_runs(
                None, "metrics.acc > 0.5", ["metrics.acc DESC"], max_results=None
            )
            times.append(time.perf_counter() - t)
        assert len(got) == n_runs - n_runs // 2 - 1
        return statistics.median(times)

    out = {
        "runs": n_runs,
        "local_ms": round(1000 * best(local), 1),
        "server_ms": round(1000 * best(remote), 1),
    }
    out["ratio"] = round(out["server_ms"] / out["local_ms"], 2)
    local.close()
    remote.close()
    return out


def main() -> None:
    from autolog.server.testing import LocalServer

    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    runs, searched = (100, 10_000) if args.full else (20, 2_000)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        with LocalServer(Path(tmp) / "ingest") as server:
            results["ingestion"] = ingestion(server.url, 8, runs, 1000)
        folder = Path(tmp) / "search"
        with LocalServer(folder) as server:
            results["search"] = search(server.url, str(folder), searched)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Load test: `autolog server` and `mlflow server` on the same PostgreSQL and SeaweedFS S3.

    .venv/bin/python -m benchmarks.server_load_pg [--clients 4,8,16] [--repeats 3]
        [--seconds 5] [--no-mlflow | --only mlflow] [--out benchmarks/server_load_pg.json]

A throwaway PostgreSQL 15 cluster and a SeaweedFS ``weed server -s3`` start here
(tests/services.py), on 127.0.0.1 only. Each server gets a database and an S3 prefix of its
own, 2 worker processes, and its artifacts proxied to S3 (``--artifacts-destination s3://``).
MLflow's is ``.mlflow-venv/bin/mlflow server`` (3.17, SQLAlchemy + psycopg2, boto3).

N client processes (N = 4, 8, 16) share one client (stdlib ``http.client``, keep-alive, MLflow's
REST API, so both servers get exactly the same requests). Each logs runs for ``--seconds``, a run being
four requests: ``runs/create``; one ``runs/log-batch`` of 10 params and 5 metrics x 20 steps
(100 points); a 2 KB artifact PUT through the artifact proxy; ``runs/update`` to FINISHED.
Throughput counts from the moment every client is ready to the last answer (process start-up
left out). Each (server, N) is repeated ``--repeats`` times into a fresh experiment; the
medians are reported, with p50/p99 over every request of the repetition, and the CPU time
the server's processes and PostgreSQL's used per run (what a loaded machine disturbs least).

After each load the rows are counted in the database (runs, params, metric points of the
experiment) and the artifacts in the bucket: anything short of what the clients sent, or any
request that did not answer 200, fails the script loudly.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/services.py starts PostgreSQL and SeaweedFS

MLFLOW_BIN = Path(os.environ.get("MLFLOW_BIN", "/work/main/.mlflow-venv/bin/mlflow"))
PARAMS, METRIC_KEYS, STEPS, ARTIFACT_BYTES = 10, 5, 20, 2048
POINTS_PER_RUN = METRIC_KEYS * STEPS


class LoadError(RuntimeError):
    """A load lost rows or a request failed: the numbers are not valid."""


# -- the client ---------------------------------------------------------------------------------


def _call(conn: http.client.HTTPConnection, method: str, path: str, body: bytes) -> bytes:
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise LoadError(f"{method} {path} -> {resp.status}: {data[:300]!r}")
    return data


def _one_run(conn: http.client.HTTPConnection, exp: str, worker: int, i: int) -> list[float]:
    """One run's four requests; their latencies in seconds."""
    api = "/api/2.0/mlflow/"
    lat = []
    t = time.perf_counter()
    body = json.dumps({"experiment_id": exp, "run_name": f"w{worker}-{i}", "start_time": 1})
    run = json.loads(_call(conn, "POST", api + "runs/create", body.encode()))["run"]["info"]
    rid = run.get("run_id") or run["run_uuid"]
    lat.append(time.perf_counter() - t)
    now = int(time.time() * 1000)
    batch = {
        "run_id": rid,
        "params": [{"key": f"p{k}", "value": f"v{k}-{i}"} for k in range(PARAMS)],
        "metrics": [
            {"key": f"m{k}", "value": s / (k + 1), "timestamp": now + s, "step": s}
            for k in range(METRIC_KEYS)
            for s in range(STEPS)
        ],
    }
    t = time.perf_counter()
    _call(conn, "POST", api + "runs/log-batch", json.dumps(batch).encode())
    lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    path = f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts/model/weights.bin"
    conn.request("PUT", path, body=os.urandom(ARTIFACT_BYTES))
    resp = conn.getresponse()
    if resp.status != 200:
        raise LoadError(f"PUT {path} -> {resp.status}: {resp.read()[:300]!r}")
    resp.read()
    lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    body = json.dumps({"run_id": rid, "status": "FINISHED", "end_time": now + 100})
    _call(conn, "POST", api + "runs/update", body.encode())
    lat.append(time.perf_counter() - t)
    return lat


def _client(port: int, exp: str, worker: int, seconds: float, start: Any, out: Any) -> None:
    """Log runs until ``seconds`` have passed (the run under way is finished)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    lat: list[float] = []
    errors = runs = 0
    cpu = 0.0
    try:
        start.wait()
        cpu = time.process_time()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            try:
                lat += _one_run(conn, exp, worker, runs)
                runs += 1
            except (LoadError, OSError, http.client.HTTPException, KeyError) as exc:
                errors += 1
                print(f"client {worker}: {exc!r}", file=sys.stderr)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    finally:
        out.put((time.perf_counter(), lat, errors, runs, time.process_time() - cpu))
        conn.close()


def load(
    port: int, exp: str, clients: int, seconds: float, pids: dict[str, int] | None = None
) -> dict[str, Any]:
    """clients processes logging runs for ``seconds`` against the server on port; with pids
    (name -> process), the CPU time each process tree used per run."""
    from benchmarks.server_bench import cpu_seconds

    ctx = multiprocessing.get_context("fork")
    q, start = ctx.Queue(), ctx.Barrier(clients + 1)
    procs = [
        ctx.Process(target=_client, args=(port, exp, w, seconds, start, q)) for w in range(clients)
    ]
    for p in procs:
        p.start()
    start.wait()
    t = time.perf_counter()
    cpu0 = {name: cpu_seconds(pid) or 0.0 for name, pid in (pids or {}).items()}
    busy0 = _machine_busy_s()
    done = [q.get(timeout=600) for _ in procs]
    busy1 = _machine_busy_s()
    cpu1 = {name: cpu_seconds(pid) or 0.0 for name, pid in (pids or {}).items()}
    for p in procs:
        p.join()
    wall = max(d[0] for d in done) - t
    lat = sorted(x for d in done for x in d[1])
    by_kind = {
        kind: round(1000 * statistics.median(x for d in done for x in d[1][i::4]), 2)
        for i, kind in enumerate(("create", "log_batch", "artifact", "update"))
    }
    n_runs = sum(d[3] for d in done)
    per_run = 1000 / max(1, n_runs)
    return {
        "runs": n_runs,
        "wall_s": round(wall, 3),
        "runs_per_s": round(n_runs / wall, 1),
        "points_per_s": round(n_runs * POINTS_PER_RUN / wall),
        "requests_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(1000 * statistics.median(lat), 2) if lat else None,
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2) if lat else None,
        "errors": sum(d[2] for d in done),
        "p50_ms_by_request": by_kind,
        # what else the machine spent per run: the clients themselves, and every CPU's busy
        # time (the servers, PostgreSQL, SeaweedFS, the clients, anything else running)
        "clients_cpu_ms_per_run": round(sum(d[4] for d in done) * per_run, 2),
        "machine_cpu_ms_per_run": round((busy1 - busy0) * per_run, 2),
    } | {  # None where a process of the tree ended meanwhile (its CPU time left with it)
        f"{name}_cpu_ms_per_run": (
            round(1000 * (cpu1[name] - cpu0[name]) / max(1, n_runs), 2)
            if cpu1[name] >= cpu0[name] else None
        )
        for name in cpu0
    }  # fmt: skip


def _machine_busy_s() -> float:
    """Seconds every CPU of the machine has spent busy since boot (/proc/stat: all but idle
    and iowait)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


# -- servers ------------------------------------------------------------------------------------


class Server:
    """A tracking server subprocess (its own process group) on a free loopback port."""

    def __init__(self, name: str, cmd: list[str], port: int, env: dict[str, str], log: Path):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.log = log
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} server exited: {log.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} server did not answer: {log.read_text()[-3000:]}")
            time.sleep(0.2)

    def create_experiment(self, name: str) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        body = json.dumps({"name": name}).encode()
        out = json.loads(_call(conn, "POST", "/api/2.0/mlflow/experiments/create", body))
        conn.close()
        return str(out["experiment_id"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_server(name: str, db_uri: str, s3: Any, prefix: str, tmp: Path) -> Server:
    from services import free_ports

    port = free_ports(1)[0]
    env = {**s3.env(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}
    common = ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    common += ["--backend-store-uri", db_uri, "--artifacts-destination", prefix]
    if name == "autolog":
        env["PYTHONPATH"] = str(ROOT)
        cmd = [sys.executable, "-m", "autolog", "server", *common]
    else:
        common[common.index(db_uri)] = db_uri.replace("postgresql://", "postgresql+psycopg2://")
        # uvicorn kills a worker that misses its 5 s health check, which MLflow's busy workers
        # do on this loaded machine: give them time rather than lose requests
        cmd = [str(MLFLOW_BIN), "server", *common]
        cmd += ["--uvicorn-opts", "--timeout-worker-healthcheck 120"]
    return Server(name, cmd, port, env, tmp / f"{name}.log")


# -- verification -------------------------------------------------------------------------------


def verify(name: str, db_uri: str, exp: str, s3: Any, prefix: str, runs: int) -> dict[str, int]:
    """Count what the load left in the database and the bucket; LoadError unless all is there."""
    import psycopg

    run_col = "run_id" if name == "autolog" else "run_uuid"
    point_col = "run_key" if name == "autolog" else "run_uuid"  # autolog's points: the run's key
    with psycopg.connect(db_uri) as conn:

        def count(sql: str) -> int:
            return int(conn.execute(sql, [int(exp)]).fetchall()[0][0])

        join = f"JOIN runs r ON r.{run_col} = x.{run_col} WHERE r.experiment_id = %s"
        points = f"JOIN runs r ON r.{point_col} = x.{point_col} WHERE r.experiment_id = %s"
        got = {
            "runs": count(
                "SELECT count(*) FROM runs WHERE experiment_id = %s AND status = 'FINISHED'"
            ),
            "params": count(f"SELECT count(*) FROM params x {join}"),
            "points": count(f"SELECT count(*) FROM metrics x {points}"),
        }
    bucket, _, key_prefix = prefix.removeprefix("s3://").partition("/")
    pages = s3.client().get_paginator("list_objects_v2")
    got["artifacts"] = sum(
        1
        for page in pages.paginate(Bucket=bucket, Prefix=f"{key_prefix}/{exp}/")
        for obj in page.get("Contents", [])
        if obj["Key"].endswith("weights.bin")
    )
    want = {"runs": runs, "params": runs * PARAMS, "points": runs * POINTS_PER_RUN}
    want["artifacts"] = runs
    if got != want:
        raise LoadError(f"{name}, experiment {exp}: stored {got}, clients sent {want}")
    return got


# -- the whole test -----------------------------------------------------------------------------


def run_side(
    name: str, pg: Any, s3: Any, tmp: Path, clients: list[int], repeats: int, seconds: float
) -> dict[str, Any]:
    db_uri, prefix = pg.new_database(), s3.new_prefix()
    server = start_server(name, db_uri, s3, prefix, tmp)
    out: dict[str, Any] = {}
    try:
        postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
        pids = {"server": server.proc.pid, "postgres": postmaster, "s3": s3.process.pid}
        warm = server.create_experiment("warm-up")
        # every client logs runs first: both workers connect, import what an upload needs
        # (boto3) and fill their caches before the timed loads. Until two 2 s loads in a row
        # agree within 10% (at most 8): on a slow moment MLflow's workers were still cold
        # (3x their later CPU per run) after one, and its first timed load counted that.
        before = 0.0
        for _ in range(8):
            now = load(server.port, warm, 8, 2.0)["runs_per_s"]
            if before and abs(now - before) <= 0.1 * max(now, before):
                break
            before = now
        for n in clients:
            reps = []
            for r in range(repeats):
                exp = server.create_experiment(f"load-{n}-{r}")
                result = load(server.port, exp, n, seconds, pids)
                if result["errors"]:
                    raise LoadError(f"{name}, {n} clients: {result['errors']} failed runs")
                result["verified"] = verify(name, db_uri, exp, s3, prefix, result["runs"])
                result["load_average"] = os.getloadavg()
                reps.append(result)
                print(name, n, r, json.dumps(result), file=sys.stderr, flush=True)
            out[str(n)] = {
                key: statistics.median(x[key] for x in reps if x.get(key) is not None)
                if any(x.get(key) is not None for x in reps)
                else None
                for key in (
                    "runs_per_s",
                    "points_per_s",
                    "requests_per_s",
                    "p50_ms",
                    "p99_ms",
                    "server_cpu_ms_per_run",
                    "postgres_cpu_ms_per_run",
                    "s3_cpu_ms_per_run",
                    "clients_cpu_ms_per_run",
                    "machine_cpu_ms_per_run",
                )  # fmt: skip
            } | {"repetitions": reps}
    finally:
        server.stop()
    return out


def main(argv: list[str] | None = None) -> None:
    import services

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", default="4,8,16")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0, help="length of one load")
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--only", choices=["autolog", "mlflow"], default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "server_load_pg.json"))
    args = p.parse_args(argv)
    clients = [int(x) for x in args.clients.split(",")]
    sides = ["autolog"] if args.no_mlflow else ["autolog", "mlflow"]
    if args.only:
        sides = [args.only]
    t0 = time.monotonic()
    result: dict[str, Any] = {
        "load_before": os.getloadavg(), "cpus": os.cpu_count(), "workers": 2,
        "seconds_per_load": args.seconds, "points_per_run": POINTS_PER_RUN, "params_per_run": PARAMS,
        "artifact_bytes": ARTIFACT_BYTES, "repeats": args.repeats,
    }  # fmt: skip
    pg = services.start_postgres(["-c shared_buffers=256MB"])
    s3 = services.start_seaweedfs()
    try:
        with tempfile.TemporaryDirectory(prefix="autolog-load-") as tmp:
            for side in sides:
                try:
                    result[side] = run_side(
                        side, pg, s3, Path(tmp), clients, args.repeats, args.seconds
                    )
                except Exception:
                    print(f"{side} server's log:", (Path(tmp) / f"{side}.log").read_text()[-4000:])
                    raise
    finally:
        s3.stop()
        pg.stop()
    if "autolog" in result and "mlflow" in result:
        result["ratio"] = {
            n: {
                k: round(result["autolog"][n][k] / result["mlflow"][n][k], 2)
                for k in ("runs_per_s", "points_per_s")
            }
            for n in result["autolog"]
        }
    result["load_after"] = os.getloadavg()
    result["seconds"] = round(time.monotonic() - t0, 1)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in sides}, indent=1))
    for side in sides:
        for n, row in result[side].items():
            short = {k: v for k, v in row.items() if k != "repetitions"}
            print(side, n, json.dumps(short))


def chart(result: dict[str, Any], path: Path) -> None:
    """Runs/s of both servers by client count (log scale), the ratio over autolog's bars."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ns = list(result["autolog"])
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    x = range(len(ns))
    ours = [result["autolog"][n]["runs_per_s"] for n in ns]
    theirs = [result["mlflow"][n]["runs_per_s"] for n in ns]
    ax.bar([i - 0.2 for i in x], ours, 0.4, color="#2a7ab9", label="autolog server")
    ax.bar([i + 0.2 for i in x], theirs, 0.4, color="#d98b2b", label="mlflow server 3.17")
    for i, n in enumerate(ns):
        ax.annotate(f"{result['ratio'][n]['runs_per_s']}x", (i - 0.2, ours[i]), ha="center",
                    va="bottom", fontsize=9)  # fmt: skip
    from matplotlib.ticker import ScalarFormatter

    ax.set_yscale("log")
    ax.set_ylim(min(theirs) / 3, max(ours) * 2.5)
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_xticks(list(x), [f"{n} clients" for n in ns])
    ax.set_ylabel("runs/s (log scale)")
    ax.set_title("Runs logged (100 points, 10 params, 1 artifact each) on PostgreSQL + S3")
    ax.legend(loc="upper right", fontsize=8, ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report_section(path: Path = ROOT / "benchmarks" / "server_load_pg.json") -> str:
    """REPORT.md's section on the load test, from its last run ("" if none); draws its chart
    beside the JSON."""
    if not path.exists():
        return ""
    r = json.loads(path.read_text())
    if "ratio" not in r:
        return ""
    chart(r, path.with_suffix(".png"))
    rows = []
    for n, ours in r["autolog"].items():
        theirs, ratio = r["mlflow"][n], r["ratio"][n]["runs_per_s"]
        errors = sum(x["errors"] for side in (ours, theirs) for x in side["repetitions"])
        rows.append(
            f"| {n} | {ours['runs_per_s']} ({ours['points_per_s']:,} points/s) "
            f"| {theirs['runs_per_s']} ({theirs['points_per_s']:,}) | {ratio}x "
            f"| {ours['p50_ms']:.0f} / {ours['p99_ms']:.0f} ms "
            f"| {theirs['p50_ms']:.0f} / {theirs['p99_ms']:.0f} ms "
            f"| {ours['server_cpu_ms_per_run']} / {theirs['server_cpu_ms_per_run']} ms "
            f"| {ours.get('machine_cpu_ms_per_run', '-')} / "
            f"{theirs.get('machine_cpu_ms_per_run', '-')} ms | {errors} |"
        )
    return (
        "\n## Load test: a team server on PostgreSQL + S3\n\n"
        f"`python -m benchmarks.server_load_pg` ({r['repeats']} loads of "
        f"{r['seconds_per_load']} s per client count, medians; every row and artifact counted in "
        "PostgreSQL and the bucket afterwards). `autolog server` and `mlflow server` on one "
        f"throwaway PostgreSQL and SeaweedFS, {r['workers']} workers each; the machine was "
        f"shared (load average {r['load_before'][0]:.1f} before, {r['load_after'][0]:.1f} after, "
        f"on {r['cpus']} cores).\n\n"
        "| clients | autolog runs/s | MLflow runs/s | ratio | autolog p50 / p99 | MLflow p50 / p99 "
        "| server CPU per run (autolog / MLflow) | whole machine's CPU per run | errors |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        "![runs/s by client count](server_load_pg.png)\n\n"
        "Discussion: [docs/postgres.md](../docs/postgres.md#load-test-a-team-server-under-many-writers).\n"
    )


if __name__ == "__main__":
    main()

"""Per-fit budgets through a tracking server: `python -m benchmarks --server` (issue 19).

DESIGN.md section 6 holds the per-fit budgets (full logging: under 5% added to a fit of 0.5 s
or more, under 30 ms to a tiny fit) "whether the store is local or a tracking server on this
machine". This run measures the second case with the local-store harness's own workers:

1. It starts ``autolog server`` (``python -m autolog server``: the CLI a user runs, one uvicorn
   worker) on a free 127.0.0.1 port over a fresh SQLite file and artifact folder in a scratch
   folder, and hands the workers its URL (benchmarks/worker.py reads ``SERVER_URL_VAR``): the
   client store is autolog's REST store, whose fit makes one request on the training thread
   (``runs/create``) and sends the rest from its background lane and the deferred-work thread.
2. Timed fits, raw and autolog alternating in one process, as benchmarks/harness.py times
   them; each fit's drain waits for the lane, so each fit's requests are all sent before the
   next. The worker counts every request per thread (the training thread must send nothing
   but ``runs/create``) and reads the last run back through the server's REST API.
3. Instruction counts under callgrind (benchmarks/icount.py), of the training thread alone
   and of every thread of the client process (the server process is not counted).
4. Spark (``--only spark``) trains in its JVM, which neither the harness's CPU clocks nor
   callgrind see: benchmarks/spark_bench.py times its fits through the same server instead
   (the time a fit adds around its outermost ``Estimator._fit``, raw / full / no-models
   alternating), with the same request count and read-back; no MLflow side.
5. With ``--mlflow``: ``mlflow server`` from .mlflow-venv over its own SQLite file, the same
   scenarios timed under ``mlflow.autolog()`` (no instruction counts).

Results go to benchmarks/server_fit_results.json and to the table between the markers in
docs/server.md; the local-store results (benchmarks/results.json) are read for comparison and
never written. ``--merge`` keeps the stored results of the modules not rerun; ``--out`` elsewhere
writes only that file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import harness, icount
from benchmarks.harness import BENCH_DIR, ROOT, log
from benchmarks.worker import SERVER_DB_VAR, SERVER_STORE_VAR, SERVER_URL_VAR

RESULTS = BENCH_DIR / "server_fit_results.json"
DOC = ROOT / "docs" / "server.md"


class AutologServer:
    """``python -m autolog server`` over ``folder``/autolog.db and ``folder``/artifacts."""

    def __init__(self, folder: Path):
        from autolog.server.testing import free_port

        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db, self.artifacts = folder / "autolog.db", folder / "artifacts"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def store_uri(self) -> str:
        """The server's store, as another process on this machine opens it to read."""
        return f"sqlite:///{self.db}?artifact_root={self.artifacts}"

    def __enter__(self) -> AutologServer:
        import httpx

        self.folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "autolog", "server", "--host", "127.0.0.1",
            "--port", str(self.port), "--backend-store-uri", f"sqlite:///{self.db}",
            "--artifacts-destination", str(self.artifacts),
        ]  # fmt: skip
        out = open(self.folder / "server.log", "wb")
        env = harness._child_env()
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"autolog server exited; see {self.folder / 'server.log'}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"autolog server did not answer within 60 s ({self.folder}).")

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)


def timed_fits(engine: str, python: str, args: argparse.Namespace, modules: list[str],
               scratch: Path) -> dict[str, Any]:  # fmt: skip
    out = {}
    repeats = args.repeats if engine == "autolog" else args.mlflow_repeats
    modes = "raw,autolog" if engine == "autolog" else "raw,mlflow"
    for module in modules:
        log(f"{engine} fits through its server: {module} ({modes}, {repeats} repeats)")
        out[module] = harness.run_fits(
            module, engine, python, repeats, 1, args.small, args.only_list, scratch, 3600, modes
        )
    return out


def spark_fits(url: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """benchmarks/spark_bench.py's fit overheads, logging through the server at ``url``."""
    picked = [o.split(":", 1)[1] for o in args.only_list if o.startswith("spark:")]
    cmd = [sys.executable, "-m", "benchmarks.spark_bench", "--skip-udf", "--tracking-uri", url,
           "--repeats", str(args.spark_repeats)]  # fmt: skip
    cmd += ["--scenario", picked[0]] if len(picked) == 1 else []  # several: all (there are two)
    cmd += ["--small"] if args.small else []
    log(f"spark fits through the server ({args.spark_repeats} per mode, by wall clock)")
    folder = scratch / "spark"
    folder.mkdir()
    proc = subprocess.run(
        cmd, cwd=folder, env=harness._child_env(), capture_output=True, text=True, timeout=3600
    )
    (folder / "stderr.log").write_text(proc.stderr)
    if proc.returncode != 0:
        return {"error": proc.stderr[-3000:]}
    return dict(json.loads(proc.stdout)["fit"])


def counts(modules: list[str], fits: dict[str, Any], small: bool, scratch: Path) -> dict:
    if icount.valgrind() is None:
        return {"skipped": "valgrind is not installed"}
    jobs = [
        (module, name, ["raw", "autolog"])
        for module in modules
        for name in fits[module].get("scenarios") or {}
    ]
    log(f"instruction counts through the server: {len(jobs)} scenarios, 2 ways each")
    started = time.perf_counter()
    found = icount.run_all(jobs, sys.executable, small, harness._child_env(), scratch, 7200)
    return {"scenarios": found, "wall_s": time.perf_counter() - started}


def measure(args: argparse.Namespace, modules: list[str], scratch: Path) -> dict[str, Any]:
    """Timed fits through autolog's server, then MLflow's (``--mlflow``), then the counts."""
    from benchmarks.server_bench import MlflowServer

    out: dict[str, Any] = {}
    mlflow_bin = Path(args.mlflow_venv) / "bin" / "mlflow"
    spark = "spark" in modules
    modules = [m for m in modules if m != "spark"]
    with AutologServer(scratch / "autolog-server") as server:
        ours = {SERVER_URL_VAR: server.url, SERVER_STORE_VAR: server.store_uri}
        os.environ.update(ours)  # the children's environment: harness._child_env copies it
        out["server"] = f"autolog server (python -m autolog server, 1 worker) at {server.url}"
        if spark:
            out["spark"] = spark_fits(server.url, args, scratch)
        out["fits"] = timed_fits("autolog", sys.executable, args, modules, scratch)
        python = mlflow_bin.parent / "python"
        if args.mlflow and not python.exists():
            out["mlflow"] = {"skipped": f"{python} missing"}
        elif args.mlflow:
            with MlflowServer(scratch / "mlflow-server", binary=mlflow_bin) as mserver:
                os.environ[SERVER_URL_VAR] = mserver.url
                os.environ[SERVER_DB_VAR] = str(mserver.folder / "mlflow.db")
                out["mlflow"] = {
                    "server": f"mlflow server ({mlflow_bin}, 1 worker) at {mserver.url}",
                    "fits": timed_fits("mlflow", str(python), args, modules, scratch),
                }
            os.environ.update(ours)
        out["loadavg_after_fits"] = harness._loadavg()
        if args.no_icount or not modules:
            out["icount"] = {"skipped": "--no-icount" if modules else "no module to count"}
        else:
            out["icount"] = counts(modules, out["fits"], args.small, scratch)
    return out


def _merge(stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """stored with new's scenarios (fits, counts, MLflow fits) in place of theirs."""
    for module, data in (new.get("fits") or {}).items():
        old = stored.setdefault("fits", {}).get(module)
        if old is None or data.get("error") or data.get("process_error"):
            stored["fits"][module] = data
        else:
            old.setdefault("scenarios", {}).update(data.get("scenarios") or {})
    counts = (new.get("icount") or {}).get("scenarios")
    if counts:
        stored.setdefault("icount", {}).setdefault("scenarios", {}).update(counts)
    for module, data in ((new.get("mlflow") or {}).get("fits") or {}).items():
        target = stored.setdefault("mlflow", {}).setdefault("fits", {})
        target.setdefault(module, data).setdefault("scenarios", {}).update(
            data.get("scenarios") or {}
        )
    if new.get("spark"):
        if new["spark"].get("error") or not stored.get("spark") or stored["spark"].get("error"):
            stored["spark"] = new["spark"]
        else:
            stored["spark"].update(new["spark"])
    stored.setdefault("runs", []).extend(new.get("runs") or [])
    return stored


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks --server", description=__doc__)
    p.add_argument("--server", action="store_true", help="(the harness's switch to this run)")
    p.add_argument("--only", default="sklearn", help="modules or module:scenario, comma list")
    p.add_argument("--repeats", type=int, default=7, help="timed fits per mode")
    p.add_argument("--mlflow", action="store_true", help="also time MLflow via mlflow server")
    p.add_argument("--mlflow-repeats", type=int, default=3)
    p.add_argument("--spark-repeats", type=int, default=3, help="spark fits per mode")
    p.add_argument(
        "--mlflow-venv", default=str(harness.MLFLOW_VENV), help="where `mlflow server` lives"
    )
    p.add_argument("--no-icount", action="store_true", help="skip the callgrind counts")
    p.add_argument("--small", action="store_true", help="small data sizes")
    p.add_argument("--merge", action="store_true", help="keep the stored other modules")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    args.only_list = [o for o in args.only.split(",") if o]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modules = harness.scenario_modules(args.only_list)
    scratch = Path(tempfile.mkdtemp(prefix="autolog-server-fits-"))
    log(f"scratch folder {scratch}")
    harness.compile_project()
    started = time.perf_counter()
    run = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "only": args.only_list,
        "repeats": args.repeats,
        "spark_repeats": args.spark_repeats if "spark" in modules else None,
        "loadavg_start": harness._loadavg(),
        "nice": os.nice(0),
    }
    new = measure(args, modules, scratch)
    run.update(loadavg_end=harness._loadavg(), total_s=time.perf_counter() - started)
    run["icount_wall_s"] = (new.get("icount") or {}).get("wall_s")
    new["runs"] = [run]
    new["machine"] = harness.machine_info()
    out = Path(args.out)
    if args.merge and out.exists():
        new = _merge(json.loads(out.read_text()), new)
    out.write_text(json.dumps(new, indent=1, default=str))
    if out.resolve() != RESULTS.resolve():  # a trial run: the stored table stays
        log(f"wrote {out} in {run['total_s']:.0f} s")
        return 0
    from benchmarks import server_fits_report

    server_fits_report.write_doc(new, DOC)
    log(f"wrote {out} and the table in {DOC} in {run['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

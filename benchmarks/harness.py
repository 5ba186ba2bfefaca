"""The benchmark harness: `python -m benchmarks` (or `make bench`) runs everything and writes
benchmarks/REPORT.md, benchmarks/results.json and benchmarks/overhead.png.

What runs, each in its own child process (benchmarks/worker.py, benchmarks/micro.py):

1. Whole-process import cost: `python -c pass` vs `python -c "import autolog"` vs
   `import autolog; autolog.autolog()`, repeated; plus a probe that times the same steps
   in-process and lists the heavy modules (numpy, pandas, ML libraries) they imported.
2. Per fit, for every scenario of every module in benchmarks/scenarios/: raw, autolog
   (``autolog.autolog()``, full logging) and autolog with ``log_models=False``, in the SAME
   process, alternating, after one warm-up fit each; medians and spread.
3. Micro-benchmarks of the engine, the store and model logging (benchmarks/micro.py).
4. Peak RSS added by autolog (and MLflow) for the RandomForest and torch scenarios: one process
   per mode, ru_maxrss.
5. MLflow side by side, in .mlflow-venv (created and filled here when missing): the same
   scenario files under ``mlflow.autolog()`` with a sqlite tracking store, raw vs. mlflow
   alternating in one process (fewer repeats: MLflow adds seconds per fit); its store and
   model micro-benchmarks; `import mlflow`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
SCENARIO_DIR = BENCH_DIR / "scenarios"
MLFLOW_VENV = ROOT / ".mlflow-venv"
MLFLOW_SPEC = "mlflow>=3.17,<3.18"  # the version the issues' reference figures were taken with
# Libraries installed into the MLflow environment at the same versions as this one.
SAME_VERSIONS = (
    "scikit-learn",
    "xgboost-cpu",
    "xgboost",
    "lightgbm",
    "statsmodels",
    "torch",
    "keras",
    "pandas",
    "numpy",
    "scipy",
)
# Scenarios whose peak memory is measured: name pattern per module (None: all of the module).
RSS_SCENARIOS: dict[str, str | None] = {"sklearn": r"(?i)forest", "torch": None}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def summarize(values: list[float]) -> dict[str, Any]:
    """Median, min, max and quartiles of a list of seconds, in milliseconds."""
    if not values:
        return {"n": 0}
    ms = sorted(v * 1000 for v in values)
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0], ms[0], ms[0]]
    return {
        "n": len(ms),
        "median": statistics.median(ms),
        "min": ms[0],
        "max": ms[-1],
        "q1": q[0],
        "q3": q[2],
        "all": ms,
    }


# Threads per library in the children (0: the libraries' defaults). Set by main(): on a shared
# 2-core machine, multi-threaded BLAS/OpenMP spin-waits under other load and a 15 ms fit took
# 0.1 to 2.5 s, which no overhead measurement survives.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_threads = 1


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    if _threads:
        env.update({var: str(_threads) for var in THREAD_VARS})
    env.pop("AUTOLOG_TESTING", None)  # benchmark what a user runs: autolog's errors warn
    # A user's Python caches bytecode; a machine that sets PYTHONDONTWRITEBYTECODE (this one
    # does, globally) would have every child compile autolog's sources again on import (~45 ms
    # of `import autolog`), while pip installed every library's bytecode. See compile_project().
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("AUTOLOG_TRACKING_URI", None)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["MPLBACKEND"] = "Agg"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    env.setdefault("TQDM_DISABLE", "1")
    return env


def compile_project() -> None:
    """Write the bytecode caches of the project's modules, as an installed package has them."""
    import compileall

    for folder in ("autolog", "integrations", "store", "benchmarks"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)


def run_child(
    python: str, args: list[str], out: Path, timeout: float, scratch: Path
) -> dict[str, Any]:
    """Run a benchmark child process and read the JSON file it writes (what it got to)."""
    logfile = out.with_suffix(".log")
    cwd = Path(tempfile.mkdtemp(prefix="cwd-", dir=scratch))
    started = time.perf_counter()
    error = None
    try:
        with open(logfile, "w") as f:
            proc = subprocess.run(
                [python, *args, "--out", str(out)],
                cwd=cwd,
                env=_child_env(),
                stdout=f,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        if proc.returncode != 0:
            error = f"exit code {proc.returncode}"
    except subprocess.TimeoutExpired:
        error = f"timed out after {timeout:.0f} s"
    result: dict[str, Any] = {}
    if out.exists():
        result = json.loads(out.read_text())
    if error:
        tail = logfile.read_text()[-3000:] if logfile.exists() else ""
        result["process_error"] = f"{error}\n{tail}"
    result["wall_s"] = time.perf_counter() - started
    return result


# -- environment facts -------------------------------------------------------------------------


def _versions(python: str) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for d in {list(SAME_VERSIONS) + ['mlflow', 'mlflow-skinny', 'wrapt', 'sqlite-utils', 'autolog', 'matplotlib']!r}:\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "import sqlite3, sys; out['sqlite'] = sqlite3.sqlite_version; out['python'] = sys.version.split()[0]\n"
        "print(json.dumps(out))"
    )
    try:
        proc = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=120, env=_child_env()
        )
        return json.loads(proc.stdout)
    except Exception:
        return {}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "hostname": platform.node(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# -- MLflow environment --------------------------------------------------------------------------


def _wanted_mlflow_pins() -> list[str]:
    pins = []
    for dist in SAME_VERSIONS:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        pins.append(f"{dist}=={version.split('+')[0]}")
    return pins


def ensure_mlflow_venv() -> tuple[str | None, str]:
    """The MLflow environment's python, created/filled when needed; (None, why) when it fails.

    Reuses .mlflow-venv (also used by the models interop tests): full ``mlflow`` 3.17.x is a
    superset of the ``mlflow-skinny`` those tests need. Installs the same versions of the ML
    libraries as this environment so both sides fit the same code.
    """
    python = MLFLOW_VENV / "bin" / "python"
    pins = _wanted_mlflow_pins()
    if python.exists():
        have = _versions(str(python))
        ok = have.get("mlflow", "").startswith("3.17.") and all(
            have.get(p.split("==")[0]) == p.split("==")[1]
            or have.get(p.split("==")[0], "").split("+")[0] == p.split("==")[1]
            for p in pins
        )
        if ok:
            return str(python), f"mlflow {have['mlflow']} (existing {MLFLOW_VENV.name})"
    else:
        log(f"creating {MLFLOW_VENV}")
        base = getattr(sys, "_base_executable", None) or "python3"
        made = subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)])
        if made.returncode != 0:
            return None, f"{base} -m venv {MLFLOW_VENV} failed"
    log(f"installing {MLFLOW_SPEC} and {' '.join(pins)} into {MLFLOW_VENV} (a few minutes)")
    r = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", MLFLOW_SPEC, *pins],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if r.returncode != 0:
        return None, f"pip install into {MLFLOW_VENV} failed: {r.stderr[-500:]}"
    have = _versions(str(python))
    return str(python), f"mlflow {have.get('mlflow')} (installed into {MLFLOW_VENV.name})"


# -- whole-process import cost ---------------------------------------------------------------------


def import_costs(repeats: int, mlflow_python: str | None) -> dict[str, Any]:
    py = sys.executable
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "import autolog": [py, "-c", "import autolog"],
        "import autolog; autolog.autolog()": [py, "-c", "import autolog; autolog.autolog()"],
    }
    if mlflow_python:
        cases["(mlflow venv) python -c pass"] = [mlflow_python, "-c", "pass"]
        cases["import mlflow"] = [mlflow_python, "-c", "import mlflow"]
        cases["import mlflow; mlflow.autolog()"] = [
            mlflow_python,
            "-c",
            "import mlflow; mlflow.autolog()",
        ]
    times: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    env = _child_env()
    cwd = tempfile.mkdtemp(prefix="bench-import-")
    for i in range(repeats):
        keys = list(cases)
        if i % 2:
            keys.reverse()
        for k in keys:
            if k.startswith(("import mlflow", "(mlflow")) and i >= max(3, repeats // 3):
                continue  # seconds each: fewer repeats
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cases[k], cwd=cwd, env=env, check=True, capture_output=True)
            times[k].append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[k].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    probes = []
    for _ in range(max(1, min(5, repeats))):
        proc = subprocess.run(
            [py, "-m", "benchmarks.worker", "probe"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        probes.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {
        "whole_process": {k: summarize(v) for k, v in times.items()},
        "whole_process_cpu": {k: summarize(v) for k, v in cpu.items()},
        "importtime_top": importtime_breakdown(py, cwd, env),
    }

    def added(series: dict[str, list[float]], key: str, base: str) -> float:
        return (statistics.median(series[key]) - statistics.median(series[base])) * 1000

    pairs = [
        ("import autolog", "python -c pass"),
        ("import autolog; autolog.autolog()", "python -c pass"),
    ]
    if mlflow_python:
        pairs += [
            ("import mlflow", "(mlflow venv) python -c pass"),
            ("import mlflow; mlflow.autolog()", "(mlflow venv) python -c pass"),
        ]
    out["added_ms"] = {k: added(cpu, k, b) for k, b in pairs}  # judged: CPU time
    out["added_wall_ms"] = {k: added(times, k, b) for k, b in pairs}
    out["in_process"] = {
        "import_ms": statistics.median(p["import_cpu_ms"] for p in probes),
        "autolog_call_ms": statistics.median(p["autolog_call_cpu_ms"] for p in probes),
        "import_wall_ms": statistics.median(p["import_ms"] for p in probes),
        "autolog_call_wall_ms": statistics.median(p["autolog_call_ms"] for p in probes),
        "heavy_after_import": probes[-1]["heavy_after_import"],
        "heavy_after_autolog": probes[-1]["heavy_after_autolog"],
        "heavy_before": probes[-1]["heavy_before"],
        "wrapt_imported": probes[-1]["wrapt_imported"],
    }
    return out


def importtime_breakdown(py: str, cwd: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """The modules with the largest own import time under `import autolog; autolog.autolog()`."""
    proc = subprocess.run(
        [py, "-X", "importtime", "-c", "import autolog; autolog.autolog()"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    rows: list[dict[str, Any]] = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            rows.append(
                {
                    "module": m.group(4),
                    "self_ms": int(m.group(1)) / 1000,
                    "cumulative_ms": int(m.group(2)) / 1000,
                    "depth": len(m.group(3)) // 2,
                }
            )
    rows.sort(key=lambda r: -r["self_ms"])
    return rows[:12]


# -- scenarios ------------------------------------------------------------------------------------


def scenario_modules(only: list[str]) -> list[str]:
    names = sorted(p.stem for p in SCENARIO_DIR.glob("*.py") if not p.stem.startswith("_"))
    if only:
        names = [n for n in names if n in only or any(o.startswith(n + ":") for o in only)]
    return names


def _only_scenarios(module: str, only: list[str]) -> str:
    picked = [o.split(":", 1)[1] for o in only if o.startswith(module + ":")]
    return ",".join(picked)


def run_fits(
    module: str,
    engine: str,
    python: str,
    repeats: int,
    warmup: int,
    small: bool,
    only: list[str],
    scratch: Path,
    timeout: float,
    modes: str = "",
) -> dict[str, Any]:
    modes = modes or ("raw,autolog,autolog_nomodel" if engine == "autolog" else "raw,mlflow")
    args = [
        "-m",
        "benchmarks.worker",
        "fits",
        "--engine",
        engine,
        "--module",
        module,
        "--modes",
        modes,
        "--repeats",
        str(repeats),
        "--warmup",
        str(warmup),
    ]
    if small:
        args.append("--small")
    picked = _only_scenarios(module, only)
    if picked:
        args += ["--only", picked]
    out = scratch / f"fits-{engine}-{module}.json"
    return run_child(python, args, out, timeout, scratch)


def run_rss(
    module: str, scenario: str, mode: str, python: str, small: bool, fits: int, scratch: Path
) -> dict[str, Any]:
    args = ["-m", "benchmarks.worker", "rss", "--mode", mode, "--module", module]
    args += ["--scenario", scenario, "--fits", str(fits)]
    if small:
        args.append("--small")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"rss-{mode}-{module}-{scenario}")
    return run_child(python, args, scratch / f"{safe}.json", 1800, scratch)


# Modes counted under callgrind per scenario module: the boosting libraries also count
# per-iteration logging alone (issue 6's 1% budget).
ICOUNT_MODES = {
    "xgboost": ["raw", "autolog", "autolog_iterations"],
    "lightgbm": ["raw", "autolog", "autolog_iterations"],
}
# The smoke run counts one small scenario: the code path, not the numbers.
ICOUNT_SMOKE = ("sklearn", "logistic_regression_iris")
# Modules whose training runs outside the Python process, which callgrind would not count.
ICOUNT_SKIP = {"spark": "Spark trains in its JVM; benchmarks/spark_bench.py times it by wall clock"}


def instruction_counts(
    fits: dict[str, Any], small: bool, smoke: bool, skip: bool, scratch: Path
) -> dict[str, Any]:
    from benchmarks import icount

    if skip:
        return {"skipped": "--no-icount"}
    if icount.valgrind() is None:
        return {"skipped": "valgrind is not installed (apt-get install valgrind)"}
    jobs = []
    for module, data in fits.items():
        for name in data.get("scenarios") or {}:
            if smoke and (module, name) != ICOUNT_SMOKE:
                continue
            if module in ICOUNT_SKIP:
                continue
            jobs.append((module, name, ICOUNT_MODES.get(module, ["raw", "autolog"])))
    log(
        f"instruction counts under callgrind: {len(jobs)} scenarios, each over all threads and "
        "over the training thread alone, 2 processes at a time"
    )
    started = time.perf_counter()
    counts = icount.run_all(jobs, sys.executable, small, _child_env(), scratch, 3600)
    return {"scenarios": counts, "wall_s": time.perf_counter() - started}


def merge_rerun(stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with the scenarios ``new`` (a ``--merge`` run) measured put in place of theirs.

    Per scenario: its fits, its MLflow fits (when MLflow ran), its peak RSS and its instruction
    counts; everything else stays as stored. ``stored["reruns"]`` records the rerun: its date,
    ``--only``, load averages, MLflow or not.
    """
    stored.pop("derived", None)

    def put(old_fits: dict[str, Any], new_fits: dict[str, Any]) -> None:
        for module, data in new_fits.items():
            if data.get("error") or data.get("process_error") or module not in old_fits:
                old_fits[module] = data
                continue
            target = old_fits[module].setdefault("scenarios", {})
            target.update(data.get("scenarios") or {})

    put(stored.setdefault("fits", {}), new.get("fits") or {})
    new_mlflow = (new.get("mlflow") or {}).get("fits")
    if new_mlflow:
        put(stored.setdefault("mlflow", {}).setdefault("fits", {}), new_mlflow)
    stored.setdefault("rss", {}).update(new.get("rss") or {})
    if new.get("micro"):
        stored["micro"] = new["micro"]
    new_mlflow_micro = (new.get("mlflow") or {}).get("micro")
    if new_mlflow_micro:
        stored.setdefault("mlflow", {})["micro"] = new_mlflow_micro
    counts = (new.get("icount") or {}).get("scenarios")
    if counts:
        stored.setdefault("icount", {}).setdefault("scenarios", {}).update(counts)
    stored.setdefault("reruns", []).append(
        {
            "date": new["date"],
            "only": new["settings"]["only"],
            "loadavg_start": new.get("loadavg_start"),
            "loadavg_end": new.get("loadavg_end"),
            "mlflow": bool(new_mlflow),
            "micro": bool(new.get("micro")),
            "mlflow_micro": bool(new_mlflow_micro),
            "icount": bool(counts),
            "icount_wall_s": (new.get("icount") or {}).get("wall_s"),
            "total_s": new.get("total_s"),
        }
    )
    return stored


def merge_icount(stored: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with the instruction counts of ``counts`` (``python -m benchmarks.icount``)
    put in place of their scenarios'. The latest rerun of each counted module (a ``--merge
    --no-icount`` one, timed while the counts ran) records them: ``icount``, the wall time."""
    stored.pop("derived", None)
    scenarios = counts.get("scenarios") or {}
    stored.setdefault("icount", {}).setdefault("scenarios", {}).update(scenarios)
    modules = {key.split(":", 1)[0] for key in scenarios}
    for module in modules:
        for rerun in reversed(stored.get("reruns") or []):
            if module in {o.split(":", 1)[0] for o in rerun.get("only") or []}:
                rerun["icount"] = True
                rerun["icount_separately"] = True
                rerun["icount_wall_s"] = counts.get("wall_s")
                break
    return stored


# -- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time autolog vs. raw vs. MLflow; write REPORT.md, results.json, overhead.png.",
    )
    p.add_argument("--smoke", action="store_true", help="one repeat, small sizes, no MLflow")
    p.add_argument("--repeats", type=int, help="timed fits per mode (default 7; smoke 1)")
    p.add_argument("--mlflow-repeats", type=int, default=3, help="timed fits under MLflow")
    p.add_argument("--no-mlflow", action="store_true", help="skip the MLflow side")
    p.add_argument("--small", action="store_true", help="small data sizes (the smoke sizes)")
    p.add_argument(
        "--only",
        default="",
        help="comma list of scenario modules or module:scenario to run (default: all)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP/OPENBLAS/MKL_NUM_THREADS for every fit, all modes alike (0: library defaults)",
    )
    p.add_argument(
        "--no-icount",
        action="store_true",
        help="skip the instruction counts under valgrind (about 80 minutes on 2 cores)",
    )
    p.add_argument("--out", default=str(BENCH_DIR), help="folder for REPORT.md etc.")
    p.add_argument(
        "--merge",
        action="store_true",
        help="with --only: rerun just those scenarios (fits, peak RSS, instruction counts; MLflow "
        "unless --no-mlflow) and replace their rows in OUT/results.json, keeping the rest "
        "(imports, micro-benchmarks, other scenarios); the report names what was rerun and when",
    )
    p.add_argument(
        "--micro",
        action="store_true",
        help="with --merge: rerun the micro-benchmarks too (MLflow's unless --no-mlflow) and "
        "replace the stored ones; --merge --micro without --only reruns only them",
    )
    p.add_argument(
        "--merge-icount",
        metavar="FILE",
        help="only merge the instruction counts FILE holds (written by `python -m "
        "benchmarks.icount`) into OUT/results.json and render the report and README again",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    global _threads
    args = parse_args(argv)
    _threads = args.threads
    smoke = args.smoke
    small = smoke or args.small
    repeats = args.repeats or (1 if smoke else 7)
    warmup = 0 if smoke else 1
    mlflow_repeats = 1 if smoke else args.mlflow_repeats
    only = [o for o in args.only.split(",") if o]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.merge_icount:
        return _merge_icount_file(Path(args.merge_icount), out_dir)
    scratch = Path(tempfile.mkdtemp(prefix="autolog-bench-"))
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "loadavg_start": _loadavg(),
        "settings": {
            "smoke": smoke,
            "small": small,
            "repeats": repeats,
            "warmup": warmup,
            "mlflow_repeats": mlflow_repeats,
            "only": only,
            "threads": args.threads,
        },
        "versions": {"autolog_env": _versions(sys.executable)},
    }
    log(f"scratch folder {scratch}")
    compile_project()

    mlflow_python = None
    if smoke or args.no_mlflow:
        results["mlflow"] = {"skipped": "smoke run" if smoke else "--no-mlflow"}
    else:
        mlflow_python, why = ensure_mlflow_venv()
        results["mlflow"] = {"python": mlflow_python, "status": why}
        if mlflow_python:
            results["versions"]["mlflow_env"] = _versions(mlflow_python)
        log(why)

    if args.merge:
        if not (only or args.micro) or smoke:
            raise SystemExit("--merge needs --only or --micro and is not for --smoke")
        log(
            "--merge: imports kept from the stored results"
            + ("" if args.micro else ", and the micro-benchmarks")
        )
    else:
        log("import cost (whole process)")
        results["imports"] = import_costs(2 if smoke else 15, mlflow_python)

    modules = scenario_modules(only) if only or not args.merge else []
    results["fits"] = {}
    fit_timeout = 600 if small else 3600
    for module in modules:
        log(f"fits: {module} (raw / autolog / autolog log_models=False, {repeats} repeats)")
        results["fits"][module] = run_fits(
            module,
            "autolog",
            sys.executable,
            repeats,
            warmup,
            small,
            only,
            scratch,
            fit_timeout,
            "raw,autolog" if smoke else "",  # the smoke run skips log_models=False
        )

    if not args.merge or args.micro:
        log("micro-benchmarks")
        micro_args = ["-m", "benchmarks.micro"] + (["--small"] if small else [])
        results["micro"] = run_child(
            sys.executable, micro_args, scratch / "micro.json", 1200, scratch
        )

    results["rss"] = {}
    rss_modes = ["raw", "autolog"] + (["mlflow"] if mlflow_python else [])
    for module in modules:
        pattern = RSS_SCENARIOS.get(module, "")
        if pattern == "":
            continue
        names = list(results["fits"][module].get("scenarios", {}))
        for name in names:
            if pattern is not None and not re.search(pattern, name):
                continue
            if smoke and results["rss"]:
                break  # the smoke run measures one scenario: the code path, not the numbers
            log(f"peak RSS: {module}:{name}")
            entry = {}
            for mode in rss_modes:
                py = mlflow_python if mode == "mlflow" else sys.executable
                assert py is not None
                entry[mode] = run_rss(module, name, mode, py, small, 1 if smoke else 3, scratch)
            results["rss"][f"{module}:{name}"] = entry

    if mlflow_python:
        results["mlflow"]["fits"] = {}
        for module in modules:
            log(f"MLflow fits: {module} ({mlflow_repeats} repeats)")
            results["mlflow"]["fits"][module] = run_fits(
                module,
                "mlflow",
                mlflow_python,
                mlflow_repeats,
                1,
                small,
                only,
                scratch,
                fit_timeout,
            )
        if not args.merge or args.micro:
            log("MLflow micro-benchmarks")
            results["mlflow"]["micro"] = run_child(
                mlflow_python,
                ["-m", "benchmarks.micro_mlflow"],
                scratch / "micro-mlflow.json",
                1200,
                scratch,
            )

    results["loadavg_end"] = _loadavg()  # the timed parts end here
    # Last: the counts do not depend on the load, so the machine may be used meanwhile.
    results["icount"] = instruction_counts(results["fits"], small, smoke, args.no_icount, scratch)
    results["total_s"] = took = time.perf_counter() - started

    from benchmarks import report

    if args.merge:
        (scratch / "rerun.json").write_text(json.dumps(results, default=str))  # kept on failure
        results = merge_rerun(json.loads((out_dir / "results.json").read_text()), results)
    derived = report.write_all(results, out_dir)
    if not smoke and out_dir.resolve() == BENCH_DIR.resolve():
        report.splice_readme(ROOT / "README.md", report.readme_section(results, derived))
    log(f"wrote {out_dir / 'REPORT.md'}, results.json, overhead.png in {took:.0f} s")
    if not smoke:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _merge_icount_file(counts_file: Path, out_dir: Path) -> int:
    from benchmarks import report

    stored = json.loads((out_dir / "results.json").read_text())
    results = merge_icount(stored, json.loads(counts_file.read_text()))
    derived = report.write_all(results, out_dir)
    if out_dir.resolve() == BENCH_DIR.resolve():
        report.splice_readme(ROOT / "README.md", report.readme_section(results, derived))
    log(f"merged the instruction counts of {counts_file} into {out_dir / 'results.json'}")
    return 0

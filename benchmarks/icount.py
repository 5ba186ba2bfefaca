"""Instruction counts per fit under callgrind: the benchmark's noise-free measurement.

On a shared virtual machine the CPU time of the same single-threaded work varies by a factor of
two from one second to the next (other guests hold the physical cores), so a 5% budget on a
1-second fit cannot be settled by timing it a handful of times. The number of instructions a
fit executes does not depend on the neighbours: ``valgrind --tool=callgrind`` counts them.

One child process per scenario (benchmarks/worker.py ``icount``) fits the scenario once per mode
to warm up, then once more per mode inside ``sys.call_tracing(...)``. Callgrind, started with
``--dump-before`` and ``--dump-after`` on ``_PyEval_CallTracing`` (the C function behind
``sys.call_tracing``, which nothing else calls), writes a counter dump as each marked call
starts and ends; the ``--dump-after`` dumps hold exactly the instructions of one fit (and of
waiting for the work autolog deferred to a background thread), every thread included.

What instruction counts do not see: time in the kernel (file writes, ``fsync``) and memory
stalls. The report gives the timed medians alongside.

``training_thread=True`` runs callgrind with ``--separate-threads=yes`` and reads the dumps of
thread 1 alone: the instructions of the training (main) thread over the same marked call, which
leaves out what autolog deferred to its background threads (waiting for them costs the main
thread next to nothing). The default counts every thread. One process cannot give both: with
``--separate-threads=yes`` callgrind writes the other threads' counters only at exit, not at the
marked dumps, so :func:`run_all` runs each scenario twice, once per way of counting.

DESIGN.md section 6's per-fit budget is the training thread's ("network work happens off the
training thread"; issue 17: "move the work off the training thread (the background writer,
flushed at run end)"), so the report judges ratio budgets on the training-thread count and shows
the all-thread count beside it.

``python -m benchmarks.icount --only keras,fastai --out FILE`` counts those scenarios alone, all
jobs at once (the harness's counts, without its timed fits: they can run beside a timed
``--merge --no-icount`` rerun); ``python -m benchmarks --merge-icount FILE`` merges FILE into the
stored results and renders the report again.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARKER = "_PyEval_CallTracing"


def valgrind() -> str | None:
    """The valgrind executable, or None when it is not installed."""
    return shutil.which("valgrind")


def read_dumps(out_file: Path, thread: int | None = None) -> list[int]:
    """Instruction totals of the ``--dump-after`` dumps callgrind wrote next to ``out_file``.

    Callgrind numbers the dumps ``out_file.1``, ``out_file.2``, ... in the order it wrote them
    (``out_file.1-01``, ... per thread with ``--separate-threads=yes``: pass ``thread``); each
    records its trigger on a ``desc: Trigger:`` line and its instruction count on ``totals:``.
    """
    found: list[tuple[int, int]] = []
    for path in out_file.parent.glob(out_file.name + ".*"):
        suffix = path.name[len(out_file.name) + 1 :]
        if thread is not None:
            suffix, _, tid = suffix.partition("-")
            if not tid.isdigit() or int(tid) != thread:
                continue
        if not suffix.isdigit():
            continue
        trigger, total = "", None
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("desc: Trigger:"):
                    trigger = line
                elif line.startswith("totals:"):
                    total = int(line.split()[1])
        if f"--dump-after={MARKER}" in trigger and total is not None:
            found.append((int(suffix), total))
    return [total for _, total in sorted(found)]


def run_icount(
    python: str,
    module: str,
    scenario: str,
    modes: list[str],
    small: bool,
    env: dict[str, str],
    scratch: Path,
    timeout: float,
    training_thread: bool = False,
) -> dict[str, Any]:
    """Instructions per marked fit of one scenario, per mode: ``{"instructions": {mode: n}}``
    (of the training thread alone with ``training_thread``)."""
    exe = valgrind()
    if exe is None:
        return {"error": "valgrind is not installed"}
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{module}-{scenario}")
    folder = Path(tempfile.mkdtemp(prefix=f"icount-{safe}-", dir=scratch))
    out_file = folder / "callgrind.out"
    result_file = folder / "marked.json"
    cmd = [
        exe,
        "--tool=callgrind",
        f"--dump-before={MARKER}",
        f"--dump-after={MARKER}",
        "--dump-line=no",
        *(["--separate-threads=yes"] if training_thread else []),
        f"--callgrind-out-file={out_file}",
        python,
        "-m",
        "benchmarks.worker",
        "icount",
        "--module",
        module,
        "--scenario",
        scenario,
        "--modes",
        ",".join(modes),
        "--out",
        str(result_file),
    ]
    if small:
        cmd.append("--small")
    # Same hash seed in every process: dict and set orders, and so the work, repeat exactly.
    child_env = {**env, "PYTHONHASHSEED": "0"}
    started = time.perf_counter()
    log_file = folder / "valgrind.log"
    try:
        with open(log_file, "w") as log:
            proc = subprocess.run(
                cmd,
                cwd=folder,
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "wall_s": timeout}
    res: dict[str, Any] = {"wall_s": time.perf_counter() - started}
    if proc.returncode != 0 or not result_file.exists():
        res["error"] = f"exit code {proc.returncode}: " + log_file.read_text()[-1500:]
        return res
    marked = json.loads(result_file.read_text())
    totals = read_dumps(out_file, 1 if training_thread else None)
    if len(totals) != len(marked["marked"]):
        res["error"] = f"{len(totals)} counter dumps for {len(marked['marked'])} marked fits"
        return res
    res["instructions"] = dict(zip(marked["marked"], totals))
    res["logged"] = marked.get("logged")
    shutil.rmtree(folder, ignore_errors=True)
    return res


def run_all(
    jobs: list[tuple[str, str, list[str]]],
    python: str,
    small: bool,
    env: dict[str, str],
    scratch: Path,
    timeout: float,
    parallel: int = 0,
    training_thread: bool = True,
) -> dict[str, dict[str, Any]]:
    """Every (module, scenario, modes) job, ``parallel`` at a time (default: the core count).

    Each job is counted over every thread (``instructions``) and, with ``training_thread``, once
    more over the training thread alone (``instructions_thread``; ``thread_error`` when that
    count failed). Instruction counts do not depend on what else runs, so the jobs may share
    the cores.
    """
    from concurrent.futures import ThreadPoolExecutor

    workers = parallel or os.cpu_count() or 1
    ways = [False, True] if training_thread else [False]
    with ThreadPoolExecutor(workers) as pool:
        futures = {
            (f"{module}:{scenario}", way): pool.submit(
                run_icount, python, module, scenario, modes, small, env, scratch, timeout, way
            )
            for module, scenario, modes in jobs
            for way in ways
        }
        done = {key: f.result() for key, f in futures.items()}
    out: dict[str, dict[str, Any]] = {}
    for (key, way), res in done.items():
        if not way:
            out[key] = {**res, **out.get(key, {})}
            continue
        entry = out.setdefault(key, {})
        entry["wall_thread_s"] = res.get("wall_s")
        if "instructions" in res:
            entry["instructions_thread"] = res["instructions"]
        else:
            entry["thread_error"] = res.get("error", "no counts")
    return out


def main(argv: list[str] | None = None) -> int:
    """Count the scenarios of ``--only`` (modules or module:scenario) into ``--out``."""
    from benchmarks import harness

    p = argparse.ArgumentParser(prog="python -m benchmarks.icount", description=main.__doc__)
    p.add_argument("--only", required=True, help="comma list of modules or module:scenario")
    p.add_argument("--out", required=True, help="JSON file: {scenarios, wall_s, small}")
    p.add_argument("--small", action="store_true", help="small data sizes")
    p.add_argument("--parallel", type=int, default=0, help="processes at a time (0: all jobs)")
    args = p.parse_args(argv)
    if valgrind() is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    only = [o for o in args.only.split(",") if o]
    jobs = []
    for module in harness.scenario_modules(only):
        if module in harness.ICOUNT_SKIP:
            continue
        scenarios, _ = _scenario_names(module)
        picked = harness._only_scenarios(module, only).split(",")
        for name in scenarios:
            if picked == [""] or name in picked:
                jobs.append((module, name, harness.ICOUNT_MODES.get(module, ["raw", "autolog"])))
    scratch = Path(tempfile.mkdtemp(prefix="autolog-icount-"))
    started = time.perf_counter()
    parallel = args.parallel or 2 * len(jobs)
    counts = run_all(
        jobs, sys.executable, args.small, harness._child_env(), scratch, 3 * 3600, parallel
    )
    out = {"scenarios": counts, "wall_s": time.perf_counter() - started, "small": args.small}
    Path(args.out).write_text(json.dumps(out, indent=1))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _scenario_names(module: str) -> tuple[list[str], Any]:
    import importlib

    mod = importlib.import_module(f"benchmarks.scenarios.{module}")
    return list(mod.SCENARIOS), mod


if __name__ == "__main__":
    raise SystemExit(main())

"""How long `autolog run` takes before the entry point starts, side by side with `mlflow run`.

    python -m benchmarks.projects_bench [--repeats 15]

One fixture project whose entry point (``python3 -S -E stamp.py``) writes the wall clock as its
first act. Each sample starts a fresh process and reads that stamp: the command run directly
(``bash -c``), `autolog run --env-manager local`, `mlflow run --env-manager local` (from
.mlflow-venv; mlflow-skinny runs projects only on the file store, so MLflow logs into
``file:`` with MLFLOW_ALLOW_FILE_STORE=true while autolog logs into its SQLite store), and
`autolog run` of a python_env project whose virtualenv is already built (built once, untimed).
Overhead = median(start of the entry point) - median(direct start). The modes alternate sample by
sample so that machine load falls on all of them alike. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MLFLOW = ROOT / ".mlflow-venv" / "bin" / "mlflow"
STAMP = "import sys, time\nopen(sys.argv[1], 'w').write(repr(time.time()))\n"
COMMAND = "python3 -S -E stamp.py {out}"


def make_project(folder: Path, python_env: bool) -> Path:
    folder.mkdir(parents=True)
    (folder / "stamp.py").write_text(STAMP)
    lines = ["name: bench"]
    if python_env:
        (folder / "python_env.yaml").write_text("dependencies: [six]\n")
        lines.append("python_env: python_env.yaml")
    lines += [
        "entry_points:",
        "  main:",
        "    parameters: {out: string}",
        f'    command: "{COMMAND}"',
    ]
    (folder / "MLproject").write_text("\n".join(lines) + "\n")
    return folder


def started_after(argv: list[str], stamp: Path, env: dict[str, str], cwd: Path) -> float:
    """Seconds from launching argv to the entry point's first line."""
    stamp.unlink(missing_ok=True)
    t0 = time.time()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0 or not stamp.exists():
        raise SystemExit(f"{argv[:3]} failed:\n{done.stderr[-2000:]}")
    return float(stamp.read_text()) - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="autolog-projects-bench-"))
    local = make_project(work / "local", python_env=False)
    venv = make_project(work / "venv", python_env=True)
    stamp = work / "stamp.txt"
    bin_dir = os.path.dirname(sys.executable)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "AUTOLOG_ENVS_DIR": str(work / "envs"),
        "AUTOLOG_TRACKING_URI": str(work / "autolog-runs"),
        "MLFLOW_TRACKING_URI": "file://" + str(work / "mlruns"),
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: modules load from cached bytecode
    param = ["-P", f"out={stamp}"]
    modes = {
        "direct": ["bash", "-c", COMMAND.format(out=stamp)],
        "autolog run (local)": [
            sys.executable,
            "-m",
            "autolog",
            "run",
            str(local),
            *param,
            "--env-manager",
            "local",
        ],
        "autolog run (cached virtualenv)": [
            sys.executable,
            "-m",
            "autolog",
            "run",
            str(venv),
            *param,
        ],
    }
    if MLFLOW.exists():
        modes["mlflow run (local)"] = [
            str(MLFLOW),
            "run",
            str(local),
            *param,
            "--env-manager",
            "local",
        ]
    t0 = time.time()
    started_after(modes["autolog run (cached virtualenv)"], stamp, env, local)  # builds it
    build_s = time.time() - t0
    samples: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for mode, argv in modes.items():
            samples[mode].append(started_after(argv, stamp, env, local))
    base = statistics.median(samples["direct"])
    result = {
        "repeats": args.repeats,
        "virtualenv_first_build_s": round(build_s, 2),
        "median_start_s": {m: round(statistics.median(v), 4) for m, v in samples.items()},
        "median_added_ms": {
            m: round((statistics.median(v) - base) * 1000, 1) for m, v in samples.items()
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""What the system-metrics sampler costs: CPU time of its thread (and of the metric writer).

    python benchmarks/system_metrics_cost.py [--seconds 60] [--intervals 10 1]

For each sampling interval, starts a run with ``log_system_metrics=True`` on an idle main
thread, waits ``--seconds``, and reads from the kernel (psutil's per-thread times, Linux) the
CPU time the sampler thread and the batching writer thread used, setup (psutil/NVML import
and init) included. Prints the CPU time as a share of one core over the wall time.
The budget (docs/system_metrics.md): under 0.5 % of one core at the default interval.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _thread_cpu_s(native_id: int | None) -> float:
    import psutil

    for t in psutil.Process().threads():
        if t.id == native_id:
            return t.user_time + t.system_time
    return 0.0


def measure(interval: float, seconds: float) -> dict[str, float]:
    import autolog
    from autolog import batching, system_metrics

    os.environ[system_metrics.ENV_INTERVAL[0]] = str(interval)
    with autolog.start_run(log_system_metrics=True) as run:
        sampler = system_metrics._samplers[run.info.run_id]
        began = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - began
        sampler_cpu = _thread_cpu_s(sampler.thread.native_id)
        writer = batching._writer._thread
        writer_cpu = _thread_cpu_s(writer.native_id) if writer is not None else 0.0
    points = len(autolog.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage"))
    return {
        "interval_s": interval,
        "wall_s": wall,
        "points": points,
        "sampler_cpu_ms": sampler_cpu * 1000,
        "writer_cpu_ms": writer_cpu * 1000,
        "sampler_pct_of_core": 100 * sampler_cpu / wall,
        "total_pct_of_core": 100 * (sampler_cpu + writer_cpu) / wall,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--intervals", type=float, nargs="+", default=[10.0, 1.0])
    args = p.parse_args()
    import autolog

    autolog.set_tracking_uri(tempfile.mkdtemp(prefix="autolog-sysmetrics-"))
    print(
        f"{'interval':>9} {'wall s':>7} {'points':>6} {'sampler ms':>10} {'writer ms':>9} "
        f"{'sampler %':>9} {'total %':>8}"
    )
    for interval in args.intervals:
        r = measure(interval, args.seconds)
        print(
            f"{r['interval_s']:>8.1f}s {r['wall_s']:>7.1f} {r['points']:>6} "
            f"{r['sampler_cpu_ms']:>10.1f} {r['writer_cpu_ms']:>9.1f} "
            f"{r['sampler_pct_of_core']:>8.3f}% {r['total_pct_of_core']:>7.3f}%"
        )


if __name__ == "__main__":
    main()

"""Check on an NVIDIA GPU that system metrics record the GPU and add no device synchronisation.

    python benchmarks/gpu_system_metrics_check.py [--steps 2000] [--interval 0.5]

With CUDA and NVML available: trains a small MLP on the GPU with ``autolog.autolog(
log_system_metrics=True)`` and the sampler every ``--interval`` seconds, the whole loop under
``torch.cuda.set_sync_debug_mode("error")`` (any synchronising call, ours or the sampler's,
raises; the sampler reads NVML, which does not touch the CUDA stream). Then checks that the run
has ``system/gpu_<i>_{utilization,memory_usage,power_usage}_*`` for every GPU NVML reports,
with percentages in 0..100 and memory > 0, and that the loss history equals the losses computed.
Prints the keys and their last values. Exit status 1 on any failed check.

Without an NVIDIA GPU it says so and exits 0 (nothing is checked).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["AUTOLOG_TESTING"] = "1"  # a failure inside autolog raises instead of warning


def _gpus() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:
        return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--interval", type=float, default=0.5)
    args = p.parse_args()
    import torch

    n_gpus = _gpus()
    if not torch.cuda.is_available() or n_gpus == 0:
        print("No NVIDIA GPU present (CUDA or NVML unavailable): nothing checked.")
        return 0
    from torch import nn

    import autolog

    os.environ["AUTOLOG_SYSTEM_METRICS_SAMPLING_INTERVAL"] = str(args.interval)
    autolog.set_tracking_uri(tempfile.mkdtemp(prefix="autolog-gpu-sysmetrics-"))
    autolog.autolog(log_system_metrics=True)
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 10)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X = torch.randn(256, 512, device=dev)
    y = torch.randint(0, 10, (256,), device=dev)
    losses = []
    began = time.monotonic()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(args.steps):
            loss = nn.functional.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    while time.monotonic() - began < 3 * args.interval:  # at least two samples
        time.sleep(args.interval)
    from integrations import torch as at

    at.end_training()
    run = autolog.last_active_run()
    assert run is not None
    metrics = run.data.metrics
    failures = []
    for i in range(n_gpus):
        for suffix in (
            "utilization_percentage",
            "memory_usage_megabytes",
            "memory_usage_percentage",
            "power_usage_watts",
            "power_usage_percentage",
        ):
            key = f"system/gpu_{i}_{suffix}"
            value = metrics.get(key)
            print(f"{key} = {value}")
            if value is None:
                failures.append(f"{key} missing")
            elif suffix.endswith("percentage") and not 0 <= value <= 100:
                failures.append(f"{key}={value} outside 0..100")
    if metrics.get("system/gpu_0_memory_usage_megabytes", 0) <= 0:
        failures.append("gpu_0 memory usage not > 0 during a CUDA training")
    got = [m.value for m in autolog.get_metric_history(run.info.run_id, "train_loss")]
    want = [float(v) for v in torch.stack(losses).cpu()]
    if got != want:
        failures.append(f"train_loss history differs ({len(got)} points vs {len(want)} steps)")
    print("no synchronisation during training (set_sync_debug_mode('error') raised nothing)")
    for f in failures:
        print("FAILED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

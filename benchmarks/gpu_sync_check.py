"""Check on a GPU that autolog's plain-loop logging never waits for the device during training.

    python benchmarks/gpu_sync_check.py [--steps 300] [--interval 100] [--blocks 5]

What it does, when CUDA is available:

1. Trains an MLP (512 -> 1024 -> 1024 -> 10 on the GPU, Adam, cross-entropy) on batches that already live
   on the GPU, ``--steps`` steps per block, raw (autolog off) and with autolog on, blocks
   alternating. Every timed block runs under ``torch.cuda.set_sync_debug_mode("error")``: any
   synchronising call (``.item()``, a blocking copy to the host, ...) raises. The raw loop is
   checked the same way first, so a failure can only come from autolog's hooks (which run
   with AUTOLOG_TESTING=1 here, so their errors surface instead of becoming a warning).
2. Repeats the autolog blocks under ``set_sync_debug_mode("warn")`` and counts the warnings
   (expected: 0).
3. Prints, per step: wall time (the GPU bound) and the training thread's CPU time (what the
   hooks cost the host), medians over the blocks, raw vs autolog.
4. Ends the training and checks that the recorded loss history equals the losses computed
   (read back, after the timing, from the tensors the loop kept).

Without CUDA it says so and exits 0 after a short CPU run that shows the same loop logging
(losses read every ``--interval`` steps, never per step).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["AUTOLOG_TESTING"] = "1"  # a failure inside our hooks raises instead of warning


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="steps per timed block")
    p.add_argument("--interval", type=int, default=100, help="loss_read_interval")
    p.add_argument("--blocks", type=int, default=5, help="timed blocks per mode")
    p.add_argument("--batch", type=int, default=256)
    return p.parse_args()


def main() -> int:
    args = _args()
    import torch
    from torch import nn

    import autolog
    from integrations import torch as at

    folder = tempfile.mkdtemp(prefix="gpu-sync-check-")
    autolog.set_tracking_uri(folder)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        print("CUDA is not available: skipping the GPU checks (sync debug mode, GPU timings).")
        args.steps, args.blocks, args.batch = min(args.steps, 200), 1, 16
        torch.set_num_threads(1)
    else:
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    width = 1024 if cuda else 64

    torch.manual_seed(0)
    n_batches = 16
    X = torch.randn(n_batches, args.batch, 512, device=device)
    Y = torch.randint(0, 10, (n_batches, args.batch), device=device)

    def make() -> tuple[nn.Module, torch.optim.Optimizer]:
        model = nn.Sequential(
            nn.Linear(512, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, 10),
        ).to(device)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    loss_fn = nn.CrossEntropyLoss()

    def block(
        model: nn.Module, opt: torch.optim.Optimizer, kept: list | None
    ) -> tuple[float, float]:
        """(wall s/step, training-thread CPU s/step) of args.steps steps."""
        if cuda:
            torch.cuda.synchronize()
        w0, c0 = time.perf_counter(), time.thread_time()
        for i in range(args.steps):
            loss = loss_fn(model(X[i % n_batches]), Y[i % n_batches])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if kept is not None:
                kept.append(loss.detach())
        c1 = time.thread_time()
        if cuda:
            torch.cuda.synchronize()
        w1 = time.perf_counter()
        return (w1 - w0) / args.steps, (c1 - c0) / args.steps

    def guarded_block(mode: str, *a: object) -> tuple[float, float]:
        if not cuda:
            return block(*a)  # type: ignore[arg-type]
        torch.cuda.set_sync_debug_mode(mode)
        try:
            return block(*a)  # type: ignore[arg-type]
        finally:
            torch.cuda.set_sync_debug_mode("default")

    # raw first (autolog off): the loop must itself be sync-free, or the check proves nothing
    raw_model, raw_opt = make()
    try:
        guarded_block("error", raw_model, raw_opt, None)  # warm-up
    except RuntimeError as e:
        print(f"The raw loop synchronises by itself ({e}); the check cannot run.")
        return 2
    raw_times = [guarded_block("error", raw_model, raw_opt, None) for _ in range(args.blocks)]

    # then the same loop with autolog on (one training, one run)
    at.autolog(loss_read_interval=args.interval, log_models=False)
    auto_model, auto_opt = make()
    kept: list = []
    guarded_block("error", auto_model, auto_opt, kept)  # warm-up: starts the training's run
    auto_times = [guarded_block("error", auto_model, auto_opt, kept) for _ in range(args.blocks)]

    warns = 0
    if cuda:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            guarded_block("warn", auto_model, auto_opt, kept)
        warns = sum("synchroniz" in str(w.message).lower() for w in caught)

    run_id = autolog.active_run().info.run_id
    at.end_training()
    recorded = [m.value for m in autolog.get_metric_history(run_id, "train_loss")]
    expected = [t.item() for t in kept]
    exact = recorded == expected

    def med(xs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(x[i] for x in xs) * 1e6

    print(
        f"steps per block: {args.steps}, blocks: {args.blocks}, loss_read_interval: {args.interval}"
    )
    print("                      wall us/step   training-thread CPU us/step")
    print(f"raw                   {med(raw_times, 0):12.1f}   {med(raw_times, 1):12.1f}")
    print(f"autolog               {med(auto_times, 0):12.1f}   {med(auto_times, 1):12.1f}")
    print(
        f"added                 {med(auto_times, 0) - med(raw_times, 0):12.1f}   "
        f"{med(auto_times, 1) - med(raw_times, 1):12.1f}"
    )
    if cuda:
        print(f"sync debug mode 'error': no synchronising call from autolog in {len(kept)} steps")
        print(f"sync debug mode 'warn': {warns} synchronisation warnings")
    print(
        f"recorded train_loss points: {len(recorded)} (steps run with autolog: {len(kept)}); "
        f"equal to the computed losses: {exact}"
    )
    ok = exact and warns == 0 and len(recorded) == len(kept)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

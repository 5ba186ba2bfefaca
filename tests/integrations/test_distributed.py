"""Distributed PyTorch on CPU (gloo): two processes, one run, written by global rank 0 only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import autolog
from autolog import tracking

REPO = Path(__file__).resolve().parents[2]

DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    FOLDER, PORT = sys.argv[1], sys.argv[2]

    def worker(rank):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=PORT)
        import autolog
        autolog.set_tracking_uri(os.path.join(FOLDER, "runs"))
        autolog.autolog(log_system_metrics=SYSTEM_METRICS)
        dist.init_process_group("gloo", rank=rank, world_size=2)
        torch.manual_seed(0)
        model = DistributedDataParallel(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        g = torch.Generator().manual_seed(rank)  # each rank its own shard
        X = torch.randn(96, 4, generator=g)
        y = X.sum(1, keepdim=True)
        losses = []
        for _ in range(2):
            for i in range(0, 96, 16):
                loss = nn.functional.mse_loss(model(X[i:i + 16]), y[i:i + 16])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.detach())
        with open(os.path.join(FOLDER, f"losses_{rank}.json"), "w") as f:
            json.dump([float(v) for v in losses], f)
        from integrations import torch as at
        at.end_training()
        dist.destroy_process_group()

    if __name__ == "__main__":
        mp.spawn(worker, nprocs=2, join=True)
    """
)

LIGHTNING_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import pytorch_lightning as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    FOLDER, PORT = sys.argv[1], sys.argv[2]
    import autolog
    autolog.set_tracking_uri(os.path.join(FOLDER, "runs"))
    autolog.autolog()  # at the top: the processes ddp_spawn starts are autologging too

    class Lit(pl.LightningModule):
        def __init__(self, hidden=6):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.mse_loss(self(x), y)
            self.log("fit_loss", loss, on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    if __name__ == "__main__":
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=PORT)
        torch.manual_seed(0)
        X = torch.randn(64, 4)
        loader = DataLoader(TensorDataset(X, X.sum(1, keepdim=True)), batch_size=16)
        trainer = pl.Trainer(
            max_epochs=2, accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False,
            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
            default_root_dir=FOLDER,
        )
        trainer.fit(Lit(), loader)
    """
)


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def run_script(tmp_path: Path, script: str) -> list:
    path = tmp_path / "train.py"
    path.write_text(script)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env.update(PYTHONPATH=str(REPO), AUTOLOG_DISABLE_GIT="1", AUTOLOG_TESTING="1")
    done = subprocess.run(
        [sys.executable, str(path), str(tmp_path), free_port()],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    tracking.set_tracking_uri(str(tmp_path / "runs"))
    return tracking._store().search_runs(None)


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in autolog.get_metric_history(run_id, key)]


def test_ddp_two_processes_log_one_run_with_rank0s_losses(tmp_path):
    runs = run_script(tmp_path, DDP_SCRIPT.replace("SYSTEM_METRICS", "None"))
    assert len(runs) == 1
    [run] = runs
    rank0 = json.loads((tmp_path / "losses_0.json").read_text())
    rank1 = json.loads((tmp_path / "losses_1.json").read_text())
    assert rank0 != rank1  # the ranks trained on different shards
    got = history(run.info.run_id, "train_loss")
    assert [s for s, _ in got] == list(range(12))
    assert [v for _, v in got] == rank0
    params = run.data.params
    assert params["world_size"] == "2"
    assert params["distributed_backend"] == "gloo"
    assert params["model_class"] == "torch.nn.modules.container.Sequential"  # not DDP
    assert run.info.status == "FINISHED"
    from integrations import torch as at

    model = at.load_model(f"runs:/{run.info.run_id}/model")
    assert type(model).__name__ == "Sequential"


def test_lightning_ddp_spawn_two_processes_log_one_run(tmp_path):
    runs = run_script(tmp_path, LIGHTNING_SCRIPT)
    assert len(runs) == 1
    [run] = runs
    params = run.data.params
    assert params["world_size"] == "2"
    assert params["distributed_backend"] == "gloo"
    assert params["hidden"] == "6"
    assert params["epochs"] == "2"
    assert [s for s, _ in history(run.info.run_id, "fit_loss")] == [0, 1]
    assert run.info.status == "FINISHED"

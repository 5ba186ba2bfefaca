"""Lightning's Trainer.fit: one run with hyperparameters, epoch metrics, early stopping, the best
checkpoint and the model; the plain-loop hooks stay quiet inside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autolog
from autolog import testing, tracking
from integrations import _torch_loop
from integrations import torch as at


class LitRegressor(pl.LightningModule):
    def __init__(self, hidden: int = 8, lr: float = 0.05):
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

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.5)


def loaders(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 4, generator=g)
    y = X.sum(1, keepdim=True)
    train = DataLoader(TensorDataset(X[:48], y[:48]), batch_size=16)
    val = DataLoader(TensorDataset(X[48:], y[48:]), batch_size=16)
    return train, val


def trainer(tmp_path, max_epochs=3, **kwargs):
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        **kwargs,
    )


def history(run_id, key):
    return [(m.step, m.value) for m in autolog.get_metric_history(run_id, key)]


def test_fit_logs_one_run_with_hparams_epoch_metrics_checkpoint_and_model(store, tmp_path):
    autolog.autolog()
    torch.manual_seed(0)
    model = LitRegressor(hidden=6, lr=0.02)
    ckpt = ModelCheckpoint(monitor="val_loss", dirpath=str(tmp_path / "ckpt"))
    t = trainer(tmp_path, callbacks=[ckpt])
    train, val = loaders()
    t.fit(model, train, val)

    (run,) = tracking.Client().search_runs(["0"])
    rid = run.info.run_id
    assert run.info.status == "FINISHED" and autolog.active_run() is None
    assert run.data.tags["mlflow.autologging"] == "torch"
    assert _torch_loop.LOOP_TAG not in run.data.tags  # the plain-loop hooks stayed quiet
    p = run.data.params
    assert p["epochs"] == "3" and p["hidden"] == "6" and p["lr"] == "0.02"
    assert p["optimizer_name"] == "SGD" and p["optimizer_lr"] == "0.02"
    assert p["optimizer_momentum"] == "0.5"
    assert p["model_class"] == f"{__name__}.LitRegressor"
    assert p["model_total_params"] == str(4 * 6 + 6 + 6 + 1)
    assert set(run.data.metrics) == {
        "fit_loss",
        "val_loss",
        "num_steps",
        "num_epochs",
        "best_model_score",
    }
    assert [s for s, _ in history(rid, "fit_loss")] == [0, 1, 2]
    assert [s for s, _ in history(rid, "val_loss")] == [0, 1, 2]
    assert run.data.metrics["num_steps"] == 9 and run.data.metrics["num_epochs"] == 3
    assert run.data.metrics["best_model_score"] == pytest.approx(float(ckpt.best_model_score))
    assert run.data.tags["best_model_path"] == ckpt.best_model_path
    files = {f.path for f in tracking.Client().list_artifacts(rid)}
    assert {"model", "model_summary.txt", "checkpoints"} <= files
    ckpt_files = [f.path for f in tracking.Client().list_artifacts(rid, "checkpoints")]
    assert ckpt_files == [f"checkpoints/{ckpt.best_model_path.rsplit('/', 1)[-1]}"]

    X = torch.randn(5, 4)
    loaded = at.load_model(f"runs:/{rid}/model")
    assert type(loaded) is LitRegressor and loaded.hparams["hidden"] == 6
    assert torch.equal(loaded(X), model.eval()(X))
    pyfunc = autolog.load_model(f"runs:/{rid}/model")
    assert pyfunc.metadata.signature is not None
    assert (pyfunc.predict(X.numpy()) == model(X).detach().numpy()).all()


def test_early_stopping_params_and_results(store, tmp_path):
    autolog.autolog()
    torch.manual_seed(1)
    # mode="max" on a falling val_loss: no improvement after the first epoch, stop early
    es = EarlyStopping(monitor="val_loss", mode="max", patience=1, min_delta=0.0)
    t = trainer(tmp_path, max_epochs=10, callbacks=[es])
    train, val = loaders()
    t.fit(LitRegressor(), train, val)
    (run,) = tracking.Client().search_runs(["0"])
    p, m = run.data.params, run.data.metrics
    assert p["early_stopping_monitor"] == "val_loss" and p["early_stopping_mode"] == "max"
    assert p["early_stopping_patience"] == "1"
    assert es.stopped_epoch > 0
    assert m["stopped_epoch"] == es.stopped_epoch
    assert m["restored_epoch"] == es.stopped_epoch - 1
    assert m["wait_count"] == es.wait_count
    assert m["best_score"] == pytest.approx(float(es.best_score))
    assert m["num_epochs"] == es.stopped_epoch + 1


def test_plain_loop_after_a_fit_and_fit_after_a_plain_loop_are_separate_runs(store, tmp_path):
    autolog.autolog()
    net = nn.Linear(4, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    train, val = loaders()
    for x, y in train:
        loss = nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    plain_run = autolog.active_run().info.run_id
    trainer(tmp_path, max_epochs=1).fit(LitRegressor(), train, val)  # ends the plain run first
    assert autolog.get_run(plain_run).info.status == "FINISHED"
    for x, y in train:
        loss = nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    autolog.end_run()
    runs = tracking.Client().search_runs(["0"], order_by=["start_time"])
    assert len(runs) == 3
    plain1, fit, plain2 = runs
    assert plain1.info.run_id == plain_run
    assert [x.data.tags.get(_torch_loop.LOOP_TAG) for x in runs] == ["plain", None, "plain"]
    assert "train_loss" not in fit.data.metrics  # the plain hooks were quiet during the fit
    assert len(history(plain2.info.run_id, "train_loss")) == 3


def test_user_error_in_fit_propagates_and_fails_the_run(store, tmp_path):
    class Broken(LitRegressor):
        def training_step(self, batch, batch_idx):
            raise KeyError("user bug")

    autolog.autolog()
    train, val = loaders()
    with pytest.raises(KeyError, match="user bug"):
        trainer(tmp_path, max_epochs=1).fit(Broken(), train, val)
    (run,) = tracking.Client().search_runs(["0"])
    assert run.info.status == "FAILED"


def test_lightning_not_patched_records_nothing(store, tmp_path):
    train, val = loaders()
    trainer(tmp_path, max_epochs=1).fit(LitRegressor(), train, val)
    assert tracking.Client().search_runs(["0"]) == []


IMPORT_ORDER_SCRIPT = """
import json, sys
import autolog
autolog.set_tracking_uri(sys.argv[1])
autolog.autolog()  # before torch and Lightning are imported: patched by the import hooks
import torch
import pytorch_lightning as pl
from torch import nn

class Tiny(pl.LightningModule):
    def __init__(self, width=3):
        super().__init__()
        self.save_hyperparameters()
        self.lin = nn.Linear(2, width)
    def forward(self, x):
        return self.lin(x)
    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self(x).pow(2).mean()
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=4)
trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, enable_checkpointing=False,
                     default_root_dir=sys.argv[1])
trainer.fit(Tiny(), data)
runs = autolog.search_runs(output_format="list")
print(json.dumps([{"params": r.data.params, "tags": r.data.tags} for r in runs]))
"""


def test_lightning_imported_after_autolog_is_patched(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(IMPORT_ORDER_SCRIPT)
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "AUTOLOG_TESTING"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store")],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(repo), "AUTOLOG_TESTING": "1"},
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert run["tags"]["mlflow.autologging"] == "torch"
    assert run["params"]["width"] == "3" and run["params"]["optimizer_name"] == "SGD"
    assert _torch_loop.LOOP_TAG not in run["tags"]


# -- the contract kit -------------------------------------------------------------------------------


SGD_HYPERPARAMETERS = (
    "dampening",
    "differentiable",
    "foreach",
    "fused",
    "lr",
    "maximize",
    "momentum",
    "nesterov",
    "weight_decay",
)


class _Raising(LitRegressor):
    error: BaseException

    def training_step(self, batch, batch_idx):
        raise self.error


def _fit(tmp_path, module):
    train, val = loaders()
    trainer(tmp_path, max_epochs=1).fit(module, train, val)


def _failing_fit(tmp_path, exc):
    module = _Raising()
    module.error = exc
    _fit(tmp_path, module)


def test_contract(store, tmp_path):
    torch.manual_seed(0)
    testing.check_contract(
        "torch",
        train=lambda: _fit(tmp_path, LitRegressor()),
        run_name="LitRegressor",
        params={
            "epochs",
            "hidden",
            "lr",
            "model_class",
            "model_total_params",
            "model_trainable_params",
            "optimizer_name",
            *(f"optimizer_{k}" for k in SGD_HYPERPARAMETERS),
        },
        metrics={"fit_loss", "num_epochs", "num_steps", "val_loss"},
        fail=lambda exc: _failing_fit(tmp_path, exc),
        # the plain-loop hooks (optimizer steps, backward) inside the fit stay quiet
        nested=lambda: _fit(tmp_path, LitRegressor(hidden=4)),
    )

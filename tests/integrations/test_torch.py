"""PyTorch plain training loops (and TensorBoard): what one loop records, run boundaries,
the model round trip, no device reads per step, failures isolated."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autolog
from autolog import testing, tracking
from autolog.errors import AutologWarning
from integrations import _torch_loop, _torch_model
from integrations import torch as at

REPO = Path(__file__).resolve().parents[2]


class Net(nn.Module):
    def __init__(self, hidden: int = 8, act: type = nn.ReLU, out: int = 1):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, hidden), act(), nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    return X, X.sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g)


def loader(n: int = 96, batch_size: int = 16, seed: int = 0) -> DataLoader:
    X, y = data(n, seed)
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=False)


def train(model, optimizer, batches, epochs=1, scheduler=None):
    """The plain loop the user writes; returns loss.item() of every step (read AFTER training
    through the kept tensors, so the loop itself never synchronises)."""
    losses = []
    for _ in range(epochs):
        for x, y in batches:
            loss = nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            losses.append(loss.detach())
    return [t.item() for t in losses]


def runs():
    return tracking.Client().search_runs(["0"], order_by=["start_time"])


def history(run_id, key):
    return [(m.step, m.value) for m in autolog.get_metric_history(run_id, key)]


# -- one plain loop ---------------------------------------------------------------------------


def test_plain_loop_records_params_metrics_and_model_with_exact_keys(store):
    autolog.autolog()
    torch.manual_seed(0)
    model = Net(hidden=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.001)
    dl = loader()
    losses = train(model, optimizer, dl, epochs=3)
    active = autolog.active_run()
    assert active is not None  # the training's run stays active until the training ends
    run_id = active.info.run_id
    autolog.end_run()

    (run,) = runs()
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.tags[patching_tag()] == "torch"
    assert run.data.tags[_torch_loop.LOOP_TAG] == "plain"
    group = optimizer.param_groups[0]
    expected_params = {
        "batch_size": "16",
        "model_class": f"{__name__}.Net",
        "model_total_params": str(4 * 8 + 8 + 8 + 1),
        "model_trainable_params": str(4 * 8 + 8 + 8 + 1),
        "optimizer_name": "Adam",
        **{
            f"optimizer_{k}": str(v) for k, v in group.items() if k not in ("params", "param_names")
        },
    }
    assert run.data.params == expected_params
    assert run.data.params["optimizer_lr"] == "0.01"
    assert run.data.params["optimizer_betas"] == "(0.9, 0.999)"
    assert run.data.params["optimizer_weight_decay"] == "0.001"
    assert set(run.data.metrics) == {
        "train_loss",
        "train_loss_epoch",
        "lr",
        "num_steps",
        "num_epochs",
    }
    # exact loss history: every step, the very float32 values the loop computed
    assert history(run_id, "train_loss") == list(enumerate(losses))
    per_epoch = [losses[i : i + 6] for i in range(0, 18, 6)]
    epoch_hist = history(run_id, "train_loss_epoch")
    assert [s for s, _ in epoch_hist] == [0, 1, 2]
    for (_, v), chunk in zip(epoch_hist, per_epoch, strict=True):
        assert v == pytest.approx(sum(chunk) / len(chunk), rel=1e-12)
    assert history(run_id, "lr") == [(0, 0.01)]  # recorded when it changes: never
    assert run.data.metrics["num_steps"] == 18 and run.data.metrics["num_epochs"] == 3
    files = {f.path for f in tracking.Client().list_artifacts(run_id)}
    assert {"model", "model_summary.txt"} <= files
    summary = (store.artifact_dir(run_id, "model_summary.txt")).read_text()
    assert summary.startswith(str(model)) and "Total params: 49" in summary


def patching_tag():
    from autolog.patching import INTEGRATION_TAG

    return INTEGRATION_TAG


def test_reloaded_model_predicts_like_the_trained_model(store):
    autolog.autolog()
    torch.manual_seed(1)
    model = Net(hidden=6, act=nn.Tanh)
    train(model, torch.optim.SGD(model.parameters(), lr=0.05), loader(), epochs=2)
    run_id = autolog.active_run().info.run_id
    autolog.end_run()
    X, _ = data(10, seed=5)
    with torch.no_grad():
        expected = model.eval()(X)

    pyfunc = autolog.load_model(f"runs:/{run_id}/model")
    out = pyfunc.predict(X.numpy())
    assert isinstance(out, np.ndarray) and np.array_equal(out, expected.numpy())
    out_t = pyfunc.predict(X)  # a tensor in, a tensor out
    assert isinstance(out_t, torch.Tensor) and torch.equal(out_t, expected)
    sig = pyfunc.metadata.signature.to_dict()
    assert json.loads(sig["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}
    ]
    assert json.loads(sig["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}
    ]

    module = at.load_model(f"runs:/{run_id}/model")
    assert type(module) is Net and not module.training
    assert isinstance(module.body[1], nn.Tanh)  # rebuilt from the recipe's arguments
    assert torch.equal(module(X), expected)
    # weights only, into a model the caller built: nothing is imported or unpickled
    fresh = at.load_model(f"runs:/{run_id}/model", model=Net(hidden=6, act=nn.Tanh))
    assert torch.equal(fresh(X), expected)

    conf = pyfunc.metadata.flavors["pytorch"]
    assert conf["model_format"] == "state_dict+recipe"  # no pickle: the class is importable
    spec = json.loads((pyfunc.path / conf["model_spec"]).read_text())
    assert spec["model"] == {
        "class": f"{__name__}:Net",
        "args": [6, {"__autolog__": "import", "path": "torch.nn.modules.activation:Tanh"}, 1],
        "kwargs": {},
    }


def test_lr_schedule_is_recorded_at_the_steps_it_changes(store):
    autolog.autolog()
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)
    train(model, optimizer, loader(n=160), scheduler=scheduler)  # 10 steps
    run_id = autolog.active_run().info.run_id
    autolog.end_run()
    assert history(run_id, "lr") == [(0, 0.1), (4, 0.05), (8, 0.025)]
    assert autolog.get_run(run_id).data.params["optimizer_momentum"] == "0.9"


def test_two_sequential_trainings_get_two_runs_each_with_its_own_model(store):
    autolog.autolog()
    torch.manual_seed(2)
    first = Net(hidden=4)
    losses1 = train(first, torch.optim.Adam(first.parameters(), 0.01), loader(), epochs=2)
    second = Net(hidden=12)
    losses2 = train(second, torch.optim.Adam(second.parameters(), 0.01), loader(), epochs=2)
    autolog.end_run()

    r1, r2 = runs()
    assert (r1.info.status, r2.info.status) == ("FINISHED", "FINISHED")
    assert r1.data.params["model_total_params"] == str(4 * 4 + 4 + 4 + 1)
    assert r2.data.params["model_total_params"] == str(4 * 12 + 12 + 12 + 1)
    assert history(r1.info.run_id, "train_loss") == list(enumerate(losses1))
    assert history(r2.info.run_id, "train_loss") == list(enumerate(losses2))
    X, _ = data(5, seed=9)
    for run, model in ((r1, first), (r2, second)):
        loaded = at.load_model(f"runs:/{run.info.run_id}/model")
        assert torch.equal(loaded(X), model.eval()(X))


def test_a_dropped_optimizer_is_not_kept_alive_and_ends_its_training_at_once(store):
    import gc
    import weakref

    autolog.autolog()
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    train(model, opt, loader(n=32))
    first_run = autolog.active_run().info.run_id
    ref = weakref.ref(opt)
    model = Net(hidden=3)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)  # the first optimizer is dropped
    gc.collect()
    assert ref() is None  # autolog held it weakly: its state is freed
    x, y = data(8)
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()  # first step of the next training: the first can never step again, it ends now
    assert autolog.get_run(first_run).info.status == "FINISHED"
    assert autolog.active_run().info.run_id != first_run


def test_a_new_optimizer_on_the_same_model_continues_the_training(store):
    autolog.autolog()
    model = Net()
    losses = train(model, torch.optim.SGD(model.parameters(), lr=0.01), loader(n=48))
    losses += train(model, torch.optim.SGD(model.parameters(), lr=0.001), loader(n=48))
    autolog.end_run()
    (run,) = runs()
    assert history(run.info.run_id, "train_loss") == list(enumerate(losses))
    assert history(run.info.run_id, "lr") == [(0, 0.01), (3, 0.001)]
    assert run.data.params["optimizer_lr"] == "0.01" and "optimizer1_lr" not in run.data.params


def test_gan_style_interleaved_optimizers_share_one_run(store):
    autolog.autolog()
    torch.manual_seed(3)
    g, d = Net(hidden=4), Net(hidden=5)
    opt_g = torch.optim.Adam(g.parameters(), 0.01)
    opt_d = torch.optim.SGD(d.parameters(), 0.01)
    d_losses, g_losses = [], []
    for x, _ in loader(n=320):  # 20 iterations; 2 critic steps per generator step
        for _ in range(2):
            d_loss = d(x).pow(2).mean()
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            d_losses.append(d_loss.item())
        g_loss = (g(x) - 1).pow(2).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        g_losses.append(g_loss.item())
    autolog.end_run()
    (run,) = runs()
    rid = run.info.run_id
    assert history(rid, "train_loss") == list(enumerate(d_losses))
    assert history(rid, "train_loss_opt1") == list(enumerate(g_losses))
    assert run.data.params["optimizer_name"] == "SGD"
    assert run.data.params["optimizer1_name"] == "Adam"
    assert run.data.params["model_total_params"] == str(4 * 5 + 5 + 5 + 1)
    assert run.data.params["model1_total_params"] == str(4 * 4 + 4 + 4 + 1)
    files = {f.path for f in tracking.Client().list_artifacts(rid)}
    assert {"model", "model1", "model_summary.txt", "model1_summary.txt"} <= files


def test_gradient_accumulation_records_the_sum_per_step(store):
    autolog.autolog()
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    expected = []
    batches = list(loader(n=64, batch_size=8))
    for i in range(0, len(batches), 2):
        total = 0.0
        for x, y in batches[i : i + 2]:
            loss = nn.functional.mse_loss(model(x), y) / 2
            loss.backward()
            total += loss.item()
        optimizer.step()
        optimizer.zero_grad()
        expected.append(total)
    autolog.end_run()
    (run,) = runs()
    hist = history(run.info.run_id, "train_loss")
    assert [s for s, _ in hist] == [0, 1, 2, 3]
    assert [v for _, v in hist] == pytest.approx(expected, rel=1e-12)


def test_grad_scaler_records_the_unscaled_loss_and_skipped_steps_none(store):
    autolog.autolog()
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    expected = []
    for i, (x, y) in enumerate(loader(n=64)):
        loss = nn.functional.mse_loss(model(x), y)
        if i == 1:
            loss = loss * float("inf")  # inf gradients: the scaler skips this step
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if i != 1:
            expected.append(loss.item())
    autolog.end_run()
    (run,) = runs()
    assert history(run.info.run_id, "train_loss") == list(enumerate(expected))
    assert run.data.metrics["num_steps"] == 3


# -- run boundaries ---------------------------------------------------------------------------


def test_with_start_run_bounds_the_training(store):
    autolog.autolog()
    model = Net()
    with autolog.start_run(run_name="mine") as run:
        losses = train(model, torch.optim.SGD(model.parameters(), lr=0.01), loader())
        autolog.log_metric("val", 1.5)
    assert autolog.active_run() is None
    (only,) = runs()
    assert only.info.run_id == run.info.run_id and only.info.status == "FINISHED"
    assert history(run.info.run_id, "train_loss") == list(enumerate(losses))
    assert only.data.metrics["val"] == 1.5
    assert "model" in {f.path for f in tracking.Client().list_artifacts(run.info.run_id)}


def test_second_training_inside_a_user_run_gets_a_child_run(store):
    autolog.autolog()
    with autolog.start_run() as parent:
        first = Net(hidden=3)
        losses1 = train(first, torch.optim.SGD(first.parameters(), lr=0.01), loader(), epochs=2)
        second = Net(hidden=5)
        losses2 = train(second, torch.optim.SGD(second.parameters(), lr=0.01), loader(n=32))
    pid = parent.info.run_id
    child = tracking.Client().search_runs(["0"], filter_string=f"tags.mlflow.parentRunId = '{pid}'")
    assert len(child) == 1 and len(runs()) == 2
    assert history(pid, "train_loss") == list(enumerate(losses1))
    # the second training had 2 steps when the block ended: it is logged all the same
    assert history(child[0].info.run_id, "train_loss") == list(enumerate(losses2))
    for run_id in (pid, child[0].info.run_id):
        assert autolog.get_run(run_id).info.status == "FINISHED"
        assert "model" in {f.path for f in tracking.Client().list_artifacts(run_id)}


def test_end_training_ends_it_and_the_next_step_starts_a_new_one(store):
    autolog.autolog()
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train(model, optimizer, loader(n=32))
    at.end_training()
    assert autolog.active_run() is None
    train(model, optimizer, loader(n=48))
    autolog.end_run()
    first, second = runs()
    assert len(history(first.info.run_id, "train_loss")) == 2
    assert len(history(second.info.run_id, "train_loss")) == 3


def test_starting_a_run_after_a_training_ends_the_training_run(store):
    autolog.autolog()
    model = Net()
    train(model, torch.optim.SGD(model.parameters(), lr=0.01), loader())
    training_run = autolog.active_run().info.run_id
    with autolog.start_run() as mine:  # no "already active" error: the training's run yields
        pass
    first = autolog.get_run(training_run)
    assert first.info.status == "FINISHED" and first.info.run_id != mine.info.run_id
    assert "model" in {f.path for f in tracking.Client().list_artifacts(training_run)}


def test_user_exception_mid_loop_fails_the_run_and_keeps_the_points(store):
    at.autolog(loss_read_interval=7)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seen = []
    boom = ValueError("user bug")
    with pytest.raises(ValueError) as info, autolog.start_run() as run:
        for i, (x, y) in enumerate(loader(n=160)):
            if i == 6:
                raise boom
            loss = nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen.append(loss.item())
    assert info.value is boom
    failed = autolog.get_run(run.info.run_id)
    assert failed.info.status == "FAILED"
    assert history(run.info.run_id, "train_loss") == list(enumerate(seen))
    assert "model" not in {f.path for f in tracking.Client().list_artifacts(run.info.run_id)}


SCRIPT = """
import sys, json, torch
from torch import nn
import autolog
autolog.set_tracking_uri(sys.argv[1])
autolog.autolog()

class Script(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.lin = nn.Linear(3, width)
        self.out = nn.Linear(width, 2)
    def forward(self, x):
        return self.out(torch.relu(self.lin(x)))

torch.manual_seed(0)
model = Script(5)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
X = torch.randn(40, 3)
losses = []
for i in range(10):
    if i == 8 and sys.argv[2] == "fail":
        raise RuntimeError("crash mid-training")
    loss = model(X[i * 4:(i + 1) * 4]).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    losses.append(loss.item())
    with open(sys.argv[3], "w") as f:
        json.dump({"losses": losses, "pred": model.eval()(X[:3]).tolist(), "x": X[:3].tolist()}, f)
    model.train()
"""


@pytest.mark.parametrize("mode", ["ok", "fail"])
def test_run_ends_at_interpreter_exit_finished_or_failed(tmp_path, mode):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out.json"
    folder = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, str(script), str(folder), mode, str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**_env(), "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert proc.returncode == (0 if mode == "ok" else 1), proc.stderr
    facts = json.loads(out.read_text())
    autolog.set_tracking_uri(str(folder))
    (run,) = tracking.Client().search_runs(["0"])
    assert run.info.status == ("FINISHED" if mode == "ok" else "FAILED")
    assert history(run.info.run_id, "train_loss") == list(enumerate(facts["losses"]))
    has_model = "model" in {f.path for f in tracking.Client().list_artifacts(run.info.run_id)}
    assert has_model == (mode == "ok")
    if mode == "ok":
        # The class lives in the script's __main__: this process rebuilds it from the pickle
        # written beside the state_dict (cloudpickle, by value).
        loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
        conf = loaded.metadata.flavors["pytorch"]
        assert conf["model_format"] == "state_dict+recipe+pickle"
        pred = loaded.predict(np.asarray(facts["x"], dtype=np.float32))
        assert np.array_equal(pred, np.asarray(facts["pred"], dtype=np.float32))


def _env():
    import os

    env = dict(os.environ)
    env.pop("AUTOLOG_TESTING", None)
    return env


def test_disable_ends_the_training_and_removes_every_hook(store):
    import torch.autograd
    from torch.nn.modules import module as mm
    from torch.optim import optimizer as om

    init_before = nn.Module.__dict__["__init__"]
    backward_before = torch.autograd.__dict__["backward"]
    iter_before = DataLoader.__dict__["__iter__"]
    autolog.autolog()
    autolog.autolog()  # twice: patched once
    assert nn.Module.__dict__["__init__"] is not init_before
    assert len(om._global_optimizer_post_hooks) == 1
    model = Net()
    train(model, torch.optim.SGD(model.parameters(), lr=0.01), loader())
    run_id = autolog.active_run().info.run_id
    autolog.autolog(disable=True)
    assert autolog.get_run(run_id).info.status == "FINISHED"
    assert autolog.active_run() is None
    assert nn.Module.__dict__["__init__"] is init_before
    assert torch.autograd.__dict__["backward"] is backward_before
    assert DataLoader.__dict__["__iter__"] is iter_before
    assert not om._global_optimizer_post_hooks
    assert not mm._global_forward_hooks and not mm._global_forward_pre_hooks


def test_not_patched_records_nothing(store):
    model = Net()
    train(model, torch.optim.SGD(model.parameters(), lr=0.01), loader())
    assert runs() == []
    autolog.autolog(exclude=["torch"])
    train(model, torch.optim.SGD(model.parameters(), lr=0.01), loader())
    assert runs() == []


def test_exclusive_leaves_user_runs_alone(store):
    at.autolog(exclusive=True)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with autolog.start_run() as run:
        train(model, optimizer, loader())
    assert autolog.get_run(run.info.run_id).data.metrics == {}
    assert len(runs()) == 1
    losses = train(model, optimizer, loader(n=32))  # outside the user's run: recorded
    autolog.end_run()
    mine, other = runs()
    assert mine.info.run_id == run.info.run_id
    assert history(other.info.run_id, "train_loss") == list(enumerate(losses))


# -- no device synchronisation per step -------------------------------------------------------

SYNCING = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "to")


def _count_syncing_calls(monkeypatch, fn):
    counts = {name: 0 for name in SYNCING}
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def counting(self, *a, _name=name, _orig=original, **k):
            counts[_name] += 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counting)
    try:
        fn()
    finally:
        monkeypatch.undo()
    return counts


def test_losses_are_read_in_batches_not_per_step(store, monkeypatch):
    n_steps, every = 100, 10
    X, y = data(n_steps * 4, seed=3)
    batches = [(X[i * 4 : (i + 1) * 4], y[i * 4 : (i + 1) * 4]) for i in range(n_steps)]

    def loop():
        kept.clear()
        torch.manual_seed(0)
        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for x, t in batches:
            loss = nn.functional.mse_loss(model(x), t)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            kept.append(loss.detach())

    kept: list = []
    raw = _count_syncing_calls(monkeypatch, loop)
    at.autolog(loss_read_interval=every)
    logged = _count_syncing_calls(monkeypatch, loop)
    added = {k: logged[k] - raw[k] for k in SYNCING if logged[k] != raw[k]}
    assert sum(added.values()) <= math.ceil(n_steps / every), added
    assert added == {"tolist": n_steps // every}  # one read of ten stacked losses, ten times
    expected = [t.item() for t in kept]
    autolog.end_run()
    (run,) = runs()
    assert history(run.info.run_id, "train_loss") == list(enumerate(expected))


# -- our failures stay ours -------------------------------------------------------------------


def test_injected_logging_failure_leaves_training_unaffected_with_one_warning(store, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    def trained_weights():
        torch.manual_seed(4)
        model = Net()
        train(model, torch.optim.Adam(model.parameters(), 0.01), loader(n=320), epochs=2)
        return [p.detach().clone() for p in model.parameters()]

    expected = trained_weights()
    monkeypatch.delenv("AUTOLOG_TESTING")
    at.autolog(loss_read_interval=5)
    monkeypatch.setattr(_torch_loop._Member, "_consume", boom)
    monkeypatch.setattr(_torch_loop.patching, "_last_warning", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = trained_weights()
        autolog.end_run()
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1 and "injected" in str(ours[0].message)
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    (run,) = runs()
    assert run.info.status == "FINISHED"  # the run still ends, with what could be logged


def test_injected_failure_raises_under_autolog_testing(store, monkeypatch):
    autolog.autolog()
    monkeypatch.setattr(_torch_loop._Member, "step", lambda *a: 1 / 0)
    model = Net()
    with pytest.raises(ZeroDivisionError):
        train(model, torch.optim.SGD(model.parameters(), lr=0.01), loader())


# -- the recipe: when it is not enough --------------------------------------------------------


def test_changed_model_falls_back_to_the_pickle_and_still_reloads(store):
    autolog.autolog()
    model = Net(hidden=5)
    model.body[2] = nn.Linear(5, 3)  # a new head after construction: the recipe is wrong
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    X, y = data(32)
    for i in range(4):
        loss = model(X[i * 8 : (i + 1) * 8]).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    run_id = autolog.active_run().info.run_id
    autolog.end_run()
    pyfunc = autolog.load_model(f"runs:/{run_id}/model")
    conf = pyfunc.metadata.flavors["pytorch"]
    assert conf["model_format"] == "state_dict+pickle"
    assert "changed after it was constructed" in conf["recipe_problem"]
    assert np.array_equal(pyfunc.predict(X.numpy()), model.eval()(X).detach().numpy())


def test_without_recipe_or_pickle_the_weights_load_into_a_given_model(store, tmp_path):
    autolog.autolog()
    import copy

    model = copy.deepcopy(Net(hidden=3))  # copies run no __init__: no recipe
    assert not _torch_model.has_recipe(model)
    path = tmp_path / "m"
    at.save_model(model, path, pickle_model=False)
    with pytest.raises(autolog.AutologError, match="model=YourModel"):
        at.load_model(path)
    loaded = at.load_model(path, model=Net(hidden=3))
    X, _ = data(4)
    assert torch.equal(loaded(X), model.eval()(X))


def test_recipe_records_nested_modules_dtypes_tensors_and_dataclasses(tmp_path):
    from dataclasses import dataclass

    autolog.autolog()
    weights = torch.arange(12.0).reshape(4, 3)
    model = nn.Sequential(
        nn.Embedding.from_pretrained(weights, freeze=False),
        nn.Linear(3, 2, dtype=torch.float64),
    )
    spec, tensors = _torch_model.make_spec(model)
    _torch_model.verify(model, spec, tensors)
    rebuilt = _torch_model.build(json.loads(_torch_model.spec_to_json(spec)), tensors)
    assert torch.equal(rebuilt[0].weight, weights) and rebuilt[1].weight.dtype == torch.float64

    @dataclass
    class Local:
        width: int

    class Configured(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.lin = nn.Linear(2, cfg.width)

    with pytest.raises(_torch_model.RecipeError, match="inside a function"):
        _torch_model.make_spec(Configured(Local(3)))


# -- TensorBoard ------------------------------------------------------------------------------


def test_tensorboard_scalars_are_recorded_in_the_training_run(store, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    autolog.autolog()
    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step, (x, y) in enumerate(loader(n=64)):
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        writer.add_scalar("tb/loss", loss.item(), step)
        writer.add_scalars("pair", {"a": float(step), "b": 2.0 * step}, global_step=step)
    writer.add_hparams({"hidden": 8}, {"hparam/score": 0.5})
    writer.close()
    autolog.end_run()
    (run,) = runs()
    rid = run.info.run_id
    assert [s for s, _ in history(rid, "tb/loss")] == [0, 1, 2, 3]
    assert history(rid, "pair/b") == [(i, 2.0 * i) for i in range(4)]
    assert run.data.params["hidden"] == "8" and run.data.metrics["hparam/score"] == 0.5
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))  # the writer still writes


def test_tensorboard_without_training_gets_its_own_run(store, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    autolog.autolog()
    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    for step in range(3):
        writer.add_scalar("score", step / 2, step)
    writer.close()
    autolog.end_run()
    (run,) = runs()
    assert history(run.info.run_id, "score") == [(0, 0.0), (1, 0.5), (2, 1.0)]


def test_registered_model_name_registers_each_training_model(store):
    at.autolog(registered_model_name="torch-net")
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train(model, optimizer, loader(n=32))
    at.end_training()
    (run,) = runs()
    client = autolog.Client()
    version = client.get_model_version("torch-net", 1)
    assert version.run_id == run.info.run_id
    X, _ = data(8)
    loaded = autolog.load_model("models:/torch-net/1")
    with torch.no_grad():
        expected = model(X).numpy()
    np.testing.assert_array_equal(loaded.predict(X.numpy()), expected)


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


def _plain_loop():
    torch.manual_seed(0)
    model = Net(hidden=8)
    train(model, torch.optim.SGD(model.parameters(), lr=0.01), loader(n=48), epochs=2)


def _failing_loop(exc):
    # A plain loop has no library call to raise through: the user's run bounds the training.
    model = Net(hidden=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with autolog.start_run():
        for i, (x, y) in enumerate(loader(n=48)):
            if i == 2:
                raise exc
            loss = nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def test_contract(store):
    testing.check_contract(
        "torch",
        train=_plain_loop,
        run_name="Net",
        params={
            "batch_size",
            "model_class",
            "model_total_params",
            "model_trainable_params",
            "optimizer_name",
            *(f"optimizer_{k}" for k in SGD_HYPERPARAMETERS),
        },
        metrics={"lr", "num_epochs", "num_steps", "train_loss", "train_loss_epoch"},
        artifacts={"model", "model_summary.txt"},
        fail=_failing_loop,
    )

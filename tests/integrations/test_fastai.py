"""fastai: one run per outermost fit / schedule call, exact epoch metrics, the fastai flavor.

fastai.vision needs a torchvision built for the installed torch, which cannot be installed
here (docs/fastai.md); these tests train tabular learners only.
"""

from __future__ import annotations

import functools
import importlib
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from fastai.callback.core import Callback
from fastai.callback.tracker import EarlyStoppingCallback, SaveModelCallback
from fastai.optimizer import OptimWrapper
from fastai.tabular.all import (
    Categorify,
    FillMissing,
    Normalize,
    TabularDataLoaders,
    accuracy,
    tabular_learner,
)
from fastai.torch_core import set_seed
from fastcore.basics import noop

import autolog
from autolog import integration, patching, testing, tracking
from autolog.errors import AutologWarning, IntegrationError, ModelLoadError

ENTRY_POINT = "[autolog.integrations]\nfastai = integrations.fastai\n"


@pytest.fixture(scope="module", autouse=True)
def entry_point(tmp_path_factory):
    """The fastai entry point, until the shared environment is reinstalled with it."""
    folder = tmp_path_factory.mktemp("fastai-entry-point")
    dist = folder / "autolog_fastai_tests-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: autolog-fastai-tests\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(ENTRY_POINT)
    sys.path.insert(0, str(folder))
    known = "fastai" in integration.INTEGRATIONS
    integration.discover()
    yield
    sys.path.remove(str(folder))
    if not known:
        for table in (integration.INTEGRATIONS, integration._modules, integration._loaded):
            table.pop("fastai", None)
        integration._hooked.discard("fastai")


@functools.cache
def frame(n: int = 256) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)}
    )
    df["y"] = np.where(df.a + (df.c == "x") > 0.3, "pos", "neg")
    return df


def learner(path=None, two_groups: bool = False, **kwargs):
    set_seed(0, reproducible=True)  # Python's, numpy's and torch's: fits repeat exactly
    df = frame()
    dls = TabularDataLoaders.from_df(
        df,
        path=path or ".",
        y_names="y",
        cat_names=["c"],
        cont_names=["a", "b"],
        procs=[Categorify, FillMissing, Normalize],
        bs=32,
        valid_idx=list(range(192, 256)),
    )
    if two_groups:  # embeddings, then the rest: fine_tune can freeze the first group
        kwargs["splitter"] = lambda m: [
            list(m.embeds.parameters()),
            list(m.bn_cont.parameters()) + list(m.layers.parameters()),
        ]
    # n_out given: fastai 2.8.12's get_c returns a list with this fastcore (2.2.41)
    learn = tabular_learner(dls, layers=[8], n_out=2, metrics=[accuracy], **kwargs)
    learn.logger = noop  # no table printed per epoch
    learn.remove_cb(learn.progress)
    return learn


class Raises(Callback):
    def __init__(self, exc):
        self.exc = exc

    def before_epoch(self):
        raise self.exc


class Keep(Callback):
    """Copies the Recorder's values at the end of each fit (fine_tune makes two)."""

    order = 60

    def __init__(self):
        self.values = []

    def after_fit(self):
        self.values.append([list(v) for v in self.recorder.values])


def only_run():
    runs = autolog.search_runs(output_format="list")
    assert len(runs) == 1
    return runs[0]


def history(run_id, key):
    return [(m.step, m.value) for m in autolog.get_metric_history(run_id, key)]


FIT_PARAMS = {"fit_method", "epochs", "reset_opt", "start_epoch"}
GLOBAL_PARAMS = {
    "opt_func",
    "loss_func",
    "layer_groups",
    "batch_size",
    "train_bn",
    "wd_bn_bias",
    "model_class",
    "model_total_params",
    "model_trainable_params",
}
ADAM = {"wd", "sqr_mom", "lr", "mom", "eps"}
ONE_CYCLE = {f"{k}_{s}" for k in ("lr", "mom") for s in ("min", "max", "init", "final")}


def test_contract(store):
    testing.check_contract(
        "fastai",
        train=lambda: learner().fit(2, 1e-2),
        run_name="TabularLearner",
        params=FIT_PARAMS | GLOBAL_PARAMS | ADAM,
        metrics={"train_loss", "valid_loss", "accuracy", "lr", "mom"},
        artifacts={"model", "model_summary.txt"},
        fail=lambda exc: learner().fit(1, cbs=Raises(exc)),
        nested=lambda: learner().fine_tune(1, freeze_epochs=1),
    )


def test_epoch_metrics_equal_the_recorder_and_steps_are_downsampled(store):
    autolog.autolog()
    learn = learner()
    learn.fit_one_cycle(3, lr_max=1e-2, pct_start=0.3)
    run = only_run()
    names = ["train_loss", "valid_loss", "accuracy"]
    for i, name in enumerate(names):
        assert history(run.info.run_id, name) == [
            (epoch, float(v[i])) for epoch, v in enumerate(learn.recorder.values)
        ]
    lrs = learn.recorder.lrs
    assert len(lrs) == 18  # 6 training batches of 32 per epoch
    assert history(run.info.run_id, "lr") == [(s, float(lrs[s])) for s in (0, 10)]
    moms = learn.recorder.hps["mom"]  # what fit_one_cycle's ParamScheduler applied per batch
    assert history(run.info.run_id, "mom") == [(s, float(moms[s])) for s in (0, 10)]
    p = run.data.params
    assert set(p) == (
        FIT_PARAMS
        | GLOBAL_PARAMS
        | ONE_CYCLE
        | {"div", "div_final", "pct_start"}
        | {"moms", "wd", "sqr_mom", "eps"}
    )
    assert (p["fit_method"], p["epochs"], p["pct_start"], p["div"]) == (
        "fit_one_cycle",
        "3",
        "0.3",
        "25.0",
    )
    assert (p["lr_max"], p["lr_init"], p["mom_min"], p["mom_max"]) == (
        "0.01",
        "0.0004",
        "0.85",
        "0.95",
    )
    assert (p["opt_func"], p["loss_func"], p["batch_size"]) == (
        "Adam",
        "CrossEntropyLossFlat",
        "32",
    )
    total = sum(x.numel() for x in learn.model.parameters())
    assert p["model_total_params"] == str(total)
    assert p["model_class"] == "fastai.tabular.model.TabularModel"


def test_fine_tune_is_one_run_with_both_phases(store):
    autolog.autolog()
    learn = learner(two_groups=True)
    keep = Keep()
    cbs = [keep]
    before = list(learn.cbs)
    learn.fine_tune(2, freeze_epochs=1, cbs=cbs)
    assert cbs == [keep] and list(learn.cbs) == before  # ours went to a copy, and is gone
    run = only_run()
    frozen, unfrozen = keep.values
    assert len(frozen) == 1 and len(unfrozen) == 2
    expected = [(0, frozen[0][1])] + [(1 + i, v[1]) for i, v in enumerate(unfrozen)]
    assert history(run.info.run_id, "valid_loss") == [(s, float(v)) for s, v in expected]
    p = run.data.params
    assert (p["fit_method"], p["epochs"], p["freeze_epochs"], p["lr_mult"]) == (
        "fine_tune",
        "2",
        "1",
        "100",
    )
    assert p["freeze_frozen_idx"] == "1" and p["layer_groups"] == "2"
    # fastai's slice(lr): lr/10 for the first groups, lr for the last; unfrozen: base_lr/2 over
    # lr_mult, spread geometrically over the groups
    assert p["freeze_lr_max"] == "[0.0002, 0.002]"
    assert p["lr_max"] == "[1e-05, 0.001]"
    steps = [s for s, _ in history(run.info.run_id, "lr")]
    assert steps == [0, 10]  # 18 training batches over the call's 3 epochs


def test_fit_flat_cos_and_fit_sgdr_record_their_schedules(store):
    autolog.autolog(log_models=False)
    learn = learner()
    learn.fit_flat_cos(2, lr=1e-2)
    flat = only_run()
    p = flat.data.params
    assert (p["fit_method"], p["epochs"], p["pct_start"], p["div_final"]) == (
        "fit_flat_cos",
        "2",
        "0.75",
        "100000.0",
    )
    assert (p["lr_max"], p["lr_init"], p["mom"]) == ("0.01", "0.01", "0.9")
    assert history(flat.info.run_id, "valid_loss") == [
        (e, float(v[1])) for e, v in enumerate(learn.recorder.values)
    ]
    tracking.Client().delete_run(flat.info.run_id)
    learn = learner()
    learn.fit_sgdr(2, 1, lr_max=1e-2)  # cycles of 1 and 2 epochs
    sgdr = only_run()
    p = sgdr.data.params
    assert (p["fit_method"], p["epochs"], p["n_cycles"], p["cycle_len"], p["cycle_mult"]) == (
        "fit_sgdr",
        "3",
        "2",
        "1",
        "2",
    )
    assert (p["lr_max"], p["lr_init"]) == ("0.01", "0.01")
    assert history(sgdr.info.run_id, "train_loss") == [
        (e, float(v[0])) for e, v in enumerate(learn.recorder.values)
    ]
    assert len(learn.recorder.values) == 3


def test_one_fit_one_run_when_the_torch_integration_sees_the_steps(store):
    autolog.autolog()  # torch too: its optimizer step hook sees the torch SGD inside OptimWrapper
    learn = learner(opt_func=functools.partial(OptimWrapper, opt=torch.optim.SGD))
    learn.fit(2, 0.05)
    from integrations import torch as torch_integration

    torch_integration.end_training()
    run = only_run()
    assert run.data.tags["mlflow.autologging"] == "fastai"
    assert run.data.params["opt_func"] == "SGD"
    # the same fit with fastai left out: the torch integration records it as a plain loop
    autolog.autolog(exclude=["fastai"])
    learn.fit(1, 0.05)
    torch_integration.end_training()
    runs = autolog.search_runs(output_format="list", order_by=["start_time"])
    assert [r.data.tags["mlflow.autologging"] for r in runs] == ["fastai", "torch"]


def test_lr_find_records_nothing(store):
    autolog.autolog()
    learn = learner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learn.lr_find(num_it=5, show_plot=False)
    assert autolog.search_runs(output_format="list") == []


def test_early_stopping_and_save_model_outcomes(store, tmp_path):
    autolog.autolog()
    learn = learner(path=tmp_path)
    es = EarlyStoppingCallback(monitor="valid_loss", min_delta=10.0, patience=1)
    save = SaveModelCallback(monitor="valid_loss", fname="best")
    learn.fit(5, 1e-2, cbs=[es, save])
    run = only_run()
    m, p = run.data.metrics, run.data.params
    assert len(learn.recorder.values) == 2  # epoch 1 could not improve by 10
    assert (m["stopped_epoch"], m["wait_count"]) == (1.0, 1.0)
    assert m["best_score"] == float(es.best) == float(learn.recorder.values[0][1])
    assert m["best_model_score"] == float(save.best)
    assert (p["early_stop_monitor"], p["early_stop_patience"], p["early_stop_min_delta"]) == (
        "valid_loss",
        "1",
        "10.0",
    )
    assert p["save_model_monitor"] == "valid_loss"
    assert run.data.tags["best_model_path"] == str(tmp_path / "models" / "best.pth")
    files = [f.path for f in tracking.Client().list_artifacts(run.info.run_id, "checkpoints")]
    assert files == ["checkpoints/best.pth"]


def test_reload_predicts_the_same_and_plain_paths_need_allow_pickle(store):
    autolog.autolog()
    learn = learner()
    learn.fit(2, 1e-2)
    run = only_run()
    rows = frame().iloc[:7][["a", "b", "c"]]
    with learn.no_bar():
        expected, _ = learn.get_preds(dl=learn.dls.test_dl(rows))
    uri = f"runs:/{run.info.run_id}/model"
    fa = importlib.import_module("integrations.fastai")
    assert np.array_equal(autolog.load_model(uri).predict(rows), expected.numpy())
    assert np.array_equal(fa.predict(fa.load_model(uri), rows), expected.numpy())
    info = autolog.models.get_model_info(uri)
    inputs = [(c["name"], c["type"]) for c in info.signature.inputs.to_dict()]
    assert inputs == [("c", "string"), ("a", "double"), ("b", "double")]
    assert info.signature.outputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}
    ]
    path = tracking.Client().artifact_dir(run.info.run_id, "model")
    with pytest.raises(ModelLoadError, match="model.fastai"):
        fa.load_model(path)
    loaded = fa.load_model(path, allow_pickle=True)
    assert np.array_equal(fa.predict(loaded, rows), expected.numpy())
    (path / "model.fastai").write_bytes((path / "model.fastai").read_bytes() + b"\0")
    with pytest.raises(ModelLoadError, match="changed after logging"):
        fa.load_model(uri)


def test_step_interval_flag(store):
    fa = importlib.import_module("integrations.fastai")
    fa.autolog(log_every_n_steps=0, log_models=False)
    learner().fit(1, 1e-2)
    run = only_run()
    assert set(run.data.metrics) == {"train_loss", "valid_loss", "accuracy"}
    with pytest.raises(IntegrationError, match="log_every_n_steps=-1"):
        fa.autolog(log_every_n_steps=-1)


def test_a_failing_store_write_is_one_warning_and_the_training_is_unchanged(store, monkeypatch):
    expected = learner()
    expected.fit(2, 1e-2)
    monkeypatch.delenv("AUTOLOG_TESTING")
    monkeypatch.setattr(patching, "_last_warning", {})  # the contract kit's warning: forgotten
    injected = OSError("injected log_batch failure")

    def broken(*args, **kwargs):
        raise injected

    monkeypatch.setattr(store, "log_batch", broken)
    autolog.autolog()
    learn = learner()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learn.fit(2, 1e-2)
        importlib.import_module("integrations.fastai").flush()  # the params: written after fit
    ours = [str(w.message) for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1 and "injected log_batch failure" in ours[0]
    assert learn.recorder.values == expected.recorder.values
    assert only_run().info.status == "FINISHED"


def test_summary_and_model_are_written_off_the_training_thread_before_the_next_use(
    store, monkeypatch
):
    """The schedule's summary, the model summary and the export run on the background thread;
    the same Learner's next fit (and get_preds) starts only once the last export has ended."""
    import threading
    import time

    fa = importlib.import_module("integrations.fastai")
    events = []
    summary, save_native, schedule = fa._summary, fa.FastaiFlavor.save_native, fa._schedule_params

    def recorded_schedule(scheds):
        events.append(("schedule " + ",".join(sorted(scheds)), threading.current_thread().name))
        return schedule(scheds)

    def recorded_summary(learn):
        events.append(("summary", threading.current_thread().name))
        return summary(learn)

    def slow_save_native(self, model, path):
        events.append(("export start", threading.current_thread().name))
        time.sleep(0.5)  # the training thread would overtake an export it does not wait for
        conf = save_native(self, model, path)
        events.append(("export end", threading.current_thread().name))
        return conf

    class Starts(Callback):
        def before_fit(self):
            events.append(("fit", threading.current_thread().name))

    monkeypatch.setattr(fa, "_summary", recorded_summary)
    monkeypatch.setattr(fa, "_schedule_params", recorded_schedule)
    monkeypatch.setattr(fa.FastaiFlavor, "save_native", slow_save_native)
    autolog.autolog()
    learn = learner()
    main = threading.current_thread().name
    learn.fit(1, 1e-2, cbs=Starts())
    learn.fit_one_cycle(1, 1e-2, cbs=Starts())
    with learn.no_bar():
        learn.get_preds()
    events.append(("get_preds done", main))
    bg = "autolog-deferred"
    assert events == [
        ("fit", main),
        ("schedule ", bg),  # fit: no schedule
        ("summary", bg),
        ("export start", bg),
        ("export end", bg),
        ("fit", main),
        ("schedule lr,mom", bg),
        ("summary", bg),
        ("export start", bg),
        ("export end", bg),
        ("get_preds done", main),
    ]
    runs = autolog.search_runs(output_format="list")
    assert len(runs) == 2
    client = tracking.Client()
    for run in runs:
        files = [f.path for f in client.list_artifacts(run.info.run_id)]
        assert files == ["model", "model_summary.txt"]
        model = [f.path for f in client.list_artifacts(run.info.run_id, "model")]
        assert "model/model.fastai" in model
    params = [run.data.params for run in sorted(runs, key=lambda r: r.info.start_time)]
    assert (params[0]["fit_method"], params[1]["fit_method"]) == ("fit", "fit_one_cycle")
    assert "lr_max" not in params[0] and params[1]["lr_max"] == "0.01"
    fa.flush()  # nothing left: returns at once

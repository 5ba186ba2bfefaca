"""Fault injection: every store and artifact write fails in turn, for every integration.

For each integration, a small training (the user's code) runs once without autolog, then with
autolog while one write method of the store raises. Without AUTOLOG_TESTING the user's calls
(the training, ``autolog.end_run()``, ``autolog.search_runs()`` after it) return normally with
exactly the results of the run without autolog, and exactly one AutologWarning is emitted.
Once the store works again, a new run starts and ends normally and every run autolog started
is marked FINISHED (a status the store failed to write is written then). With
AUTOLOG_TESTING=1 the injected error raises instead.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported

import autolog
from autolog import patching, tracking
from autolog.errors import AutologWarning, InvalidValueError, ParamOverwriteError, TrackingError
from store.sqlite import Store

# Every public method of the store, by what it does to the data. A method added to Store must
# be put in one of these (test_every_store_method_is_classified), so that a new write is
# fault-injected as soon as an integration calls it.
WRITES = {
    "create_experiment",
    "rename_experiment",
    "restore_experiment",
    # the tracking server's users and tokens (written only by `autolog server users`)
    "add_user",
    "add_token",
    "remove_user",
    "get_or_create_experiment",
    "set_experiment_tag",
    "delete_experiment",
    "create_run",
    "create_finished_runs",
    "update_run",
    "set_terminated",
    "delete_run",
    "restore_run",
    "log_batch",
    "log_inputs",
    "log_outputs",  # the logged models a run produced (MLflow 3's run outputs)
    "log_metric",
    "log_param",
    "set_tag",
    "delete_tag",
    "artifact_dir",  # hands out the folder that models and figures are written into
    "log_artifact",
    "log_artifacts",
    "write_artifact_bytes",
    "artifact_writer",  # the temporary file an artifact is written to, renamed into place
    "staged_artifact_dir",  # the work folder a model is saved into, renamed into place
    "record_model",
    # logged models (m-<hex> records): every log_model creates, fills and finalizes one
    "create_logged_model",
    "log_logged_model_params",
    "log_logged_model_metrics",
    "finalize_logged_model",
    "set_logged_model_tags",
    "delete_logged_model_tag",
    "delete_logged_model",
    # the model registry (written only when a model is registered)
    "create_registered_model",
    "update_registered_model",
    "rename_registered_model",
    "delete_registered_model",
    "set_registered_model_tag",
    "delete_registered_model_tag",
    "create_model_version",
    "update_model_version",
    "set_model_version_tag",
    "delete_model_version_tag",
    "transition_model_version_stage",
    "delete_model_version",
    "set_registered_model_alias",
    "delete_registered_model_alias",
}
NOT_WRITES = {
    "close",
    # holds the write lock if it is free (a server's event loop; store/sqlite_writes.py)
    "writing_now",
    # housekeeping inside every read (marks runs of dead processes KILLED): a read, here
    "reap_dead_runs",
}
READS = {
    "child_run_ids",
    "count_runs",
    "download_artifacts",
    "get_experiment",
    "get_experiment_by_name",
    "get_latest_metrics",
    "get_run_info",
    "get_logged_model",
    "search_logged_models",
    "get_latest_versions",
    "get_metric_history",
    "get_model_version",
    "get_model_version_by_alias",
    "get_registered_model",
    "get_run",
    "get_runs",
    "search_datasets",
    "latest_version_number",
    "list_artifacts",
    "list_experiments",
    "list_models",
    "metric_keys",
    "get_user",
    "list_users",
    "user_for_token",
    "artifact_local_path",
    "experiment_run_counts",
    "logged_models",
    "models_of_runs",
    "registry_summary",
    "sampled_metric_history",
    "walk_artifacts",
    "model_file_digests",
    "model_versions_of_run",
    "run_artifact_base",
    "logged_model_artifact_base",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "search_runs_page",
}
# store.artifacts (an ArtifactRoot): the two methods that copy files into a run's folder
ARTIFACT_WRITES = {"artifacts.log_file", "artifacts.log_dir"}


class InjectedFault(OSError):
    """The failure this module injects into one store method."""


class Fault:
    """Makes one method of the store (or of store.artifacts) raise InjectedFault until healed."""

    def __init__(self, store: Store, name: str):
        self.owner: Any = store.artifacts if name.startswith("artifacts.") else store
        self.attr = name.split(".")[-1]
        self.name = name
        self.calls = 0
        self.original = self.owner.__dict__.get(self.attr)

        def broken(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            raise InjectedFault(f"disk on fire in {name}")

        setattr(self.owner, self.attr, broken)

    def heal(self) -> None:
        if self.original is None:
            delattr(self.owner, self.attr)
        else:
            setattr(self.owner, self.attr, self.original)


class Spy:
    """Records which write methods of the store are called (and lets them run)."""

    def __init__(self, store: Store):
        self.called: set[str] = set()
        self._undo: list[tuple[Any, str]] = []
        for name in sorted(WRITES | ARTIFACT_WRITES | {"reap_dead_runs"}):
            owner: Any = store.artifacts if name.startswith("artifacts.") else store
            attr = name.split(".")[-1]
            original = getattr(owner, attr)

            def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any):
                self.called.add(_name)
                return _original(*args, **kwargs)

            setattr(owner, attr, spy)
            self._undo.append((owner, attr))

    def stop(self) -> None:
        for owner, attr in self._undo:
            delattr(owner, attr)


# -- the trainings (the user's code) ------------------------------------------------------


def sklearn_training(tmp_path) -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.5, 1.0]}, cv=2)
    assert search.fit(X, y) is search
    return [
        search.best_estimator_.coef_,
        search.predict_proba(X),
        search.cv_results_["mean_test_score"],
    ]


def xgboost_training(tmp_path) -> Any:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    dtrain = xgb.DMatrix(X, label=y)
    booster = xgb.train(
        {"max_depth": 2, "nthread": 1}, dtrain, 4, evals=[(dtrain, "train")], verbose_eval=False
    )
    return [booster.predict(dtrain), booster.num_boosted_rounds()]


def lightgbm_training(tmp_path) -> Any:
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    data = lgb.Dataset(X, label=y, params={"verbose": -1})
    params = {
        "objective": "regression",
        "num_leaves": 4,
        "verbose": -1,
        "num_threads": 1,
        "min_data_in_leaf": 5,
    }
    booster = lgb.train(params, data, 4, valid_sets=[data])
    return [booster.predict(X), booster.num_trees()]


def statsmodels_training(tmp_path) -> Any:
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    X = sm.add_constant(rng.normal(size=(40, 2)))
    y = X @ np.array([0.5, 1.0, -2.0]) + rng.normal(scale=0.1, size=40)
    result = sm.OLS(y, X).fit()
    return [result.params, result.bse, result.predict(X)]


def torch_loop_training(tmp_path) -> Any:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    X = torch.randn(32, 4)
    y = X.sum(1, keepdim=True)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(2):
        for xb, yb in DataLoader(TensorDataset(X, y), batch_size=8):
            loss = nn.functional.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    autolog.end_run()  # the user ends the run autolog started for the loop
    return [np.array(losses), *(p.detach().numpy().copy() for p in model.parameters())]


def lightning_training(tmp_path) -> Any:
    import pytorch_lightning as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class Lit(pl.LightningModule):
        def __init__(self, lr: float = 0.05):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("fit_loss", loss, on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    X = torch.randn(32, 4)
    y = X.sum(1, keepdim=True)
    model = Lit()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tempfile.mkdtemp(dir=tmp_path),  # a fresh one per training
    )
    trainer.fit(model, DataLoader(TensorDataset(X, y), batch_size=8))
    return [p.detach().numpy().copy() for p in model.parameters()]


def keras_training(tmp_path) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 4)).astype("float32")
    y = X.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(X, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    return [history.history["loss"], *model.get_weights()]


def _enable(name: str) -> None:
    import importlib

    module = "torch" if name == "lightning" else name
    importlib.import_module(f"integrations.{module}").autolog()


TRAININGS: dict[str, Callable[[Any], Any]] = {
    "sklearn": sklearn_training,
    "xgboost": xgboost_training,
    "lightgbm": lightgbm_training,
    "statsmodels": statsmodels_training,
    "torch": torch_loop_training,
    "lightning": lightning_training,
    "keras": keras_training,
}


# The writes each integration's training makes through the store (autolog's default flags);
# test_the_writes_of_each_training_are_these checks them against what really happens.
_COMMON = {
    "create_logged_model",
    "finalize_logged_model",
    "log_logged_model_metrics",
    "staged_artifact_dir",
    "artifact_writer",
    "create_run",
    "log_batch",
    "log_inputs",
    "record_model",
    "set_tag",
    "set_terminated",
    "update_run",
    "write_artifact_bytes",
}
USED_WRITES = {
    "sklearn": _COMMON | {"create_finished_runs"},
    "xgboost": _COMMON,
    "lightgbm": _COMMON,
    "statsmodels": _COMMON,
    # the plain loop checks whether a model folder exists; its DataLoader, made anew each epoch,
    # is gone by the time the loop is confirmed a training: no dataset input to write
    "torch": (_COMMON - {"log_inputs"}) | {"artifact_dir"},
    "lightning": _COMMON | {"log_artifact", "artifacts.log_file"},
    "keras": _COMMON - {"log_inputs"},  # Keras records no dataset inputs (docs/keras.md)
}
CASES = [(name, method) for name, used in USED_WRITES.items() for method in sorted(used)]

_baselines: dict[str, Any] = {}


def baseline(name: str, tmp_path) -> Any:
    """The training's results without autolog (computed once: the trainings are deterministic)."""
    if name not in _baselines:
        _baselines[name] = TRAININGS[name](tmp_path)
    return _baselines[name]


def assert_same(got: Any, expected: Any) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(e))


def ours(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, AutologWarning)]


@pytest.fixture
def no_testing(monkeypatch):
    """AUTOLOG_TESTING off (autolog's own errors become warnings) and the rate limit reset."""
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    monkeypatch.setattr(patching, "_last_warning", {})
    monkeypatch.setattr(patching, "_suppressed", {})
    monkeypatch.setattr(tracking, "_unterminated", {})


def test_every_store_method_is_classified():
    public = {n for n, v in inspect.getmembers(Store) if not n.startswith("_") and callable(v)}
    unclassified = public - WRITES - READS - NOT_WRITES
    assert not unclassified, f"classify in tests/core/test_faults.py: {sorted(unclassified)}"
    assert public == WRITES | READS | NOT_WRITES


@pytest.mark.parametrize("name", list(TRAININGS))
def test_the_writes_of_each_training_are_these(name, store, tmp_path):
    expected = baseline(name, tmp_path)
    _enable(name)
    spy = Spy(store)
    try:
        assert_same(TRAININGS[name](tmp_path), expected)
        autolog.end_run()
        autolog.search_runs(search_all_experiments=True)  # a read: deferred writes land first
    finally:
        spy.stop()
    assert spy.called - {"reap_dead_runs"} == USED_WRITES[name]
    assert [r.info.status for r in store.search_runs(None)] == ["FINISHED"] * (
        3 if name == "sklearn" else 1
    )


@pytest.mark.parametrize(("name", "method"), CASES)
def test_a_failing_write_leaves_the_training_and_later_calls_unaffected(
    name, method, store, tmp_path, no_testing
):
    expected = baseline(name, tmp_path)
    _enable(name)
    fault = Fault(store, method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = TRAININGS[name](tmp_path)
        autolog.end_run()
        found = autolog.search_runs(search_all_experiments=True, output_format="list")
    assert_same(got, expected)
    assert fault.calls >= 1
    messages = ours(caught)
    assert len(messages) == 1, messages
    assert f"disk on fire in {method}" in messages[0]
    assert tracking.active_run() is None
    fault.heal()
    # the store is back: a new run works, and every run is marked ended
    with autolog.start_run() as run:
        autolog.log_metric("after", 1.0)
    assert autolog.get_run(run.info.run_id).data.metrics == {"after": 1.0}
    runs = store.search_runs(None)
    assert {r.info.run_id for r in found} <= {r.info.run_id for r in runs}
    assert [r.info.status for r in runs] == ["FINISHED"] * len(runs)


@pytest.mark.parametrize("name", list(TRAININGS))
def test_under_autolog_testing_the_injected_error_raises(name, store, tmp_path):
    _enable(name)
    fault = Fault(store, "log_batch")
    with pytest.raises(InjectedFault, match="disk on fire in log_batch"):
        TRAININGS[name](tmp_path)
        autolog.end_run()
    fault.heal()
    while tracking.active_run() is not None:
        autolog.end_run()


@pytest.mark.parametrize("method", ["log_batch", "set_terminated"])
@pytest.mark.parametrize("name", list(TRAININGS))
def test_inside_a_user_run_a_failing_write_is_one_warning_too(
    name, method, store, tmp_path, no_testing
):
    expected = baseline(name, tmp_path)
    _enable(name)
    fault = Fault(store, method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autolog.start_run() as run:
            got = TRAININGS[name](tmp_path)
    assert_same(got, expected)
    messages = ours(caught)
    assert len(messages) == 1, messages
    assert f"disk on fire in {method}" in messages[0]
    assert tracking.active_run() is None
    fault.heal()
    assert store.get_run(run.info.run_id).info.status == (
        "RUNNING" if method == "set_terminated" else "FINISHED"
    )
    tracking._end_runs_at_exit()  # what interpreter exit does: the unwritten status is written
    assert [r.info.status for r in store.search_runs(None)] == ["FINISHED"] * len(
        store.search_runs(None)
    )


@pytest.mark.parametrize("testing", [False, True])
def test_the_users_exception_inside_start_run_propagates_unchanged(
    testing, store, monkeypatch, no_testing
):
    if testing:
        monkeypatch.setenv("AUTOLOG_TESTING", "1")
    error = ValueError("the user's own bug")
    Fault(store, "set_terminated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError) as raised, autolog.start_run():
            raise error
    assert raised.value is error
    assert tracking.active_run() is None
    if testing:  # our failure rides along as a note instead of replacing the user's error
        assert raised.value.__notes__ == [
            f"autolog: ending run {tracking._last_active_run_id} also failed: "
            "InjectedFault('disk on fire in set_terminated')"
        ]
        assert ours(caught) == []
    else:
        assert not hasattr(raised.value, "__notes__")
        assert ours(caught) == [
            "autolog: logging for end_run failed and was skipped; training is unaffected: "
            "InjectedFault: disk on fire in set_terminated"
        ]


def test_end_run_of_a_user_run_with_a_failing_store_warns_and_ends_it(store, no_testing):
    parent = autolog.start_run()
    child = autolog.start_run(nested=True)
    fault = Fault(store, "update_run")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert autolog.end_run(run_id=parent.info.run_id) is None
    assert len(ours(caught)) == 1
    assert tracking.active_run() is None
    fault.heal()
    with autolog.start_run() as later:
        pass
    statuses = {r.info.run_id: r.info.status for r in store.search_runs(None)}
    assert statuses == {
        parent.info.run_id: "FINISHED",
        child.info.run_id: "FINISHED",
        later.info.run_id: "FINISHED",
    }


def test_end_run_with_an_unknown_status_raises_and_ends_nothing(store, no_testing):
    run = autolog.start_run()
    with pytest.raises(InvalidValueError, match=r"Invalid run status 'DONE' for end_run; use one"):
        autolog.end_run("DONE")
    assert autolog.active_run().info.run_id == run.info.run_id
    autolog.end_run("KILLED")
    assert store.get_run(run.info.run_id).info.status == "KILLED"


def test_explicit_calls_with_bad_arguments_still_raise(store, no_testing):
    """Only autolog's own work is turned into warnings; a bad argument is the caller's."""
    with autolog.start_run():
        with pytest.raises(InvalidValueError, match="'acc'"):
            autolog.log_metric("acc", "high")
        autolog.log_param("lr", 0.1)
        with pytest.raises(ParamOverwriteError, match="'lr'"):
            autolog.log_param("lr", 0.2)
        with pytest.raises(TrackingError, match="already active"):
            autolog.start_run()
        fault = Fault(store, "log_batch")
        with pytest.raises(InjectedFault):  # what the caller asked to store was not stored
            autolog.log_metric("acc", 0.5)
        fault.heal()

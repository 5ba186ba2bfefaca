"""Every integration records its training / eval sets as run inputs (autolog.fit_inputs), and
the two boosting bugs MLflow's own autolog tests found."""

from __future__ import annotations

import json
import os
from unittest import mock

import numpy as np
import pandas as pd
import pytest

import autolog
from autolog import data
from store.entities import InputTag

TRAINING = [InputTag("mlflow.data.context", "training")]
EVAL = [InputTag("mlflow.data.context", "eval")]


@pytest.fixture
def Xy():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((60, 3)), columns=["a", "b", "c"])
    return X, (X["a"] > 0.5).astype(int)


def colspec(*names: str, typ: str = "double") -> str:
    cols = [{"type": typ, "name": n, "required": True} for n in names]
    return json.dumps({"mlflow_colspec": cols})


def profile(rows: int, cols: int, **extra: int) -> str:
    return json.dumps({"num_rows": rows, "num_columns": cols, "num_elements": rows * cols, **extra})


def inputs(run=None) -> list[tuple]:
    run = run or autolog.last_active_run()
    run = autolog.get_run(run.info.run_id)
    return [
        (d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source,
         d.dataset.schema, d.dataset.profile, d.tags)
        for d in run.inputs.dataset_inputs
    ]  # fmt: skip


def test_sklearn_fit_records_X_and_y(Xy) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = Xy
    autolog.autolog()
    LogisticRegression().fit(X, y)
    digest = data.compute_digest([X, y])
    assert inputs() == [
        ("train", digest, "memory", "in-memory pandas", colspec("a", "b", "c"),
         profile(60, 3), TRAINING)
    ]  # fmt: skip
    tag = json.loads(autolog.last_active_run().data.tags["mlflow.datasets"])
    assert tag == [{"name": "train", "hash": digest, "model": None}]


def test_log_datasets_false_records_nothing(Xy) -> None:
    from sklearn.linear_model import LogisticRegression

    autolog.autolog(log_datasets=False)
    LogisticRegression().fit(*Xy)
    assert inputs() == []
    assert "mlflow.datasets" not in autolog.last_active_run().data.tags


def test_same_data_in_two_fits_is_stored_once(Xy, store) -> None:
    from sklearn.linear_model import LogisticRegression

    autolog.autolog()
    LogisticRegression().fit(*Xy)
    first = autolog.last_active_run()
    LogisticRegression(C=0.5).fit(*Xy)
    assert store.conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 1
    digest = inputs(first)[0][1]
    found = autolog.search_runs(filter_string=f"datasets.digest = '{digest}'", output_format="list")
    assert len(found) == 2


def test_xgboost_train_records_dmatrix_train_and_evals(Xy) -> None:
    import xgboost as xgb

    X, y = Xy
    dtrain, dvalid = xgb.DMatrix(X, y), xgb.DMatrix(X[:20], y[:20])
    autolog.autolog()
    xgb.train({}, dtrain, 2, evals=[(dtrain, "train"), (dvalid, "valid")], verbose_eval=False)
    got = inputs()
    cols = [{"type": "double", "name": n, "required": False} for n in "abc"]
    schema = json.dumps({"mlflow_colspec": cols})
    assert [(g[0], g[2], g[3], g[4], g[5], g[6]) for g in got] == [
        ("train", "memory", "in-memory DMatrix", schema, profile(60, 3), TRAINING),
        ("valid", "memory", "in-memory DMatrix", schema, profile(20, 3), EVAL),
    ]
    # the documented DMatrix digest: header, the sampled rows (CSR) and their labels
    sample = dtrain.slice(np.arange(60)).get_data()
    header = {"kind": "DMatrix", "shape": [60, 3], "feature_names": ["a", "b", "c"],
              "feature_types": ["float", "float", "float"]}  # fmt: skip
    body = sample.data.tobytes() + sample.indices.tobytes() + sample.indptr.tobytes()
    body += dtrain.get_label().tobytes()
    assert got[0][1] == data.compute_digest([(json.dumps(header).encode(), body)])


def test_xgboost_wrapper_records_X_y_and_eval_set(Xy) -> None:
    import xgboost as xgb

    X, y = Xy
    autolog.autolog()
    xgb.XGBClassifier(n_estimators=2).fit(X, y, eval_set=[(X[:20], y[:20])], verbose=False)
    assert inputs() == [
        ("train", data.compute_digest([X, y]), "memory", "in-memory pandas",
         colspec("a", "b", "c"), profile(60, 3), TRAINING),
        ("validation_0", data.compute_digest([X[:20], y[:20]]), "memory", "in-memory pandas",
         colspec("a", "b", "c"), profile(20, 3), EVAL),
    ]  # fmt: skip


def test_lightgbm_train_records_datasets_and_not_valid_names(Xy) -> None:
    import lightgbm as lgb

    X, y = Xy
    train = lgb.Dataset(X, y)
    valid = lgb.Dataset(X[:20], y[:20], reference=train)
    autolog.autolog()
    lgb.train({"verbose": -1}, train, 2, valid_sets=[train, valid], valid_names=["fit", "holdout"])
    run = autolog.last_active_run()
    assert "valid_names" not in run.data.params  # MLflow's test: not a parameter
    assert inputs() == [
        ("fit", data.compute_digest([X, y]), "memory", "in-memory Dataset",
         colspec("a", "b", "c"), profile(60, 3), TRAINING),
        ("holdout", data.compute_digest([X[:20], y[:20]]), "memory", "in-memory Dataset",
         colspec("a", "b", "c"), profile(20, 3), EVAL),
    ]  # fmt: skip


def test_lightgbm_wrapper_records_X_y_and_eval_set(Xy) -> None:
    import lightgbm as lgb

    X, y = Xy
    autolog.autolog()
    lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(
        X, y, eval_X=(X[:20],), eval_y=(y[:20],), eval_names=["holdout"]
    )
    assert [(g[0], g[1], g[3], g[6]) for g in inputs()] == [
        ("train", data.compute_digest([X, y]), "in-memory pandas", TRAINING),
        ("holdout", data.compute_digest([X[:20], y[:20]]), "in-memory pandas", EVAL),
    ]


def test_statsmodels_records_exog_and_endog_or_the_formula_frame(Xy) -> None:
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    X, y = Xy
    autolog.autolog()
    exog = sm.add_constant(X)
    sm.OLS(y.astype(float), exog).fit()
    assert inputs() == [
        ("train", data.compute_digest([exog, y.astype(float)]), "memory", "in-memory pandas",
         colspec("const", "a", "b", "c"), profile(60, 4), TRAINING)
    ]  # fmt: skip
    smf.ols("a ~ b + c", data=X).fit()
    assert [(g[1], g[5]) for g in inputs()] == [(data.compute_digest([X]), profile(60, 3))]


def test_torch_loop_records_its_dataloader() -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    X = torch.arange(60 * 3, dtype=torch.float32).reshape(60, 3)
    y = torch.arange(60, dtype=torch.float32)
    loader = DataLoader(TensorDataset(X, y), batch_size=16)
    autolog.autolog()
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    for _ in range(2):
        for xb, yb in loader:
            opt.zero_grad()
            ((model(xb).squeeze(1) - yb) ** 2).mean().backward()
            opt.step()
    autolog.end_run()
    header = json.dumps({"kind": "DataLoader", "shape": [60], "dataset": "TensorDataset"})
    digest = data.compute_digest([(header.encode(), b""), X.numpy(), y.numpy()])
    spec = lambda shape: json.dumps(  # noqa: E731
        [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": shape}}]
    )
    schema = json.dumps({"mlflow_tensorspec": {"features": spec([-1, 3]), "targets": spec([-1])}})
    assert inputs() == [
        ("train", digest, "memory", "in-memory DataLoader", schema,
         profile(60, 3, batch_size=16), TRAINING)
    ]  # fmt: skip


def test_lightning_records_train_and_val_dataloaders(tmp_path) -> None:
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Lit(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    y = X.sum(1, keepdim=True)
    train = DataLoader(TensorDataset(X[:48], y[:48]), batch_size=16)
    val = DataLoader(TensorDataset(X[48:], y[48:]), batch_size=16)
    autolog.autolog()
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=str(tmp_path))  # fmt: skip
    trainer.fit(Lit(), train, val)
    got = inputs()
    assert [(g[0], g[3], g[5], g[6]) for g in got] == [
        ("train", "in-memory DataLoader", profile(48, 4, batch_size=16), TRAINING),
        ("val", "in-memory DataLoader", profile(16, 4, batch_size=16), EVAL),
    ]
    header = json.dumps({"kind": "DataLoader", "shape": [48], "dataset": "TensorDataset"})
    digest = data.compute_digest([(header.encode(), b""), X[:48].numpy(), y[:48].numpy()])
    assert got[0][1] == digest


# -- item 6: bugs found by MLflow's own autolog tests -----------------------------------------


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_a_fit_override_taking_args_keeps_example_and_signature(library, store) -> None:
    """MLflow's test_*_autolog_with_sklearn_outputs_do_not_reflect_training_dataset_mutations:
    the regressor's fit replaced by ``fit(self, *args, **kwargs)`` that adds a column."""
    import lightgbm as lgb
    import xgboost as xgb

    cls = xgb.XGBRegressor if library == "xgboost" else lgb.LGBMRegressor
    original_fit, original_predict = cls.fit, cls.predict

    def fit(self, *args, **kwargs):
        args[0]["TESTCOL"] = 5
        return original_fit(self, *args, **kwargs)

    def predict(self, *args, **kwargs):
        args[0]["TESTCOL"] = 5
        return original_predict(self, *args, **kwargs)

    X = pd.DataFrame({"Total Volume": [64236.62, 54876.98, 118220.22],
                      "XLarge Bags": [0.0, 0.0, 0.0]})  # fmt: skip
    y = pd.Series([1.33, 1.35, 0.93])
    with mock.patch.object(cls, "fit", fit), mock.patch.object(cls, "predict", predict):
        autolog.autolog(log_input_examples=True)
        extra = {"min_child_samples": 1, "verbose": -1} if library == "lightgbm" else {}
        cls(n_estimators=3, **extra).fit(X, y)
        autolog.autolog(disable=True)
    run = autolog.last_active_run()
    folder = store.artifact_local_path(run.info.run_id, "model")
    from autolog.models import Model

    conf = Model.load(os.path.join(folder, "MLmodel"))
    assert [c.name for c in conf.signature.inputs.inputs] == ["Total Volume", "XLarge Bags"]
    with open(os.path.join(folder, "input_example.json")) as f:
        assert json.load(f)["columns"] == ["Total Volume", "XLarge Bags"]


def test_logged_model_metrics_name_the_dataset_they_were_computed_on(Xy) -> None:
    import xgboost as xgb

    X, y = Xy
    autolog.autolog()
    xgb.XGBClassifier(n_estimators=2).fit(X, y, eval_set=[(X[:20], y[:20])], verbose=False)
    model = autolog.last_logged_model()
    linked = {m.key: (m.dataset_name, m.dataset_digest) for m in model.metrics}
    valid = ("validation_0", data.compute_digest([X[:20], y[:20]]))
    assert linked == {"validation_0-logloss": valid}


def test_training_metrics_of_a_logged_model_name_the_training_set(Xy) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = Xy
    autolog.autolog()
    LogisticRegression().fit(X, y)
    model = autolog.last_logged_model()
    train = ("train", data.compute_digest([X, y]))
    linked = {m.key: (m.dataset_name, m.dataset_digest) for m in model.metrics}
    assert linked and all(k.startswith("training_") for k in linked)
    assert set(linked.values()) == {train}

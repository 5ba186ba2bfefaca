"""integrations.xgboost: train, cv and the scikit-learn wrappers, logged as DESIGN.md says."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import autolog
from autolog import patching, testing, tracking
from autolog.errors import AutologWarning
from integrations import xgboost as xgb_autolog

FEATURES = ["age", "income", "score", "height", "weight"]
PARAMS = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "nthread": 1}
IMPORTANCE_TYPES = ["cover", "gain", "total_cover", "total_gain", "weight"]
CONTRACT_PARAMS = {
    "early_stopping_rounds",
    "eval_metric",
    "maximize",
    "nthread",
    "num_boost_round",
    "objective",
    "verbose_eval",
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(240, 5)), columns=FEATURES)
    y = ((X.age + X.income * X.score + rng.normal(scale=0.5, size=240)) > 0).astype(int)
    return X[:200], y[:200], X[200:], y[200:]


@pytest.fixture
def dmats(data):
    X, y, Xv, yv = data
    return xgb.DMatrix(X, label=y), xgb.DMatrix(Xv, label=yv)


@pytest.fixture(autouse=True)
def fresh_warnings():
    patching._last_warning.clear()
    patching._suppressed.clear()
    yield
    patching._last_warning.clear()


def runs():
    return autolog.search_runs(output_format="list", order_by=["start_time"])


def history(run, key):
    points = autolog.get_metric_history(run.info.run_id, key)
    return [p.step for p in points], [p.value for p in points]


def artifacts(run, path=""):
    return sorted(f.path for f in autolog.Client().list_artifacts(run.info.run_id, path))


def train(dtrain, dvalid, rounds=8, **kwargs):
    kwargs.setdefault("verbose_eval", False)
    return xgb.train(PARAMS, dtrain, rounds, evals=[(dtrain, "train"), (dvalid, "valid")], **kwargs)


# -- happy paths -------------------------------------------------------------------------------


def test_train_logs_params_metrics_importance_and_model(dmats) -> None:
    xgb_autolog.autolog()
    dtrain, dvalid = dmats
    booster = train(dtrain, dvalid)
    (run,) = runs()
    assert run.info.status == "FINISHED"
    assert re.fullmatch(r"xgboost\.train-[0-9a-f]{4}", run.info.run_name)
    assert run.data.tags["mlflow.autologging"] == "xgboost"
    assert run.data.params == {
        "objective": "binary:logistic",
        "eval_metric": "['logloss', 'auc']",
        "nthread": "1",
        "num_boost_round": "8",
        "early_stopping_rounds": "None",
        "maximize": "None",
        "verbose_eval": "False",
    }
    assert set(run.data.metrics) == {"train-logloss", "train-auc", "valid-logloss", "valid-auc"}
    assert artifacts(run) == sorted(
        [f"feature_importance_{t}.json" for t in IMPORTANCE_TYPES]
        + [f"feature_importance_{t}.png" for t in IMPORTANCE_TYPES]
        + ["model"]
    )
    assert artifacts(run, "model") == [
        "model/MLmodel",
        "model/conda.yaml",
        "model/model.ubj",
        "model/python_env.yaml",
        "model/requirements.txt",
    ]
    assert booster.num_boosted_rounds() == 8


def test_metric_names_turn_at_into_at_word(dmats) -> None:
    xgb_autolog.autolog(log_models=False, importance_types=[])
    dtrain, dvalid = dmats
    evals_result: dict = {}
    xgb.train(
        {"objective": "binary:logistic", "eval_metric": ["error@0.6", "pre@3"], "nthread": 1},
        dtrain,
        3,
        evals=[(dvalid, "valid")],
        evals_result=evals_result,
        verbose_eval=False,
    )
    (run,) = runs()
    assert set(run.data.metrics) == {"valid-error_at_0.6", "valid-pre_at_3"}
    assert history(run, "valid-pre_at_3")[1] == evals_result["valid"]["pre@3"]


@pytest.mark.parametrize("early_stopping", [False, True])
def test_native_history_equals_evals_result(dmats, early_stopping) -> None:
    xgb_autolog.autolog(log_models=False, importance_types=[])
    dtrain, dvalid = dmats
    evals_result: dict = {}
    kwargs = {"early_stopping_rounds": 2} if early_stopping else {}
    booster = train(dtrain, dvalid, rounds=60, evals_result=evals_result, **kwargs)
    (run,) = runs()
    for data in ("train", "valid"):
        for metric in ("logloss", "auc"):
            expected = evals_result[data][metric]
            assert history(run, f"{data}-{metric}") == (list(range(len(expected))), expected)
    rounds = len(evals_result["valid"]["logloss"])
    if early_stopping:
        assert rounds < 60, "the data should make early stopping trigger"
        best = booster.best_iteration
        assert run.data.metrics["best_iteration"] == best
        assert run.data.metrics["stopped_iteration"] == rounds - 1
        assert run.data.metrics["best_valid-logloss"] == evals_result["valid"]["logloss"][best]
        assert run.data.metrics["best_train-auc"] == evals_result["train"]["auc"][best]
    else:
        assert rounds == 60
        assert "best_iteration" not in run.data.metrics


@pytest.mark.parametrize("early_stopping", [False, True])
def test_wrapper_history_equals_evals_result(data, early_stopping) -> None:
    xgb_autolog.autolog(log_models=False, importance_types=[])
    X, y, Xv, yv = data
    clf = xgb.XGBClassifier(
        n_estimators=60,
        n_jobs=1,
        eval_metric="logloss",
        early_stopping_rounds=2 if early_stopping else None,
    )
    clf.fit(X, y, eval_set=[(X, y), (Xv, yv)], verbose=False)
    (run,) = runs()
    for data_name in ("validation_0", "validation_1"):
        expected = clf.evals_result()[data_name]["logloss"]
        assert history(run, f"{data_name}-logloss") == (list(range(len(expected))), expected)
    if early_stopping:
        valid = clf.evals_result()["validation_1"]["logloss"]
        assert len(valid) < 60
        assert run.data.metrics["best_iteration"] == clf.best_iteration
        assert run.data.metrics["stopped_iteration"] == len(valid) - 1
        assert run.data.metrics["best_validation_1-logloss"] == valid[clf.best_iteration]
    else:
        assert "best_iteration" not in run.data.metrics


def test_early_stopping_asked_through_a_callback(dmats) -> None:
    xgb_autolog.autolog(log_models=False, importance_types=[])
    dtrain, dvalid = dmats
    evals_result: dict = {}
    stop = xgb.callback.EarlyStopping(rounds=2, metric_name="logloss", data_name="valid")
    booster = train(dtrain, dvalid, rounds=60, evals_result=evals_result, callbacks=[stop])
    (run,) = runs()
    valid = evals_result["valid"]["logloss"]
    assert len(valid) < 60
    # The stopping callback ran before ours would in user order: the last point is still there.
    assert history(run, "valid-logloss") == (list(range(len(valid))), valid)
    assert run.data.metrics["best_iteration"] == booster.best_iteration
    assert run.data.metrics["stopped_iteration"] == len(valid) - 1
    assert run.data.metrics["best_valid-logloss"] == valid[booster.best_iteration]


def test_feature_importance_json_and_png_per_type(dmats) -> None:
    xgb_autolog.autolog(log_models=False)
    dtrain, dvalid = dmats
    booster = train(dtrain, dvalid)
    (run,) = runs()
    folder = autolog.Client().artifact_dir(run.info.run_id)
    for imp_type in IMPORTANCE_TYPES:
        logged = json.loads((folder / f"feature_importance_{imp_type}.json").read_text())
        assert logged == pytest.approx(booster.get_score(importance_type=imp_type))
        assert set(logged) <= set(FEATURES)
        png = (folder / f"feature_importance_{imp_type}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_importance_types_and_plots_flags(dmats) -> None:
    xgb_autolog.autolog(log_models=False, importance_types=["gain"], log_importance_plots=False)
    train(*dmats)
    (run,) = runs()
    assert artifacts(run) == ["feature_importance_gain.json"]


def test_reloaded_booster_predicts_identically(dmats, data) -> None:
    xgb_autolog.autolog()
    dtrain, dvalid = dmats
    X = data[0]
    booster = train(dtrain, dvalid)
    (run,) = runs()
    uri = f"runs:/{run.info.run_id}/model"
    expected = booster.predict(dtrain)
    native = xgb_autolog.load_model(uri)
    assert isinstance(native, xgb.Booster)
    np.testing.assert_array_equal(native.predict(dtrain), expected)
    pyfunc = autolog.load_model(uri)
    np.testing.assert_array_equal(pyfunc.predict(X), expected)
    sig = pyfunc.metadata.signature
    assert sig.inputs.input_names() == FEATURES
    assert (
        sig.to_dict()["outputs"]
        == '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1]}}]'
    )
    flavor = pyfunc.metadata.flavors["xgboost"]
    assert flavor["model_format"] == "ubj" and flavor["model_class"] == "xgboost.core.Booster"
    assert pyfunc.metadata.flavors["python_function"]["loader_module"] == "mlflow.xgboost"
    assert pyfunc.metadata.saved_input_example_info is None


def test_unnamed_dmatrix_gives_a_tensor_signature(data) -> None:
    xgb_autolog.autolog(importance_types=[])
    X, y, _, _ = data
    dtrain = xgb.DMatrix(X.to_numpy(), label=y)
    booster = xgb.train(PARAMS, dtrain, 3)
    (run,) = runs()
    pyfunc = autolog.load_model(f"runs:/{run.info.run_id}/model")
    assert pyfunc.metadata.signature.to_dict()["inputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 5]}}]'
    )
    np.testing.assert_array_equal(pyfunc.predict(X.to_numpy()), booster.predict(dtrain))


def test_reloaded_wrapper_keeps_its_class_and_predictions(data) -> None:
    xgb_autolog.autolog(log_input_examples=True)
    X, y, Xv, yv = data
    clf = xgb.XGBClassifier(n_estimators=30, n_jobs=1, early_stopping_rounds=3)
    clf.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    (run,) = runs()
    assert re.fullmatch(r"XGBClassifier-[0-9a-f]{4}", run.info.run_name)
    assert run.data.tags["estimator_name"] == "XGBClassifier"
    assert run.data.tags["estimator_class"] == "xgboost.sklearn.XGBClassifier"
    assert run.data.params["n_estimators"] == "30"
    assert run.data.params["early_stopping_rounds"] == "3"
    uri = f"runs:/{run.info.run_id}/model"
    native = xgb_autolog.load_model(uri)
    assert type(native) is xgb.XGBClassifier
    np.testing.assert_array_equal(native.predict(Xv), clf.predict(Xv))
    np.testing.assert_array_equal(native.predict_proba(Xv), clf.predict_proba(Xv))
    pyfunc = autolog.load_model(uri)
    np.testing.assert_array_equal(pyfunc.predict(Xv), clf.predict(Xv))
    assert pyfunc.metadata.signature.inputs.input_names() == FEATURES
    example = pyfunc.metadata.load_input_example(pyfunc.path)
    pd.testing.assert_frame_equal(example, X.head(5).reset_index(drop=True))


def test_regressor_and_ranker_are_logged(data) -> None:
    xgb_autolog.autolog()
    X, y, _, _ = data
    reg = xgb.XGBRegressor(n_estimators=5, n_jobs=1).fit(X, X.age)
    ranker = xgb.XGBRanker(n_estimators=5, n_jobs=1).fit(X, y, qid=np.arange(len(X)) // 20)
    r1, r2 = runs()
    assert r1.data.tags["estimator_name"] == "XGBRegressor"
    assert r2.data.tags["estimator_name"] == "XGBRanker"
    reg_back = xgb_autolog.load_model(f"runs:/{r1.info.run_id}/model")
    rank_back = xgb_autolog.load_model(f"runs:/{r2.info.run_id}/model")
    assert type(reg_back) is xgb.XGBRegressor and type(rank_back) is xgb.XGBRanker
    np.testing.assert_array_equal(reg_back.predict(X), reg.predict(X))
    np.testing.assert_array_equal(rank_back.predict(X), ranker.predict(X))


def test_random_forest_wrapper_is_logged_without_callbacks(data) -> None:
    xgb_autolog.autolog(log_models=False)
    X, y, Xv, yv = data
    rf = xgb.XGBRFClassifier(n_estimators=4, n_jobs=1, eval_metric="logloss")
    rf.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    (run,) = runs()
    expected = rf.evals_result()["validation_0"]["logloss"]
    assert history(run, "validation_0-logloss") == (list(range(len(expected))), expected)
    assert rf.get_params()["callbacks"] is None


def test_json_model_format(dmats) -> None:
    xgb_autolog.autolog(model_format="json", importance_types=[])
    booster = train(*dmats)
    (run,) = runs()
    assert "model/model.json" in artifacts(run, "model")
    back = xgb_autolog.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(back.predict(dmats[1]), booster.predict(dmats[1]))


def test_cv_logs_one_run_with_mean_and_std(dmats) -> None:
    xgb_autolog.autolog()
    dtrain, _ = dmats
    result = xgb.cv(
        {"objective": "binary:logistic", "nthread": 1},
        dtrain,
        40,
        nfold=3,
        metrics=["logloss"],
        early_stopping_rounds=2,
        seed=1,
    )
    (run,) = runs()
    assert re.fullmatch(r"xgboost\.cv-[0-9a-f]{4}", run.info.run_name)
    assert set(run.data.metrics) >= {
        "train-logloss-mean",
        "train-logloss-std",
        "test-logloss-mean",
        "test-logloss-std",
    }
    steps, values = history(run, "test-logloss-mean")
    best = len(result) - 1  # xgboost.cv cuts its result at the best iteration
    assert values[: best + 1] == result["test-logloss-mean"].tolist()
    assert history(run, "test-logloss-std")[1][: best + 1] == result["test-logloss-std"].tolist()
    assert steps == list(range(len(steps))) and len(steps) > best + 1
    assert run.data.metrics["best_iteration"] == best
    assert run.data.metrics["stopped_iteration"] == len(steps) - 1
    assert run.data.metrics["best_test-logloss-mean"] == result["test-logloss-mean"].iloc[-1]
    assert run.data.params["nfold"] == "3" and run.data.params["early_stopping_rounds"] == "2"
    assert artifacts(run) == []  # cv trains no single model


def test_logs_into_the_users_run_and_leaves_it_open(dmats) -> None:
    xgb_autolog.autolog(log_models=False, importance_types=[])
    with autolog.start_run() as user_run:
        train(*dmats)
        assert tracking.active_run().info.run_id == user_run.info.run_id
    (run,) = runs()
    assert run.info.run_id == user_run.info.run_id
    assert "valid-logloss" in run.data.metrics


# -- the patching contract -------------------------------------------------------------------------


def test_not_patched_records_nothing(dmats, data) -> None:
    train(*dmats)
    X, y, _, _ = data
    xgb.XGBClassifier(n_estimators=2, n_jobs=1).fit(X, y)
    assert runs() == []
    xgb_autolog.autolog()
    xgb_autolog.autolog(disable=True)
    train(*dmats)
    assert runs() == []
    assert not patching.is_patched(xgb, "train")
    assert not patching.is_patched(xgb.XGBClassifier, "fit")


def test_wrapper_fit_logs_one_run_and_its_train_is_quiet(data) -> None:
    xgb_autolog.autolog()
    assert patching.is_patched(xgb.sklearn, "train")
    X, y, _, _ = data
    xgb.XGBClassifier(n_estimators=3, n_jobs=1).fit(X, y)
    xgb.XGBRFClassifier(n_estimators=3, n_jobs=1).fit(X, y)  # RF fit -> XGBClassifier.fit
    assert [r.data.tags["estimator_name"] for r in runs()] == ["XGBClassifier", "XGBRFClassifier"]


def test_user_exception_propagates_unchanged_and_run_fails(dmats) -> None:
    xgb_autolog.autolog()
    with pytest.raises(xgb.core.XGBoostError) as info:
        xgb.train({"objective": "no-such-objective", "nthread": 1}, dmats[0], 2)
    assert "no-such-objective" in str(info.value)
    (run,) = runs()
    assert run.info.status == "FAILED"
    assert tracking.active_run() is None


class Boom(Exception):
    pass


class Exploding(xgb.callback.TrainingCallback):
    def __init__(self, error: Exception, at: int):
        super().__init__()
        self.error, self.at = error, at

    def after_iteration(self, model, epoch, evals_log):
        if epoch == self.at:
            raise self.error
        return False


def test_user_callback_that_raises_propagates_unchanged(dmats, data) -> None:
    xgb_autolog.autolog()
    err = Boom("from the user's callback")
    callbacks = [Exploding(err, at=2)]
    with pytest.raises(Boom) as info:
        train(*dmats, callbacks=callbacks)
    assert info.value is err
    X, y, Xv, yv = data
    clf = xgb.XGBClassifier(n_estimators=5, n_jobs=1, callbacks=callbacks)
    with pytest.raises(Boom) as info:
        clf.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    assert info.value is err
    assert clf.get_params()["callbacks"] is callbacks and len(callbacks) == 1
    assert [r.info.status for r in runs()] == ["FAILED", "FAILED"]
    # the iterations before the failure were logged
    assert history(runs()[0], "valid-logloss")[0] == [0, 1, 2]


def test_users_callbacks_are_left_unchanged(dmats, data) -> None:
    xgb_autolog.autolog(log_models=False)
    stop = xgb.callback.EarlyStopping(rounds=2)
    callbacks = [stop]
    train(*dmats, callbacks=callbacks)
    assert callbacks == [stop]
    X, y, Xv, yv = data
    clf = xgb.XGBClassifier(
        n_estimators=5, n_jobs=1, callbacks=[xgb.callback.EarlyStopping(rounds=2)]
    )
    before = clf.get_params()
    user_list = before["callbacks"]
    clf.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    after = clf.get_params()
    assert after == before
    assert after["callbacks"] is user_list and len(user_list) == 1


def test_our_failure_is_one_warning_and_the_training_result_is_returned(
    dmats, data, monkeypatch
) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING")
    xgb_autolog.autolog()
    store = tracking._store()

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(store, "log_batch", broken)
    monkeypatch.setattr(store, "write_artifact_bytes", broken)
    X, y, Xv, yv = data
    clf = xgb.XGBClassifier(n_estimators=5, n_jobs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        booster = train(*dmats)
        assert clf.fit(X, y, eval_set=[(Xv, yv)], verbose=False) is clf
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1 and "disk on fire" in str(ours[0].message)
    assert isinstance(booster, xgb.Booster) and booster.num_boosted_rounds() == 8
    assert clf.get_booster().num_boosted_rounds() == 5
    assert tracking.active_run() is None


def test_our_failure_raises_under_autolog_testing(dmats, monkeypatch) -> None:
    xgb_autolog.autolog()
    store = tracking._store()
    monkeypatch.setattr(store, "write_artifact_bytes", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train(*dmats)
    assert tracking.active_run() is None


def test_a_failing_history_write_does_not_stop_training(dmats, monkeypatch) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING")
    xgb_autolog.autolog(log_models=False, importance_types=[])
    from autolog import batching

    def broken(self, *args, **kwargs):
        raise OSError("buffer broke")

    monkeypatch.setattr(batching.MetricBatcher, "record_many", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        booster = train(*dmats)
    assert booster.num_boosted_rounds() == 8
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1 and "buffer broke" in str(ours[0].message)
    (run,) = runs()
    assert run.info.status == "FINISHED"


# -- the flavor API -----------------------------------------------------------------------------


def test_flavor_save_log_load(tmp_path, data) -> None:
    X, y, _, _ = data
    reg = xgb.XGBRegressor(n_estimators=4, n_jobs=1).fit(X, X.income)
    xgb_autolog.save_model(reg, tmp_path / "m", input_example=X.head(3))
    back = xgb_autolog.load_model(tmp_path / "m")
    assert type(back) is xgb.XGBRegressor
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    reqs = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert any(r.startswith("xgboost") for r in reqs) and any(
        r.startswith("scikit-learn") for r in reqs
    )
    info = xgb_autolog.log_model(reg.get_booster(), "booster")
    assert info.model_uri.endswith("/booster")
    booster = xgb_autolog.load_model(info.model_uri)
    np.testing.assert_array_equal(
        booster.predict(xgb.DMatrix(X)), reg.get_booster().predict(xgb.DMatrix(X))
    )
    autolog.end_run()


def test_native_input_example_from_the_dmatrix(data) -> None:
    xgb_autolog.autolog(log_input_examples=True, importance_types=[])
    X, y, _, _ = data
    X = X.copy()
    X.iloc[1, 2] = np.nan  # missing stays missing, not 0
    xgb.train(PARAMS, xgb.DMatrix(X, label=y), 2)
    xgb.train(PARAMS, xgb.QuantileDMatrix(X, label=y), 2)  # holds bins, not values
    r1, r2 = runs()
    example = autolog.load_model(f"runs:/{r1.info.run_id}/model").metadata.load_input_example(
        autolog.Client().artifact_dir(r1.info.run_id, "model")
    )
    expected = X.head(5).astype("float32").astype("float64").reset_index(drop=True)
    pd.testing.assert_frame_equal(example, expected)
    assert (
        autolog.load_model(f"runs:/{r2.info.run_id}/model").metadata.saved_input_example_info
        is None
    )


# -- the contract kit -------------------------------------------------------------------------------


def test_contract(dmats, data) -> None:
    X, y, _, _ = data
    testing.check_contract(
        "xgboost",
        train=lambda: train(*dmats, rounds=3),
        run_name="xgboost.train",
        params=CONTRACT_PARAMS,
        metrics={"train-logloss", "train-auc", "valid-logloss", "valid-auc"},
        artifacts={
            *(f"feature_importance_{t}.{ext}" for t in IMPORTANCE_TYPES for ext in ("json", "png")),
            "model",
        },
        fail=lambda exc: train(*dmats, rounds=3, callbacks=[Exploding(exc, at=1)]),
        nested=lambda: xgb.XGBClassifier(n_estimators=3, n_jobs=1).fit(X, y),
    )

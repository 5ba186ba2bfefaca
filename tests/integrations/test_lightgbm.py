"""integrations.lightgbm: train, cv and the scikit-learn wrappers, logged as DESIGN.md says."""

from __future__ import annotations

import json
import re
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import autolog
from autolog import patching, testing, tracking
from autolog.errors import AutologWarning
from integrations import lightgbm as lgb_autolog

FEATURES = ["age", "income", "score", "height", "weight"]
PARAMS = {
    "objective": "binary",
    "metric": ["binary_logloss", "auc"],
    "num_threads": 1,
    "verbose": -1,
    "min_data_in_leaf": 5,
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(240, 5)), columns=FEATURES)
    y = ((X.age + X.income * X.score + rng.normal(scale=0.7, size=240)) > 0).astype(int)
    return X[:200], y[:200], X[200:], y[200:]


def datasets(data):
    X, y, Xv, yv = data
    dtrain = lgb.Dataset(X, label=y)
    return dtrain, lgb.Dataset(Xv, label=yv, reference=dtrain)


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


def train(data, rounds=8, params=PARAMS, **kwargs):
    dtrain, dvalid = datasets(data)
    return lgb.train(
        params,
        dtrain,
        rounds,
        valid_sets=[dtrain, dvalid],
        valid_names=["train", "valid"],
        **kwargs,
    )


def classifier(**kwargs):
    kwargs.setdefault("n_estimators", 8)
    return lgb.LGBMClassifier(n_jobs=1, verbose=-1, min_child_samples=5, **kwargs)


# -- happy paths -------------------------------------------------------------------------------


def test_train_logs_params_metrics_importance_and_model(data) -> None:
    lgb_autolog.autolog()
    booster = train(data)
    (run,) = runs()
    assert run.info.status == "FINISHED"
    assert re.fullmatch(r"lightgbm\.train-[0-9a-f]{4}", run.info.run_name)
    assert run.data.tags["mlflow.autologging"] == "lightgbm"
    assert run.data.params == {
        "objective": "binary",
        "metric": "['binary_logloss', 'auc']",
        "num_threads": "1",
        "verbose": "-1",
        "min_data_in_leaf": "5",
        "num_boost_round": "8",
        "keep_training_booster": "False",
    }
    assert set(run.data.metrics) == {
        "train-binary_logloss",
        "train-auc",
        "valid-binary_logloss",
        "valid-auc",
    }
    assert artifacts(run) == [
        "feature_importance_gain.json",
        "feature_importance_gain.png",
        "feature_importance_split.json",
        "feature_importance_split.png",
        "model",
    ]
    assert artifacts(run, "model") == [
        "model/MLmodel",
        "model/conda.yaml",
        "model/model.txt",
        "model/python_env.yaml",
        "model/requirements.txt",
    ]
    assert booster.current_iteration() == 8


def test_params_win_over_arguments_as_in_lightgbm(data) -> None:
    lgb_autolog.autolog(log_models=False, importance_types=[])
    booster = train(data, rounds=8, params={**PARAMS, "num_boost_round": 3})
    assert booster.current_iteration() == 3
    (run,) = runs()
    assert run.data.params["num_boost_round"] == "3"
    assert history(run, "valid-auc")[0] == [0, 1, 2]


@pytest.mark.parametrize("early_stopping", [None, "callback", "param"])
def test_native_history_equals_evals_result(data, early_stopping) -> None:
    lgb_autolog.autolog(log_models=False, importance_types=[])
    evals_result: dict = {}
    callbacks = [lgb.record_evaluation(evals_result)]
    params = dict(PARAMS)
    if early_stopping == "callback":
        callbacks.append(lgb.early_stopping(2, verbose=False))
    elif early_stopping == "param":
        params["early_stopping_round"] = 2
    booster = train(data, rounds=80, params=params, callbacks=callbacks)
    (run,) = runs()
    for data_name in ("train", "valid"):
        for metric in ("binary_logloss", "auc"):
            expected = evals_result[data_name][metric]
            assert history(run, f"{data_name}-{metric}") == (list(range(len(expected))), expected)
    rounds = len(evals_result["valid"]["auc"])
    if early_stopping:
        assert rounds < 80, "the data should make early stopping trigger"
        best = booster.best_iteration  # LightGBM's: 1-based
        assert run.data.metrics["best_iteration"] == best
        assert run.data.metrics["stopped_iteration"] == rounds
        valid = evals_result["valid"]
        assert run.data.metrics["best_valid-binary_logloss"] == valid["binary_logloss"][best - 1]
        assert run.data.metrics["best_valid-auc"] == valid["auc"][best - 1]
        assert run.data.metrics["best_train-auc"] == evals_result["train"]["auc"][best - 1]
    else:
        assert rounds == 80
        assert "best_iteration" not in run.data.metrics


@pytest.mark.parametrize("early_stopping", [False, True])
def test_wrapper_history_equals_evals_result(data, early_stopping) -> None:
    lgb_autolog.autolog(log_models=False, importance_types=[])
    X, y, Xv, yv = data
    clf = classifier(n_estimators=80)
    callbacks = [lgb.early_stopping(2, verbose=False)] if early_stopping else None
    clf.fit(
        X, y, eval_X=(X, Xv), eval_y=(y, yv), eval_names=["fit", "holdout"], callbacks=callbacks
    )
    (run,) = runs()
    for data_name in ("fit", "holdout"):
        expected = clf.evals_result_[data_name]["binary_logloss"]
        key = f"{data_name}-binary_logloss"
        assert history(run, key) == (list(range(len(expected))), expected)
    if early_stopping:
        holdout = clf.evals_result_["holdout"]["binary_logloss"]
        assert len(holdout) < 80
        assert run.data.metrics["best_iteration"] == clf.best_iteration_
        assert run.data.metrics["stopped_iteration"] == len(holdout)
        best = holdout[clf.best_iteration_ - 1]
        assert run.data.metrics["best_holdout-binary_logloss"] == best
    else:
        assert "best_iteration" not in run.data.metrics


def test_metric_names_turn_at_into_at_word(data) -> None:
    lgb_autolog.autolog(log_models=False, importance_types=[])
    X, y, Xv, yv = data
    ranker = lgb.LGBMRanker(n_estimators=3, n_jobs=1, verbose=-1, min_child_samples=5)
    ranker.fit(
        X, y, group=[20] * 10, eval_X=(Xv,), eval_y=(yv,), eval_group=[[20, 20]], eval_at=[3]
    )
    (run,) = runs()
    assert set(run.data.metrics) == {"valid_0-ndcg_at_3"}
    expected = ranker.evals_result_["valid_0"]["ndcg@3"]
    assert history(run, "valid_0-ndcg_at_3")[1] == expected


def test_feature_importance_json_and_png_per_type(data) -> None:
    lgb_autolog.autolog(log_models=False)
    booster = train(data)
    (run,) = runs()
    folder = autolog.Client().artifact_dir(run.info.run_id)
    for imp_type in ("split", "gain"):
        logged = json.loads((folder / f"feature_importance_{imp_type}.json").read_text())
        expected = booster.feature_importance(importance_type=imp_type).tolist()
        assert logged == dict(zip(FEATURES, expected))
        png = (folder / f"feature_importance_{imp_type}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_importance_types_and_plots_flags(data) -> None:
    lgb_autolog.autolog(log_models=False, importance_types=["gain"], log_importance_plots=False)
    train(data)
    (run,) = runs()
    assert artifacts(run) == ["feature_importance_gain.json"]


def test_reloaded_booster_predicts_identically(data) -> None:
    lgb_autolog.autolog(log_input_examples=True)
    X, _, Xv, _ = data
    booster = train(data, rounds=40, callbacks=[lgb.early_stopping(2, verbose=False)])
    assert 0 < booster.best_iteration < 40
    (run,) = runs()
    uri = f"runs:/{run.info.run_id}/model"
    native = lgb_autolog.load_model(uri)
    assert isinstance(native, lgb.Booster)
    np.testing.assert_array_equal(native.predict(Xv), booster.predict(Xv))
    pyfunc = autolog.load_model(uri)
    np.testing.assert_array_equal(pyfunc.predict(Xv), booster.predict(Xv))
    sig = pyfunc.metadata.signature
    assert sig.inputs.input_names() == FEATURES
    assert sig.to_dict()["outputs"] == '[{"type": "double", "required": true}]'
    flavor = pyfunc.metadata.flavors["lightgbm"]
    assert flavor["model_class"] == "lightgbm.basic.Booster" and flavor["data"] == "model.txt"
    assert pyfunc.metadata.flavors["python_function"]["loader_module"] == "mlflow.lightgbm"
    example = pyfunc.metadata.load_input_example(pyfunc.path)
    pd.testing.assert_frame_equal(example, X.head(5).reset_index(drop=True))


def test_numpy_and_freed_datasets_get_signatures(data) -> None:
    lgb_autolog.autolog(importance_types=[])
    X, y, _, _ = data
    array = X.to_numpy()
    b1 = lgb.train(PARAMS, lgb.Dataset(array, label=y), 3)
    constructed = lgb.Dataset(X, label=y, params={"verbose": -1, "min_data_in_leaf": 5})
    constructed.construct()  # raw data freed
    lgb.train(PARAMS, constructed, 3)
    r1, r2 = runs()
    p1 = autolog.load_model(f"runs:/{r1.info.run_id}/model")
    assert p1.metadata.signature.to_dict()["inputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 5]}}]'
    )
    np.testing.assert_array_equal(p1.predict(array), b1.predict(array))
    p2 = autolog.load_model(f"runs:/{r2.info.run_id}/model")
    assert p2.metadata.signature.inputs.input_names() == FEATURES


def test_reloaded_wrapper_keeps_its_class_labels_and_predictions(data) -> None:
    lgb_autolog.autolog()
    X, y, Xv, yv = data
    labels = np.where(y == 1, "yes", "no")
    clf = classifier(n_estimators=40, class_weight={"yes": 2.0, "no": 1.0})
    with warnings.catch_warnings():  # eval_X/eval_y do not encode string labels in 4.7
        warnings.simplefilter("ignore", lgb.basic.LGBMDeprecationWarning)
        clf.fit(
            X,
            labels,
            eval_set=[(Xv, np.where(yv == 1, "yes", "no"))],
            callbacks=[lgb.early_stopping(2, verbose=False)],
        )
    (run,) = runs()
    assert re.fullmatch(r"LGBMClassifier-[0-9a-f]{4}", run.info.run_name)
    assert run.data.tags["estimator_name"] == "LGBMClassifier"
    assert run.data.tags["estimator_class"] == "lightgbm.sklearn.LGBMClassifier"
    assert run.data.params["n_estimators"] == "40"
    assert run.data.params["class_weight.yes"] == "2.0"
    uri = f"runs:/{run.info.run_id}/model"
    native = lgb_autolog.load_model(uri)
    assert type(native) is lgb.LGBMClassifier
    np.testing.assert_array_equal(native.predict(Xv), clf.predict(Xv))
    np.testing.assert_array_equal(native.predict_proba(Xv), clf.predict_proba(Xv))
    assert native.classes_.tolist() == ["no", "yes"]
    assert native.best_iteration_ == clf.best_iteration_
    assert native.get_params() == clf.get_params()
    pyfunc = autolog.load_model(uri)
    np.testing.assert_array_equal(pyfunc.predict(Xv), clf.predict(Xv))
    assert pyfunc.metadata.signature.inputs.input_names() == FEATURES
    assert (
        pyfunc.metadata.signature.to_dict()["outputs"] == '[{"type": "string", "required": true}]'
    )
    assert pyfunc.metadata.flavors["python_function"]["loader_module"] == "autolog.models"
    assert "model/estimator.json" in artifacts(run, "model")


def test_regressor_multiclass_and_ranker_reload(data) -> None:
    lgb_autolog.autolog(importance_types=[])
    X, y, _, _ = data
    reg = lgb.LGBMRegressor(n_estimators=5, n_jobs=1, verbose=-1).fit(X, X.age)
    three = pd.cut(X.income, 3, labels=False)
    multi = classifier(n_estimators=5).fit(X, three)
    ranker = lgb.LGBMRanker(n_estimators=5, n_jobs=1, verbose=-1, min_child_samples=5)
    ranker.fit(X, y, group=[20] * 10)
    for run, model in zip(runs(), (reg, multi, ranker)):
        back = lgb_autolog.load_model(f"runs:/{run.info.run_id}/model")
        assert type(back) is type(model)
        np.testing.assert_array_equal(back.predict(X), model.predict(X))
    back = lgb_autolog.load_model(f"runs:/{runs()[1].info.run_id}/model")
    np.testing.assert_array_equal(back.predict_proba(X), multi.predict_proba(X))


def test_cv_logs_one_run_with_mean_and_std(data) -> None:
    lgb_autolog.autolog()
    dtrain, _ = datasets(data)
    result = lgb.cv(
        {**PARAMS, "metric": "binary_logloss"},
        dtrain,
        80,
        nfold=3,
        callbacks=[lgb.early_stopping(2, verbose=False)],
        return_cvbooster=True,
    )
    (run,) = runs()
    assert re.fullmatch(r"lightgbm\.cv-[0-9a-f]{4}", run.info.run_name)
    assert set(run.data.metrics) == {
        "valid-binary_logloss-mean",
        "valid-binary_logloss-std",
        "best_iteration",
        "stopped_iteration",
        "best_valid-binary_logloss-mean",
        "best_valid-binary_logloss-std",
    }
    best = result["cvbooster"].best_iteration  # 1-based; the result is cut there
    assert len(result["valid binary_logloss-mean"]) == best
    steps, means = history(run, "valid-binary_logloss-mean")
    assert means[:best] == result["valid binary_logloss-mean"]
    assert history(run, "valid-binary_logloss-std")[1][:best] == result["valid binary_logloss-stdv"]
    assert steps == list(range(len(steps))) and len(steps) > best
    assert run.data.metrics["best_iteration"] == best
    assert run.data.metrics["stopped_iteration"] == len(steps)
    assert run.data.metrics["best_valid-binary_logloss-mean"] == means[best - 1]
    assert run.data.params["nfold"] == "3"
    assert artifacts(run) == []  # cv trains no single model


def test_logs_into_the_users_run_and_leaves_it_open(data) -> None:
    lgb_autolog.autolog(log_models=False, importance_types=[])
    with autolog.start_run() as user_run:
        train(data)
        assert tracking.active_run().info.run_id == user_run.info.run_id
    (run,) = runs()
    assert run.info.run_id == user_run.info.run_id
    assert "valid-auc" in run.data.metrics


# -- the patching contract -------------------------------------------------------------------------


def test_not_patched_records_nothing(data) -> None:
    train(data)
    X, y, _, _ = data
    classifier(n_estimators=2).fit(X, y)
    assert runs() == []
    lgb_autolog.autolog()
    lgb_autolog.autolog(disable=True)
    train(data)
    assert runs() == []
    assert not patching.is_patched(lgb, "train")
    assert not patching.is_patched(lgb.LGBMClassifier, "fit")


def test_wrapper_fit_logs_one_run_and_its_train_is_quiet(data) -> None:
    lgb_autolog.autolog()
    assert patching.is_patched(lgb.sklearn, "train")
    X, y, _, _ = data
    classifier(n_estimators=3).fit(X, y)  # LGBMClassifier.fit -> LGBMModel.fit -> train
    (run,) = runs()
    assert run.data.tags["estimator_name"] == "LGBMClassifier"


def test_user_exception_propagates_unchanged_and_run_fails(data) -> None:
    lgb_autolog.autolog()
    with pytest.raises(lgb.basic.LightGBMError) as info:
        train(data, params={**PARAMS, "objective": "no-such-objective"})
    assert "no-such-objective" in str(info.value)
    (run,) = runs()
    assert run.info.status == "FAILED"
    assert tracking.active_run() is None


class Boom(Exception):
    pass


def test_user_callback_that_raises_propagates_unchanged(data) -> None:
    lgb_autolog.autolog()
    err = Boom("from the user's callback")

    def exploding(env):
        if env.iteration == 2:
            raise err

    callbacks = [exploding]
    with pytest.raises(Boom) as info:
        train(data, callbacks=callbacks)
    assert info.value is err
    X, y, Xv, yv = data
    with pytest.raises(Boom) as info:
        classifier().fit(X, y, eval_X=(Xv,), eval_y=(yv,), callbacks=callbacks)
    assert info.value is err
    assert callbacks == [exploding]
    assert [r.info.status for r in runs()] == ["FAILED", "FAILED"]


def test_users_callbacks_are_left_as_an_unpatched_run_leaves_them(data) -> None:
    def make():
        def first(env):
            pass

        return [first, lgb.early_stopping(2, verbose=False)]

    raw = make()
    train(data, callbacks=raw)  # not patched: LightGBM numbers the callbacks itself
    lgb_autolog.autolog(log_models=False)
    logged = make()
    train(data, callbacks=logged)
    assert len(logged) == 2
    assert [cb.order for cb in logged] == [cb.order for cb in raw]
    X, y, Xv, yv = data
    clf = classifier()
    before = clf.get_params()
    user_list = make()
    clf.fit(X, y, eval_X=(Xv,), eval_y=(yv,), callbacks=user_list)
    assert clf.get_params() == before
    assert len(user_list) == 2


def test_our_failure_is_one_warning_and_the_training_result_is_returned(data, monkeypatch) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING")
    lgb_autolog.autolog()
    store = tracking._store()

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(store, "log_batch", broken)
    monkeypatch.setattr(store, "write_artifact_bytes", broken)
    X, y, Xv, yv = data
    clf = classifier(n_estimators=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        booster = train(data)
        assert clf.fit(X, y, eval_X=(Xv,), eval_y=(yv,)) is clf
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1 and "disk on fire" in str(ours[0].message)
    assert isinstance(booster, lgb.Booster) and booster.current_iteration() == 8
    assert clf.booster_.current_iteration() == 5
    assert tracking.active_run() is None


def test_our_failure_raises_under_autolog_testing(data, monkeypatch) -> None:
    lgb_autolog.autolog()
    store = tracking._store()
    monkeypatch.setattr(store, "write_artifact_bytes", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train(data)
    assert tracking.active_run() is None


def test_a_failing_history_write_does_not_stop_training(data, monkeypatch) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING")
    lgb_autolog.autolog(log_models=False, importance_types=[])
    from autolog import batching

    def broken(self, *args, **kwargs):
        raise OSError("buffer broke")

    monkeypatch.setattr(batching.MetricBatcher, "record_many", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        booster = train(data)
    assert booster.current_iteration() == 8
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1 and "buffer broke" in str(ours[0].message)
    (run,) = runs()
    assert run.info.status == "FINISHED"


# -- the flavor API -----------------------------------------------------------------------------


def test_flavor_save_log_load(tmp_path, data) -> None:
    X, _, _, _ = data
    reg = lgb.LGBMRegressor(n_estimators=4, n_jobs=1, verbose=-1).fit(X, X.income)
    lgb_autolog.save_model(reg, tmp_path / "m", input_example=X.head(3))
    back = lgb_autolog.load_model(tmp_path / "m")
    assert type(back) is lgb.LGBMRegressor
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    reqs = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert any(r.startswith("lightgbm==") for r in reqs)
    assert any(r.startswith("scikit-learn==") for r in reqs)
    info = lgb_autolog.log_model(reg.booster_, "booster")
    assert info.model_uri.endswith("/booster")
    booster = lgb_autolog.load_model(info.model_uri)
    np.testing.assert_array_equal(booster.predict(X), reg.booster_.predict(X))
    autolog.end_run()


# -- the contract kit -------------------------------------------------------------------------------


def _raise_at_iteration_1(exc):
    def callback(env):
        if env.iteration == 1:
            raise exc

    return callback


def test_contract(data) -> None:
    X, y, _, _ = data
    testing.check_contract(
        "lightgbm",
        train=lambda: train(data, rounds=3),
        run_name="lightgbm.train",
        params={
            "objective",
            "metric",
            "num_threads",
            "verbose",
            "min_data_in_leaf",
            "num_boost_round",
            "keep_training_booster",
        },
        metrics={"train-binary_logloss", "train-auc", "valid-binary_logloss", "valid-auc"},
        artifacts={
            "feature_importance_gain.json",
            "feature_importance_gain.png",
            "feature_importance_split.json",
            "feature_importance_split.png",
            "model",
        },
        fail=lambda exc: train(data, rounds=3, callbacks=[_raise_at_iteration_1(exc)]),
        nested=lambda: classifier(n_estimators=3).fit(X, y),
    )

"""statsmodels autologging: what one fit records, and the patching contract (DESIGN.md 3)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import struct
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.base.model import Model
from statsmodels.regression.linear_model import RegressionModel
from statsmodels.tsa.arima.model import ARIMA

import autolog
from autolog import patching, testing, tracking
from autolog.errors import AutologWarning
from integrations import statsmodels as ism
from store.sqlite import Store

RNG = np.random.default_rng(0)
N = 120
X = sm.add_constant(RNG.normal(size=(N, 2)))
Y = X @ [1.0, 2.0, -1.0] + RNG.normal(size=N)
COUNTS = RNG.poisson(np.exp(X @ [0.3, 0.2, -0.1])).astype(float)
BINARY = (Y + RNG.normal(size=N) > 1).astype(float)
FRAME = pd.DataFrame({"y": Y, "x1": X[:, 1], "g": RNG.choice(["a", "b", "c"], N), "unused": 1.0})
SERIES = pd.Series(
    np.cumsum(RNG.normal(size=60)) + 10.0,
    index=pd.date_range("2020-01-01", periods=60, freq="MS"),
    name="sales",
)

OLS_FIT_PARAMS = {"method": "pinv", "cov_type": "nonrobust", "cov_kwds": "None", "use_t": "None"}
REGRESSION_METRICS = {
    "aic",
    "bic",
    "centered_tss",
    "condition_number",
    "df_model",
    "df_resid",
    "ess",
    "f_pvalue",
    "fvalue",
    "llf",
    "mse_model",
    "mse_resid",
    "mse_total",
    "rsquared",
    "rsquared_adj",
    "scale",
    "ssr",
    "uncentered_tss",
}
REGRESSION_ARTIFACTS = {
    "model_summary.txt",
    "model_summary.html",
    "coefficients.csv",
    "plots/residuals.png",
    "model/MLmodel",
    "model/model.statsmodels",
    "model/requirements.txt",
    "model/python_env.yaml",
    "model/conda.yaml",
}


@pytest.fixture
def on():
    autolog.autolog()
    yield


def only_run():
    runs = autolog.search_runs(output_format="list")
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def artifact_files(store, run_id):
    assert ism.flush()  # the files are written on autolog's background thread
    base = store.run_artifact_base(run_id)
    return {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}


def clockless(summary_text):
    """A summary's lines but its Date and Time lines (the fit's clock, not ours)."""
    return [ln for ln in summary_text.splitlines() if not ln.startswith(("Date:", "Time:"))]


def read_artifact(store, run_id, path, mode="r"):
    assert ism.flush()
    dest = store.artifact_dir(run_id, path)
    return dest.read_bytes() if mode == "rb" else dest.read_text(encoding="utf-8")


def png_size(data):
    """(width, height) of PNG bytes; fails on anything that is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def assert_metrics_equal_results(run, results, keys):
    inner = results._results
    for key in keys - {"converged", "iterations"}:
        expected = float(getattr(inner, key))
        got = run.data.metrics[key]
        assert got == expected or (math.isnan(got) and math.isnan(expected)), key


def coefficient_rows(store, run_id):
    return list(csv.DictReader(io.StringIO(read_artifact(store, run_id, "coefficients.csv"))))


# -- what one fit records ------------------------------------------------------------------------


def test_ols_logs_spec_fit_arguments_statistics_artifacts_and_model(store, on):
    res = sm.OLS(Y, X).fit()
    run = only_run()
    assert run.info.status == "FINISHED"
    assert run.data.tags[patching.INTEGRATION_TAG] == "statsmodels"
    assert run.data.params == {
        "model_class": "OLS",
        "fit_function": "fit",
        "endog_names": "y",
        "exog_names": "['const', 'x1', 'x2']",
        "nobs": "120",
        **OLS_FIT_PARAMS,
    }
    assert set(run.data.metrics) == REGRESSION_METRICS
    assert_metrics_equal_results(run, res, REGRESSION_METRICS)
    assert run.data.metrics["rsquared"] == res.rsquared

    run_id = run.info.run_id
    assert artifact_files(store, run_id) == REGRESSION_ARTIFACTS
    text = read_artifact(store, run_id, "model_summary.txt")
    assert "OLS Regression Results" in text
    assert res.summary().tables[1].as_text() in text  # the coefficient block, digit for digit
    # MLflow's model_summary.txt is summary().as_text(); only its Date and Time lines can differ
    clock = ("Date:", "Time:")
    assert [ln for ln in text.splitlines() if not ln.startswith(clock)] == [
        ln for ln in res.summary().as_text().splitlines() if not ln.startswith(clock)
    ]
    assert read_artifact(store, run_id, "model_summary.html").lstrip().startswith("<table")
    assert png_size(read_artifact(store, run_id, "plots/residuals.png", "rb")) == (560, 400)

    rows = coefficient_rows(store, run_id)
    assert list(rows[0]) == ["term", "coef", "std_err", "t", "p_value", "ci_lower", "ci_upper"]
    assert [r["term"] for r in rows] == ["const", "x1", "x2"]
    ci = res.conf_int()
    for i, row in enumerate(rows):
        assert float(row["coef"]) == res.params[i]
        assert float(row["std_err"]) == res.bse[i]
        assert float(row["t"]) == res.tvalues[i]
        assert float(row["p_value"]) == res.pvalues[i]
        assert (float(row["ci_lower"]), float(row["ci_upper"])) == tuple(ci[i])

    loaded = autolog.load_model(f"runs:/{run_id}/model")
    assert np.array_equal(loaded.predict(X[:7]), res.predict(X[:7]))
    assert loaded.metadata.signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}
    ]
    native = ism.load_model(f"runs:/{run_id}/model")
    assert np.array_equal(native.params, res.params)
    flavor = loaded.metadata.flavors["statsmodels"]
    assert flavor["data"] == "model.statsmodels" and flavor["serialization_format"] == "pickle"
    assert flavor["remove_data"] is False
    assert loaded.metadata.flavors["python_function"]["loader_module"] == "mlflow.statsmodels"


def test_glm_poisson_logs_family_link_and_convergence(store, on):
    res = sm.GLM(COUNTS, X, family=sm.families.Poisson()).fit()
    run = only_run()
    assert run.data.params == {
        "model_class": "GLM",
        "fit_function": "fit",
        "endog_names": "y",
        "exog_names": "['const', 'x1', 'x2']",
        "nobs": "120",
        "family": "Poisson",
        "link": "Log",
        "start_params": "None",
        "maxiter": "100",
        "method": "IRLS",
        "tol": "1e-08",
        "scale": "None",
        "cov_type": "nonrobust",
        "cov_kwds": "None",
        "use_t": "None",
        "full_output": "True",
        "disp": "False",
        "max_start_irls": "3",
    }
    keys = {
        "aic",
        "bic",
        "bic_deviance",
        "bic_llf",
        "converged",
        "deviance",
        "df_model",
        "df_resid",
        "iterations",
        "llf",
        "llnull",
        "null_deviance",
        "pearson_chi2",
        "scale",
    }
    assert set(run.data.metrics) == keys
    assert_metrics_equal_results(run, res, keys)
    assert run.data.metrics["converged"] == 1.0 and res.converged
    assert run.data.metrics["iterations"] == res.fit_history["iteration"]
    assert "plots/residuals.png" in artifact_files(store, run.info.run_id)
    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    assert np.array_equal(loaded.predict(X[:5]), res.predict(X[:5]))


def test_logit_logs_pseudo_r2_llr_and_one_run_despite_the_null_model_fit(store, on):
    res = sm.Logit(BINARY, X).fit(disp=0)
    run = only_run()  # llnull fits a constant-only Logit inside our logging: not a run
    assert run.data.params == {
        "model_class": "Logit",
        "fit_function": "fit",
        "endog_names": "y",
        "exog_names": "['const', 'x1', 'x2']",
        "nobs": "120",
        "start_params": "None",
        "method": "newton",
        "maxiter": "35",
        "full_output": "1",
        "disp": "0",
        "callback": "None",
    }
    keys = {
        "aic",
        "bic",
        "converged",
        "df_model",
        "df_resid",
        "iterations",
        "llf",
        "llnull",
        "llr",
        "llr_pvalue",
        "prsquared",
        "scale",
    }
    assert set(run.data.metrics) == keys
    assert_metrics_equal_results(run, res, keys)
    assert run.data.metrics["converged"] == float(res.mle_retvals["converged"])
    assert run.data.metrics["iterations"] == res.mle_retvals["iterations"]
    rows = coefficient_rows(store, run.info.run_id)
    assert list(rows[0])[3] == "z"  # MLE results report z statistics
    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    assert np.array_equal(loaded.predict(X[:9]), res.predict(X[:9]))


def test_arima_logs_order_once_and_reloads_as_a_forecaster(store, on):
    res = ARIMA(SERIES, order=(1, 1, 1)).fit()
    run = only_run()  # ARIMA fits inner state-space models: still one run
    assert run.data.params == {
        "model_class": "ARIMA",
        "fit_function": "fit",
        "endog_names": "sales",
        "nobs": "60",
        "order": "(1, 1, 1)",
        "seasonal_order": "(0, 0, 0, 0)",
        "trend": "n",
        "enforce_stationarity": "True",
        "enforce_invertibility": "True",
        "concentrate_scale": "False",
        "trend_offset": "1",
        "start_params": "None",
        "transformed": "True",
        "includes_fixed": "False",
        "method": "None",
        "method_kwargs": "None",
        "gls": "None",
        "gls_kwargs": "None",
        "cov_type": "None",
        "cov_kwds": "None",
        "return_params": "False",
        "low_memory": "False",
    }
    keys = {
        "aic",
        "aicc",
        "bic",
        "converged",
        "df_model",
        "df_resid",
        "hqic",
        "iterations",
        "llf",
        "mae",
        "mse",
        "scale",
        "sse",
    }
    assert set(run.data.metrics) == keys
    assert_metrics_equal_results(run, res, keys)
    assert run.data.metrics["iterations"] == res.mle_retvals["iterations"]

    files = artifact_files(store, run.info.run_id)
    assert {
        "model_summary.txt",
        "model_summary.html",
        "coefficients.csv",
        "plots/fitted_vs_actual.png",
    } <= files
    assert "plots/residuals.png" not in files
    plot = read_artifact(store, run.info.run_id, "plots/fitted_vs_actual.png", "rb")
    assert png_size(plot) == (560, 400)
    terms = [r["term"] for r in coefficient_rows(store, run.info.run_id)]
    assert terms == ["ar.L1", "ma.L1", "sigma2"]

    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.metadata.signature is None
    assert loaded.metadata.flavors["statsmodels"]["predict_input"] == "steps_or_time_index"
    pd.testing.assert_series_equal(loaded.predict(6), res.forecast(6))
    future = pd.DataFrame(index=pd.date_range("2024-11-01", periods=4, freq="MS"))
    pd.testing.assert_series_equal(
        loaded.predict(future), res.predict(start=future.index[0], end=future.index[-1])
    )
    mlflow_style = pd.DataFrame({"start": [50], "end": [65]})
    pd.testing.assert_series_equal(loaded.predict(mlflow_style), res.predict(start=50, end=65))


def test_sarimax_with_exog_forecasts_from_a_frame_of_future_exog(store, on):
    promo = pd.DataFrame({"promo": (np.arange(60) % 3 == 0).astype(float)}, index=SERIES.index)
    res = sm.tsa.SARIMAX(SERIES + 2.0 * promo["promo"], exog=promo, order=(1, 0, 0)).fit(disp=0)
    run = only_run()
    assert run.data.params["exog_names"] == "['promo']"
    assert run.data.params["order"] == "(1, 0, 0)"
    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    future = pd.DataFrame(
        {"promo": [1.0, 0.0, 0.0]}, index=pd.date_range("2025-01-01", periods=3, freq="MS")
    )
    pd.testing.assert_series_equal(loaded.predict(future), res.forecast(3, exog=future))
    assert np.array_equal(
        loaded.predict(future.to_numpy()), res.forecast(3, exog=future.to_numpy())
    )


def test_formula_ols_logs_formula_and_predicts_from_the_raw_frame(store, on):
    res = smf.ols("y ~ x1 + C(g)", FRAME).fit()
    run = only_run()
    assert run.data.params == {
        "model_class": "OLS",
        "fit_function": "fit",
        "formula": "y ~ x1 + C(g)",
        "endog_names": "y",
        "exog_names": "['Intercept', 'C(g)[T.b]', 'C(g)[T.c]', 'x1']",
        "nobs": "120",
        **OLS_FIT_PARAMS,
    }
    assert set(run.data.metrics) == REGRESSION_METRICS
    assert_metrics_equal_results(run, res, REGRESSION_METRICS)
    terms = [r["term"] for r in coefficient_rows(store, run.info.run_id)]
    assert terms == ["Intercept", "C(g)[T.b]", "C(g)[T.c]", "x1"]

    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.metadata.signature.inputs.to_dict() == [
        {"type": "double", "name": "x1", "required": True},
        {"type": "string", "name": "g", "required": True},
    ]
    new = FRAME[["x1", "g"]].iloc[:10]
    pd.testing.assert_series_equal(loaded.predict(new), res.predict(new))
    with pytest.raises(autolog.errors.SchemaEnforcementError, match="g"):
        loaded.predict(FRAME[["x1"]])


# -- the patching contract -------------------------------------------------------------------------


def test_not_patched_records_nothing_and_disable_restores_every_class(store):
    original_fit = RegressionModel.__dict__["fit"]
    sm.OLS(Y, X).fit()
    assert autolog.search_runs(output_format="list") == []

    autolog.autolog()
    assert patching.is_patched(RegressionModel, "fit")
    assert "__init_subclass__" in Model.__dict__
    autolog.autolog(disable=True)
    assert RegressionModel.__dict__["fit"] is original_fit
    assert "__init_subclass__" not in Model.__dict__
    assert "fit" not in sm.OLS.__dict__  # inherited before, inherited after
    sm.OLS(Y, X).fit()
    smf.ols("y ~ x1", FRAME).fit()
    assert autolog.search_runs(output_format="list") == []


def test_class_defined_after_autolog_is_patched_and_reverted(store, on):
    class MyOLS(sm.OLS):
        def fit(self, *args, **kwargs):
            return super().fit(*args, **kwargs)

    assert patching.is_patched(MyOLS, "fit")
    MyOLS(Y, X).fit()
    assert only_run().data.params["model_class"] == "MyOLS"  # nested OLS fit: no second run
    autolog.autolog(disable=True)
    assert not patching.is_patched(MyOLS, "fit")

    class Later(sm.OLS):
        def fit(self, *args, **kwargs):
            return super().fit(*args, **kwargs)

    assert not patching.is_patched(Later, "fit")


def test_user_error_propagates_unchanged_and_the_run_fails(store, on):
    singular = np.column_stack([X, X[:, 1]])
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm.Logit(BINARY, singular).fit(disp=0, method="newton")
    run = only_run()
    assert run.info.status == "FAILED"
    assert run.data.params["model_class"] == "Logit"  # what was tried is recorded
    assert run.data.metrics == {}

    error = ValueError("the user's own error")

    class Failing(sm.OLS):
        def fit(self, *args, **kwargs):
            raise error

    with pytest.raises(ValueError) as caught:
        Failing(Y, X).fit()
    assert caught.value is error
    runs = autolog.search_runs(output_format="list")
    assert [r.info.status for r in runs] == ["FAILED", "FAILED"]


def _inject_store_failure(monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("injected store failure")

    monkeypatch.setattr(Store, "log_batch", broken)
    monkeypatch.setattr(patching, "_last_warning", {})
    monkeypatch.setattr(patching, "_suppressed", {})


def test_our_failure_is_one_warning_and_the_same_results_are_returned(store, on, monkeypatch):
    monkeypatch.delenv(patching.TESTING_ENV)
    _inject_store_failure(monkeypatch)

    class Recording(sm.OLS):
        def fit(self, *args, **kwargs):
            self.returned = super().fit(*args, **kwargs)
            return self.returned

    model = Recording(Y, X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit()
        again = Recording(Y, X).fit()
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1  # the second failure within a minute is counted, not shown
    assert "injected store failure" in str(ours[0].message)
    assert res is model.returned
    assert np.array_equal(again.params, res.params)


def test_our_failure_raises_under_autolog_testing(store, on, monkeypatch):
    _inject_store_failure(monkeypatch)
    with pytest.raises(RuntimeError, match="injected store failure"):
        sm.OLS(Y, X).fit()


def test_nested_and_internal_fits_log_once(store, on):
    class TwoStep(sm.OLS):
        def fit(self, *args, **kwargs):
            sm.OLS(self.endog, self.exog).fit()  # a helper fit inside the user's fit
            return super().fit(*args, **kwargs)

    TwoStep(Y, X).fit()
    assert only_run().data.params["model_class"] == "TwoStep"

    from statsmodels.stats.outliers_influence import variance_inflation_factor
    from statsmodels.tsa.stattools import adfuller

    variance_inflation_factor(X, 1)  # fits an OLS per call
    adfuller(SERIES.to_numpy(), maxlag=2, result_object=True)  # fits several OLS
    assert len(autolog.search_runs(output_format="list")) == 1


def test_logs_into_the_users_run_with_the_artifacts_written_during_the_fit(store, on):
    with autolog.start_run() as run:
        sm.OLS(Y, X).fit()
        assert tracking.active_run().info.run_id == run.info.run_id
        assert artifact_files(store, run.info.run_id) >= REGRESSION_ARTIFACTS
    assert only_run().info.status == "FINISHED"


def test_fit_regularized_is_logged(store, on):
    res = sm.OLS(Y, X).fit_regularized(alpha=0.1, L1_wt=1.0)
    run = only_run()
    assert run.data.params["fit_function"] == "fit_regularized"
    assert run.data.params["alpha"] == "0.1"
    assert run.data.params["L1_wt"] == "1.0"
    assert run.data.params["method"] == "elastic_net"
    rows = coefficient_rows(store, run.info.run_id)
    assert [float(r["coef"]) for r in rows] == list(res.params)
    assert "model_summary.txt" not in artifact_files(store, run.info.run_id)  # statsmodels has none


def test_multinomial_coefficient_table_is_per_equation(store, on):
    classes = np.digitize(Y, [0.0, 2.0])
    res = sm.MNLogit(classes, X).fit(disp=0)
    rows = coefficient_rows(store, only_run().info.run_id)
    assert len(rows) == res.params.size
    assert [(r["equation"], r["term"]) for r in rows[:4]] == [
        ("0", "const"),
        ("0", "x1"),
        ("0", "x2"),
        ("1", "const"),
    ]
    ci = res.conf_int()  # (equation, term, bound) for array input
    for row, (eq, term) in zip(rows, [(j, i) for j in range(2) for i in range(3)], strict=True):
        assert float(row["coef"]) == res.params[term, eq]
        assert float(row["std_err"]) == res.bse[term, eq]
        assert float(row["ci_lower"]) == ci[eq, term, 0]
        assert float(row["ci_upper"]) == ci[eq, term, 1]


# -- flags and the flavor ------------------------------------------------------------------------------


def test_log_models_false_and_log_plots_false(store):
    ism.autolog(log_models=False, log_plots=False)
    sm.OLS(Y, X).fit()
    files = artifact_files(store, only_run().info.run_id)
    assert files == {"model_summary.txt", "model_summary.html", "coefficients.csv"}


def test_remove_data_saves_a_smaller_model_that_predicts_the_same(store, tmp_path):
    ism.autolog(remove_data=True, log_input_examples=True)
    res = smf.ols("y ~ x1 + C(g)", FRAME).fit()
    run = only_run()
    assert res.model.endog is not None  # the user's results keep their data
    loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.metadata.flavors["statsmodels"]["remove_data"] is True
    assert loaded.unwrap_python_model().model.endog is None
    new = FRAME.iloc[:8]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the extra columns y and unused are dropped
        pd.testing.assert_series_equal(loaded.predict(new), res.predict(new))
    example = loaded.metadata.load_input_example(loaded.path)
    pd.testing.assert_frame_equal(example, FRAME[["x1", "g"]].head(5), check_dtype=False)

    full = ism.save_model(res, tmp_path / "full")
    assert full.flavors["statsmodels"]["remove_data"] is False
    assert (tmp_path / "full" / "model.statsmodels").stat().st_size > (
        loaded.path / "model.statsmodels"
    ).stat().st_size


def test_flavor_api_round_trip(tmp_path):
    res = sm.OLS(Y, X).fit()
    ism.save_model(res, tmp_path / "m", input_example=X[:3])
    back = ism.load_model(tmp_path / "m", allow_pickle=True)
    assert np.array_equal(back.params, res.params)
    pyfunc = autolog.load_model(tmp_path / "m", allow_pickle=True)
    assert np.array_equal(pyfunc.predict(X), res.predict(X))
    with autolog.start_run() as run:
        info = ism.log_model(res, "ols")
    assert info.model_uri == f"runs:/{run.info.run_id}/ols"
    assert np.array_equal(ism.load_model(info.model_uri).predict(X[:4]), res.predict(X[:4]))
    with pytest.raises(autolog.errors.ModelError, match="fitted results"):
        ism.save_model(sm.OLS(Y, X), tmp_path / "unfitted")


def test_enabled_before_statsmodels_is_imported(tmp_path):
    script = textwrap.dedent(
        """
        import json, sys
        import autolog
        autolog.autolog()
        before = "statsmodels" in sys.modules
        import numpy as np
        import statsmodels.api as sm
        from integrations import statsmodels as ism
        X = sm.add_constant(np.arange(20.0))
        sm.OLS(np.arange(20.0) * 2 + 1, X).fit()
        runs = autolog.search_runs(output_format="list")
        print(json.dumps({"before": before, "runs": len(runs),
                          "model_class": runs[0].data.params.get("model_class")}))
        """
    )
    env = {**os.environ, "AUTOLOG_TRACKING_URI": str(tmp_path / "runs")}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "before": False,
        "runs": 1,
        "model_class": "OLS",
    }


def test_registered_model_name_registers_each_logged_model(store):
    ism.autolog(registered_model_name="sales-ols")
    first = sm.OLS(Y, X).fit()
    second = sm.OLS(Y[:60], X[:60]).fit()
    for version, res in (("1", first), ("2", second)):
        loaded = autolog.load_model(f"models:/sales-ols/{version}")
        assert np.array_equal(loaded.predict(X[:5]), res.predict(X[:5]))


def test_the_summary_plot_and_table_are_written_on_autologs_background_thread(
    store, on, monkeypatch
):
    import threading

    writers = {}
    write = store.write_artifact_bytes

    def recording(run_id, path, data):
        writers[path] = threading.current_thread().name
        return write(run_id, path, data)

    monkeypatch.setattr(store, "write_artifact_bytes", recording)
    res = sm.OLS(Y, X).fit()
    run_id = autolog.last_active_run().info.run_id
    assert ism.flush() is True
    assert writers == {
        "coefficients.csv": "autolog-deferred",
        "model_summary.txt": "autolog-deferred",
        "model_summary.html": "autolog-deferred",
        "plots/residuals.png": "autolog-deferred",
    }
    assert clockless(read_artifact(store, run_id, "model_summary.txt")) == clockless(
        res.summary().as_text()
    )
    assert autolog.get_run(run_id).info.status == "FINISHED"


def test_the_latex_a_logit_summary_throws_away_is_skipped_only_inside_autologs_call(
    store, on, monkeypatch
):
    from statsmodels.iolib.table import SimpleTable

    calls = []
    original = SimpleTable.as_latex_tabular

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SimpleTable, "as_latex_tabular", counting)
    labels = (np.median(Y) < Y).astype(float)
    res = sm.Logit(labels, X).fit(disp=0)
    run_id = autolog.last_active_run().info.run_id
    assert ism.flush() is True
    assert calls == []  # autolog's summary() rendered no LaTeX
    assert clockless(read_artifact(store, run_id, "model_summary.txt")) == clockless(
        res.summary().as_text()
    )
    assert len(calls) == 2  # the user's own summary(): statsmodels renders and discards LaTeX
    latex = res.summary().as_latex()
    assert latex.startswith("\\begin{center}") and "Logit Regression Results" in latex


def _fit_in_child(_):
    sm.OLS(Y, X).fit()
    run = autolog.last_active_run()
    return run.info.run_id


def test_fit_in_a_forked_worker_writes_its_artifacts_before_the_worker_exits(store, on):
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        child_run = pool.map_async(_fit_in_child, [0]).get(timeout=60)[0]
    assert artifact_files(store, child_run) == REGRESSION_ARTIFACTS


# -- the contract kit -------------------------------------------------------------------------------


class _RaisingOLS(sm.OLS):
    error: BaseException

    def fit(self, *args, **kwargs):
        raise self.error


class _TwoStepOLS(sm.OLS):
    def fit(self, *args, **kwargs):
        sm.OLS(self.endog, self.exog).fit()  # a helper fit inside the user's fit
        return super().fit(*args, **kwargs)


def _raising_fit(exc):
    model = _RaisingOLS(Y, X)
    model.error = exc
    return model.fit()


def test_contract(store):
    testing.check_contract(
        "statsmodels",
        train=lambda: sm.OLS(Y, X).fit(),
        run_name="OLS",
        params={
            "model_class",
            "fit_function",
            "endog_names",
            "exog_names",
            "nobs",
            *OLS_FIT_PARAMS,
        },
        metrics=REGRESSION_METRICS,
        artifacts={"model_summary.txt", "model_summary.html", "coefficients.csv", "plots", "model"},
        fail=_raising_fit,
        nested=lambda: _TwoStepOLS(Y, X).fit(),
    )

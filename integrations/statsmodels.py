"""statsmodels autologging: every model's ``fit``, with the statistics a statistician reads.

Usage::

    import autolog
    autolog.autolog()                      # or: from integrations import statsmodels; statsmodels.autolog()

    import statsmodels.formula.api as smf
    res = smf.ols("y ~ x1 + C(g)", df).fit()   # one run: spec, fit() arguments, statistics,
                                               # summary, coefficient table, plot, model

What one ``fit`` (or ``fit_regularized``) records:

- params: ``model_class``, ``formula`` (formula API), ``endog_names``, ``exog_names``, ``nobs``,
  the model's constructor specification (``order``, ``seasonal_order``, ``trend``, ``family`` and
  ``link`` for GLM, ...), and every argument of ``fit()`` with its default filled in;
- metrics: every scalar statistic in :data:`STATISTICS` the results object offers (``aic``,
  ``bic``, ``llf``, ``rsquared``, ``prsquared``, ...), ``converged`` and ``iterations``;
- artifacts: ``model_summary.txt`` (MLflow's name), ``model_summary.html``,
  ``coefficients.csv``, and ``plots/residuals.png`` (regression models) or
  ``plots/fitted_vs_actual.png`` (time series);
- the results object as a model (``model/``), saved with statsmodels' own ``save`` (a pickle).

Every ``statsmodels.base.model.Model`` subclass that defines ``fit`` or ``fit_regularized`` is
patched, including classes defined after ``autolog()`` (a ``Model.__init_subclass__`` hook),
and statsmodels is never imported by autolog itself. Fits that statsmodels runs inside a fit
(start parameters, null models, ARIMA's inner models) or inside its own helper functions
(``adfuller``, ``variance_inflation_factor``, ``arma_order_select_ic``...) are not logged.

The summary, coefficient table and plot are written during the fit (the plot is drawn with
Pillow in a few milliseconds), so they exist when ``fit()`` returns. See docs/statsmodels.md.
"""

from __future__ import annotations

import csv
import functools
import inspect
import io
import math
import pickle
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from autolog import fit_inputs, integration, models, patching, tracking
from autolog.errors import ModelError

LIBRARY = "statsmodels"
INTEGRATION = integration.Integration(LIBRARY, supported=">=0.14,<0.16")

# -- what is logged ----------------------------------------------------------------------------

PARAM_MODEL_CLASS = "model_class"
PARAM_FIT_FUNCTION = "fit_function"  # "fit" or "fit_regularized"
PARAM_FORMULA = "formula"
PARAM_ENDOG_NAMES = "endog_names"
PARAM_EXOG_NAMES = "exog_names"
PARAM_NOBS = "nobs"
PARAM_FAMILY = "family"
PARAM_LINK = "link"
FIT_PARAM_PREFIX = "fit."  # only for a fit() argument named like a specification param

#: Scalar statistics read from the results object when its class offers them. An explicit list:
#: a scan of every attribute would evaluate lazily cached arrays, some of them n x n.
STATISTICS = (
    "aic",
    "aicc",
    "bic",
    "bic_llf",
    "bic_deviance",
    "hqic",
    "llf",
    "llnull",
    "llr",
    "llr_pvalue",
    "prsquared",
    "rsquared",
    "rsquared_adj",
    "fvalue",
    "f_pvalue",
    "ess",
    "ssr",
    "centered_tss",
    "uncentered_tss",
    "mse_model",
    "mse_resid",
    "mse_total",
    "scale",
    "deviance",
    "null_deviance",
    "pearson_chi2",
    "condition_number",
    "df_model",
    "df_resid",
    "sse",
    "mse",
    "mae",
    "fpe",
    "detomega",
    "sigma2",
    "lnalpha",
)
METRIC_CONVERGED = "converged"
METRIC_ITERATIONS = "iterations"

SUMMARY_TEXT = "model_summary.txt"  # MLflow's name for it
SUMMARY_HTML = "model_summary.html"
COEFFICIENTS_CSV = "coefficients.csv"
RESIDUALS_PLOT = "plots/residuals.png"
FITTED_VS_ACTUAL_PLOT = "plots/fitted_vs_actual.png"
MODEL_ARTIFACT_PATH = "model"
MODEL_FILE = "model.statsmodels"  # MLflow's name, so mlflow.statsmodels loads our models

PATCHED_METHODS = ("fit", "fit_regularized")
_MODEL_MODULE = "statsmodels.base.model"

# Constructor arguments that are data, not specification.
_NOT_SPEC = frozenset(
    {
        "self",
        "endog",
        "exog",
        "data",
        "missing",
        "hasconst",
        "dates",
        "freq",
        "formula",
        "weights",
        "sigma",
        "groups",
        "exposure",
        "offset",
        "var_weights",
        "freq_weights",
        "exog_re",
        "exog_vc",
        "time",
        "status",
        "entry",
        "strata",
        "check_rank",
        "validate_specification",
        "validate_exog",
    }
)
# Constructor arguments the model keeps under another attribute name.
_SPEC_ALIASES = {"lags": "ar_lags"}
_MAX_PARAM_ITEMS = 50


# -- patching ---------------------------------------------------------------------------------

_MISSING = object()


def _patched_fit(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _log_fit(call, instance, args, kwargs, "fit")


def _patched_fit_regularized(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _log_fit(call, instance, args, kwargs, "fit_regularized")


_PATCH_FNS = {"fit": _patched_fit, "fit_regularized": _patched_fit_regularized}


def _log_fit(call: Any, model: Any, args: tuple, kwargs: dict, function: str) -> Any:
    session = patching.current_session()
    if session is None or _called_by_statsmodels():
        return call(*args, **kwargs)
    # The specification first, so a fit that raises leaves a FAILED run saying what was tried.
    params = _specification(model)
    params[PARAM_FIT_FUNCTION] = function
    for key, value in _fit_arguments(call.wrapped, args, kwargs).items():
        if key in params and params[key] != value:
            key = FIT_PARAM_PREFIX + key
        params[key] = value
    run_id = session.run_id
    store = tracking._store()
    store.log_batch(run_id, params=params)
    fit_inputs.log_fit_datasets(LIBRARY, run_id, session.config, lambda: _training_set(model))
    results = call(*args, **kwargs)
    _log_results(session, run_id, store, model, results)
    return results


def _training_set(model: Any) -> tuple[Any, Any]:
    """(features, targets) as the user gave them: a formula's frame; exog and endog; a time
    series' endog alone."""
    data = model.data
    frame = getattr(data, "frame", None)
    if frame is not None and isinstance(getattr(model, "formula", None), str):
        return frame, None
    endog = getattr(data, "orig_endog", None)
    endog = model.endog if endog is None else endog
    exog = getattr(data, "orig_exog", None)
    exog = getattr(model, "exog", None) if exog is None else exog
    return (endog, None) if exog is None else (exog, endog)


def _called_by_statsmodels() -> bool:
    """Whether the fit was called from statsmodels' own code (a test, a helper), not the user's."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == __name__ or name.startswith(("autolog.", "wrapt")):
            frame = frame.f_back  # type: ignore[assignment]
            continue
        return name == "statsmodels" or name.startswith("statsmodels.")
    return False


@INTEGRATION.patcher
def patch() -> None:
    """Every Model subclass (those defined later too), once statsmodels.base.model is imported.

    Classes appear as the user imports statsmodels' submodules; importing them all here
    (statsmodels.api) would cost 0.2-2 s the user may never need.
    """
    patching.when_imported(LIBRARY, _MODEL_MODULE, _patch_models)


def _patch_models(model_module: Any) -> None:
    patching.patch_subclasses(LIBRARY, model_module.Model, _PATCH_FNS)


# -- what a fit logs --------------------------------------------------------------------------


def _log_results(session: Any, run_id: str, store: Any, model: Any, results: Any) -> None:
    config = session.config
    ts = int(time.time() * 1000)
    metrics = statistics(results)
    if metrics:
        store.log_batch(run_id, metrics=[(k, v, ts, 0) for k, v in metrics.items()])
    if not _is_results(results):
        return  # e.g. fit(return_params=True): there is nothing more to describe
    _log_artifacts(
        run_id, store, model, results, bool(config.get("log_plots", True)), bool(config.silent)
    )
    if config.log_models:
        patching.guarded(
            LIBRARY, _log_autolog_model, model, results, run_id, config, silent=config.silent
        )


def _is_results(obj: Any) -> bool:
    return hasattr(obj, "model") and (hasattr(obj, "params") or hasattr(obj, "predict"))


def _fit_arguments(fit: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The fit() call's arguments by name, defaults filled in, as loggable values."""
    sig = _signature(getattr(fit, "__func__", fit))
    if sig is None:
        return {k: _param_value(v) for k, v in kwargs.items()}
    try:
        bound = sig.bind(None, *args, **kwargs)  # None stands for self
    except TypeError:
        return {}  # the call itself will raise the user's TypeError
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        if i == 0:
            continue
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            for k, v in value.items():
                out[k] = _param_value(v)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                out[name] = _param_value(list(value))
        else:
            out[name] = _param_value(value)
    return out


@functools.lru_cache(maxsize=512)
def _signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _specification(model: Any) -> dict[str, Any]:
    """What the user specified when building the model, from the model object."""
    cls = type(model)
    spec: dict[str, Any] = {PARAM_MODEL_CLASS: cls.__name__}
    formula = getattr(model, "formula", None)
    if isinstance(formula, str):
        spec[PARAM_FORMULA] = formula
    for key, attr in ((PARAM_ENDOG_NAMES, "endog_names"), (PARAM_EXOG_NAMES, "exog_names")):
        try:
            names = getattr(model, attr)
        except Exception:
            continue
        if names is not None:
            spec[key] = names if isinstance(names, str) else str(list(names))
    nobs = getattr(model, "nobs", None)
    if nobs is None:  # discrete models learn nobs when fitted: count the rows
        nobs = getattr(getattr(model, "endog", None), "shape", (None,))[0]
    if isinstance(nobs, (int, float)) or type(nobs).__module__ == "numpy":
        try:
            spec[PARAM_NOBS] = int(nobs)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    for name in _constructor_spec_names(cls):  # type: ignore[arg-type]
        try:
            value = getattr(model, _SPEC_ALIASES.get(name, name), None)
            if value is None:
                value = getattr(model, name)
        except Exception:
            continue
        if name == "family":
            spec[PARAM_FAMILY] = type(value).__name__
            link = getattr(value, "link", None)
            if link is not None:
                spec[PARAM_LINK] = type(link).__name__
            continue
        formatted = _spec_value(value)
        if formatted is not _MISSING:
            spec[name] = formatted
    return spec


@functools.lru_cache(maxsize=256)
def _constructor_spec_names(cls: Any) -> tuple[str, ...]:
    """Constructor arguments the model keeps under the same attribute name (the spec)."""
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return ()
    names = []
    for name, p in params.items():
        if name in _NOT_SPEC or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        attr = inspect.getattr_static(cls, name, None)
        if attr is not None and (inspect.isfunction(attr) or isinstance(attr, classmethod)):
            continue
        names.append(name)
    return tuple(names)


_SIMPLE = (str, bool, int, float, type(None))


def _spec_value(value: Any) -> Any:
    """A specification attribute as a param value; _MISSING for data-like values."""
    if isinstance(value, _SIMPLE):
        return value
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        if len(value) <= _MAX_PARAM_ITEMS and all(isinstance(v, _SIMPLE) for v in value):
            return str(value)
        return _MISSING
    module = type(value).__module__ or ""
    if module.startswith("statsmodels."):  # a norm, a covariance structure, ...
        return type(value).__name__
    return _MISSING


def _param_value(value: Any) -> Any:
    """A fit() argument as a param value: scalars as they are, the rest summarized."""
    if isinstance(value, _SIMPLE):
        return value
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _param_value(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        if len(value) <= _MAX_PARAM_ITEMS:
            return str(type(value)(_param_value(v) for v in value))
        return f"{type(value).__name__} of {len(value)} items"
    if np is not None and hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = np.asarray(value)
        if arr.size <= _MAX_PARAM_ITEMS:
            return str(arr.tolist())
        return f"{type(value).__name__} shape={tuple(arr.shape)} dtype={arr.dtype}"
    if inspect.isfunction(value) or inspect.ismethod(value) or inspect.isbuiltin(value):
        return getattr(value, "__qualname__", getattr(value, "__name__", repr(value)))
    if isinstance(value, type):
        return value.__name__
    return type(value).__name__


def statistics(results: Any) -> dict[str, float]:
    """The scalar statistics of a results object: :data:`STATISTICS`, converged, iterations."""
    import numpy as np

    res = getattr(results, "_results", results)  # the wrapper only re-wraps arrays
    out: dict[str, float] = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for name in STATISTICS:
            try:
                value = getattr(res, name)
            except Exception:  # not offered by this model, or undefined for this fit
                continue
            number = _scalar(value)
            if number is not None:
                out[name] = number
    converged, iterations = _convergence(results)  # ETS sets mle_retvals on the wrapper
    if converged is not None:
        out[METRIC_CONVERGED] = float(converged)
    if iterations is not None:
        out[METRIC_ITERATIONS] = float(iterations)
    return out


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.bool_):
            return None
        if isinstance(value, np.number) and not isinstance(value, np.complexfloating):
            return float(value)
        if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iuf":
            return float(value)
    return None


def _convergence(res: Any) -> tuple[bool | None, int | None]:
    converged: Any = None
    iterations: Any = None
    retvals = getattr(res, "mle_retvals", None)
    if isinstance(retvals, dict):  # scipy's OptimizeResult is a dict too
        converged = retvals.get("converged", retvals.get("success"))
        iterations = retvals.get("iterations", retvals.get("nit"))
    if converged is None:
        converged = getattr(res, "__dict__", {}).get("converged")
        if converged is None:
            converged = getattr(getattr(res, "_results", None), "__dict__", {}).get("converged")
    history = getattr(res, "fit_history", None)
    if iterations is None and isinstance(history, dict):
        iterations = history.get("iteration")
    np = sys.modules.get("numpy")
    ok = (bool, int) if np is None else (bool, int, np.bool_, np.integer)
    return (
        bool(converged) if isinstance(converged, ok) else None,
        int(iterations)
        if isinstance(iterations, ok) and not isinstance(iterations, bool)
        else None,
    )


# -- artifacts ----------------------------------------------------------------------------------


def _is_time_series(model: Any) -> bool:
    tsa = sys.modules.get("statsmodels.tsa.base.tsa_model")
    return tsa is not None and isinstance(model, tsa.TimeSeriesModel)


def _log_artifacts(
    run_id: str, store: Any, model: Any, results: Any, log_plots: bool, silent: bool
) -> None:
    """coefficients.csv, model_summary.txt / .html and the plot; each fails on its own."""
    import numpy as np

    failures: list[Exception] = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for write in (_log_coefficients, _log_summary, _log_plot if log_plots else None):
            if write is not None:
                try:
                    write(run_id, store, model, results)
                except Exception as exc:
                    failures.append(exc)
    # reported once the library's warnings are no longer ignored (ours would be lost with them)
    for failure in failures:
        patching.report_error(LIBRARY, failure, silent)


def _log_coefficients(run_id: str, store: Any, model: Any, results: Any) -> None:
    table = coefficient_table(results)
    if table:
        store.write_artifact_bytes(run_id, COEFFICIENTS_CSV, table.encode("utf-8"))


def _log_summary(run_id: str, store: Any, model: Any, results: Any) -> None:
    summary = _summary(results)
    if summary is not None:
        text, html = _render_summary(summary)
        store.write_artifact_bytes(run_id, SUMMARY_TEXT, text.encode("utf-8"))
        store.write_artifact_bytes(run_id, SUMMARY_HTML, html.encode("utf-8"))


def _log_plot(run_id: str, store: Any, model: Any, results: Any) -> None:
    data = _plot_data(model, results)
    if data is None:
        return
    png = render_plot(data)
    if png is not None:
        name = RESIDUALS_PLOT if data["kind"] == "residuals" else FITTED_VS_ACTUAL_PLOT
        store.write_artifact_bytes(run_id, name, png)


def coefficient_table(results: Any) -> str | None:
    """CSV: term (and equation), coef, std_err, t or z, p_value, ci_lower, ci_upper (95%)."""
    import numpy as np

    res = getattr(results, "_results", results)
    params = getattr(results, "params", None)
    if params is None:  # VECM's results have none
        return None
    if isinstance(params, dict):  # Holt-Winters: smoothing parameters and initial states
        rows = [["term", "coef"]]
        for k, v in params.items():
            number = _scalar(v)
            if number is not None:
                rows.append([k, _num(number)])
        return _csv(rows)
    p = np.asarray(params, dtype=float)
    names = _param_names(results, p)
    stat = "t" if getattr(res, "use_t", False) else "z"
    columns: dict[str, Any] = {"coef": p}
    for key, attr in (("std_err", "bse"), (stat, "tvalues"), ("p_value", "pvalues")):
        try:
            values = np.asarray(getattr(res, attr), dtype=float)
        except Exception:
            continue
        if values.shape == p.shape:
            columns[key] = values
    try:
        ci = np.asarray(res.conf_int(alpha=0.05), dtype=float)
    except Exception:
        ci = None
    if ci is not None:
        if p.ndim == 1 and ci.shape == (p.size, 2):
            columns["ci_lower"], columns["ci_upper"] = ci[:, 0], ci[:, 1]
        elif p.ndim == 2 and ci.shape == (p.size, 2):  # equation by equation (MNLogit)
            columns["ci_lower"] = ci[:, 0].reshape(p.shape, order="F")
            columns["ci_upper"] = ci[:, 1].reshape(p.shape, order="F")
        elif p.ndim == 2 and ci.shape == (p.shape[1], p.shape[0], 2):  # (MNLogit, arrays)
            columns["ci_lower"], columns["ci_upper"] = ci[..., 0].T, ci[..., 1].T
        elif p.ndim == 2 and ci.shape == (*p.shape, 2):
            columns["ci_lower"], columns["ci_upper"] = ci[..., 0], ci[..., 1]
    header = list(columns)
    if p.ndim == 1:
        rows = [["term", *header]]
        for i, name in enumerate(names):
            rows.append([name, *(_num(columns[c][i]) for c in header)])
        return _csv(rows)
    equations = list(getattr(params, "columns", range(p.shape[1])))
    rows = [["equation", "term", *header]]
    for j, eq in enumerate(equations):
        for i, name in enumerate(names):
            rows.append([str(eq), name, *(_num(columns[c][i, j]) for c in header)])
    return _csv(rows)


def _param_names(results: Any, p: Any) -> list[str]:
    index = getattr(results.params, "index", None)
    if index is not None:
        return [str(x) for x in index]
    for source in (
        getattr(results.model, "exog_names", None),
        getattr(results, "param_names", None),
    ):
        try:
            if source is not None and len(source) == p.shape[0]:
                return [str(x) for x in source]
        except TypeError:
            continue
    return [f"x{i}" for i in range(p.shape[0])]


def _num(v: Any) -> str:
    f = float(v)
    return (
        repr(f) if math.isfinite(f) else ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf"))
    )


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _plot_data(model: Any, results: Any) -> dict[str, Any] | None:
    """The arrays the plot needs: residuals vs fitted, or the series and its fitted values."""
    import numpy as np

    res = getattr(results, "_results", results)
    if _is_time_series(model):
        fitted = getattr(results, "fittedvalues", None)
        if fitted is None:
            return None
        actual = getattr(model.data, "orig_endog", None)
        if actual is None:
            actual = model.endog
        burn = int(getattr(res, "loglikelihood_burn", 0) or 0)
        return {
            "kind": "time_series",
            "actual": _series(actual),
            "fitted": _series(fitted),
            "burn": burn,
            "name": str(getattr(model, "endog_names", "y")),
            "title": type(model).__name__,
        }
    fitted = np.asarray(getattr(res, "fittedvalues", None))
    if fitted.dtype.kind not in "iuf" or fitted.ndim != 1:
        return None
    regression = sys.modules.get("statsmodels.regression.linear_model")
    rlm = sys.modules.get("statsmodels.robust.robust_linear_model")
    linear = (regression is not None and isinstance(model, regression.RegressionModel)) or (
        rlm is not None and isinstance(model, rlm.RLM)
    )
    family = type(getattr(model, "family", None)).__name__
    if linear or family == "Gaussian":
        resid, label = getattr(res, "resid", None), "Residuals"
    else:
        resid, label = getattr(res, "resid_pearson", None), "Pearson residuals"
        if resid is None:
            resid, label = getattr(res, "resid", None), "Residuals"
    if resid is None and linear:  # fit_regularized's results have no residuals
        resid = np.asarray(model.endog, dtype=float) - fitted
    resid = np.asarray(resid) if resid is not None else None
    if resid is None or resid.shape != fitted.shape or resid.dtype.kind not in "iuf":
        return None
    return {
        "kind": "residuals",
        "fitted": fitted,
        "resid": resid,
        "label": label,
        "title": f"{type(model).__name__}, {model.endog_names}",
    }


def _series(values: Any) -> tuple[Any, Any]:
    """(x, y) for a line plot: a time index when there is one, positions otherwise."""
    import numpy as np

    index = getattr(values, "index", None)
    y = np.asarray(values, dtype=float)
    x: Any = None
    if index is not None:
        to_ts = getattr(index, "to_timestamp", None)
        if to_ts is not None:  # PeriodIndex
            index = to_ts()
        arr = np.asarray(index)
        if arr.dtype.kind in "Miuf":
            x = arr
    if x is None:
        x = np.arange(len(y))
    return x, y


def _summary(results: Any) -> Any:
    summarize = getattr(results, "summary", None)
    if summarize is None:
        return None
    try:
        return summarize()
    except NotImplementedError:  # fit_regularized's results, among others
        return None


def _render_summary(summary: Any) -> tuple[str, str]:
    """(text, HTML) of a Summary; summaries without HTML (VAR's) get their text in a <pre>."""
    as_text = getattr(summary, "as_text", None)
    text = as_text() if as_text is not None else str(summary)
    as_html = getattr(summary, "as_html", None)
    if as_html is not None:
        return text, as_html()
    import html

    return text, f"<pre>{html.escape(text)}</pre>"


def render_plot(data: dict[str, Any]) -> bytes | None:
    """PNG bytes of residuals vs fitted, or of fitted vs actual (None without Pillow)."""
    from autolog import plots

    if data["kind"] == "residuals":
        return plots.scatter_png(
            data["fitted"],
            data["resid"],
            f"Residuals vs fitted: {data['title']}",
            "Fitted values",
            data["label"],
            hline=0.0,
        )
    ax, ay = data["actual"]
    fx, fy = data["fitted"]
    if ay.ndim > 1:
        ay = ay[:, 0]
    if fy.ndim > 1:
        fy = fy[:, 0]
    if len(fy) < len(ay) and fx.dtype.kind != "M":
        fx = ax[len(ay) - len(fy) :]  # fitted values of the last observations (AutoReg, VAR)
    burn = min(data["burn"], len(fy))  # the first fitted values of a state space model: no fit
    return plots.time_series_png(
        [("actual", ax, ay), ("fitted", fx[burn:], fy[burn:])],
        f"Fitted vs actual: {data['title']}",
        data["name"],
    )


def flush(timeout: float | None = None) -> bool:
    """Nothing to wait for: the artifacts are written during the fit; always True.

    Kept for code written against earlier versions, which wrote them in a background thread.
    """
    return True


# -- the flavor ---------------------------------------------------------------------------------


class StatsmodelsFlavor(models.Flavor):
    """A fitted results object, pickled by statsmodels' own ``save`` (its native format).

    :param remove_data: save a copy without the training data (``results.remove_data()``);
        the user's results object is left untouched.
    """

    name = "statsmodels"
    requirements = ("statsmodels", "numpy", "pandas", "scipy")
    mlflow_loader_module = "mlflow.statsmodels"

    def __init__(self, remove_data: bool = False):
        self.remove_data = remove_data

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import statsmodels

        if not _is_results(model):
            raise ModelError(
                f"The statsmodels flavor saves fitted results (what model.fit() returns), not "
                f"{type(model).__name__}"
            )
        file = path / MODEL_FILE
        target = model
        if self.remove_data:  # remove_data() works in place: do it on a copy
            target = _loads(_dumps(model)[0])
            target.remove_data()
        try:
            target.save(str(file))  # statsmodels' own save: a pickle
            fmt = "pickle"
        except (pickle.PicklingError, AttributeError, TypeError):
            # A model class defined inside a function cannot be pickled by reference.
            file.write_bytes(_dumps(target)[0])
            fmt = "cloudpickle"
        inner = getattr(model, "_results", model)
        return {
            "data": MODEL_FILE,
            "code": None,
            "statsmodels_version": statsmodels.__version__,
            "serialization_format": fmt,
            "remove_data": bool(self.remove_data),
            "model_class": f"{type(model.model).__module__}.{type(model.model).__name__}",
            "results_class": f"{type(inner).__module__}.{type(inner).__name__}",
            "predict_input": "steps_or_time_index" if _is_time_series(model.model) else "exog",
        }

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        # statsmodels' load_pickle is pickle.load; cloudpickle's output is a pickle too. The
        # bytes come through autolog's pickle gate.
        return pickle.loads(models.pickle_bytes(path, conf["data"]))

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        if _is_time_series(native.model):
            return forecast(native, data)
        return native.predict(data)

    def pyfunc_conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        return {"data": conf["data"]}

    def requirements_for(self, model: Any) -> list[str]:
        reqs = list(self.requirements)
        if isinstance(getattr(getattr(model, "model", None), "formula", None), str):
            try:
                from statsmodels.formula._manager import FormulaManager

                reqs.append(FormulaManager().engine)
            except Exception:
                reqs.append("patsy")
        return reqs


FLAVOR = models.register_flavor(StatsmodelsFlavor())


def _dumps(obj: Any) -> tuple[bytes, str]:
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), "pickle"
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle

        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), "cloudpickle"


def _loads(data: bytes) -> Any:
    return pickle.loads(data)  # cloudpickle's output is read by pickle (cloudpickle installed)


def forecast(results: Any, data: Any) -> Any:
    """Predict with a time-series results object.

    ``data`` is one of: a number of steps (int) -> ``results.forecast(steps)``; a frame with
    ``start`` and ``end`` columns (MLflow's convention) -> ``results.predict(start, end)``; a
    DataFrame or Series whose index holds the time points -> ``results.predict(start=first,
    end=last)``, its columns being the future exogenous values for models with exog.
    """
    import numpy as np

    pd = sys.modules.get("pandas")
    model = results.model
    has_exog = getattr(model, "exog", None) is not None and bool(getattr(model, "k_exog", 0))
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        steps = int(data)
        var = sys.modules.get("statsmodels.tsa.vector_ar.var_model")
        if var is not None and isinstance(model, var.VAR):  # forecasts from the last lags
            return results.forecast(np.asarray(model.endog)[-results.k_ar :], steps)
        if not hasattr(results, "forecast"):  # VECM
            return results.predict(steps=steps)
        return results.forecast(steps=steps)
    if isinstance(data, np.ndarray) and data.ndim == 0:
        return forecast(results, int(data))
    if pd is not None and isinstance(data, (pd.DataFrame, pd.Series)):
        frame = data.to_frame() if isinstance(data, pd.Series) else data
        if {"start", "end"} <= set(frame.columns) and len(frame) >= 1:
            row = frame.iloc[0]
            return results.predict(start=row["start"], end=row["end"])
        if frame.empty and not len(frame.index):
            raise ModelError("Nothing to predict: the frame has no rows")
        exog = frame if has_exog and len(frame.columns) else None
        return results.predict(start=frame.index[0], end=frame.index[-1], exog=exog)
    if has_exog:
        arr = np.asarray(data)
        return results.forecast(steps=len(arr), exog=arr)
    raise ModelError(
        f"A time-series model predicts from a number of steps (int), a frame with start/end "
        f"columns, or a frame indexed by the time points to predict; got {type(data).__name__}"
    )


# -- signature and input example ----------------------------------------------------------------

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*|'[^']*'|\"[^\"]*\"")


def model_input_example(model: Any, rows: int = 5) -> Any:
    """A few rows of what ``predict`` takes: the formula's columns, or exog; None for time series."""
    if _is_time_series(model):
        return None
    data = model.data
    frame = getattr(data, "frame", None)
    formula = getattr(model, "formula", None)
    if frame is not None and isinstance(formula, str) and hasattr(frame, "columns"):
        rhs = formula.split("~", 1)[-1]
        tokens = {t.strip("'\"") for t in _NAME_RE.findall(rhs)}
        cols = [c for c in frame.columns if str(c) in tokens]
        return frame[cols].head(rows) if cols else None
    orig = getattr(data, "orig_exog", None)
    if orig is not None and hasattr(orig, "iloc"):
        return orig.head(rows) if hasattr(orig, "head") else orig.iloc[:rows]
    exog = getattr(model, "exog", None)
    if exog is None:
        return None
    return exog[:rows]


def _signature_and_example(model: Any, results: Any, config: Any) -> tuple[Any, Any]:
    """(signature or False, input example or None) for models that predict from tabular exog."""
    from autolog.errors import AutologError
    from autolog.signature import infer_signature

    if not (config.log_model_signatures or config.log_input_examples):
        return False, None
    example = model_input_example(model)
    if example is None:
        return False, None
    signature: Any = False
    if config.log_model_signatures:
        try:
            signature = infer_signature(example, _prediction_example(results, example))
        except AutologError:  # an exog no schema describes: the model is logged without one
            signature = False
    return signature, example if config.log_input_examples else None


def _prediction_example(results: Any, example: Any) -> Any:
    """results.predict on the example when it is an array or frame of numbers, else None."""
    import numpy as np

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prediction = results.predict(example)
    except Exception:  # the output schema is optional
        return None
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(prediction, pd.DataFrame):
        return prediction
    if not hasattr(prediction, "dtype"):  # e.g. PHReg's PredictionResults
        return None
    arr = np.asarray(prediction)
    return arr if arr.ndim >= 1 and arr.dtype.kind in "biuf" else None


def _log_autolog_model(model: Any, results: Any, run_id: str, config: Any) -> None:
    signature, example = _signature_and_example(model, results, config)
    models.log_model(
        StatsmodelsFlavor(remove_data=bool(config.get("remove_data", False))),
        results,
        MODEL_ARTIFACT_PATH,
        signature=signature,
        input_example=example,
        registered_model_name=config.registered_model_name,
        run_id=run_id,
    )


# -- flavor API ---------------------------------------------------------------------------------


def save_model(
    results: Any,
    path: str | Path,
    remove_data: bool = False,
    signature: Any = None,
    input_example: Any = None,
    **kwargs: Any,
) -> models.Model:
    """Save a fitted results object as an MLmodel directory at ``path``.

    :param results: what ``model.fit()`` returned.
    :param path: a directory that does not exist yet (or is empty).
    :param remove_data: save without the training data (a copy is stripped; ``results`` is not).
    :param signature: a ModelSignature, None (inferred from ``input_example``) or False.
    :param input_example: a few rows of exog (or of the formula's data frame).
    :param kwargs: passed to :func:`autolog.models.save_model` (pip_requirements, metadata...).
    """
    return models.save_model(
        StatsmodelsFlavor(remove_data=remove_data),
        results,
        path,
        signature,
        input_example,
        **kwargs,
    )


def log_model(
    results: Any,
    artifact_path: str | None = None,
    remove_data: bool = False,
    signature: Any = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> models.ModelInfo:
    """Log a fitted results object into the active run (``runs:/<run_id>/<artifact_path>``).

    :param results: what ``model.fit()`` returned.
    :param artifact_path: where in the run's artifacts (default ``"model"``).
    :param remove_data: save without the training data.
    :param signature: a ModelSignature, None (inferred from ``input_example``) or False.
    :param input_example: a few rows of exog (or of the formula's data frame).
    :param registered_model_name: also register the model under this name.
    :param kwargs: passed to :func:`autolog.models.log_model`.
    """
    return models.log_model(
        StatsmodelsFlavor(remove_data=remove_data),
        results,
        artifact_path,
        signature,
        input_example,
        registered_model_name=registered_model_name,
        **kwargs,
    )


def load_model(model_uri: str | Path, *, allow_pickle: bool | None = None) -> Any:
    """The statsmodels results object saved at ``model_uri`` (path, runs:/ or models:/).

    :param allow_pickle: as for :func:`autolog.load_model` (statsmodels saves a pickle).
    """
    return models.load_flavor_model(model_uri, FLAVOR, allow_pickle=allow_pickle)


# -- autolog ------------------------------------------------------------------------------------


@INTEGRATION.autolog
def autolog(
    remove_data: bool = False,
    log_plots: bool = True,
) -> None:
    """Record every statsmodels ``fit`` / ``fit_regularized`` from now on.

    :param remove_data: save models without their training data (smaller files; statistics
        that need the data cannot be recomputed from the loaded model).
    :param log_plots: draw ``plots/residuals.png`` / ``plots/fitted_vs_actual.png``.
    """

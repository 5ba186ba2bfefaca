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

The statistics, the summary's numbers, the coefficient table and the model are read during the
fit; the summary's text and HTML, the plot (drawn with Pillow) and the artifact files are
written on autolog's background thread, which every read of the run through autolog waits for
(in a multiprocessing worker, during the fit). See docs/statsmodels.md.

The artifacts are written by ``_statsmodels_artifacts``, the model format and forecasts live in
``_statsmodels_flavor``; their public names are importable from here.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from autolog import batching, fit_inputs, integration, models, patching, tracking
from integrations._statsmodels_artifacts import (  # noqa: F401  (importable from here, as before)
    COEFFICIENTS_CSV,
    FITTED_VS_ACTUAL_PLOT,
    RESIDUALS_PLOT,
    SUMMARY_HTML,
    SUMMARY_TEXT,
    _scalar,
    building_summary,
    coefficient_table,
    prepare_artifacts,
    render_plot,
    write_parts,
)
from integrations._statsmodels_flavor import (  # noqa: F401  (importable from here, as before)
    FLAVOR,
    MODEL_ARTIFACT_PATH,
    MODEL_FILE,
    StatsmodelsFlavor,
    _is_results,
    _log_autolog_model,
    forecast,
    model_input_example,
)

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
        if name == __name__ or name.startswith(("autolog.", "wrapt", "integrations._statsmodels")):
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
    patching.when_imported(LIBRARY, "statsmodels.iolib.summary", _skip_discarded_latex)


def _skip_discarded_latex(summary_module: Any) -> None:
    patching.bypass(LIBRARY, summary_module.Summary, "as_latex", building_summary, "")


def _patch_models(model_module: Any) -> None:
    patching.patch_subclasses(LIBRARY, model_module.Model, _PATCH_FNS)


# -- what a fit logs --------------------------------------------------------------------------


def _log_results(session: Any, run_id: str, store: Any, model: Any, results: Any) -> None:
    """The statistics, the model and what the artifacts need are read here, on the user's
    thread; the summary's text and HTML rendering, the plot and the artifact writes (most of
    the cost) run on autolog's background thread (autolog.batching.defer). A fit that started
    its run returns without waiting for them; a read of the run waits (see :func:`flush`)."""
    config = session.config
    ts = int(time.time() * 1000)
    metrics = statistics(results)
    if metrics:
        store.log_batch(run_id, metrics=[(k, v, ts, 0) for k, v in metrics.items()])
    if not _is_results(results):
        return  # e.g. fit(return_params=True): there is nothing more to describe
    parts, failures = prepare_artifacts(model, results, bool(config.get("log_plots", True)))
    for failure in failures:
        patching.report_error(LIBRARY, failure, bool(config.silent))
    if config.log_models:
        patching.guarded(
            LIBRARY, _log_autolog_model, model, results, run_id, config, silent=config.silent
        )
    if parts:
        ends_here = session.managed and session.has_run
        batching.defer(
            run_id, LIBRARY, _write_parts, run_id, store, parts, wait_at_end=not ends_here
        )


def _write_parts(run_id: str, store: Any, parts: list[Any]) -> None:
    """On the background thread: every part, then the first failure (one warning)."""
    failures = write_parts(run_id, store, parts)
    if failures:
        raise failures[0]


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


# -- artifacts (written by _statsmodels_artifacts) ------------------------------------------------


def flush(timeout: float | None = 60.0) -> bool:
    """Wait until the artifacts of every fit so far are written (False if ``timeout`` passed).

    Reads through autolog (get_run, search_runs, list_artifacts, download_artifacts, the UI's
    store calls...) wait by themselves, and so do the end of a run and the interpreter's exit;
    call this before reading the store by other means (its folder, another process).
    """
    return batching.flush_deferred(None, timeout)


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

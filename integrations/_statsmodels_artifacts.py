"""statsmodels: the artifacts a fit writes (summary, coefficient table, residual or
fitted-vs-actual plot).

Split out of :mod:`integrations.statsmodels`, which imports this module (never the reverse)
and re-exports its public names.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

SUMMARY_TEXT = "model_summary.txt"  # MLflow's name for it
SUMMARY_HTML = "model_summary.html"
COEFFICIENTS_CSV = "coefficients.csv"
RESIDUALS_PLOT = "plots/residuals.png"
FITTED_VS_ACTUAL_PLOT = "plots/fitted_vs_actual.png"


def _is_time_series(model: Any) -> bool:
    tsa = sys.modules.get("statsmodels.tsa.base.tsa_model")
    return tsa is not None and isinstance(model, tsa.TimeSeriesModel)


Part = Callable[[str, Any], None]  # (run_id, store): renders and writes one or two files


def prepare_artifacts(
    model: Any, results: Any, log_plots: bool
) -> tuple[list[Part], list[Exception]]:
    """What reads the results object, on the caller's thread: the coefficient table, the
    summary (statsmodels computes its statistics here) and the plot's arrays. Returns the parts
    that format and write them (text and HTML rendering, the PNG: most of the cost), which touch
    only what was read here and so may run on a background thread; and the failures so far."""
    import numpy as np

    parts: list[Part] = []
    failures: list[Exception] = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for prepare in (_coefficients_part, _summary_part, _plot_part if log_plots else None):
            if prepare is None:
                continue
            try:
                part = prepare(model, results)
            except Exception as exc:
                failures.append(exc)
                continue
            if part is not None:
                parts.append(part)
    return parts, failures


def write_parts(run_id: str, store: Any, parts: list[Part]) -> list[Exception]:
    """Run each part (each fails on its own); the failures. No ``warnings.catch_warnings``
    here: it changes the process's warning filters, and this runs beside the user's thread
    (numpy's errstate is per thread)."""
    import numpy as np

    failures: list[Exception] = []
    with np.errstate(all="ignore"):
        for part in parts:
            try:
                part(run_id, store)
            except Exception as exc:
                failures.append(exc)
    return failures


def _coefficients_part(model: Any, results: Any) -> Part | None:
    table = coefficient_table(results)
    if not table:
        return None
    data = table.encode("utf-8")
    return lambda run_id, store: store.write_artifact_bytes(run_id, COEFFICIENTS_CSV, data)


def _summary_part(model: Any, results: Any) -> Part | None:
    summary = _summary(results)
    if summary is None:
        return None

    def write(run_id: str, store: Any) -> None:
        text, html = _render_summary(summary)
        store.write_artifact_bytes(run_id, SUMMARY_TEXT, text.encode("utf-8"))
        store.write_artifact_bytes(run_id, SUMMARY_HTML, html.encode("utf-8"))

    return write


def _plot_part(model: Any, results: Any) -> Part | None:
    data = _plot_data(model, results)
    if data is None:
        return None

    def write(run_id: str, store: Any) -> None:
        png = render_plot(data)
        if png is not None:
            name = RESIDUALS_PLOT if data["kind"] == "residuals" else FITTED_VS_ACTUAL_PLOT
            store.write_artifact_bytes(run_id, name, png)

    return write


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


_building = threading.local()  # set while autolog builds a summary on this thread


def building_summary() -> bool:
    """Whether this thread is inside autolog's own ``summary()`` call."""
    return getattr(_building, "on", False)


def _summary(results: Any) -> Any:
    """results.summary(). A discrete model's summary renders itself as LaTeX twice and throws
    both away (statsmodels' DiscreteResults.summary): 7 ms of a Logit fit's 31 ms of logging
    (py-spy, 10,000 x 10). ``Summary.as_latex`` returns "" on this thread meanwhile (the
    integration's patch, :func:`autolog.patching.bypass`); the Summary is rendered as text and
    HTML only."""
    summarize = getattr(results, "summary", None)
    if summarize is None:
        return None
    _building.on = True
    try:
        return summarize()
    except NotImplementedError:  # fit_regularized's results, among others
        return None
    finally:
        _building.on = False


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

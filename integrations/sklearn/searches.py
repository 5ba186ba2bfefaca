"""Parameter searches (GridSearchCV & co.) and the cross-validation functions.

A search's run gets ``best_*`` params, ``cv_results.csv`` and one finished child run per best
candidate (``max_tuning_runs``); ``cross_val_score`` & co. make one run whose fold scores are
metrics (folds as steps).
"""

from __future__ import annotations

from typing import Any

from autolog import integration, patching, tracking
from integrations.sklearn.common import (
    BEST_PARAM_PREFIX,
    CV_LOGGED_ARGS,
    CV_RESULTS_ARTIFACT,
    FUNCTION_TAG,
    INTEGRATION,
    as_float,
    bind,
    estimator_tags,
    is_estimator,
    is_number,
    now_ms,
    param_value,
    params_of,
)


def make_patched_cv_function(name: str) -> patching.PatchFn:
    """cross_val_score & co.: one run for the outer call, fold scores as metrics."""

    def patched(call: patching.OriginalCall, instance: Any, args: tuple, kwargs: dict) -> Any:
        bound = bind(call.wrapped, args, kwargs)
        estimator = bound.get("estimator")
        session = patching.current_session()
        assert session is not None
        run_id = session.run_id
        params: dict[str, Any] = {}
        tags = {FUNCTION_TAG: name}
        if is_estimator(estimator):
            params.update(params_of(estimator))
            tags.update(estimator_tags(estimator))
        for arg in CV_LOGGED_ARGS:
            if arg in bound:
                params[f"{name}.{arg}"] = param_value(bound[arg])
        tracking._store().log_batch(run_id, params=params, tags=tags)
        result = call(*args, **kwargs)
        points = _cv_metric_points(name, result)
        if points:
            ts = now_ms()
            metrics = [(k, as_float(v), ts, step) for k, v, step in points]
            tracking._store().log_batch(run_id, metrics=metrics)
        return result

    patched.__name__ = f"_patched_{name}"
    return patched


def log_search(run_id: str, search: Any, cfg: integration.Config) -> None:
    """Parameter searches: best_* params, cv_results.csv, child runs for the best candidates."""
    store = tracking._store()
    best = getattr(search, "best_params_", None)
    if isinstance(best, dict):
        store.log_batch(
            run_id, params={BEST_PARAM_PREFIX + k: param_value(v) for k, v in best.items()}
        )
    results = getattr(search, "cv_results_", None)
    if not isinstance(results, dict) or "params" not in results:
        return
    tracking.Client().log_text(run_id, _cv_results_csv(results), CV_RESULTS_ARTIFACT)
    _log_search_children(run_id, search, results, cfg)


def _log_search_children(
    parent_id: str, search: Any, results: dict[str, Any], cfg: integration.Config
) -> None:
    from autolog import context

    n = len(results["params"])
    limit = cfg.get("max_tuning_runs", 5)
    rank_key = "rank_test_score"
    if rank_key not in results:
        rank_key = next((k for k in results if k.startswith("rank_test_")), "")
    order = list(range(n))
    if rank_key:
        ranks = results[rank_key]
        order.sort(key=lambda i: (ranks[i], i))
    chosen = order if limit is None else order[: max(int(limit), 0)]
    if not chosen:
        return
    store = tracking._store()
    active = tracking.active_run()
    if active is not None and active.info.run_id == parent_id:
        experiment_id = active.info.experiment_id
    else:
        experiment_id = store.get_run(parent_id).info.experiment_id
    base_estimator = getattr(search, "estimator", None)
    base_params = params_of(base_estimator) if is_estimator(base_estimator) else {}
    tags: dict[str, Any] = {
        patching.INTEGRATION_TAG: INTEGRATION,
        tracking.PARENT_RUN_TAG: parent_id,
    }
    if is_estimator(base_estimator):
        tags.update(estimator_tags(base_estimator))
    tags.update(cfg.extra_tags or {})
    metric_keys = [k for k in results if k.startswith(("mean_", "std_", "rank_"))]
    ts = now_ms()
    children = []
    for i in chosen:
        params = dict(base_params)
        params.update({k: param_value(v) for k, v in results["params"][i].items()})
        rank = int(results[rank_key][i]) if rank_key else i + 1
        name = f"candidate-{i}-rank-{rank}"
        metrics = [
            (k, as_float(results[k][i]), ts, 0) for k in metric_keys if is_number(results[k][i])
        ]
        children.append((name, {**tags, tracking.RUN_NAME_TAG: name}, params, metrics))
    # one transaction for all of them, not a create_run + log_batch + set_terminated each; a
    # tracking server's store sends it from its background lane (nothing here reads the ids)
    args = (experiment_id, children, parent_id, context.current_user())
    defer = getattr(store, "defer", None)
    if defer is not None:
        defer(store.create_finished_runs, *args)
    else:
        store.create_finished_runs(*args)


def _cv_results_csv(results: dict[str, Any]) -> str:
    """cv_results_ as CSV, with the csv module (no pandas import in the fit)."""
    import csv
    import io

    import numpy as np

    columns = list(results)
    n = len(results["params"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    masked = {c: np.ma.getmaskarray(results[c]) for c in columns if np.ma.isMaskedArray(results[c])}
    for i in range(n):
        row = []
        for c in columns:
            if c in masked and masked[c][i]:
                row.append("")
                continue
            v = results[c][i]
            row.append(repr(float(v)) if isinstance(v, (float, np.floating)) else str(v))
        writer.writerow(row)
    return buf.getvalue()


def _cv_metric_points(name: str, result: Any) -> list[tuple[str, Any, int]]:
    """(key, value, step) of a cross-validation function's result: folds as steps."""
    import numpy as np

    points: list[tuple[str, Any, int]] = []

    def series(key: str, values: Any) -> None:
        arr = np.asarray(values, dtype=float).ravel()
        points.extend((key, v, i) for i, v in enumerate(arr))
        points.append((f"mean_{key}", float(np.mean(arr)), 0))
        points.append((f"std_{key}", float(np.std(arr)), 0))

    def curve(key: str, values: Any, steps: list[int]) -> None:
        arr = np.asarray(values, dtype=float)
        for step, row in zip(steps, arr):
            points.append((f"mean_{key}", float(np.mean(row)), step))
            points.append((f"std_{key}", float(np.std(row)), step))

    if name == "cross_val_score":
        series("test_score", result)
    elif name == "cross_validate":
        for key, values in result.items():
            if key not in ("estimator", "indices") and np.asarray(values).dtype.kind in "fiu":
                series(key, values)
    elif name == "permutation_test_score":
        score, permutation_scores, pvalue = result[:3]
        points.append(("test_score", float(score), 0))
        points.append(("pvalue", float(pvalue), 0))
        series("permutation_score", permutation_scores)
    elif name == "learning_curve":
        sizes = [int(s) for s in result[0]]
        keys = ("train_score", "test_score", "fit_time", "score_time")
        for key, values in zip(keys, result[1:]):
            curve(key, values, sizes)
    elif name == "validation_curve":
        steps = list(range(len(result[0])))
        curve("train_score", result[0], steps)
        curve("test_score", result[1], steps)
    return points

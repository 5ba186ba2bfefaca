"""Post-training metrics: sklearn.metrics calls and model.score on a logged model's predictions.

A model logged by a fit is remembered (by id, with a weak reference) with its run. predict &
co. on it remember their result the same way, with the name of the variable the input was
held in. A sklearn.metrics call (or model.score) outside any fit, given such a result (or a
numpy view of it, e.g. proba[:, 1]), logs its value into that run as
<metric>[-<call index>]_<dataset>, and rewrites metric_info.json with every call's command.

The dataset's name is the name of the caller's variable: read from the calling frames'
locals (``inspect.currentframe``), as MLflow does (``mlflow.sklearn.utils``); there is no other
way to know it, and the metric keys depend on it.
"""

from __future__ import annotations

import functools
import inspect
import threading
import types
import weakref
from typing import Any

from autolog import integration, patching, tracking
from integrations.sklearn.common import (
    INTEGRATION,
    METRIC_INFO_ARTIFACT,
    UNKNOWN_DATASET,
    arg_names,
    as_float,
    is_number,
    now_ms,
)


def patched_predict(call: patching.OriginalCall, instance: Any, args: tuple, kwargs: dict) -> Any:
    """predict & co. of a model autolog logged: remember which run and dataset the result is of."""
    result = call(*args, **kwargs)
    run_id = run_of_model(instance)
    if run_id is not None and post_training_on():
        X = args[0] if args else next(iter(kwargs.values()), None)
        register_prediction(result, run_id, dataset_name(run_id, X))
    return result


def patched_score(call: patching.OriginalCall, instance: Any, args: tuple, kwargs: dict) -> Any:
    """model.score(X, y) on a model autolog logged: logged as <Class>_score_<dataset>."""
    run_id = run_of_model(instance)
    if run_id is None or not post_training_on():
        return call(*args, **kwargs)
    result = call(*args, **kwargs)
    X = args[0] if args else next(iter(kwargs.values()), None)
    dataset = dataset_name(run_id, X)
    command = call_command(f"{type(instance).__name__}.score", call.wrapped, args, kwargs)
    log_post_training_metric(run_id, f"{type(instance).__name__}_score", dataset, command, result)
    return result


_registry_lock = threading.RLock()
_model_runs: dict[int, tuple[weakref.ref, str]] = {}
_predictions: dict[int, tuple[weakref.ref, str, str]] = {}
_dataset_ids: dict[str, dict[str, list[int]]] = {}
_metric_calls: dict[str, dict[str, list[tuple[str, str]]]] = {}
_tls = threading.local()


def _forget(table: dict[int, Any], key: int, ref: weakref.ref) -> None:
    """Drop an entry when its object is collected (not one that reused the id since)."""
    with _registry_lock:
        entry = table.get(key)
        if entry is not None and entry[0] is ref:
            del table[key]


def _remember(table: dict[int, Any], obj: Any, *values: Any) -> None:
    key = id(obj)
    try:
        ref: weakref.ref = weakref.ref(obj, functools.partial(_forget, table, key))
    except TypeError:  # no weak references to it (a list, a tuple): not tracked
        return
    with _registry_lock:
        table[key] = (ref, *values)


def _lookup(table: dict[int, Any], obj: Any) -> tuple | None:
    entry = table.get(id(obj))
    if entry is not None and entry[0]() is obj:
        return entry
    return None


def register_model(model: Any, run_id: str) -> None:
    _remember(_model_runs, model, run_id)


def run_of_model(model: Any) -> str | None:
    entry = _lookup(_model_runs, model)
    return entry[1] if entry is not None else None


def register_prediction(result: Any, run_id: str, dataset: str) -> None:
    _remember(_predictions, result, run_id, dataset)


def _prediction_of(args: tuple, kwargs: dict) -> tuple[str, str] | None:
    """(run_id, dataset) of the first argument that is a tracked prediction (or a view of one)."""
    for arg in (*args, *kwargs.values()):
        if arg is None or isinstance(arg, (str, int, float, bool)):
            continue
        entry = _lookup(_predictions, arg)
        if entry is None:
            base = getattr(arg, "base", None)
            entry = _lookup(_predictions, base) if base is not None else None
        if entry is not None:
            return entry[1], entry[2]
    return None


def post_training_on() -> bool:
    cfg = integration.config_for(INTEGRATION)
    return cfg is not None and bool(cfg.get("log_post_training_metrics", True))


def _quiet() -> bool:
    """No post-training metric here: inside a fit or score, or inside a metric."""
    return patching.current_session() is not None or getattr(_tls, "depth", 0) > 0


def dataset_name(run_id: str, data: Any) -> str:
    name = _variable_name(data, UNKNOWN_DATASET)
    with _registry_lock:
        ids = _dataset_ids.setdefault(run_id, {}).setdefault(name, [])
        if id(data) in ids:
            index = ids.index(id(data))
        else:
            index = len(ids)
            ids.append(id(data))
    return _with_index(name, index)


def _with_index(name: str, index: int) -> str:
    # "-" cannot occur in a Python variable name: no clash with a real name
    return name if index == 0 else f"{name}-{index + 1}"


def _internal_frame(frame: types.FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    return (
        module.startswith(("integrations.sklearn", "autolog.", "wrapt.", "sklearn."))
        or module.startswith(("functools", "contextlib"))
        or module in ("autolog", "wrapt", "sklearn")
    )


def _variable_name(obj: Any, fallback: str) -> str:
    """The name the caller holds ``obj`` under (climbing while it was passed in as an argument)."""
    frame: types.FrameType | None = inspect.currentframe()
    while frame is not None and _internal_frame(frame):
        frame = frame.f_back
    for _ in range(64):
        if frame is None:
            break
        code = frame.f_code
        n_args = code.co_argcount + code.co_kwonlyargcount
        n_args += bool(code.co_flags & inspect.CO_VARARGS)
        n_args += bool(code.co_flags & inspect.CO_VARKEYWORDS)
        local_vars = frame.f_locals
        passed_in = False
        for arg_name in code.co_varnames[:n_args]:
            value = local_vars.get(arg_name)
            if value is obj or (
                isinstance(value, (tuple, dict))
                and any(v is obj for v in (value.values() if isinstance(value, dict) else value))
            ):
                passed_in = True
                break
        if passed_in:
            frame = frame.f_back
            continue
        for name, value in local_vars.items():
            if value is obj:
                return name
        break
    return fallback


def call_command(fn_name: str, fn: Any, args: tuple, kwargs: dict) -> str:
    """``accuracy_score(y_true=y_test, y_pred=y_pred, normalize=False)``."""
    names = arg_names(fn)

    def show(value: Any) -> str:
        if value is None or isinstance(value, (str, bool, int, float)):
            text = repr(value)
            return text if len(text) <= 34 else text[:32] + "...'"
        return _variable_name(value, f"<{type(value).__name__}>")

    parts = [f"{name}={show(v)}" for name, v in zip(names, args)]
    parts += [f"{name}={show(v)}" for name, v in kwargs.items()]
    return f"{fn_name}({', '.join(parts)})"


def log_post_training_metric(
    run_id: str, metric_name: str, dataset: str, command: str, value: Any
) -> None:
    if not is_number(value):
        return
    with _registry_lock:
        calls = _metric_calls.setdefault(run_id, {})
        done = calls.setdefault(metric_name, [])
        key = f"{_with_index(metric_name, len(done))}_{dataset}"
        done.append((key, command))
        info = dict(sorted(kv for entries in calls.values() for kv in entries))
    tracking._store().log_batch(run_id, metrics=[(key, as_float(value), now_ms(), 0)])
    tracking.Client().log_dict(run_id, info, METRIC_INFO_ARTIFACT)


def make_metric(inner: Any, name: str) -> Any:
    """The replacement of a sklearn.metrics implementation: logs calls on tracked predictions."""

    @functools.wraps(inner)
    def metric(*args: Any, **kwargs: Any) -> Any:
        if _quiet() or not post_training_on():
            return inner(*args, **kwargs)
        _tls.depth = getattr(_tls, "depth", 0) + 1
        try:
            result = inner(*args, **kwargs)
        finally:
            _tls.depth -= 1
        cfg = integration.config_for(INTEGRATION)
        silent = bool(cfg.silent) if cfg is not None else False
        patching.guarded(
            INTEGRATION, _on_metric_call, name, inner, args, kwargs, result, silent=silent
        )
        return result

    metric._autolog_sklearn = True  # type: ignore[attr-defined]
    return metric


def _on_metric_call(name: str, fn: Any, args: tuple, kwargs: dict, result: Any) -> None:
    found = _prediction_of(args, kwargs)
    if found is None or not is_number(result):
        return
    run_id, dataset = found
    log_post_training_metric(run_id, name, dataset, call_command(name, fn, args, kwargs), result)

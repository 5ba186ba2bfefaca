"""The patches: estimator methods (through safe_patch), sklearn.metrics and the CV functions.

How it hooks in, without importing every scikit-learn module:

- Estimators. ``fit``/``fit_transform``/``fit_predict`` (logging) and ``predict``,
  ``predict_proba``, ``predict_log_proba``, ``decision_function``, ``score`` (post-training
  metrics) are patched on every ``BaseEstimator`` subclass, and on the scikit-learn mixins in
  its MRO, that define them in their own ``__dict__``. Classes that exist when autolog starts
  are found through ``__subclasses__()`` (``sklearn.utils.all_estimators()`` would import every
  scikit-learn module: seconds); classes created later (a scikit-learn module imported later, the
  user's own estimators) are patched from a ``BaseEstimator.__init_subclass__`` hook, removed on
  disable. Classes of libraries with their own integration (XGBoost, LightGBM, ...) are left to it.
- Functions. scikit-learn's public functions (every ``sklearn.metrics`` function,
  ``cross_val_score`` and friends) are wrapped by ``validate_params``, whose closure cell
  ``func`` holds the implementation. autolog swaps the content of that cell, so the function
  object users already hold, e.g. after ``from sklearn.metrics import accuracy_score`` done before
  ``autolog()``, runs through autolog; disable swaps it back. A function without that wrapper
  (none in the supported versions) is patched as a module attribute instead.
"""

from __future__ import annotations

import inspect
import sys
import types
import weakref
from typing import Any

from autolog import batching, integration, logged_models, patching, tracking
from autolog.fit_inputs import log_fit_datasets
from integrations.sklearn import charts, flavor, html, post_training, searches, training_metrics
from integrations.sklearn.common import (
    CV_FUNCTIONS,
    FIT_METHODS,
    INTEGRATION,
    NOT_METRICS,
    PREDICT_METHODS,
    estimator_tags,
    fit_inputs,
    is_estimator,
    is_quiet,
    is_search,
    params_of,
)


def _patched_fit(call: patching.OriginalCall, instance: Any, args: tuple, kwargs: dict) -> Any:
    """fit / fit_transform / fit_predict of an estimator: one run, unless a lone transformer."""
    if not is_estimator(instance) or is_quiet(type(instance)):
        return call(*args, **kwargs)
    session = patching.current_session()
    assert session is not None
    cfg = session.config
    run_id = session.run_id  # before the fit: a failing fit leaves a FAILED run
    # MLflow's params: a search's own (deep=False, its estimator is only the seed of the search)
    deep = not is_search(instance) or bool(cfg.get("deep_search_params", False))
    params, tags = params_of(instance, deep), estimator_tags(instance)
    tracking._store().log_batch(run_id, params=params, tags=tags)
    X, y, sample_weight = fit_inputs(call.wrapped, args, kwargs)
    model_input = None
    if cfg.log_models:  # the signature's inputs and the example, before fit can change X
        model_input = patching.guarded(
            INTEGRATION, flavor.capture_model_input, X, cfg, silent=bool(cfg.silent)
        )
    log_fit_datasets(INTEGRATION, run_id, cfg, (X, y))  # before fit can change X, too
    result = call(*args, **kwargs)
    _log_fitted(run_id, instance, X, y, sample_weight, cfg, model_input)
    return result


def _log_fitted(
    run_id: str,
    est: Any,
    X: Any,
    y: Any,
    sample_weight: Any,
    cfg: integration.Config,
    model_input: flavor.ModelInput | None,
) -> None:
    """Everything logged once the fit returned; each part fails on its own.

    What needs the fitted estimator runs here: predictions, search results, the model, a
    snapshot for the diagram. The metrics scikit-learn computes from the predictions, the charts
    and the HTML diagram run on autolog's background thread (autolog.batching.defer): a fit
    that started its run returns without waiting for them; a read of the run waits (see
    :func:`integrations.sklearn.flush`).
    """
    silent = bool(cfg.silent)

    def part(fn: Any, *args: Any) -> Any:
        return patching.guarded(INTEGRATION, fn, *args, silent=silent)

    prepared = part(training_metrics.prepare, est, X, y, sample_weight, cfg)
    y_pred = prepared.y_pred if prepared is not None else None
    if is_search(est):
        part(searches.log_search, run_id, est, cfg)
    model_ids: list[str] = []
    if cfg.log_models and model_input is not None:
        model_ids = part(flavor.log_models_of_run, run_id, est, X, y_pred, cfg, model_input) or []
    post_training.register_model(est, run_id)
    view = part(html.snapshot, est)
    session = patching.current_session()
    ends_here = session is not None and session.managed and session.has_run
    plots = bool(cfg.get("log_plots", True))
    # this run's store, not the one a later set_tracking_uri names
    work = (tracking._store(), run_id, prepared, model_ids, view, plots)
    batching.defer(run_id, INTEGRATION, _log_deferred, *work, wait_at_end=not ends_here)


def _log_deferred(
    store: Any, run_id: str, prepared: Any, model_ids: list[str], view: Any, plots: bool
) -> None:
    """The background thread's share of :func:`_log_fitted`; each part fails on its own, the
    first failure is raised once all ran (autolog.batching reports it as one warning)."""
    failure: Exception | None = None

    def part(fn: Any, *args: Any) -> Any:
        nonlocal failure
        try:
            return fn(*args)
        except Exception as exc:
            failure = failure or exc
            return None

    chart_inputs = None
    if prepared is not None:
        chart_inputs = part(training_metrics.log_prepared, store, run_id, prepared)
        for model_id in model_ids:  # logged before these metrics were: they get them now
            part(logged_models.copy_run_metrics, store, model_id, run_id)
    if view is not None:
        part(html.write_html_repr, store, run_id, view)
    if chart_inputs is not None and plots:
        part(charts.write_classifier_charts, store, run_id, *chart_inputs)
    if failure is not None:
        raise failure


# -- patching ----------------------------------------------------------------------------------

_METHOD_PATCHES: dict[str, patching.PatchFn] = {
    **{name: _patched_fit for name in FIT_METHODS},
    **{name: post_training.patched_predict for name in PREDICT_METHODS},
    "score": post_training.patched_score,
}
_enabled = False
_done_classes: weakref.WeakSet[type] = weakref.WeakSet()
_done_owners: weakref.WeakSet[type] = weakref.WeakSet()
_subclass_hook: tuple[type, bool, Any, Any] | None = None
_cell_patches: list[tuple[Any, Any, Any]] = []
_attr_patches: list[tuple[Any, str, Any, Any]] = []
_module_hooks: set[str] = set()


def _foreign(cls: type) -> bool:
    """A class of a library with its own integration (XGBClassifier, LGBMRegressor, ...)."""
    others = {lib for name, lib in integration.INTEGRATIONS.items() if name != INTEGRATION}
    return any(c.__module__.partition(".")[0] in others for c in cls.__mro__)


def _patchable(value: Any) -> bool:
    # plain functions and sklearn's available_if descriptors; not properties/class methods
    return inspect.isfunction(value) or type(value).__name__ == "_AvailableIfDescriptor"


def _patch_class(cls: type) -> None:
    from sklearn.base import BaseEstimator

    if cls in _done_classes:
        return
    _done_classes.add(cls)
    if _foreign(cls):
        return
    for owner in cls.__mro__:
        if owner is object or owner in _done_owners:
            continue
        module = owner.__module__ or ""
        if not (module.startswith("sklearn.") or issubclass(owner, BaseEstimator)):
            continue
        _done_owners.add(owner)
        for name, patch_fn in _METHOD_PATCHES.items():
            value = owner.__dict__.get(name)
            if value is not None and _patchable(value):
                patching.safe_patch(INTEGRATION, owner, name, patch_fn)


def _subclasses(cls: type) -> list[type]:
    seen: set[type] = set()
    stack: list[type] = [cls]
    out: list[type] = []
    while stack:
        subs: list[type] = type.__subclasses__(stack.pop())
        for sub in subs:
            if sub not in seen:
                seen.add(sub)
                out.append(sub)
                stack.append(sub)
    return out


def _install_subclass_hook(base: type) -> None:
    """Patch estimator classes created from now on (sklearn modules imported later, user classes)."""
    global _subclass_hook
    if _subclass_hook is not None:
        return
    had_own = "__init_subclass__" in base.__dict__
    own = base.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: type, **kwargs: Any) -> None:
        if own is not None:
            own.__func__(cls, **kwargs)
        else:
            super(base, cls).__init_subclass__(**kwargs)  # type: ignore[misc,arg-type]
        if _enabled:
            try:
                _patch_class(cls)
            except Exception as exc:  # a class statement of the user's never fails because of us
                cfg = integration.config_for(INTEGRATION)
                patching.report_error(INTEGRATION, exc, bool(cfg is not None and cfg.silent))

    hook: Any = classmethod(__init_subclass__)
    base.__init_subclass__ = hook  # type: ignore[assignment]
    _subclass_hook = (base, had_own, own, hook)


def _remove_subclass_hook() -> None:
    global _subclass_hook
    if _subclass_hook is None:
        return
    base, had_own, own, hook = _subclass_hook
    _subclass_hook = None
    if base.__dict__.get("__init_subclass__") is hook:
        if had_own:
            base.__init_subclass__ = own  # type: ignore[assignment]
        else:
            delattr(base, "__init_subclass__")


def _implementation_cell(fn: Any) -> Any:
    """The closure cell of validate_params' wrapper that holds the implementation, if any."""
    code = getattr(fn, "__code__", None)
    closure = getattr(fn, "__closure__", None)
    if code is None or not closure or "func" not in code.co_freevars:
        return None
    cell = closure[code.co_freevars.index("func")]
    inner = cell.cell_contents
    original = getattr(fn, "__wrapped__", None)
    if original is None:
        return None
    if inner is original or _is_our_replacement(inner):
        return cell
    return None


def _is_our_replacement(fn: Any) -> bool:
    """A metric replacement (_make_metric) or a safe_patch wrapper (the CV functions)."""
    return "_autolog_sklearn" in getattr(fn, "__dict__", {}) or (
        getattr(fn, "_self_autolog_integration", None) == INTEGRATION
    )


def _swap_cell(cell: Any, replacement: Any) -> None:
    original = cell.cell_contents
    cell.cell_contents = replacement
    _cell_patches.append((cell, original, replacement))


def _patch_metrics(module: Any) -> None:
    """Every function of sklearn.metrics logs its calls on tracked predictions."""
    for name in getattr(module, "__all__", ()):
        fn = getattr(module, name, None)
        if name in NOT_METRICS or not inspect.isfunction(fn):
            continue
        cell = _implementation_cell(fn)
        if cell is not None:
            if not _is_our_replacement(cell.cell_contents):
                _swap_cell(cell, post_training.make_metric(cell.cell_contents, name))
        elif not _is_our_replacement(fn):
            replacement = post_training.make_metric(fn, name)
            setattr(module, name, replacement)
            _attr_patches.append((module, name, fn, replacement))


def _patch_cv_functions(module: Any) -> None:
    """cross_val_score & co. make one run; the fits they make inside are quiet."""
    for name in CV_FUNCTIONS:
        fn = getattr(module, name, None)
        if fn is None:
            continue
        patch_fn = searches.make_patched_cv_function(name)
        cell = _implementation_cell(fn)
        if cell is not None:
            if _is_our_replacement(cell.cell_contents):
                continue  # already patched
            holder = types.SimpleNamespace(fn=cell.cell_contents)
            if patching.safe_patch(INTEGRATION, holder, "fn", patch_fn) is not None:
                _swap_cell(cell, holder.fn)
        else:
            patching.safe_patch(INTEGRATION, module, name, patch_fn)
            home = sys.modules.get(getattr(fn, "__module__", "") or "")
            if home is not None and getattr(home, name, None) is fn:
                patching.safe_patch(INTEGRATION, home, name, patch_fn)


def _on_module(name: str, apply: Any) -> None:
    """apply(module) now if it is imported, else when it is first imported."""
    module = sys.modules.get(name)
    if module is not None:
        apply(module)
        return
    if name in _module_hooks:
        return
    import wrapt

    def hook(mod: Any) -> None:
        _module_hooks.discard(name)  # wrapt fires a hook once, then forgets it
        if _enabled:
            patching.guarded(INTEGRATION, apply, mod)

    _module_hooks.add(name)
    wrapt.register_post_import_hook(hook, name)


def patch() -> None:
    """Patch every estimator class (now and created later), the metrics and the CV functions."""
    global _enabled
    from sklearn.base import BaseEstimator

    _enabled = True
    try:
        _install_subclass_hook(BaseEstimator)
        for cls in _subclasses(BaseEstimator):
            _patch_class(cls)
        _on_module("sklearn.metrics", _patch_metrics)
        _on_module("sklearn.model_selection", _patch_cv_functions)
    except BaseException:
        unpatch()
        raise


def unpatch() -> None:
    """Remove what safe_patch does not track: the subclass hook and the swapped closure cells."""
    global _enabled
    _enabled = False
    _remove_subclass_hook()
    while _cell_patches:
        cell, original, replacement = _cell_patches.pop()
        if cell.cell_contents is replacement:
            cell.cell_contents = original
    while _attr_patches:
        module, name, original, replacement = _attr_patches.pop()
        if getattr(module, name, None) is replacement:
            setattr(module, name, original)
    _done_classes.clear()
    _done_owners.clear()

"""What the XGBoost and LightGBM integrations share: the same logic, written once.

- metric names: ``{dataset}-{metric}`` (``valid-logloss``; ``@`` becomes ``_at_``, so
  ``ndcg@5`` is logged as ``valid-ndcg_at_5``), step = iteration of this training call;
- :class:`History`: the per-iteration points a library callback hands over, buffered through
  :mod:`autolog.batching` and kept in memory for the early-stopping summary;
- early stopping: ``best_iteration``, ``stopped_iteration`` and ``best_<key>`` (the best
  iteration's values) logged as plain metrics at step 0, never as an extra fake step;
- feature importance: ``feature_importance_<type>.json`` and a PNG bar chart of the top
  features per importance type (:func:`autolog.plots.bar_chart_png`, drawn with Pillow: a
  chart costs about 2 ms where matplotlib costs 100 ms or more, which matters against the 5%
  budget of a 1 s training);
- params: library params turned into loggable values; arguments swapped in a copy of a call.

Imports no ML library, numpy, pandas or Pillow at import time.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import numbers
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from autolog import batching, fit_inputs, patching, tracking
from autolog.plots import bar_chart_png

BEST_ITERATION = "best_iteration"
STOPPED_ITERATION = "stopped_iteration"
BEST_PREFIX = "best_"
IMPORTANCE_JSON = "feature_importance_{}.json"
IMPORTANCE_PNG = "feature_importance_{}.png"
MODEL_ARTIFACT_PATH = "model"
EXAMPLE_ROWS = 5
TOP_FEATURES = 20
ESTIMATOR_NAME_TAG = "estimator_name"
ESTIMATOR_CLASS_TAG = "estimator_class"


@functools.lru_cache(maxsize=4096)
def metric_key(dataset: str, metric: str) -> str:
    """``{dataset}-{metric}`` with ``@`` spelled ``_at_`` (``valid-ndcg_at_5``)."""
    return f"{dataset}-{metric}".replace("@", "_at_")


# -- per-iteration points ---------------------------------------------------------------------


class History:
    """Per-iteration metrics of one training call, written through the run's batcher.

    ``record`` is what a library callback calls once per iteration; it never raises into the
    training loop: a failure is reported once (warning, or raised under AUTOLOG_TESTING) and
    the remaining iterations are not logged.
    """

    __slots__ = ("integration", "silent", "_batcher", "rows", "failed")

    def __init__(self, integration: str, run_id: str, silent: bool = False):
        self.integration = integration
        self.silent = silent
        self._batcher = batching.batcher_for(run_id)
        self.rows: dict[int, dict[str, float]] = {}
        self.failed = False

    def record(self, step: int, values: dict[str, float]) -> None:
        if self.failed:
            return
        try:
            self._batcher.record_many(values, step)
            self.rows[step] = values
        except Exception as exc:
            self.fail(exc)

    def fail(self, exc: Exception) -> None:
        """Stop recording after an error of our own (raised in a library callback)."""
        self.failed = True
        patching.report_error(self.integration, exc, self.silent)

    @property
    def last_step(self) -> int | None:
        return next(reversed(self.rows)) if self.rows else None

    def record_log(self, evals_result: Mapping[str, Mapping[str, Iterable[Any]]]) -> None:
        """Record a whole ``{dataset: {metric: [values]}}`` log after the fact."""
        columns = {
            metric_key(data, metric): list(values)
            for data, metrics in evals_result.items()
            for metric, values in metrics.items()
        }
        steps = max((len(v) for v in columns.values()), default=0)
        for step in range(steps):
            self.record(step, {k: float(v[step]) for k, v in columns.items() if step < len(v)})


def log_early_stopping(
    run_id: str,
    history: History,
    best_iteration: int,
    best_step: int,
    stopped_iteration: int | None,
) -> None:
    """``best_iteration``, ``stopped_iteration`` and the best step's values as ``best_*``."""
    metrics: dict[str, float] = {BEST_ITERATION: float(best_iteration)}
    if stopped_iteration is not None:
        metrics[STOPPED_ITERATION] = float(stopped_iteration)
    for key, value in history.rows.get(best_step, {}).items():
        metrics[BEST_PREFIX + key] = float(value)
    ts = int(time.time() * 1000)
    tracking._store().log_batch(run_id, metrics=[(k, v, ts, 0) for k, v in metrics.items()])


# -- feature importance -------------------------------------------------------------------------


def log_importances(
    run_id: str, importances: Mapping[str, Mapping[str, Any]], plots: bool = True
) -> None:
    """Write ``feature_importance_<type>.json`` (and ``.png``) for every importance type."""
    store = tracking._store()
    for imp_type, scores in importances.items():
        clean = {str(k): _json_number(v) for k, v in scores.items()}
        text = json.dumps(clean, indent=2, allow_nan=True)
        store.write_artifact_bytes(run_id, IMPORTANCE_JSON.format(imp_type), text.encode())
        if not plots:
            continue
        ranked = sorted(
            ((k, v) for k, v in clean.items() if isinstance(v, float) and math.isfinite(v)),
            key=lambda kv: -kv[1],
        )
        top = ranked[:TOP_FEATURES]
        title = f"Feature importance ({imp_type})"
        if len(ranked) > len(top):
            title += f": top {len(top)} of {len(ranked)} features"
        png = bar_chart_png(title, [k for k, _ in top], [v for _, v in top])
        if png is not None:
            store.write_artifact_bytes(run_id, IMPORTANCE_PNG.format(imp_type), png)


def _json_number(v: Any) -> Any:
    if isinstance(v, (list, tuple)) or hasattr(v, "tolist"):  # gblinear: one weight per class
        values = v.tolist() if hasattr(v, "tolist") else list(v)
        return [float(x) for x in values] if isinstance(values, list) else float(values)
    return float(v)


# -- params and call arguments ----------------------------------------------------------------


def param_value(v: Any) -> Any:
    """A loggable form of a parameter value (callables and objects by name, no addresses)."""
    if v is None or isinstance(v, (str, bool, numbers.Number)):
        return v
    if isinstance(v, dict):
        return {str(k): param_value(x) for k, x in v.items()} if v else "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return _short(v)


def _short(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    if v is None or isinstance(v, (bool, numbers.Number)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    if inspect.isfunction(v) or inspect.ismethod(v) or inspect.isclass(v):
        return getattr(v, "__qualname__", repr(v))
    if type(v).__repr__ is object.__repr__:
        return type(v).__name__
    return repr(v)


def loggable_args(arguments: Mapping[str, Any], skip: Iterable[str]) -> dict[str, Any]:
    """Call arguments that are plain values (numbers, strings, lists of them), by name."""
    skipped = set(skip)
    out: dict[str, Any] = {}
    for name, value in arguments.items():
        if name in skipped or callable(value):
            continue
        if value is None or isinstance(value, (str, bool, numbers.Number)):
            out[name] = value
        elif isinstance(value, (list, tuple)) and all(
            x is None or isinstance(x, (str, bool, numbers.Number)) for x in value
        ):
            out[name] = param_value(value)
    return out


def booster_params(params: Any) -> dict[str, Any]:
    """A params dict, or XGBoost's list of pairs (repeated keys become one list)."""
    if isinstance(params, Mapping):
        return {str(k): param_value(v) for k, v in params.items()}
    out: dict[str, Any] = {}
    for k, v in params or ():
        out.setdefault(str(k), []).append(v)
    return {k: param_value(v[0] if len(v) == 1 else v) for k, v in out.items()}


@functools.lru_cache(maxsize=256)
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def bind(fn: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """The call's arguments by parameter name, defaults applied; None if they do not bind."""
    target = getattr(fn, "__func__", fn)
    sig = _signature(target)
    try:
        if target is not fn:  # a bound method: self is not in args
            bound = sig.bind(None, *args, **kwargs)
        else:
            bound = sig.bind(*args, **kwargs)
    except TypeError:
        return None  # the library itself will raise its own error for these arguments
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    if target is not fn:
        arguments.pop(next(iter(sig.parameters)), None)
    return arguments


def with_argument(
    fn: Callable[..., Any], args: tuple, kwargs: dict, name: str, value: Any
) -> tuple[tuple, dict]:
    """Copies of (args, kwargs) where the argument ``name`` is ``value``."""
    target = getattr(fn, "__func__", fn)
    params = list(_signature(target).parameters.values())
    if target is not fn:
        params = params[1:]
    if name not in kwargs:
        for i, p in enumerate(params):
            if p.name == name:
                if p.kind is p.POSITIONAL_OR_KEYWORD and i < len(args):
                    new_args = list(args)
                    new_args[i] = value
                    return tuple(new_args), kwargs
                break
    new_kwargs = dict(kwargs)
    new_kwargs[name] = value
    return args, new_kwargs


def with_callback(callbacks: Any, ours: Any) -> list[Any]:
    """A new list: our callback first, then the user's (the user's list is never touched).

    First, because XGBoost stops calling callbacks once one of them asks to stop (so a user's
    early-stopping callback would hide the last iteration from ours), and because LightGBM
    numbers unnumbered callbacks by position from the end (so the user's keep their ``order``).
    """
    return [ours, *(callbacks or ())]


def head(data: Any, n: int = EXAMPLE_ROWS) -> Any:
    """The first ``n`` rows of array-like training data (None when it has no rows to take)."""
    if data is None or isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        return None
    # a copy: a fit that changes its data in place must not change the example logged
    iloc = getattr(data, "iloc", None)
    if iloc is not None:
        return data.iloc[:n].copy()
    if hasattr(data, "shape") and hasattr(data, "__getitem__"):
        rows = data[:n]
        return rows.copy() if hasattr(rows, "copy") else rows
    if isinstance(data, list):
        return data[:n]
    return None


# -- models ---------------------------------------------------------------------------------------


def log_model(
    integration: str,
    flavor: Any,
    model: Any,
    run_id: str,
    config: Any,
    signature: Any,
    example: Any,
) -> Any:
    """Log the model at ``model`` in the run; register it when the config names a model."""
    from autolog import models

    info = models.log_model(
        flavor,
        model,
        MODEL_ARTIFACT_PATH,
        signature=signature if config.log_model_signatures and signature is not None else False,
        input_example=example if config.log_input_examples else None,
        run_id=run_id,
    )
    if config.registered_model_name:
        patching.guarded(
            integration,
            _register,
            info.model_uri,
            config.registered_model_name,
            silent=config.silent,
        )
    return info


def _register(model_uri: str, name: str) -> None:
    from autolog import registry

    registry.register_model(model_uri, name)


def signature_from_example(flavor: Any, model: Any, example: Any) -> Any:
    """Inputs from ``example``, outputs from the model's prediction on it (None if unknown)."""
    if example is None:
        return None
    from autolog import models
    from autolog.errors import SignatureInferenceError

    # predict on a copy: a predict that changes its input in place leaves the example as it was
    probe = example.copy() if hasattr(example, "copy") else example
    try:
        signature = models._signature_from_example(flavor, model, probe)
    except SignatureInferenceError:
        return None
    if signature is not None and probe is not example:
        from autolog.signature import infer_schema

        signature.inputs = infer_schema(example)
    return signature


def fit_arguments(arguments: dict[str, Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    """X, y and eval_set of a wrapper's fit, also when a user's ``fit(self, *args, **kwargs)``
    override is what was patched (its own parameters name none of them)."""
    if "X" in arguments:
        return arguments
    found = {**kwargs}
    for name, value in zip(("X", "y"), args, strict=False):
        found[name] = value
    return found


def eval_sets(eval_set: Any, names: Any, default: str) -> list[tuple[str, Any, Any]]:
    """[(name, X, y)] of a wrapper's ``eval_set``; unnamed ones are ``default.format(i)``."""
    out: list[tuple[str, Any, Any]] = []
    for i, pair in enumerate(eval_set or ()):
        name = names[i] if names and i < len(names) else default.format(i)
        out.append((str(name), pair[0], pair[1] if len(pair) > 1 else None))
    return out


def wrapper_classes(module: Any, base: type) -> list[type]:
    """base and every subclass of it defined in module (a library's scikit-learn wrappers)."""
    classes: list[type] = [base]
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, base)
            and value.__module__ == module.__name__
            and value not in classes
        ):
            classes.append(value)
    return classes


# -- the template: train / cv / fit bodies, written once ----------------------------------------


def log_params(run_id: str, params: dict[str, Any], tags: dict[str, str] | None = None) -> None:
    tracking._store().log_batch(run_id, params=params, tags=tags)


class Template:
    """The patched ``train``, ``cv`` and wrapper ``fit`` of a boosting library.

    A library subclasses it with what differs (its callback, where early stopping is read,
    its importances, how its models are logged); ``patched_train``, ``patched_cv`` and
    ``patched_fit`` are the patch functions handed to ``safe_patch``.
    """

    name = ""  # the integration's name; runs are named "<name>.train" / "<name>.cv"
    not_params: tuple[str, ...] = ()  # train()/cv() arguments that are data or functions

    def recorder(self, history: History, cv: bool) -> Any:
        """The library callback handing each iteration's results to ``history``."""
        raise NotImplementedError

    def log_early_stopping(
        self, run_id: str, recorder: Any, model: Any, rounds: Any, callbacks: Any
    ) -> None:
        """best_iteration, stopped_iteration and best_* when early stopping was on."""
        raise NotImplementedError

    def importances(self, booster: Any, types: Any) -> dict[str, dict[str, Any]]:
        """``{importance type: {feature: score}}`` for ``types`` (None: the library's list)."""
        raise NotImplementedError

    def log_trained(
        self, run_id: str, booster: Any, arguments: dict[str, Any], example: Any, config: Any
    ) -> None:
        """Log the model ``train`` returned."""
        raise NotImplementedError

    def log_fitted(self, run_id: str, estimator: Any, example: Any, config: Any) -> None:
        """Log a fitted scikit-learn wrapper."""
        raise NotImplementedError

    def booster_of(self, estimator: Any) -> Any:
        raise NotImplementedError

    def train_example(self, arguments: dict[str, Any]) -> Any:
        """Input rows for the model taken before training (when training frees them)."""
        return None

    def train_sets(self, arguments: dict[str, Any]) -> tuple[str, Any, list[tuple[str, Any, Any]]]:
        """(training set's name, training set, [(name, eval set, None)]) of train()/cv()."""
        raise NotImplementedError

    eval_default = "validation_{}"  # how the wrapper names an unnamed eval set in metric keys

    def with_fit_callback(
        self, instance: Any, call: Any, args: tuple, kwargs: dict, recorder: Any
    ) -> tuple[tuple, dict, Callable[[], None] | None]:
        """The fit's arguments with our callback added, and what undoes it after the fit."""
        arguments = bind(call.wrapped, args, kwargs) or {}
        callbacks = with_callback(arguments.get("callbacks"), recorder)
        args, kwargs = with_argument(call.wrapped, args, kwargs, "callbacks", callbacks)
        return args, kwargs, None

    # the patch functions

    def patched_train(self, call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        return self._train_or_cv(call, args, kwargs, cv=False)

    def patched_cv(self, call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        return self._train_or_cv(call, args, kwargs, cv=True)

    def _train_or_cv(self, call: Any, args: tuple, kwargs: dict, cv: bool) -> Any:
        name = self.name
        session = patching.current_session()
        assert session is not None
        cfg = session.config
        arguments = bind(call.wrapped, args, kwargs)
        if arguments is None:
            return call(*args, **kwargs)
        session.state["run_name"] = f"{name}.{'cv' if cv else 'train'}"
        run_id = session.run_id
        # Both libraries let params win over arguments (num_iterations over num_boost_round).
        params = {
            **loggable_args(arguments, self.not_params),
            **booster_params(arguments["params"]),
        }
        patching.guarded(name, log_params, run_id, params, silent=cfg.silent)
        if cfg.log_datasets:
            sets = patching.guarded(name, self.train_sets, arguments, silent=cfg.silent)
            if sets is not None:
                train_name, train, evals = sets
                fit_inputs.log_fit_datasets(
                    name, run_id, cfg, (train, None), evals, train_name=train_name
                )
        example = None if cv or not cfg.log_models else self.train_example(arguments)
        recorder = self.recorder(History(name, run_id, cfg.silent), cv=cv)
        callbacks = with_callback(arguments.get("callbacks"), recorder)
        args, kwargs = with_argument(call.wrapped, args, kwargs, "callbacks", callbacks)
        result = call(*args, **kwargs)
        model = recorder.model if cv else result
        if model is not None:
            patching.guarded(
                name,
                self.log_early_stopping,
                run_id,
                recorder,
                model,
                arguments.get("early_stopping_rounds"),
                arguments.get("callbacks"),
                silent=cfg.silent,
            )
        if not cv:
            self._log_after_training(run_id, result, cfg)
            if cfg.log_models:
                patching.guarded(
                    name, self.log_trained, run_id, result, arguments, example, cfg,
                    silent=cfg.silent,
                )  # fmt: skip
        return result

    def patched_fit(self, call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        name = self.name
        session = patching.current_session()
        assert session is not None
        cfg = session.config
        arguments = bind(call.wrapped, args, kwargs)
        if arguments is None:
            return call(*args, **kwargs)
        cls = type(instance)
        session.state["run_name"] = cls.__name__
        run_id = session.run_id
        params = {k: param_value(v) for k, v in instance.get_params().items()}
        tags = {
            ESTIMATOR_NAME_TAG: cls.__name__,
            ESTIMATOR_CLASS_TAG: f"{cls.__module__}.{cls.__name__}",
        }
        patching.guarded(name, log_params, run_id, params, tags, silent=cfg.silent)
        data = fit_arguments(arguments, args, kwargs)
        if cfg.log_datasets:
            pairs = data.get("eval_set")
            if pairs is None and data.get("eval_X") is not None:  # LightGBM >= 4.6's names
                ex, ey = data["eval_X"], data.get("eval_y")
                many = isinstance(ex, (list, tuple))
                pairs = list(zip(ex, ey or [None] * len(ex))) if many else [(ex, ey)]
            evals = eval_sets(pairs, data.get("eval_names"), self.eval_default)
            fit_inputs.log_fit_datasets(name, run_id, cfg, (data.get("X"), data.get("y")), evals)
        example = head(data.get("X")) if cfg.log_models else None
        user_callbacks = arguments.get("callbacks") or getattr(instance, "callbacks", None)
        recorder = self.recorder(History(name, run_id, cfg.silent), cv=False)
        args, kwargs, undo = self.with_fit_callback(instance, call, args, kwargs, recorder)
        try:
            result = call(*args, **kwargs)
        finally:
            if undo is not None:
                undo()
        booster = self.booster_of(instance)
        if not recorder.history.rows and getattr(instance, "evals_result_", None):
            patching.guarded(name, recorder.history.record_log, instance.evals_result_)
        rounds = getattr(instance, "early_stopping_rounds", None)
        patching.guarded(
            name, self.log_early_stopping, run_id, recorder, booster, rounds, user_callbacks,
            silent=cfg.silent,
        )  # fmt: skip
        self._log_after_training(run_id, booster, cfg)
        if cfg.log_models:
            patching.guarded(
                name, self.log_fitted, run_id, instance, example, cfg, silent=cfg.silent
            )
        return result

    def _log_after_training(self, run_id: str, booster: Any, cfg: Any) -> None:
        patching.guarded(self.name, self._log_importances, run_id, booster, cfg, silent=cfg.silent)

    def _log_importances(self, run_id: str, booster: Any, cfg: Any) -> None:
        scores = self.importances(booster, cfg.get("importance_types"))
        log_importances(run_id, scores, plots=cfg.get("log_importance_plots", True))

"""fastai: ``Learner.fit`` and its schedules recorded with no explicit call.

Usage::

    import autolog
    autolog.autolog()            # or: from integrations import fastai as af; af.autolog()

    learn = tabular_learner(dls, layers=[32, 16], metrics=[accuracy])
    learn.fit_one_cycle(5, 1e-2)      # also fit, fit_flat_cos, fit_sgdr, fine_tune
    # -> one run: fit_method, the call's arguments (epochs, div, pct_start, ...), opt_func and
    #    the optimizer's hyperparameters, lr_min/lr_max/lr_init/lr_final (the schedule),
    #    loss_func, batch_size, model_*; train_loss, valid_loss and every metric per epoch;
    #    lr and mom every 10 steps; model_summary.txt; the Learner (fastai's export)

The outermost call of ``fit``, ``fit_one_cycle``, ``fit_flat_cos``, ``fit_sgdr`` or
``fine_tune`` logs; the ``fit`` calls it makes are quiet, so ``fine_tune`` is one run whose
epochs and steps continue from its frozen phase to its unfrozen one. ``lr_find`` logs
nothing. The call is an autolog session, so the torch integration's plain-loop hooks (which
see fastai's optimizer steps and backward calls) stay quiet: one fit, one run. The recording
is a fastai ``Callback`` added to a copy of the call's ``cbs``. Keys and formats: docs/fastai.md.
"""

from __future__ import annotations

import atexit
import functools
import io
import numbers
import threading
import warnings
import weakref
from pathlib import Path
from typing import Any

from autolog import batching, boosting, integration, models, patching, tracking
from autolog.errors import IntegrationError, ModelError
from integrations._fastai_signature import signature as _signature

INTEGRATION = integration.Integration("fastai", supported=">=2.7,<2.9")

NAME = "fastai"
SCHEDULES = ("fit_one_cycle", "fit_flat_cos", "fit_sgdr", "fine_tune")
QUIET = ("lr_find",)  # trains a throwaway copy of the schedule: never a run

# keys (MLflow's fastai names where it has one)
FIT_METHOD = "fit_method"
EPOCHS = "epochs"
OPT_FUNC = "opt_func"
LOSS_FUNC = "loss_func"
BATCH_SIZE = "batch_size"
LAYER_GROUPS = "layer_groups"
FROZEN_IDX = "frozen_idx"
FREEZE_PREFIX = "freeze_"
SCHEDULE_STATS = ("min", "max", "init", "final")
SCHEDULE_POINTS = 100
STEP_HYPERS = ("lr", "mom")
LEARNER_FLAGS = ("train_bn", "wd_bn_bias")
STOPPED_EPOCH = "stopped_epoch"
BEST_SCORE = "best_score"
WAIT_COUNT = "wait_count"
BEST_MODEL_SCORE = "best_model_score"
BEST_MODEL_PATH_TAG = "best_model_path"
SUMMARY_FILE = "model_summary.txt"
MODEL_PATH = "model"
MODEL_FILE = "model.fastai"
# not logged as such: the optimizer's hyperparameters and schedule say what they became (as MLflow)
_NOT_ARGS = ("cbs", "lr", "lr_max", "wd")


# -- the callback -----------------------------------------------------------------------------


class _State:
    """What one logged call has seen, shared by its fits (the phases of fine_tune)."""

    def __init__(self, run_id: str, config: Any, call_params: dict[str, Any]):
        self.run_id = run_id
        self.config = config
        self.batcher = batching.batcher_for(run_id, NAME)
        self.call_params = call_params
        self.every = int(config.get("log_every_n_steps", 10) or 0)
        self.phase = 0
        self.prefixes: set[str] = set()
        self.epoch_offset = 0  # epochs of the earlier fits of this call
        self.step = 0  # training batches so far, across fits
        self.names: list[str] = []
        self.first_xb: Any = None
        self.stopped: tuple[int, Any] | None = None  # (epoch, the EarlyStoppingCallback)
        self.savers: list[Any] = []  # SaveModelCallbacks of the fits (gone from learn.cbs after)
        self.failed = False


def _before_fit(cb: Any, state: _State) -> None:
    _log_phase_params(cb.learn, state)
    state.names = [n for n in cb.learn.recorder.metric_names[1:] if n != "time"]


def _before_batch(cb: Any, state: _State) -> None:
    learn = cb.learn
    if learn.training:  # the first training batch: kept for the signature, then not called
        state.first_xb = tuple(x[:5].detach() for x in learn.xb)
        del cb.autolog_events["before_batch"]


def _after_batch(cb: Any, state: _State) -> None:
    learn = cb.learn
    if not learn.training:
        return
    step = state.step
    state.step = step + 1
    if state.every and step % state.every == 0:
        hypers = learn.opt.hypers[-1]  # the head's group, as fastai's Recorder
        for key in STEP_HYPERS:
            if key in hypers:
                state.batcher.record(key, float(hypers[key]), step)


def _after_epoch(cb: Any, state: _State) -> None:
    learn = cb.learn
    values = learn.recorder.values[-1]
    step = state.epoch_offset + int(learn.epoch)
    points = {n: float(v) for n, v in zip(state.names, values) if _is_number(v)}
    state.batcher.record_many(points, step=step)


def _after_cancel_fit(cb: Any, state: _State) -> None:
    from fastai.callback.tracker import EarlyStoppingCallback

    learn = cb.learn
    for other in learn.cbs:
        if isinstance(other, EarlyStoppingCallback) and other.wait >= other.patience:
            state.stopped = (state.epoch_offset + int(learn.epoch), other)


def _after_fit(cb: Any, state: _State) -> None:
    from fastai.callback.tracker import SaveModelCallback

    learn = cb.learn
    savers = [other for other in learn.cbs if isinstance(other, SaveModelCallback)]
    state.savers += [other for other in savers if other not in state.savers]
    state.epoch_offset += int(learn.n_epoch)
    state.phase += 1


# The events the callback handles; fastai calls every callback for every one of its 25 events.
_EVENTS = {
    "before_fit": _before_fit,
    "before_batch": _before_batch,
    "after_batch": _after_batch,
    "after_epoch": _after_epoch,
    "after_cancel_fit": _after_cancel_fit,
    "after_fit": _after_fit,
}


@functools.cache
def _callback_class() -> type:
    from fastai.callback.core import Callback
    from fastai.learner import Recorder

    class AutologCallback(Callback):
        """Reads the Recorder after it has written each epoch (hence its order).

        ``__call__`` is fastai's documented entry point of a callback (``Learner`` calls
        ``cb(event_name)`` for every callback and every event). Callback's own looks every
        event name up on the instance, and a name the callback does not define falls through
        fastcore's ``GetAttr`` to the Learner: 30 us a miss, ten misses a training batch, 4%
        of a small tabular fit. Here it is one dict lookup, and a failure of ours is reported
        once and never reaches the training.
        """

        order = Recorder.order + 1

        def __init__(self, state: _State):
            self.autolog_state = state
            events = dict(_EVENTS)
            if not state.every:
                del events["after_batch"]
            config = state.config
            if not (config.log_models and config.log_model_signatures):
                del events["before_batch"]
            self.autolog_events = events

        def __call__(self, event_name: str) -> None:
            fn = self.autolog_events.get(event_name)
            if fn is None:
                return
            state = self.autolog_state
            if state.failed:
                return
            try:
                fn(self, state)
            except Exception as exc:
                state.failed = True
                patching.report_error(NAME, exc, bool(state.config.silent))

    return AutologCallback


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# -- params --------------------------------------------------------------------------------------


def _value(v: Any) -> Any:
    """One value for all layer groups, or the list of them where they differ."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        items = [float(x) if _is_number(x) else x for x in v]
        return items[0] if items and all(x == items[0] for x in items) else items
    return float(v) if _is_number(v) and not isinstance(v, int) else v


def _name_of(fn: Any) -> str:
    """opt_func's name: the torch optimizer inside ``partial(OptimWrapper, opt=...)`` too."""
    if isinstance(fn, functools.partial):
        inner = fn.keywords.get("opt")
        return getattr(inner, "__name__", None) or _name_of(fn.func)
    return getattr(fn, "__name__", None) or type(fn).__name__


def _global_params(learn: Any) -> dict[str, Any]:
    from fastai.callback.tracker import EarlyStoppingCallback, SaveModelCallback

    from integrations import _torch_loop

    params: dict[str, Any] = {
        OPT_FUNC: _name_of(learn.opt_func),
        LOSS_FUNC: type(learn.loss_func).__name__,
        LAYER_GROUPS: len(learn.opt.param_lists),
    }
    bs = getattr(learn.dls.train, "bs", None)
    if isinstance(bs, int):
        params[BATCH_SIZE] = bs
    for flag in LEARNER_FLAGS:
        if isinstance(getattr(learn, flag, None), bool):
            params[flag] = getattr(learn, flag)
    params.update(_torch_loop.model_params(learn.model, "model_"))
    for cb in learn.cbs:
        if isinstance(cb, EarlyStoppingCallback):
            params.update(
                early_stop_monitor=cb.monitor,
                early_stop_min_delta=abs(cb.min_delta),
                early_stop_patience=cb.patience,
                early_stop_comp=getattr(cb.comp, "__name__", str(cb.comp)),
            )
        elif isinstance(cb, SaveModelCallback):
            params.update(save_model_monitor=cb.monitor, save_model_fname=cb.fname)
    return params


def _schedules(learn: Any) -> dict[str, Any]:
    """The fit's schedule functions (pure functions of its progress: run on any thread)."""
    from fastai.callback.schedule import ParamScheduler

    out: dict[str, Any] = {}
    for cb in learn.cbs:
        if isinstance(cb, ParamScheduler):
            out.update(cb.scheds)
    return out


def _schedule_params(scheds: dict[str, Any]) -> dict[str, Any]:
    """MLflow's summary of each scheduled hyperparameter: its min, max, first and last value."""
    import numpy as np

    out: dict[str, Any] = {}
    points = np.linspace(0, 1, num=SCHEDULE_POINTS, endpoint=False)
    for key, fn in scheds.items():
        values = np.array([np.asarray(fn(p), dtype=float) for p in points])
        stats = (values.min(0), values.max(0), values[0], values[-1])
        for stat, v in zip(SCHEDULE_STATS, stats, strict=True):
            out[f"{key}_{stat}"] = _value(v)
    return out


def _log_phase_params(learn: Any, state: _State) -> None:
    """Params of one fit; a frozen fit's carry ``freeze_`` (MLflow's rule for fine_tune). The
    schedule's summary (200 evaluations) and the write are the background thread's."""
    opt = learn.opt
    frozen = int(opt.frozen_idx) != 0
    prefix = FREEZE_PREFIX if frozen else ""
    if prefix in state.prefixes:  # a second fit with the same freezing: its own prefix
        prefix = f"phase{state.phase}_{prefix}"
    state.prefixes.add(prefix)
    scheds = _schedules(learn)
    params = {
        prefix + key: _value([h[key] for h in opt.hypers])
        for key in opt.hypers[0]
        if key not in scheds
    }
    if frozen:
        params[prefix + FROZEN_IDX] = int(opt.frozen_idx)
    if state.phase == 0:
        params.update(state.call_params)
        params.update(_global_params(learn))
    batching.defer(state.run_id, NAME, _write_params, state.run_id, prefix, scheds, params)


def _write_params(run_id: str, prefix: str, scheds: dict[str, Any], params: Any) -> None:
    """One phase's params: the schedule's summary, then the rest (which win a clash)."""
    summary = {prefix + k: v for k, v in _schedule_params(scheds).items()}
    tracking._store().log_batch(run_id, params={**summary, **params})


def _call_params(method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The call's own arguments; ``n_epoch`` is logged as ``epochs`` (and fit_sgdr's total)."""
    arguments = dict(arguments)
    arguments.update(arguments.pop("kwargs", None) or {})  # fine_tune's, passed to fit_one_cycle
    if "n_epoch" in arguments:
        arguments[EPOCHS] = arguments.pop("n_epoch")
    if method == "fit_sgdr":
        n, length, mult = arguments["n_cycles"], arguments["cycle_len"], arguments["cycle_mult"]
        arguments[EPOCHS] = sum(length * mult**i for i in range(n))
    params = boosting.loggable_args(arguments, _NOT_ARGS)
    params[FIT_METHOD] = method
    return params


# -- the patched methods ------------------------------------------------------------------------


def _patched_fit(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Learner.fit (and a subclass's own fit): one run, our callback added to its cbs."""
    return _logged_call("fit", call, instance, args, kwargs)


def _patched_schedule(method: str, call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """fit_one_cycle / fit_flat_cos / fit_sgdr / fine_tune: the fits they make are quiet."""
    return _logged_call(method, call, instance, args, kwargs)


def _patched_quiet(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """lr_find: an autolog session that logs nothing, so the fit inside it is no run."""
    _wait_for_writes(instance)
    return call(*args, **kwargs)


def _patched_use(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """get_preds, save, export: they wait until the Learner's last logged fit is written."""
    _wait_for_writes(instance)
    return call(*args, **kwargs)


def _logged_call(method: str, call: Any, learn: Any, args: tuple, kwargs: dict) -> Any:
    _wait_for_writes(learn)  # the last call's export pickles this Learner: not while it trains
    session = patching.current_session()
    assert session is not None
    config = session.config
    arguments = boosting.bind(call.wrapped, args, kwargs)
    if arguments is None:  # fastai raises its own TypeError for these arguments
        return call(*args, **kwargs)
    tracking.end_yielding_run()  # a plain-loop run still open ends before this fit's run
    state = _State(session.run_id, config, _call_params(method, arguments))
    callback = _callback_class()(state)
    cbs = arguments.get("cbs", (arguments.get("kwargs") or {}).get("cbs"))
    ours = _with_callback(cbs, callback)
    args, kwargs = boosting.with_argument(call.wrapped, args, kwargs, "cbs", ours)
    result = call(*args, **kwargs)
    _after_call(learn, state)
    return result


def _with_callback(cbs: Any, ours: Any) -> list[Any]:
    """A new list: the user's callbacks (one, a list or an ``L``), then ours."""
    if cbs is None:
        return [ours]
    if isinstance(cbs, (list, tuple)) or type(cbs).__name__ == "L":
        return [*cbs, ours]
    return [cbs, ours]


def _after_call(learn: Any, state: _State) -> None:
    """Outcomes of the tracker callbacks, once every fit is done; the summary and the model
    (fastai's ``export``: most of autolog's cost per fit) are written on the background thread.
    """
    config = state.config
    client = tracking.Client()
    if state.stopped is not None:
        epoch, es = state.stopped
        state.batcher.record_many(
            {STOPPED_EPOCH: float(epoch), BEST_SCORE: float(es.best), WAIT_COUNT: float(es.wait)}
        )
    for cb in state.savers:
        path = cb.last_saved_path
        if path is not None:
            state.batcher.record(BEST_MODEL_SCORE, float(cb.best))
            client.set_tag(state.run_id, BEST_MODEL_PATH_TAG, str(path))
            if config.get("log_checkpoints", True) and Path(path).is_file():
                client.log_artifact(state.run_id, str(path), "checkpoints")
    signature: Any = False
    if config.log_models and config.log_model_signatures:  # runs the model: stays here
        signature = _signature(learn, state.first_xb)
    session = patching.current_session()
    ends_here = session is not None and session.managed and session.has_run
    atexit.unregister(_flush_at_exit)  # now the last registered: atexit runs it first
    atexit.register(_flush_at_exit)
    run_id = state.run_id
    batching.defer(
        run_id, NAME, _log_deferred, run_id, learn, config, signature, wait_at_end=not ends_here
    )
    try:
        _writing[learn] = run_id
    except TypeError:  # an unhashable Learner: flush() is the way to wait for it
        pass


def _log_deferred(run_id: str, learn: Any, config: Any, signature: Any) -> None:
    """The background thread's share: the summary and the model. ``export`` swaps the Learner's
    data and optimizer out, and ignores all warnings, while it pickles it: the Learner's next use
    (``_wait_for_writes``) and autolog's own warnings (``patching.warnings_lock``) wait."""
    failure: Exception | None = None
    try:
        tracking.Client().log_text(run_id, _summary(learn), SUMMARY_FILE)
    except Exception as exc:
        failure = exc
    if config.log_models:
        with patching.warnings_lock:
            boosting.log_model(NAME, FLAVOR, learn, run_id, config, signature, None)
    if failure is not None:
        raise failure


_writing: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # Learner -> run


def _wait_for_writes(learn: Any) -> None:
    """Wait until the Learner's last logged call is written (before it is used again)."""
    if threading.current_thread().name == "autolog-deferred":
        return  # the deferred export itself
    try:
        run_id = _writing.pop(learn, None)
    except TypeError:
        return
    if run_id is not None:
        batching.flush_deferred(run_id)


def _flush_at_exit() -> None:
    """Write what fits left pending at exit, before later exit handlers (atexit: LIFO)."""
    try:
        batching.flush_deferred(None, timeout=60.0)
    except Exception:
        pass


def flush(timeout: float | None = 60.0) -> None:
    """Wait until the summary and model of every logged fit are written.

    They are written on autolog's background thread after the fit returns (docs/fastai.md says
    what waits for them). Call it before changing a Learner by other means right after its
    fit; a failure is reported here as a warning.
    """
    batching.flush_deferred(None, timeout)


def _summary(learn: Any) -> str:
    """The module, its parameter counts, optimizer, loss and layer groups (no forward pass:
    fastai's ``summary()`` draws a batch, which would move the user's random state)."""
    model = learn.model
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = learn.opt.frozen_idx if learn.opt is not None else 0
    return (
        f"{model}\n\nTotal params: {total:,}\nTrainable params: {trainable:,}\n"
        f"Optimizer: {_name_of(learn.opt_func)}\nLoss function: {learn.loss_func}\n"
        f"Layer groups: {len(learn.opt.param_lists) if learn.opt is not None else 0}"
        f" (frozen up to group {frozen})\n"
        "Callbacks:\n" + "".join(f"  - {cb}\n" for cb in learn.cbs)
    )


# -- the flavor ----------------------------------------------------------------------------------


class FastaiFlavor(models.Flavor):
    """A ``Learner`` as fastai's ``export`` writes it (MLflow's ``fastai`` flavor layout).

    ``export`` is a pickle of the whole Learner (without data or optimizer state); loading goes
    through autolog's pickle gate (docs/models.md): the bytes are checked against the digest
    recorded at log time, and a plain path needs ``allow_pickle=True``.
    """

    name = "fastai"
    requirements = ("fastai",)
    mlflow_loader_module = None  # autolog's loader: MLflow's own unpickles unchecked

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import fastai
        from fastai.learner import Learner

        if not isinstance(model, Learner):
            raise ModelError(
                f"The fastai flavor saves fastai Learner objects, not {type(model).__name__}"
            )
        model.export(path / MODEL_FILE)
        return {"data": MODEL_FILE, "fastai_version": fastai.__version__, "code": None}

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        from fastai.learner import load_learner

        data = models.pickle_bytes(path, conf["data"], "a fastai Learner (Learner.export)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the pickle warning: checked above
            return load_learner(io.BytesIO(data), cpu=True)

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        return predict(native, data)

    def pyfunc_conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        return {"data": conf["data"]}


FLAVOR = FastaiFlavor()


def predict(learn: Any, data: Any) -> Any:
    """Scores of ``learn`` on ``data`` (a DataFrame for a tabular learner) as a numpy array."""
    dl = learn.dls.test_dl(data)
    with learn.no_bar(), learn.no_logging():
        preds, _ = learn.get_preds(dl=dl)
    return preds.numpy()


def save_model(
    fastai_learner: Any, path: Any, signature: Any = None, input_example: Any = None, **kwargs: Any
) -> models.Model:
    """Save a Learner as an MLmodel directory (``model.fastai``, fastai's ``export``)."""
    return models.save_model(FLAVOR, fastai_learner, path, signature, input_example, **kwargs)


def log_model(
    fastai_learner: Any,
    artifact_path: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    **kwargs: Any,
) -> models.ModelInfo:
    """Log a Learner into a run (the active one unless ``run_id=``); see save_model."""
    return models.log_model(
        FLAVOR, fastai_learner, artifact_path, signature, input_example, **kwargs
    )


def load_model(model_uri: Any, *, allow_pickle: bool | None = None) -> Any:
    """The Learner at ``model_uri`` (on the CPU).

    :param allow_pickle: needed for a plain path (a ``runs:/`` or ``models:/`` URI is checked
        against the digests recorded when it was logged); see docs/models.md.
    """
    return models.load_flavor_model(model_uri, FLAVOR, allow_pickle=allow_pickle)


# -- enabling ------------------------------------------------------------------------------------


USES = ("get_preds", "save", "export")  # wait for the last logged fit's writes


def _patch_learner(module: Any) -> None:
    patching.patch_subclasses(NAME, module.Learner, {"fit": _patched_fit})
    for method in USES:
        if callable(getattr(module.Learner, method, None)):
            patching.safe_patch(NAME, module.Learner, method, _patched_use)


def _patch_schedules(module: Any) -> None:
    from fastai.learner import Learner

    for method in SCHEDULES:
        if callable(getattr(Learner, method, None)):
            patching.safe_patch(NAME, Learner, method, functools.partial(_patched_schedule, method))
    for method in QUIET:
        if callable(getattr(Learner, method, None)):
            patching.safe_patch(NAME, Learner, method, _patched_quiet)


@INTEGRATION.patcher
def patch() -> None:
    """Patch Learner.fit once fastai.learner is imported, the schedules with their module."""
    patching.when_imported(NAME, "fastai.learner", _patch_learner)
    patching.when_imported(NAME, "fastai.callback.schedule", _patch_schedules)


@INTEGRATION.autolog
def autolog(log_every_n_steps: int = 10, log_checkpoints: bool = True) -> None:
    """Record every fastai ``Learner.fit``, ``fit_one_cycle``, ``fit_flat_cos``, ``fit_sgdr``
    and ``fine_tune`` from now on: one run per outermost call.

    :param log_every_n_steps: record ``lr`` and ``mom`` every this many training batches
        (0: never).
    :param log_checkpoints: log the file a ``SaveModelCallback`` saved under ``checkpoints/``.
    """
    if not isinstance(log_every_n_steps, int) or log_every_n_steps < 0:
        raise IntegrationError(
            f"log_every_n_steps={log_every_n_steps!r}: pass a whole number >= 0 (0: never)"
        )

"""Keras 3 autologging: every ``model.fit`` logs one run; ``model.evaluate`` adds its metrics.

    import os
    os.environ["KERAS_BACKEND"] = "torch"   # before keras is first imported (Keras' own rule)
    import keras
    import autolog

    autolog.autolog()                        # or: from integrations import keras as k; k.autolog()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=5, validation_split=0.2, callbacks=[keras.callbacks.EarlyStopping()])
    model.evaluate(x_test, y_test)           # eval_loss, eval_accuracy in the fit's run

One fit logs: the fit's arguments, the optimizer's config (``optimizer_*``), loss, metrics and
model class and sizes as params; every ``History`` key per epoch (step = epoch) and the learning
rate per epoch; EarlyStopping's outcome; ``model_summary.txt``; and the model in Keras' own
``.keras`` format (loaded with ``safe_mode=True``, no pickle). Names follow MLflow's
``mlflow.keras.autolog`` and ``mlflow.tensorflow.autolog``; see docs/keras.md for the exact
keys and where they differ. Only public Keras API is used, so any backend works in principle;
the torch backend is the one tested. Torch's own integration stays quiet inside a fit (the fit
is an autolog session), so one fit is one run.
"""

from __future__ import annotations

import atexit
import functools
import numbers
import os
import threading
import time
import weakref
from typing import Any

from autolog import batching, boosting, integration, patching, tracking
from autolog.errors import IntegrationError
from integrations import _keras_model
from integrations._keras_model import FLAVOR, KerasFlavor, load_model, log_model, save_model

__all__ = [
    "FLAVOR",
    "INTEGRATION",
    "KerasFlavor",
    "autolog",
    "flush",
    "load_model",
    "log_model",
    "save_model",
]

INTEGRATION = integration.Integration("keras", supported=">=3.5,<4")
NAME = "keras"

# params (MLflow's names: fit's arguments, optimizer_<config key>, EarlyStopping's attributes)
FIT_PARAMS = (
    "epochs",
    "batch_size",
    "steps_per_epoch",
    "validation_split",
    "shuffle",
    "class_weight",
    "initial_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)
OPTIMIZER_PREFIX = "optimizer_"
LOSS = "loss"
METRICS = "metrics"
MODEL_CLASS = "model_class"
MODEL_PARAMS = "model_total_params"
MODEL_TRAINABLE = "model_trainable_params"
EARLY_STOPPING_PARAMS = ("monitor", "min_delta", "patience", "baseline", "restore_best_weights")
# metrics
LEARNING_RATE = "learning_rate"
BATCH_PREFIX = "batch_"
STOPPED_EPOCH = "stopped_epoch"
RESTORED_EPOCH = "restored_epoch"
EVAL_PREFIX = "eval_"
# artifacts
SUMMARY_FILE = "model_summary.txt"
CHECKPOINTS_DIR = "checkpoints"
DEFAULT_BATCH_SIZE = 32  # what fit uses for arrays when batch_size is None


# -- the callback added to each fit ------------------------------------------------------------


class _Recorder:
    """What one fit records while it runs: epoch logs, batch logs, checkpoint file names."""

    def __init__(self, run_id: str, config: Any, checkpoints: list[Any]):
        self.history = boosting.History(NAME, run_id, config.silent)
        self.every_epoch = bool(config.get("log_every_epoch", True))
        self.every_n = config.get("log_every_n_steps")
        self.batch_prefix = BATCH_PREFIX if self.every_epoch else ""
        self.checkpoints = checkpoints
        self.checkpoint_files: dict[str, None] = {}  # ordered set
        self.epoch_base = 0
        self.step = 0

    def epoch_begin(self, epoch: int, steps: int | None) -> None:
        self.epoch_base = self.step

    def epoch_end(self, model: Any, epoch: int, logs: dict[str, Any] | None) -> None:
        values = _numbers(logs)
        if LEARNING_RATE not in values:
            lr = _learning_rate(model)
            if lr is not None:
                values[LEARNING_RATE] = lr
        if self.every_epoch:
            self.history.record(epoch, values)
        for cb in self.checkpoints:
            path = _checkpoint_path(cb, epoch, logs or {})
            if path is not None:
                self.checkpoint_files[path] = None

    def batch_end(self, model: Any, batch: int, logs: dict[str, Any] | None) -> None:
        self.step = self.epoch_base + batch + 1
        if self.step % self.every_n:
            return
        values = _numbers(logs)
        if LEARNING_RATE not in values:
            lr = _learning_rate(model)
            if lr is not None:
                values[LEARNING_RATE] = lr
        prefix = self.batch_prefix
        self.history.record(self.step, {prefix + k: v for k, v in values.items()})


def _numbers(logs: dict[str, Any] | None) -> dict[str, float]:
    """The numeric entries of a Keras logs dict (Keras hands callbacks Python floats)."""
    return {
        k: float(v)
        for k, v in (logs or {}).items()
        if isinstance(v, numbers.Real) and not isinstance(v, bool)
    }


def _learning_rate(model: Any) -> float | None:
    """The optimizer's current learning rate (a schedule's value at the current step)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    import keras

    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _checkpoint_path(cb: Any, epoch: int, logs: dict[str, Any]) -> str | None:
    """The file a ModelCheckpoint writes at the end of ``epoch`` (its documented template)."""
    try:
        return str(cb.filepath).format(epoch=epoch + 1, **logs)
    except (KeyError, IndexError, ValueError):
        return None  # a template naming the batch: the files are found after the fit


@functools.cache
def _callback_class(per_batch: bool) -> type:
    """keras.callbacks.Callback subclasses (made once keras is imported).

    The per-batch hook exists only when ``log_every_n_steps`` is set: a callback that defines
    ``on_train_batch_end`` turns off Keras' asynchronous batch dispatch for the whole fit.
    """
    import keras

    class AutologCallback(keras.callbacks.Callback):
        def __init__(self, recorder: _Recorder):
            super().__init__()
            self.recorder = recorder

        def _guard(self, fn: Any, *args: Any) -> None:
            history = self.recorder.history
            if history.failed:
                return
            try:
                fn(*args)
            except Exception as exc:
                history.fail(exc)

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._guard(self.recorder.epoch_begin, epoch, None)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self._guard(self.recorder.epoch_end, self.model, epoch, logs)

    if not per_batch:
        return AutologCallback

    class AutologBatchCallback(AutologCallback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self._guard(self.recorder.batch_end, self.model, batch, logs)

    return AutologBatchCallback


# -- params --------------------------------------------------------------------------------------


def _param(value: Any) -> Any:
    return boosting.param_value(value) if not isinstance(value, dict) else str(value)


def _optimizer_params(optimizer: Any) -> dict[str, Any]:
    """``optimizer_<key>`` for each entry of the optimizer's config; a schedule by its config."""
    out: dict[str, Any] = {}
    for key, value in optimizer.get_config().items():
        if isinstance(value, dict) and "class_name" in value:  # a serialized schedule
            out[OPTIMIZER_PREFIX + key] = value["class_name"]
            for k, v in (value.get("config") or {}).items():
                out[f"{OPTIMIZER_PREFIX}{key}_{k}"] = _param(v)
        else:
            out[OPTIMIZER_PREFIX + key] = _param(value)
    # the config's name is the instance's ("adam_3": a per-process counter); the class is the
    # optimizer that was used
    out[OPTIMIZER_PREFIX + "name"] = type(optimizer).__name__
    return out


def _names(spec: Any) -> list[str]:
    """Names of compiled losses or metrics: strings, serialized objects, lists and dicts of them."""
    if spec is None:
        return []
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, dict) and "class_name" in spec:
        config = spec.get("config")
        name = config.get("name") if isinstance(config, dict) else None
        return [str(name or spec["class_name"])]
    if isinstance(spec, dict):
        return [n for v in spec.values() for n in _names(v)]
    if isinstance(spec, (list, tuple)):
        return [n for v in spec for n in _names(v)]
    return [str(getattr(spec, "name", None) or getattr(spec, "__name__", type(spec).__name__))]


def _batch_size(arguments: dict[str, Any]) -> Any:
    """The batch size the fit uses: given, Keras' default for arrays, or the loader's own."""
    size = arguments.get("batch_size")
    if size is not None:
        return size
    x = arguments.get("x")
    if _keras_model.is_array_like(x):
        return DEFAULT_BATCH_SIZE
    size = getattr(x, "batch_size", None)  # a DataLoader, or a PyDataset that declares it
    return size if isinstance(size, int) else None


def _early_stopping(callbacks: Any) -> Any:
    import keras

    for cb in callbacks or ():
        if isinstance(cb, keras.callbacks.EarlyStopping):
            return cb
    return None


def _checkpoints(callbacks: Any) -> list[Any]:
    import keras

    return [cb for cb in callbacks or () if isinstance(cb, keras.callbacks.ModelCheckpoint)]


def _params_before(model: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """What is known before training: fit's arguments, the compile settings, EarlyStopping's."""
    params: dict[str, Any] = {k: _param(arguments.get(k)) for k in FIT_PARAMS}
    params["batch_size"] = _batch_size(arguments)
    if model.optimizer is not None:
        params.update(_optimizer_params(model.optimizer))
    compiled = model.get_compile_config() or {}
    params[LOSS] = ",".join(_names(compiled.get("loss"))) or None
    params[METRICS] = ",".join(_names(compiled.get("metrics"))) or None
    params[MODEL_CLASS] = type(model).__name__
    es = _early_stopping(arguments.get("callbacks"))
    if es is not None:
        params.update({k: _param(getattr(es, k, None)) for k in EARLY_STOPPING_PARAMS})
    return params


def _model_sizes(model: Any) -> dict[str, Any]:
    import math

    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return {MODEL_PARAMS: model.count_params(), MODEL_TRAINABLE: int(trainable)}


# -- after the fit ---------------------------------------------------------------------------------


def _log_early_stopping(run_id: str, es: Any, history: Any) -> None:
    """When it stopped the fit: stopped_epoch, and restored_epoch when it restored weights.

    As MLflow's TensorFlow autolog: the restored epoch's History values are then logged again
    under their own keys at step ``last epoch + 1``.
    """
    epochs = list(getattr(history, "epoch", None) or [])
    if es.stopped_epoch <= 0:
        return  # ran every epoch: nothing stopped, History is the whole story
    restored = es.restore_best_weights and es.best_weights is not None
    ts = int(time.time() * 1000)
    rows = [(STOPPED_EPOCH, float(es.stopped_epoch), ts, 0)]
    if restored and es.best_epoch in epochs:
        rows.append((RESTORED_EPOCH, float(es.best_epoch), ts, 0))
        index = epochs.index(es.best_epoch)
        step = epochs[-1] + 1
        for key, values in history.history.items():
            if index < len(values) and isinstance(values[index], numbers.Real):
                rows.append((key, float(values[index]), ts, step))
    tracking._store().log_batch(run_id, metrics=rows)


def _log_checkpoints(run_id: str, recorder: _Recorder) -> None:
    """Each file the ModelCheckpoint callbacks left (the last one written per path)."""
    files = dict(recorder.checkpoint_files)
    for cb in recorder.checkpoints:
        files.setdefault(str(cb.filepath), None)
    client = tracking.Client()
    for name in files:
        if os.path.isfile(name):
            client.log_artifact(run_id, name, CHECKPOINTS_DIR)


def _log_summary(run_id: str, model: Any) -> None:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    tracking.Client().log_text(run_id, "\n".join(lines) + "\n", SUMMARY_FILE)


def _weights(model: Any) -> list[Any]:
    """Copies of the model's and its optimizer's variables: what the ``.keras`` file holds."""
    import keras
    import numpy as np

    optimizer = getattr(model, "optimizer", None)
    variables = [*model.weights, *(optimizer.variables if optimizer is not None else ())]
    return [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in variables]


class ModelChangedError(RuntimeError):
    """The model's weights changed while autolog was writing it after its fit returned."""


def _log_deferred(
    run_id: str, model: Any, sample: Any, signature: Any, before: Any, cfg: Any
) -> None:
    """The background thread's share of a fit: the summary and the ``.keras`` model.

    ``before`` holds the weights the fit ended with; they are compared again once the file is
    written (the next fit or evaluate of this model waits for this, so only other code, such
    as ``set_weights`` or ``train_on_batch`` right after fit, can change them meanwhile)."""
    failure: Exception | None = None
    try:
        _log_summary(run_id, model)
    except Exception as exc:
        failure = exc
    if cfg.log_models:
        boosting.log_model(NAME, _keras_model.FLAVOR, model, run_id, cfg, signature, sample)
        import numpy as np

        after = _weights(model)
        if len(after) != len(before) or not all(
            np.array_equal(a, b, equal_nan=True) for a, b in zip(after, before)
        ):
            raise ModelChangedError(
                f"run {run_id}: the model's weights changed while autolog wrote it after fit "
                "returned, so the logged model may not be the one the fit trained; call "
                "integrations.keras.flush() before changing a model outside fit()"
            )
    if failure is not None:
        raise failure


def _after_fit(
    run_id: str, model: Any, arguments: dict[str, Any], recorder: _Recorder, history: Any, cfg: Any
) -> None:
    silent = cfg.silent
    patching.guarded(NAME, boosting.log_params, run_id, _model_sizes(model), silent=silent)
    es = _early_stopping(arguments.get("callbacks"))
    if es is not None and history is not None:
        patching.guarded(NAME, _log_early_stopping, run_id, es, history, silent=silent)
    if recorder.checkpoints:
        patching.guarded(NAME, _log_checkpoints, run_id, recorder, silent=silent)
    # What reads the data or runs the model stays here (the user's thread); the summary and
    # the .keras file (most of autolog's cost per fit) are written on the background thread.
    sample = signature = before = None
    if cfg.log_models:
        x = arguments.get("x")
        if cfg.log_model_signatures or cfg.log_input_examples:
            sample = patching.guarded(NAME, _keras_model.sample_inputs, x, model, silent=silent)
        if cfg.log_model_signatures:
            signature = patching.guarded(NAME, _keras_model.signature, model, sample, silent=silent)
        before = patching.guarded(NAME, _weights, model, silent=silent)
        if before is None:
            return  # the weights cannot be read: neither can the model be saved
    session = patching.current_session()
    ends_here = session is not None and session.managed and session.has_run
    atexit.unregister(_flush_at_exit)  # now the last registered: atexit runs it first
    atexit.register(_flush_at_exit)
    batching.defer(
        run_id,
        NAME,
        _log_deferred,
        run_id,
        model,
        sample,
        signature,
        before,
        cfg,
        wait_at_end=not ends_here,
    )
    try:
        _writing[model] = run_id
    except TypeError:  # an unhashable model: flush() is the way to wait for it
        pass


def _flush_at_exit() -> None:
    """Write what fits left pending when the interpreter exits, before h5py's exit handler
    (which unregisters its type converters: a ``.keras`` file saved after it fails). atexit
    runs the last registered handler first, hence its registering again at each fit."""
    try:
        batching.flush_deferred(None, timeout=60.0)
    except Exception:
        pass


def _wait_for_writes(model: Any) -> None:
    """Wait until the model's last logged fit is written (before it is trained again)."""
    try:
        run_id = _writing.pop(model, None)
    except TypeError:
        return
    if run_id is not None:
        batching.flush_deferred(run_id)


def flush(timeout: float | None = 60.0) -> None:
    """Wait until the summary and model of every logged fit are written.

    They are written on autolog's background thread after ``fit`` returns. Reading a run
    through autolog (``get_run``, ``search_runs``, ``list_artifacts``, ``load_model`` of a
    ``runs:/`` URI, ...) waits for them, and so do the next ``fit`` or ``evaluate`` of the same
    model, ``end_run`` of a run you started and the interpreter's exit. Call it before changing
    a model's weights by other means (``set_weights``, ``train_on_batch``) right after its
    fit, or before reading the store by other means; a failure is reported here as a warning.
    """
    batching.flush_deferred(None, timeout)


# -- the patched methods ----------------------------------------------------------------------------


def _patched_fit(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    session = patching.current_session()
    assert session is not None
    cfg = session.config
    arguments = boosting.bind(call.wrapped, args, kwargs)
    user_callbacks = (arguments or {}).get("callbacks")
    if arguments is None or not isinstance(user_callbacks, (list, tuple, type(None))):
        return call(*args, **kwargs)  # bad arguments (Keras raises), or a CallbackList of theirs
    _wait_for_writes(instance)  # the last fit's model is still being written from its weights
    run_id = session.run_id
    patching.guarded(
        NAME, boosting.log_params, run_id, _params_before(instance, arguments), silent=cfg.silent
    )
    checkpoints = _checkpoints(user_callbacks) if cfg.get("log_checkpoints") else []
    recorder = _Recorder(run_id, cfg, checkpoints)
    ours = _callback_class(bool(cfg.get("log_every_n_steps")))(recorder)
    callbacks = [*(user_callbacks or ()), ours]
    args, kwargs = boosting.with_argument(call.wrapped, args, kwargs, "callbacks", callbacks)
    history = call(*args, **kwargs)
    _after_fit(run_id, instance, arguments, recorder, history, cfg)
    _remember(instance, run_id)
    return history


_model_runs: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_writing: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # model -> run
_eval_counts: dict[str, int] = {}
_eval_lock = threading.Lock()


def _remember(model: Any, run_id: str) -> None:
    try:
        _model_runs[model] = run_id
    except TypeError:  # an unhashable model: its evaluate() calls are not logged
        pass


def _patched_evaluate(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """evaluate() of a model a logged fit trained: ``eval_<key>`` in that fit's run.

    Step: the evaluation's index on that run (0 for the first evaluate after the fit)."""
    try:
        run_id = _model_runs.get(instance)
    except TypeError:
        run_id = None
    if run_id is None:
        return call(*args, **kwargs)
    _wait_for_writes(instance)
    arguments = boosting.bind(call.wrapped, args, kwargs)
    user_callbacks = (arguments or {}).get("callbacks")
    if arguments is None or not isinstance(user_callbacks, (list, tuple, type(None))):
        return call(*args, **kwargs)
    logs: dict[str, Any] = {}
    ours = _test_end_class()(logs)
    args, kwargs = boosting.with_argument(
        call.wrapped, args, kwargs, "callbacks", [*(user_callbacks or ()), ours]
    )
    result = call(*args, **kwargs)
    with _eval_lock:
        step = _eval_counts.get(run_id, 0)
        _eval_counts[run_id] = step + 1
    ts = int(time.time() * 1000)
    rows = [(EVAL_PREFIX + k, v, ts, step) for k, v in _numbers(logs).items()]
    if rows:
        tracking._store().log_batch(run_id, metrics=rows)
    return result


@functools.cache
def _test_end_class() -> type:
    import keras

    class EvaluationLogs(keras.callbacks.Callback):
        """Keeps the logs Keras hands to on_test_end (the evaluation's results by name)."""

        def __init__(self, logs: dict[str, Any]):
            super().__init__()
            self.logs = logs

        def on_test_end(self, logs: Any = None) -> None:
            self.logs.update(logs or {})

    return EvaluationLogs


# -- enabling ------------------------------------------------------------------------------------


@INTEGRATION.patcher
def patch() -> None:
    import keras

    methods = {"fit": _patched_fit, "evaluate": _patched_evaluate}
    for name, patch_fn in methods.items():
        patching.safe_patch(NAME, keras.Model, name, patch_fn)
    # a subclass that overrides fit (calling super().fit or not) is patched too
    patching.patch_subclasses(NAME, keras.Model, methods)


@INTEGRATION.autolog
def autolog(
    log_every_epoch: bool = True,
    log_every_n_steps: int | None = None,
    log_checkpoints: bool = False,
) -> None:
    """Record every Keras ``Model.fit`` (and ``evaluate`` of the models it trained) from now on.

    :param log_every_epoch: log every ``History`` key and the learning rate at each epoch's end
        (step = epoch).
    :param log_every_n_steps: also log the batch-end logs every this many optimizer steps (step
        = global step), as ``batch_<key>``, or under the plain keys when
        ``log_every_epoch=False`` (MLflow's behaviour).
    :param log_checkpoints: log the files ``keras.callbacks.ModelCheckpoint`` wrote, under
        ``checkpoints/``.
    """
    if log_every_n_steps is not None and (
        isinstance(log_every_n_steps, bool)
        or not isinstance(log_every_n_steps, int)
        or log_every_n_steps < 1
    ):
        raise IntegrationError(
            f"log_every_n_steps={log_every_n_steps!r}: give a positive int, or None for none"
        )
    if not log_every_epoch and log_every_n_steps is None:
        raise IntegrationError(
            "log_every_epoch=False with log_every_n_steps=None logs no metric at all; set "
            "log_every_n_steps=<n> (or leave log_every_epoch=True)"
        )

"""Plain PyTorch training loops, recorded with no explicit call (the rules: docs/torch.md).

What is hooked, while the torch integration is enabled:

- torch's global optimizer step post-hook: a step of an optimizer starts, joins or continues a
  *training*; the losses computed since the previous step are attributed to that step;
- ``torch.autograd.backward`` (safe_patch; ``Tensor.backward`` calls it): the scalar backward
  ran on is kept, detached, on its device. Nothing is read from the device on the training
  thread's way: every ``loss_read_interval`` steps the kept scalars are stacked on the device
  and copied to pinned host memory without blocking (CUDA), or read directly (CPU); the values
  are recorded once the copy has completed (a CUDA event says so, polled without waiting);
- ``DataLoader.__iter__`` (safe_patch): a new pass over the training's DataLoader is an epoch;
- ``GradScaler.scale`` (safe_patch): ``scaler.scale(loss).backward()`` records the unscaled loss;
- torch's global module forward hooks, only while looking for the model of a new training (the
  outermost module called whose parameters the optimizer updates), then removed again;
- ``nn.Module.__init__`` (see ``_torch_model``): constructor recipes for saving the model.

A training is a set of optimizers and the models they update. It logs into a run: the user's
active run (the first training inside it; later ones become child runs), else a run started for
it. A run autolog started for a training stays active until the training ends; it *yields* to a
run the user starts (tracking._yielding_runs). A training ends when another training starts,
when its run is ended (``autolog.end_run()``, the end of a ``with autolog.start_run()`` block),
when autolog is disabled, and at interpreter exit (FINISHED; FAILED when an uncaught exception
ends the process; KILLED for KeyboardInterrupt).

Everything that runs on the training thread is wrapped: a failure of ours is reported through
patching.report_error (one warning; raised under AUTOLOG_TESTING) and the training goes on.

This module holds the hooks and the state they rebind (the current training, the installed
handles); ``_torch_state`` the keys and the shared state never rebound, ``_torch_member`` one
optimizer of a training, ``_torch_training`` a training and the search for its model. Their
names are importable from here.
"""

from __future__ import annotations

import atexit
import sys
import weakref
from typing import Any

from autolog import (
    batching,
    patching,  # noqa: F401  (tests reach it as _torch_loop.patching)
    tracking,
)
from integrations import _torch_member, _torch_training
from integrations._torch_member import (  # noqa: F401  (importable from here, as before the split)
    _differs,
    _Member,
    _param_value,
    _Transfer,
    model_params,
    optimizer_params,
)
from integrations._torch_state import (  # noqa: F401  (importable from here, as before the split)
    _ACTIVE,
    _ENDED,
    _SKIP_GROUP_KEYS,
    _TENTATIVE,
    BATCH_SIZE,
    CONFIRM_STEPS,
    DEFAULT_READ_INTERVAL,
    EPOCHS,
    LOOP_TAG,
    LOSS,
    LOSS_EPOCH,
    LR,
    MAX_UNASSIGNED,
    MODEL_CLASS,
    MODEL_PARAMS,
    MODEL_TRAINABLE,
    MODEL_WAIT_STEPS,
    NAME,
    OPTIMIZER_NAME,
    READ_DELAY_S,
    SEARCH_CALLS,
    STEPS,
    SUMMARY_FILE,
    _by_opt,
    _config,
    _current_session,
    _DataLoaders,
    _dead,
    _dl,
    _hosted,
    _ignored,
    _lock,
    _quiet,
    _report,
    _Search,
    _search,
    _session_active,
    _session_get,
    _tentative,
    _ThreadState,
    _tl,
)
from integrations._torch_training import (  # noqa: F401  (importable from here, as before the split)
    _Call,
    _end_run,
    _find_model,
    _forward_post,
    _forward_pre,
    _log_model,
    _Model,
    _start_search,
    _stop_search,
    _Training,
    _unwrap,
)

_torch: Any = None  # the torch module, set by install()
_Tensor: Any = None
_backward_original: Any = None
_enabled = False
_step_handle: Any = None
_current: _Training | None = None
_exit_registered = False


# -- the forward call that identifies a model -------------------------------------------------


def _on_construct() -> None:
    """A module is being constructed: perhaps the next training's model; watch its forward."""
    if _enabled and _search.handles is None and _current is None and not _session_active():
        _start_search()


# -- losses on the device, read in batches ----------------------------------------------------


# -- a training ---------------------------------------------------------------------------------


# -- the hooks ------------------------------------------------------------------------------


def _after_step(optimizer: Any, args: tuple, kwargs: dict) -> None:
    """torch's global optimizer step post-hook (runs after every optimizer.step())."""
    try:
        tl = _tl
        if _quiet(tl):
            return
        m = tl.member
        if (
            m is None
            or tl.opt() is not optimizer
            or m.training.state is not _ACTIVE
            or _tentative
            or _search.handles is not None
        ):
            _slow_step(optimizer, tl)
        else:
            m.step(optimizer, tl)
    except Exception as exc:
        _report(exc)


def _slow_step(optimizer: Any, tl: _ThreadState) -> None:
    global _current
    with _lock:
        m = _by_opt.get(optimizer)
        if m is None or m.training.state == _ENDED:
            user = _user_run()
            if user is not None and _ignored.get(optimizer) == user.info.run_id:
                tl.unassigned = []  # exclusive=True: this optimizer trains inside a user run
                return
            m = _new_member(optimizer)
            if m is None:
                tl.unassigned = []
                if user is not None:
                    _ignored[optimizer] = user.info.run_id
                return
        training = m.training
        tl.opt, tl.member = weakref.ref(optimizer), m
        if m.model_wait >= 0 and m.steps > 0:
            training._model_for(m)
            if m.model_wait > 0:
                m.model_wait -= 1
            elif m.model_wait == 0:  # its forward was never seen (model.forward called directly?)
                m.model_wait = -1
                _search.wanted -= 1
        m.step(optimizer, tl)
        if training is _current and _tentative:
            for other in list(_tentative):
                training.absorb(other)
            _tentative.clear()
        elif training.state == _TENTATIVE and m.steps >= CONFIRM_STEPS:
            _tentative.remove(training)
            previous, _current = _current, None
            if previous is not None:
                previous.finish("FINISHED")
            training.activate()
            _current = training
        if _search.handles is not None:
            tl.calls = []
            if not _search.wanted:
                _stop_search()


def _new_member(optimizer: Any) -> _Member | None:
    """An optimizer steps that no live training holds: join one, or start a new training."""
    global _current
    cfg = _config()
    if cfg is None:
        return None
    ids = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for training in (_current, *_tentative):
        if training is not None and training.state != _ENDED and training.param_ids & ids:
            return training.replace_member(optimizer, ids)
    if _current is not None and _current.state == _ACTIVE and not _current.members:
        return _current.add_member(optimizer, ids, find_model=True)  # it began with TensorBoard
    if cfg.exclusive and _user_run() is not None:
        return None
    training = _Training(cfg)
    if (
        _current is not None
        and _current.members
        and _current.state == _ACTIVE
        and all(m.opt_ref() is None for m in _current.members)  # it can never step again
    ):
        previous, _current = _current, None
        previous.finish("FINISHED")
    if _current is None or _current.state == _ENDED:
        _current = None
        m = training.add_member(optimizer, ids, find_model=True)
        training.activate()
        _current = training
        return m
    _tentative.append(training)
    return training.add_member(optimizer, ids, find_model=True)


def _user_run() -> Any:
    run = tracking.active_run()
    return None if run is None or run.info.run_id in tracking._yielding_runs else run


def note_loss(t: Any) -> None:
    """After backward(): keep the scalar it ran on (detached, on its device)."""
    if type(t) in (list, tuple):
        if len(t) != 1:
            return
        t = t[0]
    if not isinstance(t, _Tensor) or t.numel() != 1:
        return
    tl = _tl
    if tl.scaled is not None:
        scaled, tl.scaled = tl.scaled, None
        if scaled[0]() is t:
            t = scaled[1]
    u = tl.unassigned
    u.append(t.detach())
    if len(u) > MAX_UNASSIGNED:
        del u[: len(u) - MAX_UNASSIGNED]


def _wrap_backward(original: Any) -> Any:
    """``torch.autograd.backward`` that keeps the scalar it ran on (Tensor.backward calls it).

    A plain function, not a safe_patch: it runs on every training step and safe_patch's
    session bookkeeping would cost more than everything else we do per step. It keeps the
    contract by hand: the original runs first, exactly once, with the user's arguments, its
    exception propagates untouched, our part runs after it, quiet inside an autolog session
    (Lightning's fit), and its failures are reported, never raised into the training.
    """
    import functools

    @functools.wraps(original)
    def backward(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if _enabled:
            try:
                tl = _tl
                if not _quiet(tl):
                    t = args[0] if args else kwargs.get("tensors")
                    if tl.scaled is None and isinstance(t, _Tensor) and t.numel() == 1:
                        u = tl.unassigned  # the common case, inline: one scalar loss
                        u.append(t.detach())
                        if len(u) > MAX_UNASSIGNED:
                            del u[: len(u) - MAX_UNASSIGNED]
                    else:
                        note_loss(t)
            except Exception as exc:
                _report(exc)
        return result

    backward._autolog_torch = True  # type: ignore[attr-defined]
    return backward


def _install_backward() -> None:
    global _backward_original
    import torch.autograd as autograd

    current = autograd.__dict__["backward"]
    if not getattr(current, "_autolog_torch", False):
        _backward_original = current
        setattr(autograd, "backward", _wrap_backward(current))  # noqa: B010


def _uninstall_backward() -> None:
    global _backward_original
    autograd = sys.modules.get("torch.autograd")
    if autograd is not None and _backward_original is not None:
        if getattr(autograd.__dict__.get("backward"), "_autolog_torch", False):
            setattr(autograd, "backward", _backward_original)  # noqa: B010
        _backward_original = None


def note_scaled(scaled: Any, unscaled: Any) -> None:
    """GradScaler.scale(loss) returned ``scaled``: backward on it records ``unscaled``."""
    torch = _torch
    if (
        isinstance(scaled, torch.Tensor)
        and isinstance(unscaled, torch.Tensor)
        and scaled is not unscaled
    ):
        _tl.scaled = (weakref.ref(scaled), unscaled.detach())


def note_skipped_step() -> None:
    """GradScaler.update() ran: losses still unassigned belong to a step it skipped."""
    if _tl.unassigned:
        _tl.unassigned = []


def note_loader_pass(loader: Any) -> None:
    _dl.started(loader)


def record_external(key: str, value: Any, step: int) -> None:
    """A scalar the user wrote elsewhere (TensorBoard): into the training's run or the user's."""
    global _current
    v = float(value)
    with _lock:
        training = _current
        if training is not None and training.state == _ACTIVE:
            training.record(key, v, step)
            return
        user = _user_run()
        cfg = _config()
        if cfg is None:
            return
        if user is not None:
            if not cfg.exclusive:
                batching.batcher_for(user.info.run_id, NAME).record(key, v, step)
            return
        training = _Training(cfg)  # a run for the writer; the first optimizer to step joins it
        training.activate()
        _current = training
        training.record(key, v, step)


def record_hparams(params: dict[str, Any]) -> None:
    """Hyperparameters the user wrote elsewhere (TensorBoard add_hparams): params of the run."""
    global _current
    if not params:
        return
    with _lock:
        training = _current
        if training is not None and training.state == _ACTIVE:
            training.log_params(params)
            return
        user = _user_run()
        cfg = _config()
        if cfg is None:
            return
        if user is not None:
            if not cfg.exclusive:
                tracking._store().log_batch(user.info.run_id, params=params)
            return
        training = _Training(cfg)
        training.activate()
        _current = training
        training.log_params(params)


def _on_end_run(run_id: str, status: str) -> None:
    """tracking's end-run hook: a run that holds a training is ending."""
    global _current
    if not _enabled:
        return
    with _lock:
        _hosted.discard(run_id)
        training = _current
        if training is None or training.run_id != run_id or training.state != _ACTIVE:
            return
        _current = None
        training.finish(status, end_run=False)
        parent = None if training.managed else run_id
        _settle_tentatives(status, parent)


def _settle_tentatives(status: str, parent: str | None) -> None:
    """Trainings still tentative when the current one ends: each is logged and ended now."""
    pending = list(_tentative)
    _tentative.clear()
    for training in pending:
        try:
            training.activate(parent_run_id=parent)
            training.finish(status)
        except Exception as exc:
            _report(exc)


def end_all(status: str = "FINISHED") -> None:
    """End the current training (and tentative ones): on disable and at exit."""
    global _current
    with _lock:
        training, _current = _current, None
        if training is not None:
            training.finish(status)
        _settle_tentatives(status, None)


def _exit_status() -> str:
    exc = getattr(sys, "last_value", None)
    if exc is None or isinstance(exc, SystemExit):
        return "FINISHED"
    return "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"


def _at_exit() -> None:
    try:
        end_all(_exit_status())
    except Exception:
        pass


# -- install / uninstall ----------------------------------------------------------------------


def install() -> None:
    """Register the global hooks (the safe_patch ones are applied by integrations.torch)."""
    global _torch, _Tensor, _enabled, _step_handle, _exit_registered
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from integrations import _torch_model

    _torch = torch
    _Tensor = torch.Tensor
    # the classes split out of this module read torch from their own module global
    _torch_member._torch = _torch_training._torch = torch
    with _lock:
        _install_backward()
        if _step_handle is None:
            _step_handle = register_optimizer_step_post_hook(_after_step)
        _torch_model.install()
        if _on_construct not in _torch_model._on_construct:
            _torch_model._on_construct.append(_on_construct)
        tracking.register_end_run_hook(_on_end_run)
        if not _exit_registered:
            atexit.register(_at_exit)
            _exit_registered = True
        _enabled = True
        _start_search()


def uninstall() -> None:
    """End open trainings and remove every hook."""
    global _enabled, _step_handle
    from integrations import _torch_model

    with _lock:
        try:
            end_all("FINISHED")
        finally:
            _enabled = False
            if _step_handle is not None:
                _step_handle.remove()
                _step_handle = None
            _uninstall_backward()
            _search.wanted = 0
            _stop_search()
            if _on_construct in _torch_model._on_construct:
                _torch_model._on_construct.remove(_on_construct)
            _torch_model.uninstall()
            _tentative.clear()
            _by_opt.clear()
            _ignored.clear()
            _hosted.clear()
            _tl.unassigned = []
            _tl.opt, _tl.member = _dead, None

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
"""

from __future__ import annotations

import atexit
import bisect
import sys
import threading
import time
import weakref
from typing import Any

from autolog import batching, fit_inputs, patching, tracking
from integrations import _torch_distributed

NAME = "torch"

# metric and param keys (a suffix _opt<i> / prefix optimizer<i>_ for the i-th optimizer, i >= 1)
LOSS = "train_loss"
LOSS_EPOCH = "train_loss_epoch"
LR = "lr"
STEPS = "num_steps"
EPOCHS = "num_epochs"
OPTIMIZER_NAME = "optimizer_name"
MODEL_CLASS = "model_class"
MODEL_PARAMS = "model_total_params"
MODEL_TRAINABLE = "model_trainable_params"
BATCH_SIZE = "batch_size"
SUMMARY_FILE = "model_summary.txt"
LOOP_TAG = "autolog.torch.loop"

DEFAULT_READ_INTERVAL = 100
READ_DELAY_S = 10.0  # also read when this long has passed since the last read
CONFIRM_STEPS = 10  # steps of a new optimizer, with none of the current training's, that confirm
SEARCH_CALLS = 64  # top-level module calls watched for a model before the search gives up
MODEL_WAIT_STEPS = 3  # steps a new training waits for its model's forward to be seen
MAX_UNASSIGNED = 1024  # losses kept from backward() calls that no optimizer step followed
_SKIP_GROUP_KEYS = ("params", "param_names")

_TENTATIVE, _ACTIVE, _ENDED = "tentative", "active", "ended"

_torch: Any = None  # the torch module, set by install()
_Tensor: Any = None
_backward_original: Any = None
_lock = threading.RLock()
_enabled = False
_step_handle: Any = None
_current: _Training | None = None
_tentative: list[_Training] = []
_by_opt: weakref.WeakKeyDictionary[Any, _Member] = weakref.WeakKeyDictionary()
_hosted: set[str] = set()  # user runs that already hold a training
_ignored: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # exclusive=True
_exit_registered = False


def _dead() -> None:
    """Stands for a dead weak reference."""
    return None


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.unassigned: list[Any] = []  # detached losses since the last optimizer step
        self.opt: Any = (
            _dead  # fast path: weak ref to the optimizer that stepped last, and its member
        )
        self.member: _Member | None = None
        self.scaled: tuple[Any, Any] | None = None  # (weakref to scaled loss, unscaled loss)
        self.gen = -1  # search generation seen by this thread
        self.depth = 0
        self.calls: list[_Call] = []
        self.parent = getattr(threading.current_thread(), "_autolog_parent_session", None)


_tl = _ThreadState()


class _DataLoaders:
    """Passes over DataLoaders: a counter per loader and which one was iterated last."""

    def __init__(self) -> None:
        self.seq = 0
        self.counts: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self.last: weakref.ref[Any] | None = None

    def started(self, loader: Any) -> None:
        self.counts[loader] = self.counts.get(loader, 0) + 1
        self.last = weakref.ref(loader)
        self.seq += 1


_dl = _DataLoaders()


class _Search:
    handles: tuple[Any, Any] | None = None
    budget = 0
    gen = 0
    wanted = 0  # members still waiting for their model
    examples = False


_search = _Search()


def _config() -> Any:
    from autolog.integration import config_for

    if _torch_distributed.is_secondary():
        return None  # distributed training: only global rank 0 starts trainings and logs
    return config_for(NAME)


def _report(exc: BaseException) -> None:
    cfg = None
    try:
        cfg = _config()
    except Exception:
        pass
    patching.report_error(NAME, exc, bool(cfg and cfg.silent))


_current_session = patching.current_session
# The hooks below run on every training step: they read the session variable directly (what
# patching.current_session() does, minus two calls); a thread started inside a session keeps
# its parent session in the thread state.
_session_get = patching._session.get


def _session_active() -> bool:
    return _current_session() is not None


def _quiet(tl: _ThreadState) -> bool:
    """Inside an autolog session (Lightning's fit, another integration's fit): stay quiet."""
    s = _session_get()
    if s is None:
        s = tl.parent
    return s is not None and s.active


# -- the forward call that identifies a model -------------------------------------------------


class _Call:
    """A top-level module call seen while searching: the module, its input and output."""

    __slots__ = ("module", "in_meta", "out_meta", "example")

    def __init__(self, module: Any, args: tuple, output: Any, examples: bool):
        Tensor = _torch.Tensor
        x = args[0] if len(args) == 1 and isinstance(args[0], Tensor) else None
        self.module = module
        self.in_meta = (tuple(x.shape), x.dtype) if x is not None else None
        self.out_meta = (tuple(output.shape), output.dtype) if isinstance(output, Tensor) else None
        self.example = x[:5].detach().clone() if examples and x is not None else None


def _start_search() -> None:
    if _search.handles is None:
        from torch.nn.modules import module as mm

        _search.gen += 1
        _search.handles = (
            mm.register_module_forward_pre_hook(_forward_pre),
            mm.register_module_forward_hook(_forward_post, always_call=True),
        )
        cfg = _config()
        _search.examples = bool(cfg and cfg.log_input_examples)
    _search.budget = SEARCH_CALLS


def _stop_search() -> None:
    handles, _search.handles = _search.handles, None
    if handles is not None:
        _search.gen += 1
        for h in handles:
            h.remove()
    _tl.calls = []


def _forward_pre(module: Any, args: tuple) -> None:
    try:
        if _session_active():
            return
        tl = _tl
        if tl.gen != _search.gen:
            tl.gen, tl.depth, tl.calls = _search.gen, 0, []
        tl.depth += 1
    except Exception as exc:
        _report(exc)


def _forward_post(module: Any, args: tuple, output: Any) -> None:
    try:
        if _session_active():
            _search.budget -= 1
        else:
            tl = _tl
            if tl.gen != _search.gen or tl.depth <= 0:
                return
            tl.depth -= 1
            if tl.depth:
                return
            tl.calls.append(_Call(module, args, output, _search.examples))
            if len(tl.calls) > 16:
                del tl.calls[0]
            _search.budget -= 1
        if _search.budget <= 0 and not _search.wanted:
            _stop_search()
    except Exception as exc:
        _report(exc)


def _on_construct() -> None:
    """A module is being constructed: perhaps the next training's model; watch its forward."""
    if _enabled and _search.handles is None and _current is None and not _session_active():
        _start_search()


def _unwrap(module: Any) -> Any:
    """The user's module inside DataParallel / DistributedDataParallel / torch.compile."""
    for _ in range(4):
        inner = getattr(module, "_orig_mod", None)
        if inner is None and type(module).__name__ in ("DataParallel", "DistributedDataParallel"):
            inner = getattr(module, "module", None)
        if inner is None:
            return module
        module = inner
    return module


def _find_model(param_ids: set[int]) -> _Call | None:
    best, best_n = None, 0
    for call in _tl.calls:
        n = sum(1 for p in call.module.parameters() if id(p) in param_ids)
        if n > best_n:
            best, best_n = call, n
    return best


# -- losses on the device, read in batches ----------------------------------------------------


class _Transfer:
    """One batched read of losses: stacked on their device and copied to the host."""

    __slots__ = ("steps", "host", "event")

    def __init__(self, tensors: list[Any], steps: list[int]):
        torch = _torch
        self.steps = steps
        try:
            flat = torch.stack(tensors).reshape(-1)
        except RuntimeError:  # mixed shapes or devices: bring each to the first one's device
            dev = tensors[0].device
            flat = torch.cat([t.reshape(1).to(dev) for t in tensors])
        self.event = None
        if flat.device.type == "cpu":
            self.host = flat
        elif flat.device.type == "cuda":
            self.host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
            self.host.copy_(flat, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record(torch.cuda.current_stream(flat.device))
        else:  # other accelerators: a plain (waiting) copy
            self.host = flat.to("cpu")

    def done(self) -> bool:
        return self.event is None or bool(self.event.query())

    def values(self) -> list[float]:
        if self.event is not None:
            self.event.synchronize()
        return self.host.tolist()


class _Member:
    """One optimizer of a training: its step count, lr, and the losses it was stepped on."""

    def __init__(self, training: _Training, optimizer: Any, param_ids: set[int]):
        self.training = training
        # Weak: an optimizer the user dropped (and its state, twice the model's size for Adam)
        # is freed, and the training it belonged to cannot step again.
        self.opt_ref = weakref.ref(optimizer)
        self.param_ids = param_ids
        self.index = 0
        self.steps = 0
        self.lrs: list[Any] = []
        self.held_lrs: list[tuple[int, float, int]] = []  # (group, lr, step) while tentative
        self.pending: list[Any] = []
        self.pending_steps: list[int] = []
        self.inflight: _Transfer | None = None
        self.last_read = time.monotonic()
        self.interval = training.interval
        self.epoch_starts: list[int] = []
        self.ep_idx = 0
        self.ep_sum = 0.0
        self.ep_n = 0
        self.model_wait = -1  # steps left to find the model; -1: not waiting
        self.keys()

    def keys(self) -> None:
        suffix = "" if self.index == 0 else f"_opt{self.index}"
        self.loss_key = LOSS + suffix
        self.loss_epoch_key = LOSS_EPOCH if self.index == 0 else f"{LOSS}{suffix}_epoch"
        self.lr_key = LR + suffix
        self.steps_key = STEPS + suffix
        self.prefix = "optimizer_" if self.index == 0 else f"optimizer{self.index}_"

    # the training thread's part: a few appends and comparisons
    def step(self, optimizer: Any, tl: _ThreadState) -> None:
        training = self.training
        if _dl.seq != training.dl_seq:
            training.check_epoch()
        losses = tl.unassigned
        if losses:
            tl.unassigned = []
            if len(losses) == 1:
                self.pending.append(losses[0])
                self.pending_steps.append(self.steps)
            else:
                self.pending.extend(losses)
                self.pending_steps.extend([self.steps] * len(losses))
        lrs = self.lrs
        groups = optimizer.param_groups
        if len(groups) == 1 and len(lrs) == 1:  # the common case: one group, lr unchanged?
            lr = groups[0].get("lr")
            if lr is not lrs[0] and not (type(lr) is float and lr == lrs[0]):
                lrs[0] = lr
                self._lr_changed(0, lr)
        else:
            for i, group in enumerate(groups):
                lr = group.get("lr")
                if i < len(lrs):
                    if lr is lrs[i] or (type(lr) is float and lr == lrs[i]):
                        continue
                    lrs[i] = lr
                else:
                    lrs.append(lr)
                self._lr_changed(i, lr)
        self.steps += 1
        if (
            self.inflight is not None
            or len(self.pending) >= self.interval
            or (self.pending and time.monotonic() - self.last_read > READ_DELAY_S)
        ):
            self.poll()

    def _lr_changed(self, group: int, lr: Any) -> None:
        if not isinstance(lr, (int, float)):
            if not (isinstance(lr, _torch.Tensor) and lr.device.type == "cpu" and lr.numel() == 1):
                return  # an lr tensor on an accelerator would need a device sync to read
            lr = float(lr)
        if self.training.state == _TENTATIVE:
            self.held_lrs.append((group, float(lr), self.steps))
        else:
            self.training.record(self._lr_key(group), float(lr), self.steps)

    def _lr_key(self, group: int) -> str:
        return self.lr_key if group == 0 else f"{self.lr_key}_group{group}"

    def poll(self) -> None:
        """Record a finished transfer; start the next when enough losses are pending."""
        if self.inflight is not None:
            if not self.inflight.done():
                return
            done, self.inflight = self.inflight, None
            self._consume(done.steps, done.values())
        if self.training.state != _ACTIVE or not self.pending:
            return
        if len(self.pending) >= self.interval or time.monotonic() - self.last_read > READ_DELAY_S:
            tensors, steps = self.pending, self.pending_steps
            self.pending, self.pending_steps = [], []
            self.last_read = time.monotonic()
            self.inflight = _Transfer(tensors, steps)
            if self.inflight.done():  # CPU: the values are there already
                done, self.inflight = self.inflight, None
                self._consume(done.steps, done.values())

    def drain(self) -> None:
        """Read everything still on the device (at the end of the training: may wait)."""
        if self.inflight is not None:
            done, self.inflight = self.inflight, None
            self._consume(done.steps, done.values())
        if self.pending:
            tensors, steps = self.pending, self.pending_steps
            self.pending, self.pending_steps = [], []
            t = _Transfer(tensors, steps)
            self._consume(t.steps, t.values())
        if self.training.loader is not None and self.ep_n:
            self._emit_epoch()

    def _consume(self, steps: list[int], values: list[float]) -> None:
        if not steps:
            return
        if steps[-1] - steps[0] != len(steps) - 1:
            # Several backward() calls before one step (gradient accumulation) add up: the
            # gradient applied at the step is the gradient of their sum.
            merged_steps: list[int] = []
            merged: list[float] = []
            for step, v in zip(steps, values, strict=True):
                if merged_steps and merged_steps[-1] == step:
                    merged[-1] += v
                else:
                    merged_steps.append(step)
                    merged.append(v)
            steps, values = merged_steps, merged
        starts = self.epoch_starts
        i, n = 0, len(steps)
        while i < n:
            while self.ep_idx < len(starts) and steps[i] >= starts[self.ep_idx]:
                self._emit_epoch()
            j = (
                bisect.bisect_left(steps, starts[self.ep_idx], i)
                if self.ep_idx < len(starts)
                else n
            )
            for v in values[i:j]:
                self.ep_sum += v
            self.ep_n += j - i
            i = j
        self.training.record_series(self.loss_key, steps, values)

    def _emit_epoch(self) -> None:
        if self.ep_n and self.training.loader is not None:
            self.training.record(self.loss_epoch_key, self.ep_sum / self.ep_n, self.ep_idx)
        self.ep_idx += 1
        self.ep_sum, self.ep_n = 0.0, 0

    def params(self) -> dict[str, Any]:
        opt = self.opt_ref()
        return {} if opt is None else optimizer_params(opt, self.prefix)


def optimizer_params(opt: Any, prefix: str) -> dict[str, Any]:
    """``<prefix>name`` and the hyperparameters of the first param group (others where they differ)."""
    groups = opt.param_groups
    out: dict[str, Any] = {prefix + "name": type(opt).__name__}
    if not groups:
        return out
    first = groups[0]
    for k, v in first.items():
        if k not in _SKIP_GROUP_KEYS:
            out[prefix + k] = _param_value(v)
    for i, g in enumerate(groups[1:], start=1):
        for k, v in g.items():
            if k not in _SKIP_GROUP_KEYS and (k not in first or _differs(first[k], v)):
                out[f"{prefix}group{i}_{k}"] = _param_value(v)
    if len(groups) > 1:
        out[prefix + "param_groups"] = len(groups)
    return out


def model_params(module: Any, prefix: str) -> dict[str, Any]:
    """``<prefix>class``, ``<prefix>total_params``, ``<prefix>trainable_params``."""
    cls = type(module)
    params = list(module.parameters())
    return {
        prefix + "class": f"{cls.__module__}.{cls.__qualname__}",
        prefix + "total_params": sum(p.numel() for p in params),
        prefix + "trainable_params": sum(p.numel() for p in params if p.requires_grad),
    }


def _param_value(v: Any) -> Any:
    if _torch is not None and isinstance(v, _torch.Tensor):
        return (
            v.tolist() if v.device.type == "cpu" and v.numel() <= 16 else f"tensor{tuple(v.shape)}"
        )
    return v


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except Exception:
        return True


# -- a training ---------------------------------------------------------------------------------


class _Model:
    """A model of a training, as seen in its first forward call."""

    __slots__ = ("module", "call")

    def __init__(self, module: Any, call: _Call | None):
        self.module = module
        self.call = call


class _Training:
    def __init__(self, config: Any):
        self.config = config
        self.interval = max(1, int(config.get("loss_read_interval", DEFAULT_READ_INTERVAL) or 1))
        self.state = _TENTATIVE
        self.members: list[_Member] = []
        self.param_ids: set[int] = set()
        self.models: list[_Model] = []
        self.run_id: str | None = None
        self.managed = False
        self.batcher: batching.MetricBatcher | None = None
        self.held_params: dict[str, Any] = {}
        self.held_metrics: list[tuple[str, float, int]] = []
        self.loader: weakref.ref[Any] | None = None
        self.loader_count = 0
        self.dl_seq = _dl.seq
        self.epochs = 0
        last = _dl.last() if _dl.last is not None else None
        if last is not None:
            self.loader = _dl.last
            self.loader_count = _dl.counts.get(last, 0)
            self.epochs = 1
            batch_size = getattr(last, "batch_size", None)
            if isinstance(batch_size, int):
                self.held_params[BATCH_SIZE] = batch_size

    # recording
    def record(self, key: str, value: float, step: int) -> None:
        if self.batcher is not None:
            self.batcher.record(key, value, step)
        else:
            self.held_metrics.append((key, value, step))

    def record_series(self, key: str, steps: list[int], values: list[float]) -> None:
        if self.batcher is not None:
            self.batcher.record_series(key, steps, values)
        else:
            self.held_metrics.extend(zip([key] * len(steps), values, steps, strict=True))

    def log_params(self, params: dict[str, Any]) -> None:
        if self.state == _ACTIVE and self.run_id is not None:
            tracking._store().log_batch(self.run_id, params=params)
        else:
            self.held_params.update(params)

    def check_epoch(self) -> None:
        self.dl_seq = _dl.seq
        loader = self.loader() if self.loader is not None else None
        if loader is None:
            return
        count = _dl.counts.get(loader, 0)
        new = count - self.loader_count
        if new <= 0:
            return
        self.loader_count = count
        self.epochs += new
        for m in self.members:
            m.epoch_starts.extend([m.steps] * new)

    # membership
    def add_member(self, optimizer: Any, param_ids: set[int], find_model: bool) -> _Member:
        m = _Member(self, optimizer, param_ids)
        m.index = len(self.members)
        m.keys()
        if self.epochs > 1:  # joined mid-training: its epochs start where the training is
            m.epoch_starts = [0] * (self.epochs - 1)
        self.members.append(m)
        self.param_ids |= param_ids
        _by_opt[optimizer] = m
        self.log_params(m.params())
        if find_model:
            self._model_for(m)
        return m

    def replace_member(self, optimizer: Any, param_ids: set[int]) -> _Member:
        """A new optimizer over parameters of this training (re-created, e.g. per phase): it
        takes the place of the optimizer it overlaps most; steps, keys and lr curve go on."""
        m = max(self.members, key=lambda x: len(x.param_ids & param_ids))
        old = m.opt_ref()
        if old is not None and _by_opt.get(old) is m:
            del _by_opt[old]
        m.opt_ref = weakref.ref(optimizer)
        m.param_ids = m.param_ids | param_ids
        self.param_ids |= param_ids
        _by_opt[optimizer] = m
        return m

    def _model_for(self, m: _Member) -> None:
        call = _find_model(m.param_ids)
        if call is None:
            if m.model_wait < 0:
                m.model_wait = MODEL_WAIT_STEPS
                _search.wanted += 1
                _start_search()
            return
        if m.model_wait >= 0:
            m.model_wait = -1
            _search.wanted -= 1
        module = _unwrap(call.module)
        if any(x.module is module for x in self.models):
            return
        j = len(self.models)
        self.models.append(_Model(module, call))
        self.log_params(model_params(module, "model_" if j == 0 else f"model{j}_"))

    def absorb(self, other: _Training) -> None:
        """Take over a tentative training's optimizers (several models trained together)."""
        for m in other.members:
            m.training = self
            m.index = len(self.members)
            m.keys()
            m.interval = self.interval
            m.epoch_starts = [m.steps] * max(0, self.epochs - 1)
            self.members.append(m)
            self.param_ids |= m.param_ids
            self.log_params(m.params())
            for group, lr, step in m.held_lrs:
                self.record(m._lr_key(group), lr, step)
            m.held_lrs = []
        for model in other.models:
            if not any(x.module is model.module for x in self.models):
                j = len(self.models)
                self.models.append(model)
                prefix = "model_" if j == 0 else f"model{j}_"
                params = {
                    k.replace("model_", prefix, 1): v
                    for k, v in other.held_params.items()
                    if k.startswith("model_")
                }
                self.log_params(params)
        other.state = _ENDED
        other.members, other.models = [], []

    # lifecycle
    def activate(self, parent_run_id: str | None = None) -> None:
        """Start logging: into the user's run, a child run, or a run started for it."""
        cfg = self.config
        tags: dict[str, Any] = {patching.INTEGRATION_TAG: NAME, LOOP_TAG: "plain"}
        tags.update(cfg.extra_tags or {})
        user = tracking.active_run()
        if parent_run_id is not None:
            run = tracking.start_run(tags=tags, nested=True, parent_run_id=parent_run_id)
            self.run_id, self.managed = run.info.run_id, True
        elif user is not None and user.info.run_id not in tracking._yielding_runs:
            rid = user.info.run_id
            if rid not in _hosted:
                _hosted.add(rid)
                self.run_id, self.managed = rid, False
            else:
                run = tracking.start_run(tags=tags, nested=True)
                self.run_id, self.managed = run.info.run_id, True
        else:
            tracking.end_yielding_run()
            run = tracking.start_run(tags=tags, nested=tracking.active_run() is not None)
            self.run_id, self.managed = run.info.run_id, True
            tracking._yielding_runs.add(self.run_id)
        self.state = _ACTIVE
        run_id = self.run_id
        assert run_id is not None
        self.batcher = batching.batcher_for(run_id, NAME)
        params, self.held_params = {**_torch_distributed.run_params(), **self.held_params}, {}
        if params:
            tracking._store().log_batch(run_id, params=params)
        loader = self.loader() if self.loader is not None else None
        if loader is not None:  # the DataLoader whose passes are this training's epochs
            fit_inputs.log_fit_datasets(NAME, run_id, cfg, (loader, None))
        held, self.held_metrics = self.held_metrics, []
        for key, value, step in held:
            self.batcher.record(key, value, step)
        for m in self.members:
            for group, lr, step in m.held_lrs:
                self.record(m._lr_key(group), lr, step)
            m.held_lrs = []
            m.poll()

    def finish(self, status: str, end_run: bool = True) -> None:
        """Read what is left, log counts, summary and model, end the run if it is ours."""
        if self.state == _ENDED:
            return
        was_active = self.state == _ACTIVE
        self.state = _ENDED
        for m in self.members:
            if m.model_wait >= 0:
                m.model_wait = -1
                _search.wanted -= 1
            opt = m.opt_ref()
            if opt is not None and _by_opt.get(opt) is m:
                del _by_opt[opt]
            if _tl.member is m:
                _tl.opt, _tl.member = _dead, None
        if not was_active or self.run_id is None:
            return
        run_id = self.run_id
        try:
            for m in self.members:
                patching.guarded(NAME, m.drain, silent=self.config.silent)
                self.record(m.steps_key, float(m.steps), 0)
            if self.loader is not None and self.members:
                self.record(EPOCHS, float(self.epochs), 0)
            for j, model in enumerate(self.models):
                patching.guarded(
                    NAME, _log_model, self, run_id, j, model, status, silent=self.config.silent
                )
            # a store failure while writing the buffered points is ours: reported, not raised
            if self.batcher is not None:
                patching.guarded(NAME, self.batcher.flush, silent=self.config.silent)
            patching.guarded(NAME, batching.flush_run, run_id, silent=self.config.silent)
        finally:
            self.members, self.models = [], []
            if self.managed and end_run:
                patching.guarded(NAME, _end_run, run_id, status, silent=self.config.silent)


def _end_run(run_id: str, status: str) -> None:
    stack = tracking._stack()
    if any(r.info.run_id == run_id for r in stack):
        tracking.end_run(status, run_id=run_id)
    else:  # started in another thread: end it in the store
        tracking._yielding_runs.discard(run_id)
        batching.flush_run(run_id, status)
        tracking._store().set_terminated(run_id, status)


def _log_model(training: _Training, run_id: str, j: int, model: _Model, status: str) -> None:
    from integrations import torch as integration

    cfg = training.config
    module = model.module
    base = "model" if j == 0 else f"model{j}"
    summary_file = SUMMARY_FILE if j == 0 else f"{base}_summary.txt"
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    text = f"{module}\n\nTotal params: {total:,}\nTrainable params: {trainable:,}\n"
    client = tracking.Client()
    client.log_text(run_id, text, summary_file)
    if status != "FINISHED" or not cfg.log_models:
        return
    path = base
    n = 1
    while client.artifact_dir(run_id, path).exists():  # another fit logged a model there
        n += 1
        path = f"{base}_{n}"
    integration.log_model(
        module,
        path,
        signature=integration.signature_from(model.call) if cfg.log_model_signatures else False,
        input_example=(
            model.call.example.cpu().numpy()
            if cfg.log_input_examples and model.call is not None and model.call.example is not None
            else None
        ),
        run_id=run_id,
        registered_model_name=cfg.registered_model_name,
        pickle_model=cfg.get("pickle_model"),
    )


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

"""Plain PyTorch loops: one optimizer of a training (its steps, lr, and the losses read from
the device in batches), and the optimizer and model params a training logs.

Split out of :mod:`integrations._torch_loop` (read its docstring first), which re-exports
these names.
"""

from __future__ import annotations

import bisect
import time
import weakref
from typing import Any

from integrations._torch_state import (
    _ACTIVE,
    _SKIP_GROUP_KEYS,
    _TENTATIVE,
    LOSS,
    LOSS_EPOCH,
    LR,
    READ_DELAY_S,
    STEPS,
    _dl,
    _ThreadState,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from integrations._torch_training import _Training

# the torch module, set by _torch_loop.install() (read here as a module global)
_torch: Any = None


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

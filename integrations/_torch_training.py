"""Plain PyTorch loops: a training (its run, optimizers, model and epochs), and the search
for its model among the top-level module calls.

Split out of :mod:`integrations._torch_loop` (read its docstring first), which re-exports
these names.
"""

from __future__ import annotations

import secrets
import weakref
from typing import Any

from autolog import batching, fit_inputs, models_save, patching, tracking
from integrations import _torch_distributed
from integrations._torch_member import _Member, model_params
from integrations._torch_state import (
    _ACTIVE,
    _ENDED,
    _TENTATIVE,
    BATCH_SIZE,
    DEFAULT_READ_INTERVAL,
    EPOCHS,
    LOOP_TAG,
    MODEL_WAIT_STEPS,
    NAME,
    SEARCH_CALLS,
    SUMMARY_FILE,
    _by_opt,
    _config,
    _dead,
    _dl,
    _hosted,
    _report,
    _search,
    _session_active,
    _tl,
)

# the torch module, set by _torch_loop.install() (read here as a module global)
_torch: Any = None


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
        self.name_suffix = secrets.token_hex(2)
        self.named = False  # the run it started is named after its model (known at first forward)
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
        if self.state == _ACTIVE and self.managed and not self.named and self.run_id is not None:
            tracking._store().update_run(self.run_id, run_name=self._run_name())

    def _run_name(self) -> str:
        """Its model's class and a short suffix (``Net-3f2a``), as every integration names a
        run; ``torch-3f2a`` until the model's first forward call is seen."""
        self.named = bool(self.models)
        base = type(self.models[0].module).__name__ if self.models else NAME
        return patching.readable_run_name(base, self.name_suffix)

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
        with patching.deferring_writes():  # as in finish()
            self._start(parent_run_id)

    def _start(self, parent_run_id: str | None) -> None:
        cfg = self.config
        tags: dict[str, Any] = {patching.INTEGRATION_TAG: NAME, LOOP_TAG: "plain"}
        tags.update(cfg.extra_tags or {})
        user = tracking.active_run()
        if parent_run_id is not None:
            run = tracking.start_run(
                run_name=self._run_name(), tags=tags, nested=True, parent_run_id=parent_run_id
            )
            self.run_id, self.managed = run.info.run_id, True
        elif user is not None and user.info.run_id not in tracking._yielding_runs:
            rid = user.info.run_id
            if rid not in _hosted:
                _hosted.add(rid)
                self.run_id, self.managed = rid, False
            else:
                run = tracking.start_run(run_name=self._run_name(), tags=tags, nested=True)
                self.run_id, self.managed = run.info.run_id, True
        else:
            tracking.end_yielding_run()
            nested = tracking.active_run() is not None
            run = tracking.start_run(run_name=self._run_name(), tags=tags, nested=nested)
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
        # through a tracking server, the model's upload and records and the run's end go to
        # the client's background lane, as a patched fit's do: the training thread goes on
        with patching.deferring_writes():
            self._log_end(run_id, status, end_run)

    def _log_end(self, run_id: str, status: str, end_run: bool) -> None:
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


def _taken(client: Any, run_id: str, path: str) -> bool:
    """Whether the run has artifacts at path (through a server, asked only when the store
    cannot tell: autolog.models_save.fresh_artifact_path)."""
    if models_save.fresh_artifact_path(tracking._store(), run_id, path) is not None:
        return False
    return bool(client.artifact_dir(run_id, path).exists())


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
    while _taken(client, run_id, path):  # another fit logged a model there
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

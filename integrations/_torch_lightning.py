"""Lightning (``lightning.pytorch`` or ``pytorch_lightning``): ``Trainer.fit`` logs one run.

``Trainer.fit`` is patched with safe_patch, so the fit is an autolog session: the plain-loop
hooks (optimizer steps, backward, DataLoader passes, TensorBoard writes of Lightning's own
logger) see the session and stay quiet. A callback added to the trainer for the duration of
the fit logs:

- params: ``epochs`` (max_epochs), ``optimizer_name`` and ``optimizer_<hyperparameter>`` of
  each optimizer (``optimizer<i>_...`` for the i-th, i >= 1), ``model_class``,
  ``model_total_params``, ``model_trainable_params``, the module's ``hparams``
  (``save_hyperparameters()``), ``early_stopping_monitor/mode/patience/min_delta``;
- metrics: every scalar of ``trainer.callback_metrics`` at the end of each training epoch
  (step = epoch, sanity checking skipped); after the fit ``num_steps`` (global_step),
  ``num_epochs``, and when early stopping stopped the fit ``stopped_epoch``,
  ``restored_epoch``, ``best_score``, ``wait_count`` (MLflow's names); the best checkpoint's
  ``best_model_score`` with its path as tag ``best_model_path`` and the file under
  ``checkpoints/`` (``log_checkpoints=True``);
- artifacts: ``model_summary.txt``, the model (the pytorch flavor) with a signature from the
  first training batch's first tensor and the module's output on it.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from autolog import batching, fit_inputs, patching, tracking
from integrations import _torch_distributed

NAME = "torch"
DISTRIBUTION_OF = {"pytorch_lightning": "pytorch-lightning", "lightning": "lightning"}
_callback_classes: dict[str, type] = {}


def patch(module: Any) -> None:
    """Patch ``Trainer.fit`` of a fully imported ``<package>.trainer.trainer`` module."""
    trainer_cls = getattr(module, "Trainer", None)
    if trainer_cls is None:
        return
    top = module.__name__.split(".", 1)[0]
    cfg = _config()
    if cfg is None:
        return
    if not cfg.force and not _version_ok(top):
        return
    patching.safe_patch(NAME, trainer_cls, "fit", _patched_fit)


def _config() -> Any:
    from autolog.integration import config_for

    return config_for(NAME)


def _version_ok(top: str) -> bool:
    from autolog.integration import version_ok
    from integrations.torch import LIGHTNING_VERSIONS

    dist = DISTRIBUTION_OF.get(top, top)
    return version_ok(NAME, top, (dist,), LIGHTNING_VERSIONS)


def _package(trainer: Any) -> Any:
    """The Lightning package of this trainer (``pytorch_lightning`` or ``lightning.pytorch``)."""
    name = type(trainer).__module__.split(".trainer", 1)[0]
    return sys.modules[name]


def _callback_class(pl: Any) -> type:
    cls = _callback_classes.get(pl.__name__)
    if cls is None:
        cls = type("AutologCallback", (_CallbackMixin, pl.Callback), {"package": pl.__name__})
        _callback_classes[pl.__name__] = cls
    return cls


def _guard(fn: Any) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> None:
        if getattr(args[0], "global_rank", 0) != 0:
            return  # a ddp strategy: only global rank 0 logs (args[0] is the trainer)
        try:
            fn(self, *args, **kwargs)
        except Exception as exc:
            patching.report_error(NAME, exc, bool(self.config.silent))

    method.__name__ = fn.__name__
    return method


class _CallbackMixin:
    """The autolog callback's hooks (mixed with the package's ``Callback`` base class)."""

    package = ""

    def __init__(self, run_id: str, config: Any):
        self.run_id = run_id
        self.config = config
        self.uri = tracking.get_tracking_uri()
        self.batcher = batching.batcher_for(run_id)
        self.first_input: Any = None
        self.spawned: Any = None  # in a process ddp_spawn started: the session token

    def __reduce__(self) -> Any:
        # ddp_spawn pickles the trainer's callbacks into every process it starts; the copy is
        # rebuilt there with its own batcher on the same store (a lock cannot be pickled)
        return (_rebuild_callback, (self.package, self.run_id, self.config, self.uri))

    @_guard
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self.spawned is True:  # this process has no patched fit: the plain loop must see one
            self.spawned = patching._session.set(patching.Session(NAME, self.config, trainer))

    @_guard
    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.spawned is not None:  # no end_run nor exit hook runs here: write the points now
            if self.spawned is not True:
                patching._session.reset(self.spawned)
            self.batcher.flush()

    @_guard
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        from integrations import _torch_loop

        store = tracking._store(self.uri)
        params: dict[str, Any] = {"epochs": trainer.max_epochs, **_torch_distributed.run_params()}
        for i, opt in enumerate(trainer.optimizers):
            prefix = "optimizer_" if i == 0 else f"optimizer{i}_"
            params.update(_torch_loop.optimizer_params(getattr(opt, "_optimizer", opt), prefix))
        params.update(_torch_loop.model_params(pl_module, "model_"))
        es = trainer.early_stopping_callback
        if es is not None:
            for attr in ("monitor", "mode", "patience", "min_delta"):
                if hasattr(es, attr):
                    params[f"early_stopping_{attr}"] = getattr(es, attr)
        store.log_batch(self.run_id, params=params)
        fit_inputs.log_fit_datasets(
            NAME, self.run_id, self.config, (trainer.train_dataloader, None), _val_sets(trainer)
        )
        hparams = dict(getattr(pl_module, "hparams", None) or {})
        if hparams:
            patching.guarded(
                NAME, store.log_batch, self.run_id, params=hparams, silent=self.config.silent
            )

    @_guard
    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.first_input is None:
            x = _first_tensor(batch)
            self.first_input = False if x is None else x[:5].detach().clone()

    @_guard
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        metrics = {}
        for key, value in trainer.callback_metrics.items():
            v = _scalar(value)
            if v is not None:
                metrics[str(key)] = v
        if metrics:
            self.batcher.record_many(metrics, step=int(trainer.current_epoch))


def _rebuild_callback(package: str, run_id: str, config: Any, uri: str) -> Any:
    """The autolog callback in a process Lightning's ddp_spawn started."""
    import importlib

    cls: Any = _callback_class(importlib.import_module(package))
    callback = cls.__new__(cls)
    callback.run_id, callback.config, callback.uri = run_id, config, uri
    callback.batcher = batching.MetricBatcher(run_id, store=tracking._store(uri), owner=NAME)
    callback.first_input, callback.spawned = None, True
    return callback


def _val_sets(trainer: Any) -> list[tuple[str, Any, Any]]:
    """The validation DataLoaders, named val / val_<i> when there are several."""
    loaders = trainer.val_dataloaders
    if loaders is None:
        return []
    if not isinstance(loaders, (list, tuple)):
        return [("val", loaders, None)]
    return [(f"val_{i}" if len(loaders) > 1 else "val", d, None) for i, d in enumerate(loaders)]


def _first_tensor(batch: Any) -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    return None


def _scalar(value: Any) -> float | None:
    import torch

    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu()) if value.numel() == 1 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _patched_fit(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    if _torch_distributed.is_secondary():
        return call(*args, **kwargs)  # a rank > 0 that runs fit (ddp, torchrun) logs nothing
    session = patching.current_session()
    assert session is not None
    config = session.config
    trainer = instance
    tracking.end_yielding_run()  # a plain-loop run still open ends before this fit's run
    module = args[0] if args else kwargs.get("model")
    if module is not None:  # named after what is trained (LitRegressor-3f2a), not the Trainer
        session.state["run_name"] = type(module).__name__
    run_id = session.run_id
    callback = _callback_class(_package(trainer))(run_id, config)
    trainer.callbacks.append(callback)
    try:
        result = call(*args, **kwargs)
    finally:
        trainer.callbacks = [c for c in trainer.callbacks if c is not callback]
    model = trainer.lightning_module or (args[0] if args else kwargs.get("model"))
    _after_fit(trainer, model, callback, run_id, config)
    return result


def _after_fit(trainer: Any, model: Any, callback: Any, run_id: str, config: Any) -> None:
    from integrations import torch as integration

    client = tracking.Client()
    batcher = callback.batcher
    batcher.record_many(
        {"num_steps": float(trainer.global_step), "num_epochs": float(trainer.current_epoch)}
    )
    es = trainer.early_stopping_callback
    if es is not None and int(getattr(es, "stopped_epoch", None) or 0) > 0:
        metrics = {
            "stopped_epoch": float(es.stopped_epoch),
            "restored_epoch": float(es.stopped_epoch - max(1, es.patience)),
            "wait_count": float(es.wait_count),
        }
        best = _scalar(getattr(es, "best_score", None))
        if best is not None:
            metrics["best_score"] = best
        batcher.record_many(metrics)
    ckpt = trainer.checkpoint_callback
    best_path = getattr(ckpt, "best_model_path", None) if ckpt is not None else None
    if best_path:
        client.set_tag(run_id, "best_model_path", best_path)
        score = _scalar(getattr(ckpt, "best_model_score", None))
        if score is not None:
            batcher.record("best_model_score", score)
        if config.get("log_checkpoints", True):
            client.log_artifact(run_id, best_path, "checkpoints")
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    client.log_text(
        run_id,
        f"{model}\n\nTotal params: {total:,}\nTrainable params: {trainable:,}\n",
        "model_summary.txt",
    )
    if not config.log_models:
        return
    signature: Any = False
    example = callback.first_input if callback.first_input is not False else None
    if example is not None and config.log_model_signatures:
        signature = _signature(model, example)
    integration.log_model(
        model,
        "model",
        signature=signature,
        input_example=example.cpu().numpy()
        if config.log_input_examples and example is not None
        else None,
        run_id=run_id,
        registered_model_name=config.registered_model_name,
        pickle_model=config.get("pickle_model"),
    )


def _signature(model: Any, x: Any) -> Any:
    """The signature of ``model(x)``; False when the module does not take that tensor alone."""
    import torch

    from integrations import torch as integration

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            y = model(x[:2])
    except Exception:
        return False
    finally:
        model.train(was_training)
    call = types.SimpleNamespace(
        in_meta=(tuple(x.shape), x.dtype),
        out_meta=(tuple(y.shape), y.dtype) if isinstance(y, torch.Tensor) else None,
    )
    return integration.signature_from(call)

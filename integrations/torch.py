"""PyTorch: plain training loops, Lightning's ``Trainer.fit`` and TensorBoard scalars, recorded.

Usage::

    import autolog
    autolog.autolog()            # or: from integrations import torch as at; at.autolog()

    model = Net(hidden=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(5):
        for x, y in loader:
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    # -> one run: optimizer_* params, model_* params, train_loss per step, train_loss_epoch,
    #    lr, num_steps, num_epochs, model_summary.txt and the model (state_dict + recipe)

The rules (when a plain-loop run starts and ends, how the model is saved and rebuilt, how the
loss is read without a device synchronisation) are in docs/torch.md; the plain-loop machinery
is in ``_torch_loop``, the constructor recipe in ``_torch_model``, Lightning in
``_torch_lightning``.
"""

from __future__ import annotations

import contextvars
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from autolog import integration, models, patching
from autolog.errors import ModelError, ModelLoadError

LIBRARY = "torch"
DISTRIBUTIONS = ("torch",)
SUPPORTED_VERSIONS = ">=2.1,<3"
LIGHTNING_VERSIONS = ">=2.0,<3"

# Lightning's trainer modules: patched once fully imported (their packages import torch first).
LIGHTNING_TRAINERS = ("pytorch_lightning.trainer.trainer", "lightning.pytorch.trainer.trainer")
TENSORBOARD_WRITER = "torch.utils.tensorboard.writer"

# keys (the plain-loop ones live in _torch_loop: train_loss, train_loss_epoch, lr, num_steps, ...)
MODEL_DIR = "data"
STATE_DICT_FILE = "state_dict.pt"
SPEC_FILE = "model_spec.json"
INIT_TENSORS_FILE = "init_tensors.pt"
PICKLED_FILE = "model.pth"

_save_options: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "autolog_torch_save_options", default=None
)
_hooks_registered = False
_hooks_lock = threading.Lock()
_enabled = False


# -- patched methods ----------------------------------------------------------------------------


def _patched_scale(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """GradScaler.scale: remember the unscaled loss behind the scaled one."""
    result = call(*args, **kwargs)
    from integrations import _torch_loop

    _torch_loop.note_scaled(result, args[0] if args else kwargs.get("outputs"))
    return result


def _patched_scaler_update(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """GradScaler.update: losses of a step the scaler skipped (inf/NaN gradients) are dropped."""
    result = call(*args, **kwargs)
    from integrations import _torch_loop

    _torch_loop.note_skipped_step()
    return result


def _patched_loader_iter(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """DataLoader.__iter__: a new pass over a loader (an epoch of the training that uses it)."""
    result = call(*args, **kwargs)
    from integrations import _torch_loop

    _torch_loop.note_loader_pass(instance)
    return result


def _patched_add_scalar(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """SummaryWriter.add_scalar(tag, scalar_value, global_step=None, ...): also a metric."""
    result = call(*args, **kwargs)
    names = ("tag", "scalar_value", "global_step")
    bound = dict(zip(names, args, strict=False))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    from integrations import _torch_loop

    _torch_loop.record_external(
        str(bound["tag"]), bound["scalar_value"], int(bound.get("global_step") or 0)
    )
    return result


def _patched_add_scalars(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """SummaryWriter.add_scalars(main_tag, tag_scalar_dict, global_step=None): one per tag."""
    result = call(*args, **kwargs)
    names = ("main_tag", "tag_scalar_dict", "global_step")
    bound = dict(zip(names, args, strict=False))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    from integrations import _torch_loop

    step = int(bound.get("global_step") or 0)
    for tag, value in bound["tag_scalar_dict"].items():
        _torch_loop.record_external(f"{bound['main_tag']}/{tag}", value, step)
    return result


def _patched_add_hparams(call: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """SummaryWriter.add_hparams(hparam_dict, metric_dict): params and metrics of the run."""
    result = call(*args, **kwargs)
    names = ("hparam_dict", "metric_dict")
    bound = dict(zip(names, args, strict=False))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    from integrations import _torch_loop

    _torch_loop.record_hparams(dict(bound.get("hparam_dict") or {}))
    for key, value in (bound.get("metric_dict") or {}).items():
        _torch_loop.record_external(str(key), value, 0)
    return result


# -- the flavor -----------------------------------------------------------------------------------


class TorchFlavor(models.Flavor):
    """An ``nn.Module`` as its ``state_dict`` (loaded with ``weights_only=True``) plus a recipe.

    Directory ``data/``: ``state_dict.pt``; ``model_spec.json``, the constructor recipe (class
    import path and arguments, checked by rebuilding the model on the meta device); when the
    recipe cannot rebuild the model elsewhere (no valid recipe, or a class defined in the
    training script's ``__main__``), also ``model.pth``, the whole module pickled with
    cloudpickle (MLflow's format: ``mlflow.pytorch.load_model`` reads it). Loading prefers the
    recipe; the pickle is only unpickled when the recipe's classes cannot be imported.
    """

    name = "pytorch"
    requirements = ("torch",)
    mlflow_loader_module = None  # MLflow's loader expects a pickle; ours loads the state_dict

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import torch

        from integrations import _torch_model

        model = _unwrap(model)
        if not isinstance(model, torch.nn.Module):
            raise ModelError(f"The pytorch flavor saves torch.nn.Module objects, not {type(model)}")
        options = _save_options.get() or {}
        data = path / MODEL_DIR
        data.mkdir()
        torch.save(model.state_dict(), data / STATE_DICT_FILE)
        cls = type(model)
        conf: dict[str, Any] = {
            "pytorch_version": str(torch.__version__),
            "model_data": MODEL_DIR,
            "model_class": f"{cls.__module__}.{cls.__qualname__}",
            "state_dict": f"{MODEL_DIR}/{STATE_DICT_FILE}",
        }
        spec = None
        try:
            spec, tensors = _torch_model.make_spec(model)
            _torch_model.verify(model, spec, tensors)
        except _torch_model.RecipeError as e:
            spec = None
            conf["recipe_problem"] = str(e)
        if spec is not None:
            (data / SPEC_FILE).write_text(_torch_model.spec_to_json(spec), encoding="utf-8")
            conf["model_spec"] = f"{MODEL_DIR}/{SPEC_FILE}"
            if tensors:
                torch.save(tensors, data / INIT_TENSORS_FILE)
                conf["init_tensors"] = f"{MODEL_DIR}/{INIT_TENSORS_FILE}"
        pickle_model = options.get("pickle_model")
        if pickle_model is None:
            pickle_model = spec is None or _torch_model.uses_main(spec)
        formats = ["state_dict"] + (["recipe"] if spec is not None else [])
        if pickle_model:
            import cloudpickle

            try:
                torch.save(model, data / PICKLED_FILE, pickle_module=cloudpickle)
                (data / "pickle_module_info.txt").write_text("mlflow.pytorch.pickle_module")
                conf["pickled_model"] = f"{MODEL_DIR}/{PICKLED_FILE}"
                formats.append("pickle")
            except Exception as e:  # an attribute that does not pickle: the state_dict remains
                (data / PICKLED_FILE).unlink(missing_ok=True)
                conf["pickle_problem"] = f"{type(e).__name__}: {e}"
        conf["model_format"] = "+".join(formats)
        return conf

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        import torch

        if "state_dict" not in conf:  # a directory written by MLflow: the pickled module
            rel = conf.get("model_data", MODEL_DIR)
            file = f"{rel}/{PICKLED_FILE}" if models.contained(path, rel).is_dir() else rel
            model = _unpickle_module(path, file)
            return model.eval() if isinstance(model, torch.nn.Module) else model
        problems = []
        model = None
        if conf.get("model_spec"):
            try:
                model = _build_from_spec(path, conf)
            except Exception as e:
                problems.append(f"rebuilding from {conf['model_spec']} failed: {e}")
        elif conf.get("recipe_problem"):
            problems.append(f"no recipe was saved ({conf['recipe_problem']})")
        if model is None and conf.get("pickled_model"):
            return _unpickle_module(path, conf["pickled_model"]).eval()
        if model is None:
            raise ModelLoadError(
                f"{path}: cannot rebuild {conf.get('model_class')}: {'; '.join(problems)}. Load "
                "the weights into a model you construct: integrations.torch.load_model(uri, "
                "model=YourModel(...))"
            )
        state = torch.load(path / conf["state_dict"], map_location="cpu", weights_only=True)
        model.load_state_dict(state, assign=True)
        return model.eval()

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        return predict(native, data)

    def requirements_for(self, model: Any) -> list[str]:
        reqs = list(self.requirements)
        dist = models.distribution_of_module(type(_unwrap(model)).__module__)
        if dist and dist not in reqs:
            reqs.append(dist)
        return reqs


FLAVOR = TorchFlavor()


def _unpickle_module(path: Path, file: str | Path) -> Any:
    """A whole pickled module, through autolog's pickle gate (the bytes checked are loaded)."""
    import io

    import torch

    data = models.pickle_bytes(path, file, "a pickled torch module")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def _unwrap(model: Any) -> Any:
    from integrations import _torch_loop

    return _torch_loop._unwrap(model)


def _build_from_spec(path: Path, conf: dict[str, Any]) -> Any:
    """Construct the recipe's model, on the meta device when that leaves nothing unset."""
    import torch

    from integrations import _torch_model

    spec = json.loads((path / conf["model_spec"]).read_text(encoding="utf-8"))
    tensors = []
    if conf.get("init_tensors"):
        tensors = torch.load(path / conf["init_tensors"], map_location="cpu", weights_only=True)
    state = torch.random.get_rng_state()
    try:
        return _torch_model.build(spec, tensors)
    finally:
        torch.random.set_rng_state(state)  # loading a model must not change the user's draws


def predict(model: Any, data: Any) -> Any:
    """Call the module on numpy arrays, tensors, DataFrames, lists or dicts of them.

    The input goes to the model's device (floating inputs to its dtype); the module runs in
    eval mode without gradients. Numpy in, numpy out; a tensor in, a (CPU) tensor out.
    """
    import torch

    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else None

    def tensor(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            pd = sys.modules.get("pandas")
            if pd is not None and isinstance(x, (pd.DataFrame, pd.Series)):
                x = x.to_numpy()
            import numpy as np

            x = torch.from_numpy(np.ascontiguousarray(np.asarray(x)))
        if dtype is not None and x.is_floating_point() and x.dtype != dtype:
            x = x.to(dtype)
        return x.to(device)

    def is_array(x: Any) -> bool:
        return isinstance(x, torch.Tensor) or hasattr(x, "__array__") and not isinstance(x, list)

    as_tensor = isinstance(data, torch.Tensor)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(data, dict):
                out = model(**{k: tensor(v) for k, v in data.items()})
            elif isinstance(data, (list, tuple)) and data and all(is_array(x) for x in data):
                out = model(*[tensor(x) for x in data])
            else:
                out = model(tensor(data))
    finally:
        model.train(was_training)
    return _to_output(out, as_tensor)


def _to_output(out: Any, as_tensor: bool) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        out = out.detach().cpu()
        return out if as_tensor else out.numpy()
    if isinstance(out, dict):
        return {k: _to_output(v, as_tensor) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return [_to_output(v, as_tensor) for v in out]
    return out


def signature_from(call: Any) -> Any:
    """The signature of a forward call seen during training (shapes and dtypes), or False."""
    if call is None or call.in_meta is None:
        return False
    import torch

    from autolog.signature import infer_signature

    shape, dtype = call.in_meta
    x = torch.empty(shape, dtype=dtype, device="meta")
    y = None
    if call.out_meta is not None:
        y = torch.empty(call.out_meta[0], dtype=call.out_meta[1], device="meta")
    try:
        return infer_signature(x, y)
    except Exception:  # a dtype without a numpy twin (bfloat16): no signature
        return False


def save_model(
    pytorch_model: Any,
    path: str | os.PathLike[str],
    signature: Any = None,
    input_example: Any = None,
    pickle_model: bool | None = None,
    **kwargs: Any,
) -> models.Model:
    """Save an ``nn.Module`` as an MLmodel directory (state_dict + recipe; see TorchFlavor).

    :param pickle_model: also pickle the whole module (None: only when the recipe cannot
        rebuild it in another process).
    """
    token = _save_options.set({"pickle_model": pickle_model})
    try:
        return models.save_model(FLAVOR, pytorch_model, path, signature, input_example, **kwargs)
    finally:
        _save_options.reset(token)


def log_model(
    pytorch_model: Any,
    artifact_path: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    pickle_model: bool | None = None,
    **kwargs: Any,
) -> models.ModelInfo:
    """Log an ``nn.Module`` into a run (the active one unless ``run_id=``); see save_model."""
    token = _save_options.set({"pickle_model": pickle_model})
    try:
        return models.log_model(
            FLAVOR, pytorch_model, artifact_path, signature, input_example, **kwargs
        )
    finally:
        _save_options.reset(token)


def load_model(
    model_uri: str | os.PathLike[str],
    model: Any = None,
    map_location: Any = None,
    *,
    allow_pickle: bool | None = None,
) -> Any:
    """Load a logged ``nn.Module`` (in eval mode).

    :param model_uri: ``runs:/<run_id>/model``, ``models:/<name>/<version>`` or a path.
    :param model: a module you constructed: only the weights are loaded into it
        (``weights_only=True``), nothing from the model directory is imported or unpickled.
    :param map_location: device to move the model to (default: CPU).
    :param allow_pickle: as for :func:`autolog.load_model`: only needed for a model that has
        no usable recipe and is loaded by path.
    """
    import torch

    if model is not None:
        path = models.resolve_model_uri(model_uri)
        conf = models.Model.load(path).flavors.get(FLAVOR.name)
        if conf is None or "state_dict" not in conf:
            raise ModelLoadError(f"{model_uri}: no state_dict of the pytorch flavor in this model")
        file = models.contained(path, conf["state_dict"])
        state = torch.load(file, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        native = model.eval()
    else:
        native = models.load_flavor_model(model_uri, FLAVOR, allow_pickle=allow_pickle)
    return native.to(map_location) if map_location is not None else native


# -- ending a plain-loop training explicitly ----------------------------------------------------


def end_training(status: str = "FINISHED") -> None:
    """End the current plain-loop training now: read its last losses, log its model, end its run.

    It is what happens anyway when the next training starts, when its run is ended
    (``autolog.end_run()``), or at exit; the next optimizer step starts a new training.
    """
    if "integrations._torch_loop" in sys.modules:
        from integrations import _torch_loop

        _torch_loop.end_all(status)


def flush() -> None:
    """Complete the logging of the current plain-loop training (``end_training()``).

    Called by the benchmark harness after each fit, so that the end-of-training work (the last
    losses, the model) is timed with the fit it belongs to.
    """
    end_training()


# -- patch / unpatch ----------------------------------------------------------------------------


def _patch_lightning(module: Any) -> None:
    if not _enabled:
        return
    try:
        from integrations import _torch_lightning

        _torch_lightning.patch(module)
    except Exception as exc:
        patching.report_error("torch", exc)


def _patch_tensorboard(module: Any) -> None:
    if not _enabled:
        return
    writer = getattr(module, "SummaryWriter", None)
    if writer is None:
        return
    patching.safe_patch("torch", writer, "add_scalar", _patched_add_scalar)
    patching.safe_patch("torch", writer, "add_scalars", _patched_add_scalars)
    patching.safe_patch("torch", writer, "add_hparams", _patched_add_hparams)


def patch() -> None:
    """Install the plain-loop hooks; Lightning and TensorBoard when (or once) imported."""
    global _hooks_registered, _enabled
    import torch
    import torch.utils.data
    import wrapt

    from integrations import _torch_loop

    _enabled = True
    try:
        patching.safe_patch("torch", torch.utils.data.DataLoader, "__iter__", _patched_loader_iter)
        patching.safe_patch("torch", torch.amp.GradScaler, "scale", _patched_scale)
        patching.safe_patch("torch", torch.amp.GradScaler, "update", _patched_scaler_update)
        _torch_loop.install()
        with _hooks_lock:
            for name in LIGHTNING_TRAINERS:
                if name in sys.modules:
                    _patch_lightning(sys.modules[name])
            if TENSORBOARD_WRITER in sys.modules:
                _patch_tensorboard(sys.modules[TENSORBOARD_WRITER])
            if not _hooks_registered:
                _hooks_registered = True
                for name in LIGHTNING_TRAINERS:
                    wrapt.register_post_import_hook(_patch_lightning, name)
                wrapt.register_post_import_hook(_patch_tensorboard, TENSORBOARD_WRITER)
    except BaseException:
        unpatch()
        raise


def unpatch() -> None:
    """End open plain-loop trainings and remove torch's global hooks (safe_patch reverts itself)."""
    global _enabled
    _enabled = False
    if "integrations._torch_loop" in sys.modules:
        from integrations import _torch_loop

        _torch_loop.uninstall()


def autolog(
    log_models: bool = True,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
    extra_tags: dict[str, Any] | None = None,
    registered_model_name: str | None = None,
    loss_read_interval: int = 100,
    log_checkpoints: bool = True,
    pickle_model: bool | None = None,
    force: bool = False,
) -> None:
    """Record PyTorch training: plain loops, Lightning ``Trainer.fit``, TensorBoard scalars.

    :param log_models: log the trained model at the end of each training.
    :param log_input_examples: save the first rows of the first batch with the model.
    :param log_model_signatures: record the input/output shapes and dtypes of the first batch.
    :param disable: stop recording (ends open plain-loop trainings) and remove every hook.
    :param exclusive: do not log into runs the user started.
    :param silent: no warnings from autolog's own failures.
    :param extra_tags: tags added to every run autolog starts.
    :param registered_model_name: register each logged model under this name.
    :param loss_read_interval: read the losses kept on the device every this many steps (one
        transfer each time, never a wait on the training thread).
    :param log_checkpoints: Lightning: log the best checkpoint file as an artifact.
    :param pickle_model: also pickle the whole module with the model: None (default) only when
        its recipe cannot rebuild it in another process, True always, False never.
    :param force: patch even a torch version outside SUPPORTED_VERSIONS.
    """
    integration.configure(__name__, locals())

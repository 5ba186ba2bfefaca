"""The integration contract, the registry of integrations, and the universal autolog().

An integration is a module ``integrations.<name>`` that declares, at its top:

- ``LIBRARY``: the import name it patches (``"sklearn"``);
- ``DISTRIBUTIONS``: distribution names whose installed version is checked (first found wins);
- ``SUPPORTED_VERSIONS``: a PEP 440 specifier (``">=1.3,<1.10"``);
- ``patch() -> None``: applies its ``safe_patch`` calls (the library is already imported);
- ``autolog(**flags)``: calls ``configure(__name__, locals())``.

The module must not import its library (or numpy/pandas) at import time. autolog/ imports it
by name, with importlib, only once the library itself is imported (a wrapt post-import hook),
so ``import autolog`` and ``autolog.autolog()`` import no ML library.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from autolog import patching
from autolog.errors import AutologWarning, IntegrationError

# Integration name -> library import name. The modules are found by name: integrations.<name>.
INTEGRATIONS: dict[str, str] = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "statsmodels": "statsmodels",
    "torch": "torch",
}
COMMON_FLAGS = (
    "log_models",
    "log_input_examples",
    "log_model_signatures",
    "disable",
    "exclusive",
    "silent",
    "extra_tags",
)


@dataclass
class Config:
    """The effective settings of one integration."""

    log_models: bool = True
    log_input_examples: bool = False
    log_model_signatures: bool = True
    disable: bool = False
    exclusive: bool = False
    silent: bool = False
    extra_tags: dict[str, Any] | None = None
    registered_model_name: str | None = None
    force: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """An integration-specific flag (or a common one) by name."""
        if name in self.extra:
            return self.extra[name]
        return getattr(self, name, default)


_lock = threading.RLock()
_universal: dict[str, Any] | None = None  # flags of the last universal autolog()
_excluded: set[str] = set()
_explicit: dict[str, dict[str, Any]] = {}  # flags of per-library autolog() calls
_effective: dict[str, Config] = {}
_hooked: set[str] = set()
_patched: set[str] = set()
_version_warned: set[str] = set()


def _module_name(name: str) -> str:
    return f"integrations.{name}"


def _name_of(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def _defaults(name: str) -> dict[str, Any]:
    module = importlib.import_module(_module_name(name))
    params = inspect.signature(module.autolog).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def _build_config(name: str, flags: dict[str, Any]) -> Config:
    merged = {**_defaults(name), **flags}
    known = {f for f in Config.__dataclass_fields__ if f != "extra"}
    cfg = Config(**{k: v for k, v in merged.items() if k in known})
    cfg.extra = {k: v for k, v in merged.items() if k not in known}
    if cfg.extra_tags is not None:
        cfg.extra_tags = dict(cfg.extra_tags)
    return cfg


def _flags_for(name: str) -> dict[str, Any] | None:
    """Per-library flags win over the universal ones; None when not enabled at all."""
    if name in _explicit:
        return _explicit[name]
    if _universal is not None and name not in _excluded:
        return _universal
    return None


def config_for(name: str) -> Config | None:
    """The effective config of an integration, or None when it should not log."""
    cfg = _effective.get(name)
    if cfg is None:
        flags = _flags_for(name)
        if flags is None:
            return None
        with _lock:
            cfg = _effective[name] = _build_config(name, flags)
    return None if cfg.disable else cfg


def configure(module: str, flags: dict[str, Any]) -> None:
    """Apply a per-library autolog() call: ``configure(__name__, locals())`` in an integration."""
    name = _name_of(module)
    flags = {k: v for k, v in flags.items() if not k.startswith("_")}
    with _lock:
        _explicit[name] = flags
        _effective.pop(name, None)
        _apply(name)


def autolog(
    log_models: bool = True,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
    extra_tags: dict[str, Any] | None = None,
    exclude: list[str] | None = None,
    log_system_metrics: bool | None = None,
) -> None:
    """Record every supported library's training from now on (or stop, with disable=True).

    Libraries already imported are patched now; the others when they are first imported.
    A per-library ``integrations.<lib>.autolog(...)`` keeps its own settings, before or after.

    :param log_models: log the trained model (MLmodel directory) on each run.
    :param log_input_examples: save a few rows of the training input with the model.
    :param log_model_signatures: infer and save the model's input/output signature.
    :param disable: revert every patch and stop logging (per-library settings included).
    :param exclusive: do not log into a run the user started; only into autolog's own runs.
    :param silent: no warnings from autolog's own failures.
    :param extra_tags: tags added to every run autolog starts.
    :param exclude: integration names to leave alone, e.g. ``["torch"]``.
    :param log_system_metrics: sample CPU, memory, disk, network and GPU use into each top-level
        run started from now on (None: the environment decides; docs/system_metrics.md).
    """
    global _universal
    if log_system_metrics is not None or "autolog.system_metrics" in sys.modules:
        from autolog import system_metrics

        system_metrics.set_default_for_autolog_runs(None if disable else log_system_metrics)
    unknown = sorted(set(exclude or ()) - set(INTEGRATIONS))
    if unknown:
        raise IntegrationError(
            f"Unknown integration(s) {unknown} in exclude; known: {sorted(INTEGRATIONS)}."
        )
    flags = {
        "log_models": log_models,
        "log_input_examples": log_input_examples,
        "log_model_signatures": log_model_signatures,
        "disable": disable,
        "exclusive": exclusive,
        "silent": silent,
        "extra_tags": extra_tags,
    }
    with _lock:
        if disable:
            _universal = None
            _explicit.clear()
            _effective.clear()
            for name in list(_patched):
                _unpatch(name)
            return
        _universal = flags
        _excluded.clear()
        _excluded.update(exclude or ())
        for name in INTEGRATIONS:
            _effective.pop(name, None)
            if name in _excluded and name not in _explicit:
                _unpatch(name)
                continue
            _apply(name)


def _apply(name: str) -> None:
    flags = _flags_for(name)
    if flags is None or flags.get("disable"):
        _unpatch(name)
        return
    library = INTEGRATIONS.get(name, name)
    if library in sys.modules:
        _on_import(name)
    if name not in _hooked:
        import wrapt

        def hook(_module: Any, n: str = name) -> None:
            _hooked.discard(n)  # wrapt fires a hook once, then forgets it
            _on_import(n)

        wrapt.register_post_import_hook(hook, library)
        _hooked.add(name)


def _on_import(name: str) -> None:
    """The library was imported (or already was): patch it if the integration is enabled."""
    with _lock:
        if name in _patched:
            return
        cfg = config_for(name)
        if cfg is None:
            return
        module = importlib.import_module(_module_name(name))
        if not cfg.force and not _version_ok(name, module, cfg):
            return
        try:
            patching.install_thread_hook()
            module.patch()
            _patched.add(name)
        except Exception as exc:
            patching.revert_patches(name)
            patching.report_error(name, exc, cfg.silent)


def _version_ok(name: str, module: Any, cfg: Config) -> bool:
    from importlib import metadata

    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    version = None
    for dist in getattr(module, "DISTRIBUTIONS", (module.LIBRARY,)):
        try:
            version = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    if version is None:
        lib = sys.modules.get(module.LIBRARY)
        version = getattr(lib, "__version__", None)
    try:
        ok = version is not None and Version(version) in SpecifierSet(module.SUPPORTED_VERSIONS)
    except InvalidVersion:
        ok = False
    if not ok and name not in _version_warned:
        _version_warned.add(name)
        if not cfg.silent:
            warnings.warn(
                f"autolog: {module.LIBRARY} {version} is outside the supported range "
                f"{module.SUPPORTED_VERSIONS} of integrations.{name}; it is not patched. "
                f"Pass force=True to integrations.{name}.autolog() to patch it anyway.",
                AutologWarning,
                stacklevel=3,
            )
    return ok


def _unpatch(name: str) -> None:
    patching.revert_patches(name)
    _patched.discard(name)
    module = sys.modules.get(_module_name(name))
    unpatch_hook = getattr(module, "unpatch", None)
    if unpatch_hook is not None:
        patching.guarded(name, unpatch_hook)


def is_enabled(name: str) -> bool:
    return name in _patched

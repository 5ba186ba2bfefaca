"""The integration kit: the Integration contract, the Flags they share, discovery, autolog().

An integration is one module. At its top it declares what it patches::

    INTEGRATION = integration.Integration(
        "xgboost", distributions=("xgboost", "xgboost-cpu"), supported=">=2.0,<4"
    )

and at its bottom how, with two decorators::

    @INTEGRATION.patcher          # called once the library is imported (and enabled)
    def patch() -> None: ...

    @INTEGRATION.autolog          # its own flags only; the common Flags are added to it
    def autolog(importance_types: list[str] | None = None) -> None:
        '''Log every XGBoost training from now on. ...'''

It is found through the ``autolog.integrations`` entry-point group, one line in pyproject.toml
(``xgboost = "integrations.xgboost"``). The entry point's name is the integration's name and the
top-level module whose import activates it. Discovery reads entry-point metadata only: the
integration module is imported when its library is (a wrapt post-import hook), so
``autolog.autolog()`` imports no ML library and no integration module.

A module that declares the older convention instead (``LIBRARY``, ``DISTRIBUTIONS``,
``SUPPORTED_VERSIONS``, ``patch()``, ``unpatch()``, ``autolog(**flags)`` calling
``configure(__name__, locals())``) is adapted by :meth:`Integration.from_module`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autolog import patching
from autolog.errors import AutologWarning, IntegrationError

GROUP = "autolog.integrations"


# -- the flags every integration shares -------------------------------------------------------


def _flag(default: Any, doc: str, universal: bool = True) -> Any:
    return field(default=default, metadata={"doc": doc, "universal": universal})


@dataclass
class Flags:
    """The flags of every integration's ``autolog()``: declared, defaulted and documented once.

    A flag with ``universal`` metadata is also a flag of the universal ``autolog.autolog()``.
    """

    log_models: bool = _flag(True, "log the trained model (an MLmodel directory) on each run.")
    log_input_examples: bool = _flag(False, "save a few rows of the training input with the model.")
    log_model_signatures: bool = _flag(True, "infer and save the model's input/output signature.")
    log_datasets: bool = _flag(
        True, "record the training and evaluation sets as run inputs (see docs/datasets.md)."
    )
    disable: bool = _flag(False, "stop logging and revert every patch.")
    exclusive: bool = _flag(False, "do not log into a run the user started, only into autolog's.")
    silent: bool = _flag(False, "no warnings from autolog's own failures.")
    extra_tags: dict[str, Any] | None = _flag(None, "tags added to every run autolog starts.")
    registered_model_name: str | None = _flag(
        None, "register each logged model under this name.", universal=False
    )
    force: bool = _flag(False, "patch even a library version outside the supported range.")


FLAG_FIELDS = tuple(dataclasses.fields(Flags))
COMMON_FLAGS = tuple(f.name for f in FLAG_FIELDS)
UNIVERSAL_FLAGS = tuple(f.name for f in FLAG_FIELDS if f.metadata["universal"])


@dataclass
class Config(Flags):
    """The effective settings of one integration: the common Flags plus its own (``extra``)."""

    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """An integration-specific flag (or a common one) by name."""
        if name in self.extra:
            return self.extra[name]
        return getattr(self, name, default)


def flags_function(
    fn: Callable[..., Any],
    names: tuple[str, ...],
    qualname: str,
    apply: Callable[[dict[str, Any]], None],
) -> Callable[..., None]:
    """``fn``'s own keyword flags plus the common ``names``: one signature, one docstring.

    Calling the result checks the flag names, calls ``fn(**own flags)`` (which may validate
    them), then ``apply(all flags)``.
    """
    own = inspect.signature(fn).parameters
    clash = sorted(set(own) & set(names))
    if clash:
        raise IntegrationError(
            f"{qualname}() declares the common flag(s) {clash} again; Flags in "
            "autolog/integration.py declares them once: remove them from its parameters."
        )
    by_name = {f.name: f for f in FLAG_FIELDS}
    params = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=by_name[n].default)
        for n in names
    ]
    params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own.values()]
    defaults = {p.name: p.default for p in params}
    own_names = tuple(own)

    def autolog(*args: Any, **flags: Any) -> None:
        if args:
            raise TypeError(f"{qualname}() takes its flags by name, e.g. log_models=False")
        unknown = sorted(set(flags) - set(defaults))
        if unknown:
            raise TypeError(f"{qualname}() has no flag {unknown}; its flags: {sorted(defaults)}")
        merged = {**defaults, **flags}
        fn(**{n: merged[n] for n in own_names})
        apply(merged)

    docs = "\n".join(f"    :param {n}: {by_name[n].metadata['doc']}" for n in names)
    autolog.__doc__ = f"{(fn.__doc__ or '').rstrip()}\n\n    Common flags:\n\n{docs}\n"
    autolog.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    autolog.__module__ = fn.__module__
    autolog.__qualname__ = autolog.__name__ = fn.__name__
    autolog.own_flags = own_names  # type: ignore[attr-defined]
    return autolog


# -- the Integration contract ------------------------------------------------------------------


class Integration:
    """What autolog needs to know about one library's integration, and how to patch it.

    :param name: the integration's name; also its entry point's name and the top-level import
        name of the library whose import activates it.
    :param supported: the PEP 440 range of library versions it was checked against.
    :param distributions: distributions whose installed version is checked (first found wins).
    :param flavor: the MLmodel flavor name of the models it logs (default: ``name``).
    :param library: the library's import name (default: ``name``).
    """

    def __init__(
        self,
        name: str,
        *,
        supported: str,
        distributions: tuple[str, ...] | None = None,
        flavor: str | None = None,
        library: str | None = None,
    ):
        self.name = name
        self.library = library or name
        self.distributions = tuple(distributions or (self.library,))
        self.supported = supported
        self.flavor = flavor or name
        self._patch: Callable[[], None] | None = None
        self._unpatch: Callable[[], None] | None = None
        self.own_flags: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Integration({self.name!r}, supported={self.supported!r})"

    def patcher(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Decorator: the function that patches the (already imported) library."""
        self._patch = fn
        return fn

    def unpatcher(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Decorator: what to undo beyond safe_patch's own patches (reverted anyway)."""
        self._unpatch = fn
        return fn

    def autolog(self, fn: Callable[..., Any]) -> Callable[..., None]:
        """Decorator: the per-library ``autolog()`` from a function of its own flags only."""
        composed = flags_function(
            fn, COMMON_FLAGS, f"{fn.__module__}.autolog", lambda flags: configure(self.name, flags)
        )
        self.own_flags = {n: p.default for n, p in inspect.signature(fn).parameters.items()}
        return composed

    def patch(self) -> None:
        if self._patch is None:
            raise IntegrationError(
                f"integration {self.name!r} has no patch function: decorate it with "
                "@INTEGRATION.patcher"
            )
        self._patch()

    def unpatch(self) -> None:
        if self._unpatch is not None:
            self._unpatch()

    def defaults(self) -> dict[str, Any]:
        """Every flag's default: the common ones, then the integration's own."""
        common = {f.name: f.default for f in FLAG_FIELDS}
        return {**common, **self.own_flags}

    @classmethod
    def from_module(cls, module: Any, name: str) -> Integration:
        """An Integration for a module written to the older module-attribute convention."""
        integ = cls(
            name,
            supported=module.SUPPORTED_VERSIONS,
            distributions=tuple(getattr(module, "DISTRIBUTIONS", ())) or None,
            library=getattr(module, "LIBRARY", name),
        )
        integ._patch = module.patch
        integ._unpatch = getattr(module, "unpatch", None)
        params = inspect.signature(module.autolog).parameters
        integ.own_flags = {
            k: p.default
            for k, p in params.items()
            if p.default is not inspect.Parameter.empty and k not in COMMON_FLAGS
        }
        return integ


# -- discovery ---------------------------------------------------------------------------------

# Integration name -> library import name, and -> the module that implements it. Filled from
# the entry points by discover(); never edited by hand.
INTEGRATIONS: dict[str, str] = {}
_modules: dict[str, str] = {}
_loaded: dict[str, Integration] = {}
_discovered = False


def discover() -> dict[str, str]:
    """Read the ``autolog.integrations`` entry points (new ones are added; none removed)."""
    global _discovered
    from importlib import metadata

    for ep in metadata.entry_points(group=GROUP):
        if ep.name not in _modules:
            _modules[ep.name] = ep.value.partition(":")[0].strip()
            INTEGRATIONS[ep.name] = ep.name
    if not INTEGRATIONS and not _discovered:
        warnings.warn(
            f"autolog: no integration declares the entry-point group {GROUP!r}; autolog's own "
            "metadata is out of date: reinstall it (pip install -e .).",
            AutologWarning,
            stacklevel=3,
        )
    _discovered = True
    return INTEGRATIONS


def names() -> list[str]:
    """The names of every discovered integration, sorted."""
    if not _discovered:
        discover()
    return sorted(INTEGRATIONS)


def module_name(name: str) -> str:
    """The module that implements the integration called ``name``."""
    module = _modules.get(name)
    if module is None:  # installed since the last look?
        discover()
        module = _modules.get(name)
    if module is None:
        raise IntegrationError(f"Unknown integration {name!r}; known: {sorted(INTEGRATIONS)}.")
    return module


def get(name: str) -> Integration:
    """The Integration called ``name`` (its module is imported now)."""
    integ = _loaded.get(name)
    if integ is not None:
        return integ
    module = importlib.import_module(module_name(name))
    integ = getattr(module, "INTEGRATION", None)
    if not isinstance(integ, Integration):
        integ = Integration.from_module(module, name)
    if integ.name != name:
        raise IntegrationError(
            f"{module.__name__}.INTEGRATION is {integ!r}; its entry point {name!r} needs an "
            f"Integration named {name!r}."
        )
    _loaded[name] = integ
    return integ


def name_for_flavor(flavor: str) -> str | None:
    """The integration whose models carry this MLmodel flavor (imports integrations to look)."""
    if flavor in names():
        return flavor
    # integrations already imported first: a lookup usually imports nothing
    imported = [n for n in names() if _modules.get(n) in sys.modules]
    for name in imported + [n for n in names() if n not in imported]:
        try:
            if get(name).flavor == flavor:
                return name
        except ImportError:
            continue  # an integration whose own dependencies are missing logs no such model
    return None


def _name_of(module: str) -> str:
    for name, mod in _modules.items():
        if mod == module:
            return name
    return module.rsplit(".", 1)[-1]


# -- enabling ------------------------------------------------------------------------------------

_lock = threading.RLock()
_universal: dict[str, Any] | None = None  # flags of the last universal autolog()
_excluded: set[str] = set()
_explicit: dict[str, dict[str, Any]] = {}  # flags of per-library autolog() calls
_effective: dict[str, Config] = {}
_hooked: set[str] = set()
_patched: set[str] = set()
_version_warned: set[str] = set()


def _build_config(name: str, flags: dict[str, Any]) -> Config:
    merged = {**get(name).defaults(), **flags}
    cfg = Config(**{k: v for k, v in merged.items() if k in COMMON_FLAGS})
    cfg.extra = {k: v for k, v in merged.items() if k not in COMMON_FLAGS}
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


def configure(name: str, flags: dict[str, Any]) -> None:
    """Apply a per-library autolog() call (by name, or by module: ``configure(__name__, ...)``)."""
    if name not in INTEGRATIONS:
        discover()
    if name not in INTEGRATIONS:
        name = _name_of(name)
    flags = {k: v for k, v in flags.items() if not k.startswith("_")}
    with _lock:
        _explicit[name] = flags
        _effective.pop(name, None)
        _apply(name)


def _universal_autolog(
    exclude: list[str] | None = None, log_system_metrics: bool | None = None
) -> None:
    """Record every supported library's training from now on (or stop, with disable=True).

    Libraries already imported are patched now; the others when they are first imported.
    A per-library ``integrations.<lib>.autolog(...)`` keeps its own settings, before or after.

    :param exclude: integration names to leave alone, e.g. ``["torch"]``.
    :param log_system_metrics: sample CPU, memory, disk, network and GPU use into each top-level
        run started from now on (None: the environment decides; docs/system_metrics.md).
    """
    known = discover()
    unknown = sorted(set(exclude or ()) - set(known))
    if unknown:
        raise IntegrationError(
            f"Unknown integration(s) {unknown} in exclude; known: {sorted(known)}."
        )


def _apply_universal(flags: dict[str, Any]) -> None:
    global _universal
    exclude = flags.pop("exclude")
    log_system_metrics = flags.pop("log_system_metrics", None)
    if log_system_metrics is not None or "autolog.system_metrics" in sys.modules:
        from autolog import system_metrics

        system_metrics.set_default_for_autolog_runs(
            None if flags["disable"] else log_system_metrics
        )
    with _lock:
        if flags["disable"]:
            _universal = None
            _explicit.clear()
            _effective.clear()
            for name in list(_patched):
                _unpatch(name)
            return
        _universal = flags
        _excluded.clear()
        _excluded.update(exclude or ())
        for name in list(INTEGRATIONS):
            _effective.pop(name, None)
            if name in _excluded and name not in _explicit:
                _unpatch(name)
                continue
            _apply(name)


autolog = flags_function(_universal_autolog, UNIVERSAL_FLAGS, "autolog.autolog", _apply_universal)


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
        integ = get(name)
        ok = cfg.force or version_ok(
            name, integ.library, integ.distributions, integ.supported, cfg.silent
        )
        if not ok:
            return
        try:
            patching.install_thread_hook()
            integ.patch()
            _patched.add(name)
        except Exception as exc:
            patching.revert_patches(name)
            patching.report_error(name, exc, cfg.silent)


def installed_version(distributions: tuple[str, ...], library: str) -> str | None:
    """The version of the first installed distribution, else the library's ``__version__``."""
    from importlib import metadata

    for dist in distributions:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return getattr(sys.modules.get(library), "__version__", None)


def version_ok(
    name: str, library: str, distributions: tuple[str, ...], supported: str, silent: bool = False
) -> bool:
    """Whether ``library`` is in ``supported``; outside it, one warning naming force=True.

    :param name: the integration checking (a library it patches besides its own passes that
        library, e.g. torch's check of Lightning).
    """
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    version = installed_version(distributions, library)
    try:
        ok = version is not None and Version(version) in SpecifierSet(supported)
    except InvalidVersion:
        ok = False
    key = f"{name}:{library}"
    if not ok and key not in _version_warned:
        _version_warned.add(key)
        if not silent:
            warnings.warn(
                f"autolog: {library} {version} is outside the supported range {supported} of "
                f"integration {name!r}; it is not patched. Pass force=True to "
                f"autolog() or to its own autolog() to patch it anyway.",
                AutologWarning,
                stacklevel=3,
            )
    return ok


def _unpatch(name: str) -> None:
    patching.revert_patches(name)
    _patched.discard(name)
    integ = _loaded.get(name)
    if integ is not None:
        patching.guarded(name, integ.unpatch)


def is_enabled(name: str) -> bool:
    return name in _patched

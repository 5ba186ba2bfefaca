"""safe_patch: the one way integrations patch a library (DESIGN.md section 3).

A patched method calls the user's function exactly once with the user's arguments. The
integration's ``patch_fn(call, instance, args, kwargs)`` receives ``call`` in place of the
original: calling it runs the user's code and remembers whether *that* raised. So:

- an exception raised by the user's code propagates unchanged (same object), and the run the
  call was logging into ends FAILED (KILLED for KeyboardInterrupt);
- an exception raised by autolog's own code becomes one warning per integration (rate
  limited), the original is called if it was not yet, and its result is returned;
  with ``AUTOLOG_TESTING=1`` it raises instead;
- only the outermost patched call in a thread logs: a ``contextvars`` session marks it, and
  threads started during a session inherit it (so joblib/thread pools inside a fit are quiet).

Runs are started lazily: ``session.run_id`` starts a managed run on first use (or joins the
user's active run), so a patched call that decides not to log (a lone transformer fit) creates
no run at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import secrets
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from autolog import tracking
from autolog.errors import AutologWarning
from store import gate

TESTING_ENV = "AUTOLOG_TESTING"
INTEGRATION_TAG = "mlflow.autologging"
WARNING_INTERVAL_S = 60.0

PatchFn = Callable[["OriginalCall", Any, tuple, dict], Any]


class Session:
    """One outermost patched call: its integration, its run, and scratch state."""

    __slots__ = (
        "integration",
        "config",
        "active",
        "state",
        "_run_id",
        "managed",
        "skip",
        "instance",
    )

    def __init__(self, integration: str, config: Any, instance: Any):
        self.integration = integration
        self.config = config
        self.instance = instance
        self.active = True
        self.state: dict[str, Any] = {}
        self._run_id: str | None = None
        self.managed = False
        self.skip = False

    @property
    def has_run(self) -> bool:
        return self._run_id is not None

    @property
    def run_id(self) -> str:
        """The run this call logs into: the user's active run, or one started now (managed)."""
        if self._run_id is None:
            user_run = tracking.active_run()
            if user_run is not None:
                self._run_id = user_run.info.run_id
            else:
                tags = {INTEGRATION_TAG: self.integration}
                tags.update(getattr(self.config, "extra_tags", None) or {})
                run = tracking.start_run(run_name=self.run_name(), tags=tags)
                self._run_id = run.info.run_id
                self.managed = True
        return self._run_id

    def run_name(self) -> str:
        """A readable, unique name for the run this call starts: what was trained (the
        estimator's class, or the name an integration set) and a short random suffix, so
        that every integration names runs alike: ``XGBClassifier-3f2a``."""
        base = self.state.get("run_name")
        if not base:
            base = type(self.instance).__name__ if self.instance is not None else self.integration
        return readable_run_name(base)


def readable_run_name(base: str, suffix: str | None = None) -> str:
    """``base`` (what was trained: ``XGBClassifier``) and a short random suffix: ``-3f2a``."""
    return f"{base}-{suffix or secrets.token_hex(2)}"


_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "autolog_session", default=None
)


def current_session() -> Session | None:
    """The session of the outermost patched call in progress in this thread, if any."""
    s = _session.get()
    if s is None:
        s = getattr(threading.current_thread(), "_autolog_parent_session", None)
    return s if s is not None and s.active else None


def testing() -> bool:
    return os.environ.get(TESTING_ENV, "") not in ("", "0", "false", "False")


# -- warnings for our own failures -------------------------------------------------------

_last_warning: dict[str, float] = {}
_suppressed: dict[str, int] = {}


#: Held while autolog issues its own warning, and by background work that runs library code
#: which changes the process-wide warning filters (fastai's ``Learner.export`` wraps its save in
#: ``warnings.catch_warnings()`` and ignores everything, which is not thread-safe): a warning
#: issued on another thread meanwhile would be dropped.
warnings_lock = threading.RLock()


def report_error(integration: str, exc: BaseException, silent: bool = False) -> None:
    """Turn an exception raised by autolog's own code into (at most) one warning per interval."""
    if testing():
        raise exc
    now = time.monotonic()
    last = _last_warning.get(integration)
    if last is not None and now - last < WARNING_INTERVAL_S:
        _suppressed[integration] = _suppressed.get(integration, 0) + 1
        return
    _last_warning[integration] = now
    more = _suppressed.pop(integration, 0)
    if silent:
        return
    extra = f" ({more} similar failures since the last warning)" if more else ""
    with warnings_lock:
        warnings.warn(
            f"autolog: logging for {integration} failed and was skipped; training is unaffected"
            f"{extra}: {type(exc).__name__}: {exc}",
            AutologWarning,
            stacklevel=3,
        )


def guarded(
    integration: str, fn: Callable[..., Any], *args: Any, silent: bool = False, **kwargs: Any
) -> Any:
    """Run fn(*args, **kwargs); a failure becomes report_error and returns None."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        report_error(integration, exc, silent)
        return None


# -- the call-through object ---------------------------------------------------------------


class OriginalCall:
    """Calls the user's function and remembers its result or the exception it raised."""

    __slots__ = ("wrapped", "called", "result", "user_exception")

    def __init__(self, wrapped: Callable[..., Any]):
        self.wrapped = wrapped
        self.called = False
        self.result: Any = None
        self.user_exception: BaseException | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.called:
            raise RuntimeError("autolog bug: the original function was called twice")
        self.called = True
        try:
            self.result = self.wrapped(*args, **kwargs)
        except BaseException as exc:
            self.user_exception = exc
            raise
        return self.result


# -- the wrapper ---------------------------------------------------------------------------


def _end_managed(session: Session, status: str) -> None:
    if session.managed and session._run_id is not None:
        run_id = session._run_id
        session.managed = False
        try:
            tracking.end_run(status, run_id=run_id)
        finally:
            stack = tracking._stack()
            if stack and stack[-1].info.run_id == run_id:  # end_run failed half way
                stack.pop()


def deferring_writes() -> contextlib.AbstractContextManager[Any]:
    """A REST store's deferring block (store/rest_lane.py): the fit's writes that answer
    nothing go to its background lane; other stores write at once. Every patched fit runs in
    one; an integration that logs outside a fit (a plain torch loop's end) opens its own."""
    try:
        block = getattr(tracking._store(), "deferring", None)
    except Exception:  # no store yet, or none can be opened: the session's calls will say so
        return contextlib.nullcontext()
    return block() if block is not None else contextlib.nullcontext()


def _call_unlogged(
    integration: str, instance: Any, wrapped: Callable[..., Any], args: tuple, kwargs: dict
) -> Any:
    """A patched call autolog does not log (its integration is off, or an exclusive one meets an
    active run): still a session, so that the calls nested in it are not logged either."""
    session = Session(integration, None, instance)
    token = _session.set(session)
    try:
        return wrapped(*args, **kwargs)
    finally:
        session.active = False
        _session.reset(token)


def _make_wrapper(
    integration: str, patch_fn: PatchFn, get_config: Callable[[], Any]
) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        parent = _session.get()
        if parent is None:
            parent = getattr(threading.current_thread(), "_autolog_parent_session", None)
        if parent is not None and parent.active:
            return wrapped(*args, **kwargs)
        try:
            config = get_config()
            if config is None or (config.exclusive and tracking.active_run() is not None):
                config = None
        except Exception as exc:  # pragma: no cover - config lookup is trivial
            report_error(integration, exc)
            config = None
        if config is None:
            return _call_unlogged(integration, instance, wrapped, args, kwargs)
        session = Session(integration, config, instance)
        token = _session.set(session)
        call = OriginalCall(wrapped)
        masked: BaseException | None = None
        deferring = contextlib.ExitStack()
        deferring.enter_context(deferring_writes())
        gate.hold()  # the background threads wait until the fit returns (up to gate.HOLD_S)
        deferring.callback(gate.release)
        try:
            try:
                result = patch_fn(call, instance, args, kwargs)
            except BaseException as exc:
                user_exc = call.user_exception
                if user_exc is not None:
                    status = "KILLED" if isinstance(user_exc, KeyboardInterrupt) else "FAILED"
                    guarded(integration, _end_managed, session, status, silent=config.silent)
                    if user_exc is exc:
                        raise
                    masked = user_exc  # our code raised while handling it: raise the user's own
                elif isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                else:
                    report_error(integration, exc, config.silent)
                    result = call.result if call.called else call(*args, **kwargs)
            if masked is not None:
                raise masked
            guarded(integration, _end_managed, session, "FINISHED", silent=config.silent)
            return result
        finally:
            deferring.close()
            session.active = False
            _session.reset(token)
            if session.managed:  # only left when our own code raised under AUTOLOG_TESTING
                try:
                    _end_managed(session, "FAILED")
                except Exception:
                    pass

    return wrapper


# -- patch bookkeeping -----------------------------------------------------------------------


class Patch:
    """One replaced attribute and what to restore."""

    __slots__ = ("owner", "name", "had_own", "original", "replacement")

    def __init__(self, owner: Any, name: str, had_own: bool, original: Any, replacement: Any):
        self.owner = owner
        self.name = name
        self.had_own = had_own
        self.original = original
        self.replacement = replacement

    def revert(self) -> None:
        if self.owner.__dict__.get(self.name) is not self.replacement:
            return  # someone replaced it after us: leave their attribute alone
        if self.had_own:
            setattr(self.owner, self.name, self.original)
        else:
            delattr(self.owner, self.name)


_patches: dict[str, list[Patch]] = {}
_patches_lock = threading.RLock()


def safe_patch(
    integration: str,
    owner: Any,
    name: str,
    patch_fn: PatchFn,
    get_config: Callable[[], Any] | None = None,
) -> Patch | None:
    """Replace owner.name by a wrapper that runs patch_fn under the patching contract.

    :param integration: the integration's name ("sklearn"), for warnings, tags and revert.
    :param owner: a class or module.
    :param name: the attribute; looked up in owner.__dict__ first (inherited attributes are
        patched on owner and deleted again on revert).
    :param patch_fn: ``patch_fn(call, instance, args, kwargs)``; must call ``call`` (the original)
        at most once and return the result.
    :param get_config: returns the integration's effective config (None: do not log).
    """
    if get_config is None:
        from autolog.integration import config_for

        def get_config() -> Any:
            return config_for(integration)

    return _replace(integration, owner, name, _make_wrapper(integration, patch_fn, get_config))


def _replace(integration: str, owner: Any, name: str, wrapper: Callable[..., Any]) -> Patch | None:
    """owner.name wrapped by ``wrapper`` (wrapt's signature; a property's getter), recorded for
    revert; None when it is already patched (idempotent enable)."""
    import wrapt

    with _patches_lock:
        if is_patched(owner, name):
            return None
        had_own = hasattr(owner, "__dict__") and name in owner.__dict__
        original = owner.__dict__[name] if had_own else getattr(owner, name)
        if isinstance(original, property):
            fget = wrapt.FunctionWrapper(original.fget, wrapper)  # type: ignore[arg-type]
            replacement: Any = property(fget, original.fset, original.fdel, original.__doc__)
        else:
            replacement = wrapt.FunctionWrapper(original, wrapper)
        # "_self_" attributes live on the wrapt proxy itself, not on the wrapped function
        marked: Any = replacement.fget if isinstance(replacement, property) else replacement
        marked._self_autolog_integration = integration
        setattr(owner, name, replacement)
        patch = Patch(owner, name, had_own, original, replacement)
        _patches.setdefault(integration, []).append(patch)
        return patch


def bypass(
    integration: str, owner: Any, name: str, when: Callable[[], bool], value: Any = None
) -> Patch | None:
    """Replace owner.name by a wrapper that returns ``value`` without calling the original
    while ``when()`` is true (a flag autolog's own code sets on its thread), and calls the
    original otherwise; reverted with the integration's other patches. For work a library
    does inside a call autolog makes and throws away (statsmodels' discarded LaTeX)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        return value if when() else wrapped(*args, **kwargs)

    return _replace(integration, owner, name, wrapper)


def is_patched(owner: Any, name: str) -> bool:
    value = owner.__dict__.get(name) if hasattr(owner, "__dict__") else None
    if isinstance(value, property):
        value = value.fget
    return getattr(value, "_self_autolog_integration", None) is not None


def revert_patches(integration: str) -> int:
    """Restore every attribute the integration replaced, newest first; return how many.

    Its subclass hooks are removed and its import hooks stop acting first, so that no class
    or module appearing meanwhile is patched again.
    """
    with _patches_lock:
        for hook in _subclass_hooks.pop(integration, []):
            hook.remove()
        for module_name in [k for k in _import_hooks if k[0] == integration]:
            _import_hooks[module_name] = None
        patches = _patches.pop(integration, [])
        for patch in reversed(patches):
            patch.revert()
        return len(patches)


def patches_of(integration: str) -> list[Patch]:
    return list(_patches.get(integration, []))


# -- threads started inside a session inherit it -------------------------------------------

_thread_hook_installed = False


def install_thread_hook() -> None:
    """Mark threads started during a patched call so their patched calls stay quiet."""
    global _thread_hook_installed
    if _thread_hook_installed:
        return
    import wrapt

    def start(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        s = _session.get()
        if s is not None and s.active and instance is not None:
            try:
                instance._autolog_parent_session = s
            except Exception:
                pass
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(threading.Thread, "start", start)
    _thread_hook_installed = True


# -- shared helpers: subclasses, imports ----------------------------------------------------


def subclasses(root: type) -> list[type]:
    """root and every class below it, each once (``type.__subclasses__`` walked down)."""
    seen: set[type] = set()
    stack: list[type] = [root]
    out: list[type] = [root]
    while stack:
        sub: type
        for sub in type.__subclasses__(stack.pop()):
            if sub not in seen:
                seen.add(sub)
                out.append(sub)
                stack.append(sub)
    return out


class _SubclassHook:
    """``root.__init_subclass__`` replaced so that classes defined later are handled too."""

    def __init__(self, integration: str, root: type, on_class: Callable[[type], None]):
        self.integration = integration
        self.root = root
        self.on_class = on_class
        self.had_own = "__init_subclass__" in root.__dict__
        self.own = root.__dict__.get("__init_subclass__")
        self.active = True
        hook = self

        def __init_subclass__(cls: type, **kwargs: Any) -> None:
            if hook.own is not None:
                hook.own.__get__(None, cls)(**kwargs)
            else:
                super(root, cls).__init_subclass__(**kwargs)  # type: ignore[misc,arg-type]
            if hook.active:
                try:
                    hook.on_class(cls)
                except Exception as exc:  # a user's class statement never fails because of us
                    report_error(hook.integration, exc)

        self.replacement: Any = classmethod(__init_subclass__)
        root.__init_subclass__ = self.replacement  # type: ignore[assignment]

    def remove(self) -> None:
        self.active = False
        if self.root.__dict__.get("__init_subclass__") is not self.replacement:
            return  # replaced after us: leave theirs, ours is inactive
        if self.had_own:
            self.root.__init_subclass__ = self.own  # type: ignore[assignment]
        else:
            delattr(self.root, "__init_subclass__")


_subclass_hooks: dict[str, list[_SubclassHook]] = {}


def patch_subclasses(
    integration: str,
    root: type,
    methods: Mapping[str, Callable[..., Any]],
    select: Callable[[type], bool] | None = None,
) -> None:
    """safe_patch each of ``methods`` on root and every subclass that defines it, now and later.

    Classes defined after this call are patched from a ``root.__init_subclass__`` hook, which
    ``revert_patches(integration)`` removes (restoring root's own hook, if it had one).

    :param methods: method name -> patch_fn; a class is patched where its own ``__dict__``
        defines a callable of that name.
    :param select: classes to patch (default: all).
    """

    def on_class(cls: type) -> None:
        if select is not None and not select(cls):
            return
        for name, patch_fn in methods.items():
            if callable(cls.__dict__.get(name)):
                safe_patch(integration, cls, name, patch_fn)

    with _patches_lock:
        hooks = _subclass_hooks.setdefault(integration, [])
        if not any(h.root is root and h.active for h in hooks):
            hooks.append(_SubclassHook(integration, root, on_class))
        for cls in subclasses(root):
            on_class(cls)


# (integration, module name) -> what to do once it is imported (None: the integration was
# reverted since). wrapt keeps a hook registered forever, so ours are registered once each.
_import_hooks: dict[tuple[str, str], Callable[[Any], None] | None] = {}
_hooks_waiting: set[tuple[str, str]] = set()


def when_imported(integration: str, module_name: str, apply: Callable[[Any], None]) -> None:
    """``apply(module)`` now if ``module_name`` is imported, else once it is first imported.

    A failure inside ``apply`` is autolog's own (a warning, raised under AUTOLOG_TESTING).
    After ``revert_patches(integration)`` a pending hook does nothing.
    """
    key = (integration, module_name)
    with _patches_lock:
        _import_hooks[key] = apply
        module = sys.modules.get(module_name)
        if module is None and key in _hooks_waiting:
            return
        if module is None:
            _hooks_waiting.add(key)
    if module is not None:
        guarded(integration, apply, module)
        return
    import wrapt

    def hook(mod: Any) -> None:
        _hooks_waiting.discard(key)  # wrapt fires a hook once, then forgets it
        action = _import_hooks.get(key)
        if action is not None:
            guarded(integration, action, mod)

    wrapt.register_post_import_hook(hook, module_name)

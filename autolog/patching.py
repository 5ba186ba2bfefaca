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

import contextvars
import os
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from autolog import tracking
from autolog.errors import AutologWarning

TESTING_ENV = "AUTOLOG_TESTING"
INTEGRATION_TAG = "autolog.integration"
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
                name = self.state.get("run_name")
                run = tracking.start_run(run_name=name, tags=tags)
                self._run_id = run.info.run_id
                self.managed = True
        return self._run_id


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
            session = Session(integration, None, instance)
            token = _session.set(session)
            try:
                return wrapped(*args, **kwargs)
            finally:
                session.active = False
                _session.reset(token)
        session = Session(integration, config, instance)
        token = _session.set(session)
        call = OriginalCall(wrapped)
        masked: BaseException | None = None
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
    import wrapt

    if get_config is None:
        from autolog.integration import config_for

        def get_config() -> Any:
            return config_for(integration)

    with _patches_lock:
        existing = owner.__dict__.get(name) if hasattr(owner, "__dict__") else None
        if isinstance(existing, property):
            existing = existing.fget
        if getattr(existing, "_self_autolog_integration", None) is not None:
            return None  # already patched (idempotent enable)
        had_own = hasattr(owner, "__dict__") and name in owner.__dict__
        original = owner.__dict__[name] if had_own else getattr(owner, name)
        wrapper = _make_wrapper(integration, patch_fn, get_config)
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


def is_patched(owner: Any, name: str) -> bool:
    value = owner.__dict__.get(name) if hasattr(owner, "__dict__") else None
    if isinstance(value, property):
        value = value.fget
    return getattr(value, "_self_autolog_integration", None) is not None


def revert_patches(integration: str) -> int:
    """Restore every attribute the integration replaced, newest first; return how many."""
    with _patches_lock:
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

"""Fluent tracking API (MLflow's names) and the explicit Client it is built on.

The active run is per thread: a run started in one thread is not the active run of another.
Runs still active at interpreter exit are ended FINISHED, or FAILED when an uncaught
exception is ending the process.

The Client's methods and what needs none of this module's state (run names and tags, the
report of autolog's own failures) live in :mod:`autolog.tracking_client`, re-exported here.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Callable

from autolog import context
from autolog.errors import InvalidValueError, TrackingError
from autolog.logged_models import LoggedModelClientMixin
from autolog.registry import RegistryClientMixin
from autolog.tracking_client import (  # noqa: F401  (importable from here, as before the split)
    _ADJECTIVES,
    _NOUNS,
    _VIEW_TYPES,
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    TrackingClientMixin,
    _absolute_uri,
    _new_run_tags,
    _report_own_error,
    _start_system_metrics,
    _view,
    before_read,
    generate_run_name,
    register_read_hook,
    report_own_error,
    runs_to_frame,
)
from autolog.tracking_reads import get_metric_history, get_run, search_runs  # noqa: F401
from store.entities import Experiment, FileInfo, Metric, Param, Run, RunData, RunInfo, RunTag

# typing.TYPE_CHECKING without importing typing (about a fifth of `import autolog`)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from store.sqlite import Store

__all__ = [
    "ActiveRun",
    "Client",
    "Experiment",
    "FileInfo",
    "Metric",
    "MlflowClient",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunTag",
]

DEFAULT_TRACKING_DIR = "autolog-runs"
ENV_TRACKING_URI = "AUTOLOG_TRACKING_URI"
ENV_EXPERIMENT_NAME = "AUTOLOG_EXPERIMENT_NAME"
ENV_EXPERIMENT_ID = "AUTOLOG_EXPERIMENT_ID"
ENV_RUN_ID = "AUTOLOG_RUN_ID"

_tracking_uri: str | None = None
_experiment_id: str | None = None
_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()
_local = threading.local()
_last_active_run_id: str | None = None
_end_run_hooks: list[Callable[[str, str], None]] = []
# Runs autolog started for an open-ended plain training loop (integrations.torch): such a run
# gives way to a run the user starts (it is ended FINISHED first) instead of raising.
_yielding_runs: set[str] = set()
# Runs a parent process (`autolog run`) created for this one: active here like any run, but
# ending them here writes no status; the parent sets it from the exit status.
_inherited_runs: set[str] = set()
# run_id -> status of ended runs whose status the store failed to write (tried again later)
_unterminated: dict[str, tuple[Store, str, int]] = {}


# -- tracking URI and experiment ---------------------------------------------------------


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Point autolog at a store.

    :param uri: a folder (database and artifacts inside it), ``file:///folder`` or
        ``sqlite:///path/file.db`` (artifacts in an ``artifacts`` folder beside it).
    """
    global _tracking_uri, _experiment_id
    before_read(None)  # work still deferred (autolog.batching) goes to the store it was meant for
    _tracking_uri = _absolute_uri(str(uri))
    _experiment_id = None


def get_tracking_uri() -> str:
    """The tracking URI in force: set_tracking_uri(), else $AUTOLOG_TRACKING_URI, else
    $MLFLOW_TRACKING_URI, else ./autolog-runs."""
    if _tracking_uri is not None:
        return _tracking_uri
    uri = os.environ.get(ENV_TRACKING_URI) or os.environ.get("MLFLOW_TRACKING_URI")
    return _absolute_uri(uri or DEFAULT_TRACKING_DIR)


def _store(uri: str | None = None) -> Store:
    uri = uri or get_tracking_uri()
    store = _stores.get(uri)
    if store is None:
        from store.base import open_store

        with _stores_lock:
            store = _stores.get(uri)
            if store is None:
                store = _stores[uri] = open_store(uri)
    return store


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment the active one, creating it by name if needed.

    :param experiment_name: name of the experiment (created when missing).
    :param experiment_id: id of an existing experiment, instead of a name.
    """
    global _experiment_id
    store = _store()
    if experiment_id is not None:
        exp = store.get_experiment(experiment_id)
    elif experiment_name:
        exp = store.get_experiment(store.get_or_create_experiment(experiment_name))
    else:
        raise InvalidValueError("set_experiment needs an experiment_name or an experiment_id.")
    if exp.lifecycle_stage != "active":
        raise InvalidValueError(
            f"Experiment {exp.name!r} is deleted; restore it or choose another name."
        )
    _experiment_id = exp.experiment_id
    return exp


def _active_experiment_id() -> str:
    if _experiment_id is not None:
        return _experiment_id
    if os.environ.get(ENV_EXPERIMENT_ID):
        return os.environ[ENV_EXPERIMENT_ID]
    name = os.environ.get(ENV_EXPERIMENT_NAME)
    if name:
        return _store().get_or_create_experiment(name)
    return "0"


def get_experiment_by_name(name: str) -> Experiment | None:
    return _store().get_experiment_by_name(name)


def create_experiment(name: str, tags: dict[str, Any] | None = None) -> str:
    return _store().create_experiment(name, tags)


# -- runs --------------------------------------------------------------------------------


class ActiveRun(Run):
    """The run returned by start_run; ends the run when its ``with`` block exits."""

    def __init__(self, run: Run):
        super().__init__(run.info, run.data)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        try:
            end_run(status, run_id=self.info.run_id)
        except Exception as ours:  # only under AUTOLOG_TESTING: end_run reports, never raises
            if exc is None:
                raise
            # the user's exception goes on unchanged; ours rides along as a note
            exc.add_note(f"autolog: ending run {self.info.run_id} also failed: {ours!r}")


def _stack() -> list[ActiveRun]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    parent_run_id: str | None = None,
    log_system_tags: bool = True,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a run (or resume one by id) and make it this thread's active run.

    :param run_id: resume this existing run instead of creating one.
    :param experiment_id: experiment for a new run (default: the active experiment).
    :param run_name: display name; a random one is generated when omitted.
    :param nested: allow starting inside another active run (it becomes the parent).
    :param tags: tags to set on the run.
    :param description: Markdown description, stored as tag ``mlflow.note.content``.
    :param parent_run_id: explicit parent, for a nested run started from another thread.
    :param log_system_tags: record where the run ran (source, git, user, host, packages).
    :param log_system_metrics: sample CPU, memory, disk, network and GPU use into the run
        (None: as ``autolog(log_system_metrics=)`` or the environment say; docs/system_metrics.md).
    """
    stack = _stack()
    if stack and not nested and stack[-1].info.run_id in _yielding_runs:
        end_yielding_run()
    if stack and not nested and run_id is None and stack[-1].info.run_id in _inherited_runs:
        return stack[-1]  # the parent's run, resumed by an earlier call: it stays the one
    if stack and not nested:
        raise TrackingError(
            f"Run {stack[-1].info.run_id} is already active. End it with end_run() first, or "
            "start a child run with start_run(nested=True)."
        )
    store = _store()
    inherited = None if stack else _inherited_run_id()
    if run_id is None and inherited and not nested:
        return _continue_inherited(store, stack, inherited, tags)
    if run_id is not None:
        return _resume(store, stack, run_id, tags, log_system_metrics)
    if parent_run_id is None and stack:
        parent_run_id = stack[-1].info.run_id
    parent_run_id = parent_run_id or inherited
    name, all_tags = _new_run_tags(log_system_tags, run_name, parent_run_id, description, tags)
    run = store.create_run(
        experiment_id=experiment_id if experiment_id is not None else _active_experiment_id(),
        run_name=name,
        tags=all_tags,
        parent_run_id=parent_run_id,
        user_id=context.current_user(),
    )
    active = ActiveRun(run)
    stack.append(active)
    _start_system_metrics(run.info.run_id, log_system_metrics, bool(parent_run_id), resumed=False)
    if log_system_tags:
        _log_git_diff(store, active)
    return active


def _continue_inherited(
    store: Store, stack: list[ActiveRun], inherited: str, tags: dict[str, Any] | None
) -> ActiveRun:
    # `autolog run` created this run for the process: continue it; end_run here (a fit's,
    # a `with` block's) flushes what was logged and leaves the status to that parent.
    if store.get_run(inherited).info.status != "RUNNING":
        store.update_run(inherited, status="RUNNING")
    if tags:
        store.log_batch(inherited, tags=tags)
    active = ActiveRun(store.get_run(inherited))
    stack.append(active)
    _inherited_runs.add(inherited)
    return active


def _resume(
    store: Store,
    stack: list[ActiveRun],
    run_id: str,
    tags: dict[str, Any] | None,
    log_system_metrics: bool | None,
) -> ActiveRun:
    run = store.get_run(run_id)
    if run.info.status != "RUNNING":
        store.update_run(run_id, status="RUNNING")
    if tags:
        store.log_batch(run_id, tags=tags)
    active = ActiveRun(store.get_run(run_id))
    stack.append(active)
    _start_system_metrics(run_id, log_system_metrics, len(stack) > 1, resumed=True)
    return active


def _log_git_diff(store: Store, active: ActiveRun) -> None:
    try:
        diff = context.source_git_diff()
        if diff:
            store.write_artifact_bytes(active.info.run_id, context.GIT_DIFF_ARTIFACT, diff.encode())
    except Exception as exc:  # a record autolog adds on its own: never fails the run
        _report_own_error(exc, active)


def end_run(status: str = "FINISHED", run_id: str | None = None) -> None:
    """End the active run (or the given run of this thread's stack) with this status.

    Ending a parent ends its still-active children first. The run leaves the stack whatever
    happens; a failure of autolog's own work here (writing buffered metrics, finishing an
    autologged training, writing the status) becomes one warning, not an exception (it raises
    under AUTOLOG_TESTING). A status left unwritten is tried again by the next end_run and at
    exit. An unknown status raises InvalidValueError before anything ends.
    """
    global _last_active_run_id
    from store.sqlite import RUN_STATUSES

    if status not in RUN_STATUSES:
        raise InvalidValueError(
            f"Invalid run status {status!r} for end_run; use one of {', '.join(RUN_STATUSES)}."
        )
    stack = _stack()
    if not stack:
        return
    idx = len(stack) - 1
    if run_id is not None:
        ids = [r.info.run_id for r in stack]
        if run_id not in ids:
            return
        idx = ids.index(run_id)
    failure: tuple[Exception, ActiveRun] | None = None
    while len(stack) > idx:
        active = stack.pop()
        error = _end_one(active.info.run_id, status)
        _last_active_run_id = active.info.run_id
        if error is not None and failure is None:
            failure = (error, active)
    if failure is not None:
        _report_own_error(*failure)


def _end_one(run_id: str, status: str) -> Exception | None:
    """Run the end-run hooks and write the status; the first failure is returned, not raised."""
    error: Exception | None = None
    _yielding_runs.discard(run_id)
    for hook in list(_end_run_hooks):
        try:
            hook(run_id, status)
        except Exception as exc:  # the run still ends
            error = error or exc
    if run_id in _inherited_runs:
        return error  # the parent process ends it (see start_run)
    store = _store()
    end_time = int(time.time() * 1000)
    try:
        store.set_terminated(run_id, status, end_time)
    except Exception as exc:
        _unterminated[run_id] = (store, status, end_time)
        return error or exc
    _write_statuses()
    return error


def _write_statuses() -> None:
    """Write the statuses the store failed to write when their runs ended (it may be back)."""
    from store.errors import RunNotFoundError

    for rid, (store, status, end_time) in list(_unterminated.items()):
        try:
            store.set_terminated(rid, status, end_time)
        except RunNotFoundError:
            pass  # deleted for good meanwhile: nothing left to mark
        except Exception:
            return  # still failing: the next end_run or the exit tries again
        _unterminated.pop(rid, None)


def end_yielding_run() -> None:
    """End the active run if autolog started it for a plain training loop (see _yielding_runs)."""
    stack = _stack()
    if stack and stack[-1].info.run_id in _yielding_runs:
        end_run("FINISHED", run_id=stack[-1].info.run_id)


def register_end_run_hook(hook: Callable[[str, str], None]) -> None:
    """Call hook(run_id, status) before a fluent run is ended (used to flush metric buffers)."""
    if hook not in _end_run_hooks:
        _end_run_hooks.append(hook)


def detach_run(run_id: str) -> Callable[[str], None]:
    """Take the run off this thread's stack unended; the function returned ends it (status)."""
    global _last_active_run_id
    stack = _stack()
    if stack and stack[-1].info.run_id == run_id:
        stack.pop()
        _last_active_run_id = run_id

    def end(status: str) -> None:
        error = _end_one(run_id, status)
        if error is not None:
            raise error

    return end


def active_run() -> ActiveRun | None:
    """This thread's active run, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the run most recently ended in this process (e.g. by autolog)."""
    current = active_run()
    if current is not None:
        return _store().get_run(current.info.run_id)
    if _last_active_run_id is None:
        return None
    before_read(_last_active_run_id)
    return _store().get_run(_last_active_run_id)


def _ensure_run() -> str:
    """The active run's id, starting a run (left active) when there is none."""
    current = active_run()
    if current is None:
        current = start_run()
    return current.info.run_id


def _inherited_run_id() -> str | None:
    """The run a parent process (`autolog run`, or MLflow's `mlflow run`) started for this one."""
    return os.environ.get(ENV_RUN_ID) or os.environ.get("MLFLOW_RUN_ID") or None


def _run_id() -> str:
    return _ensure_run()


@atexit.register
def _end_runs_at_exit() -> None:
    failed = getattr(sys, "last_value", None) is not None and not isinstance(
        getattr(sys, "last_value", None), SystemExit
    )
    status = "FAILED" if failed else "FINISHED"
    stack = _stack()
    while stack:
        try:
            end_run(status)  # always takes the run off the stack
        except Exception:
            pass
    _write_statuses()  # a store still failing leaves them to the reaper (marked KILLED)


# -- logging into the active run ---------------------------------------------------------


def log_param(key: str, value: Any) -> Any:
    """Log one param (stored as text, no length cap) on the active run."""
    _store().log_param(_run_id(), key, value)
    return value


def log_params(params: dict[str, Any]) -> None:
    """Log several params; nested dicts are flattened with dots."""
    _store().log_batch(_run_id(), params=params)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log one metric point (NaN and +-inf allowed) on the active run."""
    _store().log_metric(_run_id(), key, value, timestamp, step or 0)


def log_metrics(
    metrics: dict[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    """Log several metrics at one step in one transaction."""
    ts = timestamp if timestamp is not None else int(time.time() * 1000)
    _store().log_batch(_run_id(), metrics=[(k, v, ts, step or 0) for k, v in metrics.items()])


def set_tag(key: str, value: Any) -> None:
    _store().set_tag(_run_id(), key, value)


def set_tags(tags: dict[str, Any]) -> None:
    _store().log_batch(_run_id(), tags=tags)


def delete_tag(key: str) -> None:
    _store().delete_tag(_run_id(), key)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Copy a local file into the active run's artifacts (under artifact_path)."""
    _store().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Copy a local folder's content into the active run's artifacts."""
    _store().log_artifacts(_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    """Write text to an artifact file, e.g. log_text(report, 'reports/summary.txt')."""
    Client().log_text(_run_id(), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> None:
    """Write a dict as JSON (or YAML for .yaml/.yml) to an artifact file."""
    Client().log_dict(_run_id(), dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    """Save a matplotlib figure to an artifact file (PNG, SVG, PDF by extension)."""
    Client().log_figure(_run_id(), figure, artifact_file)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    return str(_store().artifact_dir(_run_id(), artifact_path))


# -- reading -----------------------------------------------------------------------------


def log_input(dataset: Any, context: str | None = None, tags: dict[str, Any] | None = None) -> None:
    """Record a dataset (from ``autolog.data.from_pandas`` / ``from_numpy``) as an input of
    the active run, with its context (``"training"``, ``"eval"``, ...) as the
    ``mlflow.data.context`` tag; the same dataset logged again is stored once."""
    from autolog import data

    data.record_inputs(_store(), _run_id(), [data.dataset_input(dataset, context, tags)])


# -- the explicit client -----------------------------------------------------------------


class Client(TrackingClientMixin, RegistryClientMixin, LoggedModelClientMixin):
    """The explicit API under the fluent one (MLflow's MlflowClient names).

    :param tracking_uri: store to use (default: the fluent API's tracking URI).
    """

    def __init__(self, tracking_uri: str | None = None):
        self._uri = _absolute_uri(tracking_uri) if tracking_uri else None

    @property
    def tracking_uri(self) -> str:
        return self._uri or get_tracking_uri()

    @property
    def store(self) -> Store:
        return _store(self._uri)


MlflowClient = Client

"""What of :mod:`autolog.tracking` needs none of its process state: the Client's methods,
a new run's name and tags, the report of autolog's own failures when a run starts or ends,
the absolute form of a tracking URI.

:mod:`autolog.tracking` holds that state (tracking URI, store cache, active runs, as module
globals that tests reset by name); the Client's methods here reach the store only through
``self.store``. Every name here stays importable from :mod:`autolog.tracking`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence

from autolog import context
from autolog.errors import InvalidValueError
from store.entities import Experiment, FileInfo, Metric, Param, Run, RunTag

# typing.TYPE_CHECKING without importing typing (about a fifth of `import autolog`)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from store.sqlite import Store

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"

# Called with a run id (None: any run) before the Client reads runs, metrics or artifacts: the
# work an integration deferred to a background thread (autolog.batching.defer) lands first.
_read_hooks: list[Callable[[str | None], None]] = []


def register_read_hook(hook: Callable[[str | None], None]) -> None:
    """Call hook(run_id) before a read of that run (None: a search) through the tracking API."""
    if hook not in _read_hooks:
        _read_hooks.append(hook)


def before_read(run_id: str | None) -> None:
    for hook in _read_hooks:
        hook(run_id)


_ADJECTIVES = [
    "amber",
    "brave",
    "calm",
    "clever",
    "crisp",
    "daring",
    "eager",
    "fair",
    "gentle",
    "glad",
    "grand",
    "keen",
    "lucid",
    "merry",
    "neat",
    "noble",
    "quick",
    "quiet",
    "rapid",
    "sharp",
    "shy",
    "smart",
    "snug",
    "solid",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "witty",
]
_NOUNS = [
    "ant",
    "bear",
    "bird",
    "cat",
    "crow",
    "deer",
    "dove",
    "eel",
    "elk",
    "finch",
    "fox",
    "frog",
    "goat",
    "hare",
    "hawk",
    "heron",
    "lark",
    "lynx",
    "mole",
    "moth",
    "newt",
    "owl",
    "panda",
    "quail",
    "robin",
    "seal",
    "shrew",
    "snail",
    "swan",
    "tiger",
    "toad",
    "wolf",
    "wren",
    "yak",
]


def generate_run_name() -> str:
    import random

    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"


_VIEW_TYPES = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": None}


def runs_to_frame(runs: list[Run]) -> Any:
    """MLflow's search_runs DataFrame: one row per run, metrics.*, params.*, tags.* columns."""
    import pandas as pd

    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "status": run.info.status,
            "artifact_uri": run.info.artifact_uri,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
            "end_time": (
                pd.to_datetime(run.info.end_time, unit="ms", utc=True)
                if run.info.end_time
                else pd.NaT
            ),
        }
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    frame = pd.DataFrame(rows, columns=None if rows else base)
    if rows:
        rest = sorted(c for c in frame.columns if c not in base)
        ordered = [c for c in rest if c.startswith("metrics.")]
        ordered += [c for c in rest if c.startswith("params.")]
        ordered += [c for c in rest if c.startswith("tags.")]
        frame = frame[base + ordered]
    return frame


def _view(view_type: str | int) -> str | None:
    name: object = view_type
    if isinstance(view_type, int) and not isinstance(view_type, bool):  # MLflow's ViewType.ALL
        from autolog.entities import ViewType

        name = ViewType.to_string(view_type)
    try:
        return _VIEW_TYPES[name.upper()]  # type: ignore[attr-defined]
    except (KeyError, AttributeError):
        raise InvalidValueError(
            f"run_view_type={view_type!r} is not known; use ACTIVE_ONLY, DELETED_ONLY or ALL."
        ) from None


def _new_run_tags(
    log_system_tags: bool,
    run_name: str | None,
    parent_run_id: str | None,
    description: str | None,
    tags: dict[str, Any] | None,
) -> tuple[str, dict[str, Any]]:
    """(name, tags) of a run start_run creates: the user's tags override the system ones."""
    all_tags: dict[str, Any] = {}
    if log_system_tags:
        all_tags.update(context.run_context_tags())
    name = run_name or generate_run_name()
    all_tags[RUN_NAME_TAG] = name
    if parent_run_id:
        all_tags[PARENT_RUN_TAG] = parent_run_id
    if description:
        all_tags["mlflow.note.content"] = description
    all_tags.update(tags or {})
    return name, all_tags


class TrackingClientMixin:
    """Client's methods over ``self.store`` (the class in :mod:`autolog.tracking` supplies it)."""

    if TYPE_CHECKING:

        @property
        def store(self) -> Store: ...

    # experiments
    def create_experiment(self, name: str, tags: dict[str, Any] | None = None) -> str:
        return self.store.create_experiment(name, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def search_experiments(self, view_type: str | int = "ACTIVE_ONLY") -> list[Experiment]:
        return self.store.list_experiments(_view(view_type))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.store.set_experiment_tag(experiment_id, key, value)

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.delete_experiment(experiment_id)

    # runs
    def create_run(
        self,
        experiment_id: str = "0",
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        name = run_name or generate_run_name()
        all_tags = {RUN_NAME_TAG: name, **(tags or {})}
        return self.store.create_run(
            experiment_id, name, start_time, all_tags, parent_run_id, context.current_user()
        )

    def get_run(self, run_id: str) -> Run:
        before_read(run_id)
        return self.store.get_run(run_id)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        self.store.update_run(run_id, status=status, run_name=name)

    def set_terminated(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None
    ) -> None:
        self.store.set_terminated(run_id, status, end_time)

    def delete_run(self, run_id: str) -> None:
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str = "",
        run_view_type: str | int = "ACTIVE_ONLY",
        max_results: int = 1000,
        order_by: list[str] | None = None,
        output_format: str = "list",
        offset: int = 0,
    ) -> Any:
        """Runs matching a filter; ``output_format`` is ``"list"`` (default here) or ``"pandas"``."""
        if output_format not in ("list", "pandas"):
            raise InvalidValueError(
                f"output_format={output_format!r} is not supported; use 'pandas' or 'list'."
            )
        before_read(None)
        runs = self.store.search_runs(
            experiment_ids, filter_string, order_by, max_results, offset, _view(run_view_type)
        )
        return runs_to_frame(runs) if output_format == "pandas" else runs

    def get_parent_run(self, run_id: str) -> Run | None:
        before_read(run_id)
        parent = self.store.get_run(run_id).info.parent_run_id
        return None if parent is None else self.store.get_run(parent)

    # params, metrics, tags
    def log_param(self, run_id: str, key: str, value: Any) -> Any:
        self.store.log_param(run_id, key, value)
        return value

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
    ) -> None:
        self.store.log_metric(run_id, key, value, timestamp, step or 0)

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric] = (),
        params: Iterable[Param] | dict[str, Any] = (),
        tags: Iterable[RunTag] | dict[str, Any] = (),
    ) -> None:
        """Write metrics, params and tags in one transaction."""
        p = params if isinstance(params, dict) else {x.key: x.value for x in params}
        t = tags if isinstance(tags, dict) else {x.key: x.value for x in tags}
        self.store.log_batch(run_id, metrics=list(metrics), params=p, tags=t)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.store.set_tag(run_id, key, value)

    def log_inputs(self, run_id: str, datasets: Sequence[Any] | None = None) -> None:
        """Record ``DatasetInput`` entities (``store.entities``) as inputs of a run."""
        from autolog import data

        data.record_inputs(self.store, run_id, list(datasets or ()))

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(run_id, key)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        before_read(run_id)
        return self.store.get_metric_history(run_id, key)

    # artifacts
    def artifact_dir(self, run_id: str, artifact_path: str | None = "") -> Path:
        """The local folder of artifact_path inside the run's artifacts (not created)."""
        before_read(run_id)
        return self.store.artifact_dir(run_id, artifact_path)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self.store.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self.store.log_artifacts(run_id, local_dir, artifact_path)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        before_read(run_id)
        return self.store.list_artifacts(run_id, path)

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | None = None) -> str:
        """Copy an artifact (file or folder) out of the store; returns the local path."""
        import tempfile

        before_read(run_id)
        dst = dst_path or tempfile.mkdtemp(prefix="autolog-download-")
        return str(self.store.download_artifacts(run_id, path, dst))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.store.write_artifact_bytes(run_id, artifact_file, text.encode("utf-8"))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(dictionary, sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        self.log_text(run_id, text, artifact_file)

    def log_figure(
        self, run_id: str, figure: Any, artifact_file: str, **savefig_kwargs: Any
    ) -> None:
        with self.store.artifact_writer(run_id, artifact_file) as tmp:  # no half-written file
            figure.savefig(tmp, **{"bbox_inches": "tight", **savefig_kwargs})


def _start_system_metrics(run_id: str, flag: bool | None, nested: bool, resumed: bool) -> None:
    from autolog import system_metrics  # on first use: the sampler is opt-in

    system_metrics.on_start_run(run_id, flag, nested, resumed)


def _report_own_error(exc: Exception, run: Run) -> None:
    """Report a failure of end_run's own work under the integration concerned: the patched
    call in progress (a fit ending its run), else the integration that started the run."""
    from autolog import patching

    session = patching.current_session()
    if session is not None:
        name = session.integration
    else:
        name = run.data.tags.get(patching.INTEGRATION_TAG) or "end_run"
    report_own_error(exc, name)


def report_own_error(exc: Exception, integration: str) -> None:
    """One warning for a failure of autolog's own work (raised under AUTOLOG_TESTING).

    patching.report_error rate-limits per integration, so a store failing both during a
    training and when its run ends gives one warning.
    """
    from autolog import patching
    from autolog.integration import config_for

    silent = bool(getattr(config_for(integration), "silent", False))
    patching.report_error(integration, exc, silent)


def _absolute_uri(uri: str) -> str:
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(uri[len("sqlite:///") :])
    if uri.startswith("file://"):
        return os.path.abspath(uri[len("file://") :])
    if "://" in uri or uri.startswith("sqlite:"):
        return uri
    return os.path.abspath(uri)

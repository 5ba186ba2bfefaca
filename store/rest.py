"""The client side of a tracking server: a TrackingStore and RegistryStore over HTTP.

``open_store("http://host:5000")`` (or https) gives a :class:`RestStore`. Calls MLflow's API
has go to MLflow's endpoints with MLflow's shapes (so the same code also talks to an
``mlflow server``); the few reads and writes MLflow's API lacks use autolog's extension
endpoints under ``/api/2.0/autolog/``. Artifacts travel through the artifact proxy; reads
that need a local path get a copy in a per-store cache folder, checked with the same
containment as a local store.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from store import rest_json as j
from store.entities import Experiment, Metric, Run, RunInfo
from store.errors import StoreError
from store.rest_artifacts import RestArtifacts
from store.rest_fallback import MlflowFallbacks
from store.rest_http import Http
from store.rest_lane import Lane
from store.rest_logged_models import RestLoggedModels
from store.rest_registry import RestRegistry
from store.values import flatten

_EXT = "/api/2.0/autolog/"
_API = "/api/2.0/mlflow/"
_INF = float("inf")
_VIEW = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", None: "ALL"}


def _text(v: Any) -> Any:
    """Params' and tags' values as the text the store keeps (MLflow's server blanks a
    non-string value instead of converting it)."""
    return v if isinstance(v, str) else str(v)


def _kv(d: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [{"key": k, "value": _text(v)} for k, v in (d or {}).items()]


def _points(metrics: Iterable[Metric | tuple[str, Any, Any, Any]]) -> list[dict[str, Any]]:
    """The points of a log-batch body; finite floats and int steps and timestamps (what a
    library's history is) in one pass, the rest through _point."""
    return [
        {"key": m[0], "value": m[1], "timestamp": m[2], "step": m[3]}
        if type(m) is tuple and type(m[1]) is float and -_INF < m[1] < _INF
        else _point(m)
        for m in metrics
    ]


def _point(m: Metric | tuple[str, Any, Any, Any]) -> dict[str, Any]:
    key, value, ts, step = (m.key, m.value, m.timestamp, m.step) if isinstance(m, Metric) else m
    if type(value) is float:
        if value != value or value in (_INF, -_INF):
            value = j.dump_float(value)
    elif not isinstance(value, int | str | type(None)):
        try:
            value = j.dump_float(float(value))  # numpy and torch scalars
        except (TypeError, ValueError):
            value = str(value)
    return {"key": key, "value": value, "timestamp": ts, "step": step}


def _runs(got: dict[str, Any]) -> list[Run]:
    if "run_rows" in got:
        return [j.load_run_row(r) for r in got["run_rows"]]
    return [j.load_run(r) for r in got["runs"]]  # a server from before rows


class RestStore(RestArtifacts, RestRegistry, RestLoggedModels, MlflowFallbacks):
    """Runs, experiments, models and artifacts kept by a tracking server."""

    def __init__(self, url: str):
        self.http = Http(url)
        self.lane = Lane(self.http.url)
        self._local = threading.local()
        self.http.before = self._before_request
        self._fresh: dict[str, str] = {}  # run id -> experiment id, runs this client created
        self._sent: dict[str, set[str]] = {}  # fresh run id -> paths this client uploaded
        RestArtifacts.__init__(self)

    # -- the background lane (store/rest_lane.py) ------------------------------------------

    def _before_request(self, path: str) -> None:
        """Every request waits for the writes queued before it; a new run needs none of them."""
        if not path.endswith("/runs/create"):
            self.lane.flush()

    @contextmanager
    def deferring(self) -> Iterator[None]:
        """In this block (this thread), writes that answer nothing are queued on the lane
        instead of waited for: log_batch, set_tag, log_inputs, the end of a run, artifact and
        model-folder uploads, model records. Reads still see them (they wait for the lane)."""
        before = getattr(self._local, "deferring", False)
        self._local.deferring = True
        try:
            yield
        finally:
            self._local.deferring = before

    def defers(self) -> bool:
        """Whether a write made now is queued (in a deferring block, not on the lane)."""
        return bool(getattr(self._local, "deferring", False)) and not self.lane.on_lane()

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) on the lane when deferring, else now."""
        if self.defers():
            self.lane.defer(fn, *args)
        else:
            fn(*args)

    def flush(self) -> None:
        self.lane.flush()

    def fresh_artifact_path(self, run_id: str, artifact_path: str) -> Path | None:
        """In a deferring block, the (empty) local folder of a path in a run this client
        created, without asking the server; None otherwise (ask it)."""
        if not self.defers() or run_id not in self._fresh:
            return None
        path = self._contained(run_id, artifact_path)
        rel = path.relative_to(self._contained(run_id, "")).as_posix()
        sent = self._sent.get(run_id, ())
        if path.exists() or any(p == rel or p.startswith(rel + "/") for p in sent):
            return None
        return path

    @property
    def location(self) -> str:
        return self.http.url

    def close(self) -> None:
        try:
            self.lane.flush()
        finally:
            self.http.close()
            RestArtifacts.close(self)

    def _api(
        self, method: str, path: str, body: Any = None, params: Any = None, safe: bool = True
    ) -> dict[str, Any]:
        return self.http.call(method, _API + path, body, params, safe)

    def _ext(
        self, method: str, path: str, body: Any = None, params: Any = None, safe: bool = True
    ) -> dict[str, Any]:
        return self.http.call(method, _EXT + path, body, params, safe)

    # -- experiments ---------------------------------------------------------------------

    def create_experiment(self, name: str, tags: dict[str, Any] | None = None) -> str:
        body = {"name": name, "tags": _kv(tags)}
        return str(self._api("POST", "experiments/create", body, safe=False)["experiment_id"])

    def get_or_create_experiment(self, name: str) -> str:
        if self.mlflow_server:
            return self._mf_get_or_create_experiment(name)
        return str(self._ext("POST", "experiments/get-or-create", {"name": name})["experiment_id"])

    def get_experiment(self, experiment_id: str | int) -> Experiment:
        got = self._api("GET", "experiments/get", params={"experiment_id": str(experiment_id)})
        return j.load_experiment(got["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            got = self._api("GET", "experiments/get-by-name", params={"experiment_name": name})
        except LookupError:
            return None
        return j.load_experiment(got["experiment"])

    def list_experiments(self, lifecycle_stage: str | None = "active") -> list[Experiment]:
        out: list[Experiment] = []
        token = None
        while True:
            body = {"view_type": _VIEW[lifecycle_stage], "max_results": 1000, "page_token": token}
            got = self._api("POST", "experiments/search", body)
            out += [j.load_experiment(e) for e in got.get("experiments", [])]
            token = got.get("next_page_token")
            if not token:
                return out

    def set_experiment_tag(self, experiment_id: str | int, key: str, value: Any) -> None:
        body = {"experiment_id": str(experiment_id), "key": key, "value": _text(value)}
        self._api("POST", "experiments/set-experiment-tag", body)

    def delete_experiment(self, experiment_id: str | int) -> None:
        self._api("POST", "experiments/delete", {"experiment_id": str(experiment_id)})

    def restore_experiment(self, experiment_id: str | int) -> None:
        self._api("POST", "experiments/restore", {"experiment_id": str(experiment_id)})

    def rename_experiment(self, experiment_id: str | int, new_name: str) -> None:
        body = {"experiment_id": str(experiment_id), "new_name": new_name}
        self._api("POST", "experiments/update", body)

    def experiment_run_counts(self) -> dict[str, tuple[int, int | None]]:
        if self.mlflow_server:
            return self._mf_experiment_run_counts()
        counts = self._ext("GET", "experiments/run-counts")["counts"]
        return {k: (v[0], v[1]) for k, v in counts.items()}

    # -- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str | int = 0,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        run_id = run_id or uuid.uuid4().hex  # chosen here, so a retried create is recognised
        body = {
            "experiment_id": str(experiment_id),
            "run_name": run_name,
            "start_time": start_time,
            "tags": _kv(tags),
            "parent_run_id": parent_run_id,
            "user_id": user_id,
            "run_id": run_id,
        }
        try:
            got = self._api("POST", "runs/create", body, safe=False)
        except StoreError:
            try:  # a first attempt that was written but whose answer was lost
                return self.get_run(run_id)
            except StoreError:
                pass
            raise
        run = j.load_run(got["run"])
        if len(self._fresh) >= 1024:
            self._fresh.clear()
            self._sent.clear()
        self._fresh[run.info.run_id] = str(run.info.experiment_id)
        self._sent.pop(run.info.run_id, None)
        self._prefixes[run.info.run_id] = f"{run.info.experiment_id}/{run.info.run_id}/artifacts"
        return run

    def create_finished_runs(
        self,
        experiment_id: str | int,
        runs: Iterable[tuple[str | None, dict[str, Any], dict[str, Any], list[tuple]]],
        parent_run_id: str | None = None,
        user_id: str | None = None,
    ) -> list[str]:
        if self.mlflow_server:
            return self._mf_create_finished_runs(experiment_id, runs, parent_run_id, user_id)
        body = {
            "experiment_id": str(experiment_id),
            "parent_run_id": parent_run_id,
            "user_id": user_id,
            "runs": [
                {"run_name": name, "tags": _kv(tags), "params": _kv(flatten(params)),
                 "metrics": _points(metrics)}
                for name, tags, params, metrics in runs
            ],
        }  # fmt: skip
        return list(self._ext("POST", "runs/create-finished", body, safe=False)["run_ids"])

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> None:
        body = {"run_id": run_id, "status": status, "end_time": end_time, "run_name": run_name}
        body = {k: v for k, v in body.items() if v is not None}
        self.defer(self._api, "POST", "runs/update", body)

    def set_terminated(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None
    ) -> None:
        end = int(time.time() * 1000) if end_time is None else end_time
        self.update_run(run_id, status=status, end_time=end)

    def delete_run(self, run_id: str) -> None:
        self._api("POST", "runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self._api("POST", "runs/restore", {"run_id": run_id})

    def reap_dead_runs(self, force: bool = False) -> int:
        if self.mlflow_server:
            return 0  # MLflow's server keeps no host and pid to tell a dead run by
        return int(self._ext("POST", "runs/reap", {"force": force})["reaped"])

    def get_run(self, run_id: str) -> Run:
        return j.load_run(self._api("GET", "runs/get", params={"run_id": run_id})["run"])

    def get_run_info(self, run_id: str) -> RunInfo:
        return self.get_run(run_id).info

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        if self.mlflow_server:
            return [self.get_run(r) for r in run_ids]
        got = self._ext("POST", "runs/get-many", {"run_ids": list(run_ids), "format": "rows"})
        return _runs(got)

    def search_runs(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int | None = 1000,
        offset: int = 0,
        lifecycle_stage: str | None = "active",
    ) -> list[Run]:
        if self.mlflow_server:
            return self._mf_search_runs(
                experiment_ids, filter_string, order_by, max_results, offset, lifecycle_stage
            )
        body = {
            "experiment_ids": None if experiment_ids is None else [str(e) for e in experiment_ids],
            "filter": filter_string,
            "order_by": order_by,
            "max_results": max_results,
            "offset": offset,
            "lifecycle_stage": lifecycle_stage or "all",
            "format": "rows",
        }
        return _runs(self._ext("POST", "runs/search", body))

    def count_runs(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str = "",
        lifecycle_stage: str | None = "active",
    ) -> int:
        if self.mlflow_server:
            found = self._mf_search_runs(
                experiment_ids, filter_string, None, None, 0, lifecycle_stage
            )
            return len(found)
        body = {
            "experiment_ids": None if experiment_ids is None else [str(e) for e in experiment_ids],
            "filter": filter_string,
            "lifecycle_stage": lifecycle_stage or "all",
        }
        return int(self._ext("POST", "runs/count", body)["count"])

    def child_run_ids(self, run_id: str) -> list[str]:
        if self.mlflow_server:
            flt = f"tags.mlflow.parentRunId = '{run_id}'"
            return [r.info.run_id for r in self._mf_search_runs(None, flt, None, None, 0, None)]
        return list(self._ext("GET", "runs/children", params={"run_id": run_id})["run_ids"])

    # -- params, tags, metrics -----------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric | tuple[str, Any, Any, Any]] = (),
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        body = {
            "run_id": run_id,
            "metrics": _points(metrics),
            "params": _kv(flatten(params or {})),
            "tags": _kv(tags),
            # the server writes a batch once per key, so retrying after a lost answer is safe
            "idempotency_key": uuid.uuid4().hex,
        }
        # points carry NaN and infinities as strings: the fast encoder may write the body
        self.defer(
            functools.partial(self.http.call, finite=True), "POST", _API + "runs/log-batch", body
        )

    def log_metric(
        self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int = 0
    ) -> None:
        ts = int(time.time() * 1000) if timestamp is None else timestamp
        self.log_batch(run_id, metrics=[(key, value, ts, step)])

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self._api(
            "POST", "runs/log-parameter", {"run_id": run_id, "key": key, "value": _text(value)}
        )

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        body = {"run_id": run_id, "key": key, "value": _text(value)}
        self.defer(self._api, "POST", "runs/set-tag", body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._api("POST", "runs/delete-tag", {"run_id": run_id, "key": key})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        out: list[Metric] = []
        token = None
        while True:
            params = {"run_id": run_id, "metric_key": key, "max_results": 25_000}
            if token:
                params["page_token"] = token
            got = self._api("GET", "metrics/get-history", params=params)
            out += [j.load_metric(m) for m in got.get("metrics", [])]
            token = got.get("next_page_token")
            if not token:
                return out

    def metric_keys(self, run_id: str) -> list[str]:
        if self.mlflow_server:
            return sorted(self.get_run(run_id).data.metrics)
        return list(self._ext("GET", "metrics/keys", params={"run_id": run_id})["keys"])

    def sampled_metric_history(
        self,
        run_id: str,
        key: str,
        max_points: int,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> dict[str, Any]:
        if self.mlflow_server:
            return self._mf_sampled_metric_history(run_id, key, max_points, min_step, max_step)
        params = {"run_id": run_id, "metric_key": key, "max_points": max_points}
        params |= {
            k: v for k, v in (("min_step", min_step), ("max_step", max_step)) if v is not None
        }
        got = self._ext("GET", "metrics/sampled-history", params=params)
        return {**got, "values": [float(j.load_float(v)) for v in got["values"]]}

    # -- models (lineage) ----------------------------------------------------------------

    def record_model(
        self,
        model_uuid: str,
        run_id: str,
        artifact_path: str,
        flavors: list[str],
        created_time: int,
        signature: dict[str, Any] | None,
        files: dict[str, str] | None = None,
        model_id: str | None = None,
    ) -> None:
        body = {
            "model_uuid": model_uuid, "run_id": run_id, "artifact_path": artifact_path,
            "flavors": list(flavors), "created_time": created_time, "signature": signature,
            "files": files, "model_id": model_id,
        }  # fmt: skip
        if self.mlflow_server:
            return self._mf_record_model(body)
        self.defer(self._ext, "POST", "models/record", body)

    def model_file_digests(self, run_id: str, artifact_path: str) -> dict[str, str] | None:
        if self.mlflow_server:
            return self._mf_model_file_digests(run_id, artifact_path)
        params = {"run_id": run_id, "artifact_path": artifact_path}
        return self._ext("GET", "models/digests", params=params)["files"]

    def list_models(self, run_id: str) -> list[dict[str, Any]]:
        if self.mlflow_server:
            return self._mf_list_models(run_id)
        return list(self._ext("GET", "models/of-run", params={"run_id": run_id})["models"])

    def models_of_runs(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        if self.mlflow_server:
            found = {r: [m["artifact_path"] for m in self._mf_list_models(r)] for r in run_ids}
            return {r: paths for r, paths in found.items() if paths}
        return dict(self._ext("POST", "models/of-runs", {"run_ids": list(run_ids)})["models"])

    def logged_models(self, limit: int = 500) -> list[dict[str, Any]]:
        if self.mlflow_server:
            return []  # MLflow's server lists its own logged models, not autolog's lineage
        return list(self._ext("GET", "models/logged", params={"limit": limit})["models"])


def store_for_uri(uri: str) -> RestStore:
    return RestStore(uri)

"""The client side of logged models, dataset inputs and latest metrics (mixed into RestStore).

Logged models go through MLflow 3's endpoints (``/api/2.0/mlflow/logged-models...``) and
dataset inputs through ``runs/log-inputs``, so an ``mlflow server`` answers them too. What
MLflow's API lacks uses autolog's extension endpoints: a model's metrics without logging them
to its run again, ``search_datasets`` and ``get_latest_metrics`` (against MLflow: computed from
the run, or sent as MLflow sends them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from store import rest_json as j
from store.entities import DatasetInput, DatasetRecord, LoggedModel, LoggedModelMetric, Metric
from store.errors import InvalidValueError
from store.sqlite_inputs import check_model_output
from store.sqlite_logged_models import check_model_id, check_status
from store.values import check_dataset_inputs

if TYPE_CHECKING:
    from store.entities import Run

_MODELS = "logged-models"
_CLAUSE = re.compile(r"^\s*(\S+?)\s*(?:\s(ASC|DESC))?\s*$", re.I)


def _kv(d: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": v if isinstance(v, str) else str(v)} for k, v in (d or {}).items()]


def _order_by(order_by: Sequence[str | Mapping[str, Any]] | str | None) -> list[Any] | None:
    """Clauses ("metrics.acc DESC") as MLflow's OrderBy objects; dicts pass as they are."""
    if order_by is None:
        return None
    out: list[Any] = []
    for clause in [order_by] if isinstance(order_by, str) else order_by:
        if isinstance(clause, str) and (m := _CLAUSE.match(clause)):
            out.append(
                {"field_name": m.group(1), "ascending": (m.group(2) or "ASC").upper() == "ASC"}
            )
        else:
            out.append(clause)  # the server's store names a malformed one
    return out


class RestLoggedModels:
    if TYPE_CHECKING:

        @property
        def mlflow_server(self) -> bool: ...

        def _api(self, method: str, path: str, body: Any = None, params: Any = None,
                 safe: bool = True) -> dict[str, Any]: ...  # fmt: skip
        def _ext(self, method: str, path: str, body: Any = None, params: Any = None,
                 safe: bool = True) -> dict[str, Any]: ...  # fmt: skip
        def get_run(self, run_id: str) -> Run: ...
        def defer(self, fn: Any, *args: Any) -> None: ...
        def list_experiments(self, lifecycle_stage: str | None = "active") -> list[Any]: ...

    # -- logged models -------------------------------------------------------------------------

    def create_logged_model(
        self,
        experiment_id: str | int,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        model_type: str | None = None,
        *,
        artifact_path: str | None = None,
        model_id: str | None = None,
    ) -> LoggedModel:
        if model_id is not None and self.mlflow_server:
            raise InvalidValueError("MLflow's server chooses logged model ids; give none.")
        body = {
            "experiment_id": str(experiment_id), "name": name, "source_run_id": source_run_id,
            "tags": _kv(tags), "params": _kv(params), "model_type": model_type,
            # autolog's server keeps these; MLflow's ignores them
            "artifact_path": artifact_path, "model_id": model_id,
        }  # fmt: skip
        body = {k: v for k, v in body.items() if v is not None}
        return j.load_logged_model(self._api("POST", _MODELS, body, safe=False)["model"])

    def _model_path(self, model_id: str, tail: str = "") -> str:
        return f"{_MODELS}/{check_model_id(model_id)}{tail}"

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        params = {"allow_deleted": "true"} if allow_deleted else None
        got = self._api("GET", self._model_path(model_id), params=params)
        return j.load_logged_model(got["model"])

    def search_logged_models(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[str | Mapping[str, Any]] | str | None = None,
    ) -> list[LoggedModel]:
        if experiment_ids is None:  # MLflow's API requires them: every experiment's
            experiment_ids = [e.experiment_id for e in self.list_experiments(None)]
        wire_datasets = None
        if datasets is not None:
            wire_datasets = []
            for d in datasets:
                if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
                    raise InvalidValueError(
                        f"Invalid dataset {d!r} in datasets: give dicts such as "
                        "{'name': 'train'} or {'name': 'train', 'digest': '3f2a...'}."
                    )
                wire_datasets.append({"dataset_name": d["name"], "dataset_digest": d.get("digest")})
        out: list[LoggedModel] = []
        token = None
        while max_results is None or len(out) < max_results:
            page = 1000 if max_results is None else min(1000, max_results - len(out))
            body = {
                "experiment_ids": [str(e) for e in experiment_ids], "filter": filter_string,
                "datasets": wire_datasets, "max_results": page,
                "order_by": _order_by(order_by), "page_token": token,
            }  # fmt: skip
            got = self._api("POST", _MODELS + "/search", {k: v for k, v in body.items() if v})
            out += [j.load_logged_model(m) for m in got.get("models", [])]
            token = got.get("next_page_token")
            if not token:
                break
        return out

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel:
        body = {"model_id": model_id, "status": j.STATUS_NAMES[check_status(status)]}
        return j.load_logged_model(self._api("PATCH", self._model_path(model_id), body)["model"])

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, Any]) -> None:
        self._api("PATCH", self._model_path(model_id, "/tags"), {"tags": _kv(tags)})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._api("DELETE", self._model_path(model_id, "/tags/" + quote(key, safe="")))

    def log_logged_model_params(self, model_id: str, params: Mapping[str, Any]) -> None:
        body = {"model_id": model_id, "params": _kv(params)}
        self._api("POST", self._model_path(model_id, "/params"), body)

    def log_logged_model_metrics(
        self, model_id: str, metrics: Iterable[LoggedModelMetric | tuple]
    ) -> None:
        points = []
        for m in metrics:
            if isinstance(m, LoggedModelMetric):
                m = (m.key, m.value, m.timestamp, m.step, m.run_id, m.dataset_name,
                     m.dataset_digest)  # fmt: skip
            key, value, ts, step, run_id, dname, ddigest = (*m, None, None, None)[:7]
            point = {**j.dump_metric(Metric(key, value, ts, step)), "run_id": run_id,
                     "dataset_name": dname, "dataset_digest": ddigest, "model_id": model_id}  # fmt: skip
            points.append({k: v for k, v in point.items() if v is not None})
        if not points:
            return
        check_model_id(model_id)
        if not self.mlflow_server:
            self._ext("POST", f"{_MODELS}/{model_id}/metrics", {"metrics": points})
            return
        # MLflow takes a model's metrics only as run points carrying model_id; an identical
        # point already in the run's history is not added twice there
        by_run: dict[str, list[dict[str, Any]]] = {}
        for p in points:
            by_run.setdefault(p.get("run_id") or "", []).append(p)
        for run_id, items in by_run.items():
            if not run_id:
                raise InvalidValueError(
                    f"Metric {items[0]['key']!r} of {model_id} names no run_id: MLflow's server "
                    "takes a model's metrics only as points of a run."
                )
            self._api("POST", "runs/log-batch", {"run_id": run_id, "metrics": items})

    def delete_logged_model(self, model_id: str) -> None:
        self._api("DELETE", self._model_path(model_id))

    # -- dataset inputs, latest metrics --------------------------------------------------------

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None) -> None:
        items = check_dataset_inputs(datasets)  # a bad one named here, before any request
        if items:
            body = {"run_id": run_id, "datasets": j.dump_inputs(items)["dataset_inputs"]}
            self.defer(self._api, "POST", "runs/log-inputs", body)

    def log_outputs(self, run_id: str, models: Sequence[Any]) -> None:
        """MLflow 3's ``runs/outputs``: the logged models a run produced, with their steps."""
        outputs = [check_model_output(m) for m in models]  # a bad one named before any request
        if outputs:
            body = {"run_id": run_id, "models": j.dump_outputs(outputs)["model_outputs"]}
            self._api("POST", "runs/outputs", body)

    def search_datasets(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        digest: str | None = None,
        name: str | None = None,
        max_results: int = 1000,
    ) -> list[DatasetRecord]:
        if self.mlflow_server:
            raise InvalidValueError(
                "search_datasets needs an autolog server: MLflow's REST API has no call for it."
            )
        body = {
            "experiment_ids": None if experiment_ids is None else [str(e) for e in experiment_ids],
            "digest": digest, "name": name, "max_results": max_results,
        }  # fmt: skip
        got = self._ext("POST", "datasets/search", body)["datasets"]
        return [
            DatasetRecord(
                str(r["experiment_id"]),
                j.load_dataset_inputs([{"dataset": r["dataset"]}])[0].dataset,
                int(r["run_count"]),
            )
            for r in got
        ]

    def get_latest_metrics(self, run_id: str) -> list[Metric]:
        if not self.mlflow_server:
            got = self._ext("GET", "metrics/latest", params={"run_id": run_id})
            return [j.load_metric(m) for m in got["metrics"]]
        # MLflow's run answer has the latest values without step and time: the histories do
        now = int(time.time() * 1000)
        out = []
        for key in sorted(self.get_run(run_id).data.metrics):
            history = self.get_metric_history(run_id, key)  # type: ignore[attr-defined]
            out.append(max(history, key=lambda m: (m.step, m.timestamp)) if history
                       else Metric(key, float("nan"), now, 0))  # fmt: skip
        return out

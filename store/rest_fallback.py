"""What autolog's client does against a real ``mlflow server``, which lacks autolog's extension
endpoints (``/api/2.0/autolog/...``): the same store calls built from MLflow's own API.

The server's kind is asked once (``/api/3.0/mlflow/server-info``: ours says ``"server":
"autolog"``). Against MLflow: search pages with MLflow's page tokens (an offset, the format
both servers share), whole-folder uploads go file by file (so they appear file by file, not at
once), model lineage and file digests ride in a run tag (``autolog.models``), runs are never
reaped (MLflow keeps no pid), and the UI's downsampled histories are computed here from the
full history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store import rest_json as j
from store.errors import ArtifactExistsError, RegisteredModelExistsError, StoreError

if TYPE_CHECKING:
    from store.entities import Run
    from store.registry import ModelVersion
    from store.rest_http import Http

_VIEW = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", None: "ALL", "all": "ALL"}
MODELS_TAG = "autolog.models"


class MlflowFallbacks:
    if TYPE_CHECKING:  # the store calls of RestStore these are built from
        http: Http
        get_run: Any
        create_run: Any
        create_experiment: Any
        get_experiment_by_name: Any
        list_experiments: Any
        log_batch: Any
        set_terminated: Any
        set_tag: Any
        get_metric_history: Any
        search_model_versions: Any
        list_artifacts: Any
        log_artifact: Any

    _server_kind: str | None = None

    @property
    def mlflow_server(self) -> bool:
        """Whether the server is MLflow's (asked once; an unreachable server is asked again)."""
        if self._server_kind is None:
            resp = self.http.request("GET", "/api/3.0/mlflow/server-info")
            try:
                info = resp.json() if resp.status_code == 200 else {}
            except ValueError:
                info = {}
            self._server_kind = "autolog" if info.get("server") == "autolog" else "mlflow"
        return self._server_kind == "mlflow"

    # -- experiments and runs ------------------------------------------------------------

    def _mf_get_or_create_experiment(self, name: str) -> str:
        for _ in range(2):
            exp = self.get_experiment_by_name(name)
            if exp is not None:
                return str(exp.experiment_id)
            try:
                return self.create_experiment(name)
            except (RegisteredModelExistsError, StoreError):  # created meanwhile by another client
                continue
        raise StoreError(f"Could not get or create experiment {name!r} on {self.http.url}.")

    def _mf_search_runs(
        self,
        experiment_ids: Sequence[str | int] | None,
        filter_string: str,
        order_by: list[str] | None,
        max_results: int | None,
        offset: int,
        lifecycle_stage: str | None,
    ) -> list[Run]:
        ids = (
            [str(e) for e in experiment_ids]
            if experiment_ids is not None
            else [str(e.experiment_id) for e in self.list_experiments(None)]
        )
        out: list[Run] = []
        token = j.page_token(offset)
        while max_results is None or len(out) < max_results:
            page = 1000 if max_results is None else min(1000, max_results - len(out))
            body = {"experiment_ids": ids, "filter": filter_string, "order_by": order_by or [],
                    "max_results": page, "run_view_type": _VIEW[lifecycle_stage],
                    "page_token": token}  # fmt: skip
            got = self.http.call("POST", "/api/2.0/mlflow/runs/search", body)
            out += [j.load_run(r) for r in got.get("runs", [])]
            token = got.get("next_page_token")
            if not token:
                break
        return out

    def _mf_create_finished_runs(
        self,
        experiment_id: str | int,
        runs: Iterable[tuple[str | None, dict[str, Any], dict[str, Any], list[tuple]]],
        parent_run_id: str | None,
        user_id: str | None,
    ) -> list[str]:
        ids = []
        for name, tags, params, metrics in runs:
            run = self.create_run(experiment_id, run_name=name, tags=tags,
                                  parent_run_id=parent_run_id, user_id=user_id)  # fmt: skip
            rid = run.info.run_id
            self.log_batch(rid, metrics=metrics, params=params)
            self.set_terminated(rid)
            ids.append(rid)
        return ids

    def _mf_experiment_run_counts(self) -> dict[str, tuple[int, int | None]]:
        counts: dict[str, tuple[int, int | None]] = {}
        for r in self._mf_search_runs(None, "", None, None, 0, "active"):
            n, last = counts.get(r.info.experiment_id, (0, None))
            start = r.info.start_time
            newest = start if last is None or (start is not None and start > last) else last
            counts[r.info.experiment_id] = (n + 1, newest)
        return counts

    def _mf_sampled_metric_history(
        self, run_id: str, key: str, max_points: int, min_step: int | None, max_step: int | None
    ) -> dict[str, Any]:
        points = [
            m for m in sorted(self.get_metric_history(run_id, key), key=lambda m: m.step)
            if (min_step is None or m.step >= min_step) and (max_step is None or m.step <= max_step)
        ]  # fmt: skip
        total, stride = len(points), max(1, -(-len(points) // max(1, max_points)))
        points = points[::stride]  # every stride-th point (the autolog server keeps min/max)
        return {
            "total": total,
            "downsampled": stride > 1,
            "bucket_width": stride if stride > 1 else None,
            "steps": [m.step for m in points],
            "values": [m.value for m in points],
            "timestamps": None if stride > 1 else [m.timestamp for m in points],
        }

    # -- model lineage, in a run tag -----------------------------------------------------

    def _mf_list_models(self, run_id: str) -> list[dict[str, Any]]:
        raw = self.get_run(run_id).data.tags.get(MODELS_TAG)
        return list(json.loads(raw)) if raw else []

    def _mf_record_model(self, row: dict[str, Any]) -> None:
        rows = [r for r in self._mf_list_models(row["run_id"])
                if r["artifact_path"] != row["artifact_path"]]  # fmt: skip
        self.set_tag(row["run_id"], MODELS_TAG, json.dumps([*rows, row], separators=(",", ":")))

    def _mf_model_file_digests(self, run_id: str, artifact_path: str) -> dict[str, str] | None:
        for row in self._mf_list_models(run_id):
            if row["artifact_path"] == artifact_path:
                return row.get("files")
        return None

    # -- registry ------------------------------------------------------------------------

    def _mf_versions(self, name: str) -> list[ModelVersion]:
        escaped = name.replace("'", "\\'")
        return self.search_model_versions(f"name = '{escaped}'", max_results=None)

    def _mf_latest_version_number(self, name: str) -> int | None:
        return max((int(v.version) for v in self._mf_versions(name)), default=None)

    def _mf_registry_summary(self, name: str) -> str:
        versions = sorted(self._mf_versions(name), key=lambda v: int(v.version))
        if not versions:
            return "it has no versions"
        listed = ", ".join(f"{v.version} ({v.current_stage})" for v in versions)
        return f"its versions: {listed}"

    # -- artifacts -----------------------------------------------------------------------

    def _mf_upload_folder(self, run_id: str, rel: str, folder: Path, replace: bool) -> None:
        if not replace and self.list_artifacts(run_id, rel):
            raise ArtifactExistsError(f"Run {run_id} already has artifacts at {rel!r}.")
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                sub = path.parent.relative_to(folder).as_posix()
                self.log_artifact(run_id, path, rel if sub == "." else f"{rel}/{sub}")

    def _mf_walk_artifacts(self, run_id: str, limit: int, path: str = "") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for f in self.list_artifacts(run_id, path or None):
            if limit <= 0:
                break
            name = f.path.rsplit("/", 1)[-1]
            if f.is_dir:
                children = self._mf_walk_artifacts(run_id, limit - 1, f.path)
                out.append({"name": name, "path": f.path, "is_dir": True, "children": children})
                limit -= 1 + _count(children)
            else:
                out.append({"name": name, "path": f.path, "is_dir": False,
                            "file_size": f.file_size})  # fmt: skip
                limit -= 1
        return out


def _count(tree: list[dict[str, Any]]) -> int:
    return sum(1 + _count(e.get("children", [])) for e in tree)

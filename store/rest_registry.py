"""The model registry over MLflow's REST API (mixed into :class:`store.rest.RestStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from store import rest_json as j
from store.errors import RegisteredModelExistsError
from store.registry import ModelVersion, RegisteredModel

if TYPE_CHECKING:
    from store.rest_http import Http

_API = "/api/2.0/mlflow/"
_EXT = "/api/2.0/autolog/registry/"


class RestRegistry:
    if TYPE_CHECKING:
        http: Http
        mlflow_server: bool

        def _mf_latest_version_number(self, name: str) -> int | None: ...
        def _mf_registry_summary(self, name: str) -> str: ...

    def _reg(
        self, method: str, path: str, body: Any = None, params: Any = None, safe: bool = True
    ) -> dict[str, Any]:
        return self.http.call(method, _API + path, body, params, safe)

    def _version(
        self, method: str, path: str, body: Any = None, params: Any = None
    ) -> ModelVersion:
        return j.load_version(self._reg(method, path, body, params)["model_version"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        return j.load_model(
            self._reg("GET", "registered-models/get", params={"name": name})["registered_model"]
        )

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self._version(
            "GET", "model-versions/get", params={"name": name, "version": str(version)}
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._version(
            "GET", "registered-models/alias", params={"name": name, "alias": alias}
        )

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        body = {"name": name, "stages": list(stages) if stages else None}
        got = self._reg("POST", "registered-models/get-latest-versions", body)
        return [j.load_version(v) for v in got.get("model_versions", [])]

    def latest_version_number(self, name: str) -> int | None:
        if self.mlflow_server:
            self.get_registered_model(name)  # RegisteredModelNotFoundError, as locally
            return self._mf_latest_version_number(name)
        return self.http.call("GET", _EXT + "summary", params={"name": name})["latest"]

    def registry_summary(self, name: str) -> str:
        if self.mlflow_server:
            return self._mf_registry_summary(name)
        return str(self.http.call("GET", _EXT + "summary", params={"name": name})["summary"])

    def _search(
        self, path: str, field: str, flt: str | None, limit: int | None, order: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = None
        while True:
            page = 1000 if limit is None else min(1000, limit - len(out))
            params: dict[str, Any] = {"filter": flt or "", "max_results": page}
            if order:
                params["order_by"] = list(order)
            if token:
                params["page_token"] = token
            got = self._reg("GET", path, params=params)
            out += got.get(field, [])
            token = got.get("next_page_token")
            if not token or (limit is not None and len(out) >= limit):
                return out

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int | None = 100,
        order_by: Sequence[str] | None = None,
    ) -> list[RegisteredModel]:
        found = self._search(
            "registered-models/search", "registered_models", filter_string, max_results, order_by
        )
        return [j.load_model(m) for m in found]

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = 10_000,
        order_by: Sequence[str] | None = None,
    ) -> list[ModelVersion]:
        found = self._search(
            "model-versions/search", "model_versions", filter_string, max_results, order_by
        )
        return [j.load_version(v) for v in found]

    def model_versions_of_run(self, run_id: str) -> list[ModelVersion]:
        if self.mlflow_server:
            return self.search_model_versions(f"run_id = '{run_id}'", max_results=None)
        got = self.http.call("GET", _EXT + "versions-of-run", params={"run_id": run_id})
        return [j.load_version(v) for v in got["model_versions"]]

    def create_registered_model(
        self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        body = {"name": name, "tags": [{"key": k, "value": str(v)} for k, v in (tags or {}).items()],
                "description": description}  # fmt: skip
        return j.load_model(
            self._reg("POST", "registered-models/create", body, safe=False)["registered_model"]
        )

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        body = {"name": name, "description": description}
        return j.load_model(
            self._reg("PATCH", "registered-models/update", body)["registered_model"]
        )

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        body = {"name": name, "new_name": new_name}
        return j.load_model(
            self._reg("POST", "registered-models/rename", body, safe=False)["registered_model"]
        )

    def delete_registered_model(self, name: str) -> None:
        self._reg("DELETE", "registered-models/delete", {"name": name})

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self._reg(
            "POST", "registered-models/set-tag", {"name": name, "key": key, "value": str(value)}
        )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._reg("DELETE", "registered-models/delete-tag", {"name": name, "key": key})

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        storage_location: str | None = None,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        user_id: str | None = None,
        run_link: str | None = None,
        create_model: bool = False,
    ) -> ModelVersion:
        body = {
            "name": name, "source": source, "run_id": run_id, "description": description,
            "tags": [{"key": k, "value": str(v)} for k, v in (tags or {}).items()],
            "user_id": user_id, "run_link": run_link, "create_model": create_model,
        }  # fmt: skip
        if create_model and self.mlflow_server:  # create_model is autolog's field
            try:
                self.create_registered_model(name)
            except RegisteredModelExistsError:
                pass
        got = self._reg("POST", "model-versions/create", body, safe=False)
        return j.load_version(got["model_version"])

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        body = {"name": name, "version": str(version), "description": description}
        return self._version("PATCH", "model-versions/update", body)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        body = {"name": name, "version": str(version), "key": key, "value": str(value)}
        self._reg("POST", "model-versions/set-tag", body)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        body = {"name": name, "version": str(version), "key": key}
        self._reg("DELETE", "model-versions/delete-tag", body)

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        body = {"name": name, "version": str(version), "stage": stage,
                "archive_existing_versions": archive_existing_versions}  # fmt: skip
        return self._version("POST", "model-versions/transition-stage", body)

    def delete_model_version(self, name: str, version: int | str) -> None:
        self._reg("DELETE", "model-versions/delete", {"name": name, "version": str(version)})

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        body = {"name": name, "alias": alias, "version": str(version)}
        self._reg("POST", "registered-models/alias", body)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._reg("DELETE", "registered-models/alias", {"name": name, "alias": alias})

"""MLflow's REST JSON shapes for the store's records, both ways (server and client share them).

Shapes follow mlflow/protos/service.proto and model_registry.proto as MLflow's server writes
them (snake_case, int64 as JSON numbers, doubles NaN/Infinity as the strings protobuf uses).
Fields MLflow lacks (a run's parent_run_id, host, pid; a version's storage_location) ride
along as extra keys, which MLflow's clients ignore.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from typing import Any

import orjson

from store import errors
from store.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelOutput,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
)
from store.registry import ModelVersion, RegisteredModel

# exception class -> (MLflow error code, HTTP status)
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", 404)
_INF = float("inf")
_INVALID = ("INVALID_PARAMETER_VALUE", 400)
_EXISTS = ("RESOURCE_ALREADY_EXISTS", 400)


def error_code(exc: BaseException) -> tuple[str, int]:
    """MLflow's error code and HTTP status for an exception raised by a store."""
    if isinstance(exc, LookupError):
        return _NOT_FOUND
    if isinstance(exc, errors.RegisteredModelExistsError | errors.ArtifactExistsError):
        return _EXISTS
    if isinstance(exc, ValueError):
        return _INVALID
    return ("INTERNAL_ERROR", 500)


def exception_for(body: dict[str, Any], status: int) -> errors.AutologError:
    """The store exception an error response stands for (the server names ours exactly)."""
    message = str(body.get("message") or f"HTTP {status}")
    cls = getattr(errors, str(body.get("autolog_error") or ""), None)
    if isinstance(cls, type) and issubclass(cls, errors.AutologError):
        return cls(message)
    code = body.get("error_code")
    if code == "RESOURCE_DOES_NOT_EXIST" or status == 404:
        return errors.RunNotFoundError(message)
    if code == "RESOURCE_ALREADY_EXISTS":
        return errors.RegisteredModelExistsError(message)
    if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE") or status == 400:
        return errors.InvalidValueError(message)
    return errors.StoreError(message)


def dump_float(v: float) -> float | str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def loads(raw: bytes) -> Any:
    """A JSON body parsed by orjson (a 66 KB batch of 1,000 points in half the standard
    library's time); what orjson refuses (NaN and Infinity tokens, lone surrogates, UTF-16)
    goes to the standard library, which reads it, or raises the error it always raised.
    orjson reads an integer past 64 bits as a float: a step or timestamp that large is refused
    all the same, its message showing it as 1e+20."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def dumps_finite(body: Any) -> bytes:
    """A request body as JSON bytes by orjson, for bodies whose floats are all finite (orjson
    writes NaN and infinity as null): log_batch's, whose points carry those as strings. A value
    orjson cannot write (an integer past 64 bits) falls back to the standard library."""
    try:
        return orjson.dumps(body, default=str)
    except orjson.JSONEncodeError:
        return json.dumps(body, default=str, separators=(",", ":")).encode()


def load_float(v: Any) -> Any:
    """A JSON double (number or protobuf's "NaN"/"Infinity" strings); anything else unchanged
    so the store's own check names the bad value."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def page_token(offset: int, after: Any = None, query: str | None = None) -> str | None:
    """MLflow's page token format (base64 of {"offset": n}), so tokens work on both servers;
    a run search's token also carries the last run's sort key (``after``) and which search it
    belongs to (``query``): see :func:`page_after`."""
    if not offset:
        return None
    token: dict[str, Any] = {"offset": offset}
    if after is not None:
        token |= {"after": after, "query": query}
    return base64.b64encode(json.dumps(token).encode()).decode()


def search_digest(*args: Any) -> str:
    """A short digest of a search's arguments: a page token's cursor counts only for them."""
    text = json.dumps(args, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def page_after(token: Any, query: str) -> Any:
    """The sort key a run search's token carries (its next page starts after that run), or
    None: no token, none carried, or a token of another search (then its offset counts)."""
    if not token:
        return None
    try:
        got = json.loads(base64.b64decode(str(token), validate=True))
    except ValueError:
        return None
    if not isinstance(got, dict) or got.get("query") != query:
        return None
    return got.get("after")


def page_offset(token: Any) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(str(token), validate=True))["offset"]
    except (ValueError, KeyError, TypeError):
        offset = None
    if type(offset) is not int or offset < 0:
        raise errors.InvalidValueError(
            f"Invalid page_token {token!r}: pass the next_page_token of a previous response."
        )
    return offset


def _kv(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in d.items()]


def _unkv(items: Any) -> dict[str, str]:
    return {str(i["key"]): i.get("value", "") for i in items or []}


# -- tracking ------------------------------------------------------------------------------------


def dump_experiment(e: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": str(e.experiment_id),
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "tags": _kv(e.tags),
    }


def load_experiment(d: dict[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(d["experiment_id"]),
        name=d.get("name", ""),
        artifact_location=d.get("artifact_location", ""),
        lifecycle_stage=d.get("lifecycle_stage", "active"),
        creation_time=_int(d.get("creation_time")),
        last_update_time=_int(d.get("last_update_time")),
        tags=_unkv(d.get("tags")),
    )


def proxied_artifact_uri(experiment_id: str, run_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def dump_run_info(i: RunInfo) -> dict[str, Any]:
    info = {
        "run_id": i.run_id,
        "run_uuid": i.run_id,
        "experiment_id": str(i.experiment_id),
        "run_name": i.run_name or "",
        "user_id": i.user_id or "",
        "status": i.status,
        "start_time": i.start_time,
        "end_time": i.end_time,
        "artifact_uri": proxied_artifact_uri(str(i.experiment_id), i.run_id),
        "lifecycle_stage": i.lifecycle_stage,
        "parent_run_id": i.parent_run_id,
        "host": i.host,
        "pid": i.pid,
    }
    return {k: v for k, v in info.items() if v is not None}


def dump_run(r: Run) -> dict[str, Any]:
    data = {
        # the store keeps only the latest value per key for a run (step and time: get-history)
        "metrics": [{"key": k, "value": dump_float(v)} for k, v in r.data.metrics.items()],
        "params": _kv(r.data.params),
        "tags": _kv(r.data.tags),
    }
    return {
        "info": dump_run_info(r.info),
        "data": data,
        "inputs": dump_inputs(r.inputs.dataset_inputs),
        "outputs": dump_outputs(r.outputs.model_outputs),
    }


def dump_outputs(items: list[LoggedModelOutput]) -> dict[str, Any]:
    """A run's ``outputs`` as MLflow's RunOutputs: the logged models it produced."""
    if not items:
        return {}
    return {"model_outputs": [{"model_id": m.model_id, "step": m.step} for m in items]}


def load_outputs(d: Any) -> RunOutputs:
    items = (d or {}).get("model_outputs") or []
    return RunOutputs([load_model_output(m) for m in items])


def load_model_output(m: Any) -> LoggedModelOutput:
    """MLflow's ModelOutput (``step`` an int64, so a string in proto JSON) as the store's."""
    if not isinstance(m, dict) or not isinstance(m.get("model_id"), str):
        raise errors.InvalidValueError(
            f'Invalid model output {m!r}: give objects {{"model_id": ..., "step": ...}}.'
        )
    step = m.get("step", 0)
    if isinstance(step, str) and step.lstrip("-").isdigit():
        step = int(step)
    if isinstance(step, bool) or not isinstance(step, int):
        raise errors.InvalidValueError(f"Invalid step {step!r} of model output: give an integer.")
    return LoggedModelOutput(m["model_id"], step)


def dump_inputs(items: list[DatasetInput]) -> dict[str, Any]:
    """A run's ``inputs`` as MLflow's RunInputs (schema and profile omitted when None)."""
    if not items:
        return {}
    return {
        "dataset_inputs": [
            {
                "tags": [{"key": t.key, "value": t.value} for t in d.tags],
                "dataset": {k: v for k, v in d.dataset.to_dict().items() if v is not None},
            }
            for d in items
        ]
    }


def load_inputs(d: Any) -> RunInputs:
    return RunInputs(load_dataset_inputs((d or {}).get("dataset_inputs")))


def load_dataset_inputs(items: Any) -> list[DatasetInput]:
    """MLflow's DatasetInput objects as the store's (a missing field left for the store's
    check to name)."""
    out = []
    for item in items or []:
        if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
            raise errors.InvalidValueError(
                f'Invalid dataset input {item!r}: give objects {{"dataset": {{...}}, '
                '"tags": [...]}.'
            )
        ds = item["dataset"]
        dataset = Dataset(
            ds.get("name"), ds.get("digest"), ds.get("source_type"), ds.get("source"),
            ds.get("schema"), ds.get("profile"),
        )  # fmt: skip
        tags = [InputTag(t.get("key"), t.get("value", "")) for t in item.get("tags") or []]
        out.append(DatasetInput(dataset, tags))
    return out


def load_run(d: dict[str, Any]) -> Run:
    i, data = d.get("info", {}), d.get("data", {})
    info = RunInfo(
        run_id=i.get("run_id") or i["run_uuid"],
        experiment_id=str(i.get("experiment_id", "0")),
        run_name=i.get("run_name") or None,
        status=i.get("status", "RUNNING"),
        start_time=_int(i.get("start_time")),
        end_time=_int(i.get("end_time")),
        user_id=i.get("user_id") or None,
        artifact_uri=i.get("artifact_uri", ""),
        lifecycle_stage=i.get("lifecycle_stage", "active"),
        parent_run_id=i.get("parent_run_id"),
        host=i.get("host"),
        pid=_int(i.get("pid")),
    )
    metrics = {m["key"]: float(load_float(m.get("value", 0.0))) for m in data.get("metrics", [])}
    tags = _unkv(data.get("tags"))
    if info.parent_run_id is None and "mlflow.parentRunId" in tags:
        info.parent_run_id = tags["mlflow.parentRunId"]
    data_ = RunData(params=_unkv(data.get("params")), metrics=metrics, tags=tags)
    return Run(info, data_, load_inputs(d.get("inputs")), load_outputs(d.get("outputs")))


# autolog's own endpoints answer many runs as rows: a fifth of the bytes of MLflow's shape and
# a third of the encoding time, which is most of what search through a server adds to local
_INFO_FIELDS = (
    "run_id", "experiment_id", "run_name", "status", "start_time", "end_time", "user_id",
    "lifecycle_stage", "parent_run_id", "host", "pid",
)  # fmt: skip


def dump_run_row(r: Run) -> list[Any]:
    i, d = r.info, r.data
    metrics = {k: dump_float(v) if type(v) is not float or v != v or v in (_INF, -_INF) else v
               for k, v in d.metrics.items()}  # fmt: skip
    row = [*(getattr(i, f) for f in _INFO_FIELDS), d.params, metrics, d.tags]
    if r.inputs.dataset_inputs or r.outputs.model_outputs:  # most runs have none: short rows
        row.append(dump_inputs(r.inputs.dataset_inputs))
    if r.outputs.model_outputs:
        row.append(dump_outputs(r.outputs.model_outputs))
    return row


def load_run_row(row: list[Any]) -> Run:
    fields = dict(zip(_INFO_FIELDS, row[: len(_INFO_FIELDS)], strict=True))
    fields["experiment_id"] = str(fields["experiment_id"])
    info = RunInfo(
        **fields,
        artifact_uri=proxied_artifact_uri(fields["experiment_id"], fields["run_id"]),
    )
    params, metrics, tags, *extra = row[len(_INFO_FIELDS) :]
    metrics = {k: v if type(v) is float else float(load_float(v)) for k, v in metrics.items()}
    data = RunData(params=params, metrics=metrics, tags=tags)
    inputs = load_inputs(extra[0]) if extra else RunInputs()
    return Run(info, data, inputs, load_outputs(extra[1]) if len(extra) > 1 else RunOutputs())


def dump_metric(m: Metric) -> dict[str, Any]:
    return {"key": m.key, "value": dump_float(m.value), "timestamp": m.timestamp, "step": m.step}


def load_metric(d: dict[str, Any]) -> Metric:
    return Metric(
        d["key"], float(load_float(d.get("value", 0.0))), _int(d.get("timestamp")) or 0,
        _int(d.get("step")) or 0,
    )  # fmt: skip


# -- logged models (MLflow 3's LoggedModel message) ------------------------------------------------

STATUS_NAMES = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
_STATUS_NUMBERS = {1: "PENDING", 2: "READY", 3: "FAILED"}
_STATUS_TEXTS = {v: k for k, v in STATUS_NAMES.items()}


def load_status(v: Any) -> Any:
    """A LoggedModelStatus as protobuf's JSON gives it (name or number) -> the store's text;
    anything else unchanged, for the store's check to name."""
    if isinstance(v, int) and not isinstance(v, bool):
        return _STATUS_NUMBERS.get(v, v)
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return _STATUS_NUMBERS.get(int(v), v)
    return _STATUS_TEXTS.get(v, v) if isinstance(v, str) else v


def dump_model_metric(m: LoggedModelMetric) -> dict[str, Any]:
    out = {**dump_metric(m), "dataset_name": m.dataset_name, "dataset_digest": m.dataset_digest,
           "model_id": m.model_id, "run_id": m.run_id}  # fmt: skip
    return {k: v for k, v in out.items() if v is not None}


def dump_logged_model(m: LoggedModel, artifact_uri: str) -> dict[str, Any]:
    """``artifact_uri``: where a client reaches the files (the proxy, not the server's disk);
    artifact_path and lifecycle_stage ride along for autolog's client."""
    info = {
        "model_id": m.model_id,
        "experiment_id": str(m.experiment_id),
        "name": m.name,
        "creation_timestamp_ms": m.creation_timestamp,
        "last_updated_timestamp_ms": m.last_updated_timestamp,
        "artifact_uri": artifact_uri,
        "status": STATUS_NAMES.get(m.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
        "model_type": m.model_type,
        "source_run_id": m.source_run_id,
        "status_message": m.status_message,
        "tags": _kv(m.tags),
        "artifact_path": m.artifact_path,
        "lifecycle_stage": m.lifecycle_stage,
    }
    data = {"params": _kv(m.params), "metrics": [dump_model_metric(x) for x in m.metrics]}
    return {"info": {k: v for k, v in info.items() if v is not None}, "data": data}


def load_logged_model(d: dict[str, Any]) -> LoggedModel:
    i, data = d.get("info", {}), d.get("data", {})
    metrics = [
        LoggedModelMetric(
            x["key"],
            float(load_float(x.get("value", 0.0))),
            _int(x.get("timestamp")) or 0,
            _int(x.get("step")) or 0,
            x.get("run_id"),
            x.get("dataset_name"),
            x.get("dataset_digest"),
            x.get("model_id") or i.get("model_id"),
        )  # fmt: skip
        for x in data.get("metrics") or []
    ]
    return LoggedModel(
        model_id=i["model_id"],
        experiment_id=str(i.get("experiment_id", "0")),
        name=i.get("name", ""),
        artifact_location=i.get("artifact_uri", ""),
        creation_timestamp=_int(i.get("creation_timestamp_ms")) or 0,
        last_updated_timestamp=_int(i.get("last_updated_timestamp_ms")) or 0,
        status=load_status(i.get("status", "LOGGED_MODEL_PENDING")),
        status_message=i.get("status_message") or None,
        model_type=i.get("model_type") or None,
        source_run_id=i.get("source_run_id") or None,
        artifact_path=i.get("artifact_path") or None,
        lifecycle_stage=i.get("lifecycle_stage", "active"),
        tags=_unkv(i.get("tags")),
        params=_unkv(data.get("params")),
        metrics=metrics,
    )


def _int(v: Any) -> int | None:
    return None if v is None or v == "" else int(v)


# -- registry ------------------------------------------------------------------------------------


def dump_version(v: ModelVersion) -> dict[str, Any]:
    out = {**v.to_dict(), "tags": _kv(v.tags), "aliases": list(v.aliases)}
    # a folder on the server's machine: clients reach the model through source and the proxy
    out.pop("storage_location", None)
    return {k: val for k, val in out.items() if val is not None}


def load_version(d: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=d["name"],
        version=str(d["version"]),
        creation_timestamp=_int(d.get("creation_timestamp")) or 0,
        last_updated_timestamp=_int(d.get("last_updated_timestamp")) or 0,
        description=d.get("description"),
        user_id=d.get("user_id"),
        current_stage=d.get("current_stage", "None"),
        source=d.get("source", ""),
        run_id=d.get("run_id") or None,
        status=d.get("status", "READY"),
        status_message=d.get("status_message"),
        tags=_unkv(d.get("tags")),
        run_link=d.get("run_link") or None,
        aliases=list(d.get("aliases") or []),
        storage_location=d.get("storage_location"),
    )


def dump_model(m: RegisteredModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
        "latest_versions": [dump_version(v) for v in m.latest_versions],
        "tags": _kv(m.tags),
        "aliases": [{"alias": a, "version": v} for a, v in m.aliases.items()],
    }
    if m.description is not None:
        out["description"] = m.description
    return out


def load_model(d: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=d["name"],
        creation_timestamp=_int(d.get("creation_timestamp")) or 0,
        last_updated_timestamp=_int(d.get("last_updated_timestamp")) or 0,
        description=d.get("description"),
        latest_versions=[load_version(v) for v in d.get("latest_versions", [])],
        tags=_unkv(d.get("tags")),
        aliases={a["alias"]: str(a["version"]) for a in d.get("aliases", [])},
    )

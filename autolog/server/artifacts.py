"""The artifact proxy: MLflow's ``/api/2.0/mlflow-artifacts/artifacts`` (upload, streamed
download, list) over the store's artifact methods, plus autolog's whole-folder upload.

Paths arrive as ``<experiment_id>/<run_id>/artifacts/<path>`` (the run's ``artifact_uri`` is
``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``); the part after ``artifacts`` goes
to the store, whose containment refuses ``..``, absolute paths, NUL bytes and links out of the
run, exactly as for local calls.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from autolog.server.endpoints import endpoint, required, typed
from store.errors import (
    ArtifactPathError,
    InvalidValueError,
    LoggedModelNotFoundError,
    RunNotFoundError,
)

MAX_ARTIFACT_BYTES = int(os.environ.get("AUTOLOG_SERVER_MAX_ARTIFACT_BYTES", 10 * 2**30))
SMALL_UPLOAD_BYTES = 2**20  # uploads up to this size are held in memory, not spilled to a file


class TooLargeError(InvalidValueError):
    """A request body is larger than the server accepts."""


def split_path(store: Any, path: str) -> tuple[str, str]:
    """(owner, path inside its artifacts) of a proxied path, the owner checked to exist in the
    experiment named: a run (``<exp>/<run_id>/artifacts/<path>``) or a logged model
    (``<exp>/models/<model_id>/artifacts/<path>``, MLflow 3's folder of a model; the store's
    artifact methods take its id in place of a run id)."""
    parts = path.replace("\\", "/").split("/", 3)
    if len(parts) > 2 and parts[1] == "models" and parts[2].startswith("m-"):
        model_id = parts[2]
        head, _, rel = (parts[3] if len(parts) > 3 else "").partition("/")
        if head != "artifacts":
            raise ArtifactPathError(
                f"Artifact path {path!r} is not of the form "
                "<experiment_id>/models/<model_id>/artifacts/<path>."
            )
        model = store.get_logged_model(model_id)
        if str(model.experiment_id) != parts[0]:
            raise LoggedModelNotFoundError(
                f"Logged model {model_id!r} is not in experiment {parts[0]!r}."
            )
        return model_id, rel
    if len(parts) < 3 or parts[2] != "artifacts" or not parts[0] or not parts[1]:
        raise ArtifactPathError(
            f"Artifact path {path!r} is not of the form <experiment_id>/<run_id>/artifacts/<path>."
        )
    info = store.get_run_info(parts[1])
    if str(info.experiment_id) != parts[0]:
        raise RunNotFoundError(f"Run {parts[1]!r} is not in experiment {parts[0]!r}.")
    return parts[1], parts[3] if len(parts) > 3 else ""


def _check_size(size: int) -> None:
    if size > MAX_ARTIFACT_BYTES:
        raise TooLargeError(
            f"Artifact upload exceeds {MAX_ARTIFACT_BYTES} bytes; raise "
            "AUTOLOG_SERVER_MAX_ARTIFACT_BYTES on the server to accept larger files."
        )


async def _body_to_file(chunks: Any, size: int, out: Any) -> int:
    async for chunk in chunks:
        size += len(chunk)
        _check_size(size)
        out.write(chunk)
    return size


async def upload(request: Request) -> Response:
    store = request.app.state.tracking_store
    run_id, rel = await run_in_threadpool(split_path, store, request.path_params["path"])
    # a small body (most files a run logs) goes to storage from memory in one call: no
    # temporary folder to make and remove (on S3 that was a third of an upload's time)
    chunks, size = request.stream(), 0
    head: list[bytes] = []
    async for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        _check_size(size)
        if size > SMALL_UPLOAD_BYTES:
            break
    else:
        await run_in_threadpool(store.write_artifact_bytes, run_id, rel, b"".join(head))
        return JSONResponse({})
    # entering the writer reads the run's folder and leaving it uploads (to S3: a PUT): both
    # in a worker thread, not on the event loop that every other request of the process shares
    writer = await run_in_threadpool(store.artifact_writer, run_id, rel)
    tmp = await run_in_threadpool(writer.__enter__)
    try:
        with open(tmp, "wb") as out:
            out.write(b"".join(head))
            await _body_to_file(chunks, size, out)
    except BaseException as exc:
        if not await run_in_threadpool(writer.__exit__, type(exc), exc, exc.__traceback__):
            raise
    else:
        await run_in_threadpool(writer.__exit__, None, None, None)
    return JSONResponse({})


async def download(request: Request) -> Response:
    store = request.app.state.tracking_store
    run_id, rel = await run_in_threadpool(split_path, store, request.path_params["path"])
    local = await run_in_threadpool(store.artifact_local_path, run_id, rel)
    if not local.is_file():
        raise RunNotFoundError(f"No artifact file at {rel!r} in run {run_id}.")
    return FileResponse(local, media_type="application/octet-stream")


def _list(store: Any, path: str) -> dict[str, Any]:
    run_id, rel = split_path(store, path)
    files = store.list_artifacts(run_id, rel or None)
    return {
        "files": [
            {"path": f.path.rsplit("/", 1)[-1], "is_dir": f.is_dir}
            | ({} if f.is_dir else {"file_size": f.file_size})
            for f in files
        ]
    }


async def list_files(request: Request) -> Response:
    store = request.app.state.tracking_store
    path = request.query_params.get("path", "")
    return JSONResponse(await run_in_threadpool(_list, store, path))


@endpoint("artifacts/list", "GET")
def list_run_artifacts(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    """MLflow's older listing by run id (paths relative to the run's artifact root)."""
    rid = typed(args, "run_id", str) or required(args, "run_uuid")
    files = store.list_artifacts(rid, typed(args, "path", str) or None)
    run = store.get_run(rid)
    return {
        "root_uri": f"mlflow-artifacts:/{run.info.experiment_id}/{rid}/artifacts",
        "files": [
            {"path": f.path, "is_dir": f.is_dir} | ({} if f.is_dir else {"file_size": f.file_size})
            for f in files
        ],
    }


@endpoint("/api/2.0/autolog/artifacts/walk", "GET")
def walk(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"tree": store.walk_artifacts(required(args, "run_id"), required(args, "limit", int))}


async def upload_folder(request: Request) -> Response:
    """A whole folder (a tar body) that appears at once, through staged_artifact_dir."""
    store = request.app.state.tracking_store
    q = request.query_params
    run_id, path = q.get("run_id", ""), q.get("path", "")
    replace = q.get("replace", "true").lower() == "true"
    with tempfile.TemporaryFile() as buf:
        await _body_to_file(request.stream(), 0, buf)
        buf.seek(0)
        await run_in_threadpool(_unpack_staged, store, run_id, path, replace, buf)
    return JSONResponse({})


def _unpack_staged(store: Any, run_id: str, path: str, replace: bool, buf: Any) -> None:
    store.get_run(run_id)
    with store.staged_artifact_dir(run_id, path, replace=replace) as staging:
        try:
            with tarfile.open(fileobj=buf, mode="r:") as tar:
                # the "data" filter refuses absolute names, "..", links out and device files
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ArtifactPathError(f"The uploaded folder for {path!r} is refused: {exc}") from exc

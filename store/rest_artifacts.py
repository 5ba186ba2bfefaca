"""A run's artifacts through the server's artifact proxy (mixed into :class:`store.rest.RestStore`).

Uploads and downloads stream through ``/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts``.
A path a caller needs locally (``artifact_local_path``: model loading, the UI) is copied into
this store's cache folder, one sub-folder per run, and checked there with the local store's
own containment: no caller's path and no link found in the cache leads out of the run's copy.
A folder written whole (``staged_artifact_dir``) travels as one tar and appears at once.
In a deferring block (:meth:`store.rest.RestStore.deferring`) the store's background lane sends
uploads: a file of up to ``DEFER_MAX_BYTES`` read into memory, a whole folder moved aside and
tarred there.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from store.artifacts.local import PARTIAL_PREFIX, TEMP_PREFIX, ArtifactRoot, check_relative
from store.entities import FileInfo
from store.errors import ArtifactPathError, InvalidValueError, RunNotFoundError

if TYPE_CHECKING:
    from store.entities import Run
    from store.rest_http import Http
    from store.rest_lane import Lane

_PROXY = "/api/2.0/mlflow-artifacts/artifacts"
DEFER_MAX_BYTES = 64 * 2**20


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


class RestArtifacts:
    if TYPE_CHECKING:
        http: Http

        mlflow_server: bool

        lane: Lane
        _fresh: dict[str, str]
        _sent: dict[str, set[str]]

        def get_run(self, run_id: str) -> Run: ...
        def defers(self) -> bool: ...
        def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> Any: ...
        def _mf_upload_folder(self, run_id: str, rel: str, folder: Path, replace: bool) -> None: ...
        def _mf_walk_artifacts(
            self, run_id: str, limit: int, path: str = ""
        ) -> list[dict[str, Any]]: ...

    def __init__(self) -> None:
        self._cache = Path(tempfile.mkdtemp(prefix="autolog-rest-cache-"))
        self._root = ArtifactRoot(self._cache)
        self._prefixes: dict[str, str] = {}
        self._failed_folders: set[tuple[str, str]] = set()

    def close(self) -> None:
        shutil.rmtree(self._cache, ignore_errors=True)

    # -- addresses -----------------------------------------------------------------------

    def _prefix(self, run_id: str) -> str:
        """<experiment_id>/<run_id>/artifacts: the run's place in the proxy."""
        prefix = self._prefixes.get(run_id)
        if prefix is None:
            if run_id.startswith("m-"):  # a logged model's own folder (MLflow 3)
                uri = self.get_logged_model(run_id).artifact_location
            else:
                uri = self.get_run(run_id).info.artifact_uri
            if not uri.startswith("mlflow-artifacts:"):
                raise InvalidValueError(
                    f"Run {run_id}'s artifacts are at {uri!r}, not behind the server's artifact "
                    "proxy; start the server with artifact serving (--artifacts-destination)."
                )
            rest = uri[len("mlflow-artifacts:") :]
            if rest.startswith("//"):  # mlflow-artifacts://host:port/path
                rest = rest[2:].partition("/")[2]
            prefix = self._prefixes[run_id] = rest.strip("/")
        return prefix

    def _url(self, run_id: str, rel: str) -> str:
        return f"{_PROXY}/{quote(_join(self._prefix(run_id), rel))}"

    def _base(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", ".."):
            raise RunNotFoundError(f"Run {run_id!r} not found.")
        return self._cache / run_id

    # -- writes --------------------------------------------------------------------------

    def _put(self, run_id: str, rel: str, content: Any) -> None:
        if not rel:
            raise InvalidValueError("artifact_file must name a file, e.g. 'notes/summary.txt'.")
        url = self._url(run_id, rel)
        self._note_sent(run_id, rel)
        if self.defers() and (data := _small(content)) is not None:
            self.lane.defer(self._send, "PUT", url, data, None)
        else:
            self._send("PUT", url, content, None)

    def _note_sent(self, run_id: str, rel: str) -> None:
        if run_id in self._fresh:
            self._sent.setdefault(run_id, set()).add(rel)

    def _send_folder(self, run_id: str, rel: str, folder: Path, params: Any) -> None:
        """The folder as one tar to the server, which puts it in place at once."""
        try:
            with tempfile.TemporaryFile() as buf:
                with tarfile.open(fileobj=buf, mode="w:") as tar:
                    for entry in sorted(folder.iterdir()):
                        tar.add(entry, arcname=entry.name)
                self._send("PUT", "/api/2.0/autolog/artifacts/staged", buf, params)
        except Exception:
            if self.lane.on_lane():  # in the background: the run says what is missing
                self._failed_folders.add((run_id, rel))
                from store.artifacts.s3 import record_missing

                record_missing(self, run_id, [rel])
            raise

    def upload_failed(self, run_id: str, artifact_path: str | None = None) -> bool:
        """Whether the background upload of a whole folder (a model) of the run failed (at
        artifact_path; None: any)."""
        if artifact_path is None:
            return any(r == run_id for r, _ in self._failed_folders)
        return (run_id, check_relative(artifact_path)) in self._failed_folders

    def _send(self, method: str, url: str, content: Any, params: Any) -> None:
        _check(self.http.request(method, url, params=params, content=content), self.http.url)

    def write_artifact_bytes(self, run_id: str, artifact_file: str, data: bytes) -> Path:
        rel = check_relative(artifact_file)
        self._put(run_id, rel, data)
        return Path(rel)

    @contextmanager
    def _writer(self, run_id: str, rel: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="autolog-upload-") as tmp:
            path = Path(tmp) / (rel.rsplit("/", 1)[-1] or "artifact")
            yield path
            with open(path, "rb") as f:
                self._put(run_id, rel, f)

    def artifact_writer(self, run_id: str, artifact_file: str) -> AbstractContextManager[Path]:
        rel = check_relative(artifact_file)
        if not rel:
            raise InvalidValueError("artifact_file must name a file, e.g. 'notes/summary.txt'.")
        return self._writer(run_id, rel)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Path:
        rel = _join(check_relative(artifact_path), os.path.basename(os.fspath(local_path)))
        with open(local_path, "rb") as f:
            self._put(run_id, rel, f)
        return Path(rel)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Path:
        base = check_relative(artifact_path)
        for folder, dirs, files in os.walk(local_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith((TEMP_PREFIX, PARTIAL_PREFIX)))
            sub = os.path.relpath(folder, local_dir).replace(os.sep, "/")
            for name in sorted(files):
                full = os.path.join(folder, name)
                if name.startswith((TEMP_PREFIX, PARTIAL_PREFIX)) or os.path.islink(full):
                    continue
                with open(full, "rb") as f:
                    self._put(run_id, _join(base, "" if sub == "." else sub, name), f)
        return Path(base)

    def staged_artifact_dir(
        self, run_id: str, artifact_path: str, replace: bool = True
    ) -> AbstractContextManager[Path]:
        rel = check_relative(artifact_path)
        if not rel:
            raise InvalidValueError(
                f"artifact_path must name a folder inside the run, e.g. 'model'; got {artifact_path!r}."
            )
        return self._staged(run_id, rel, replace)

    @contextmanager
    def _staged(self, run_id: str, rel: str, replace: bool) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="autolog-staged-") as tmp:
            folder = Path(tmp) / "folder"
            folder.mkdir()
            yield folder
            if self.mlflow_server:
                self._mf_upload_folder(run_id, rel, folder, replace)
                return
            params = {"run_id": run_id, "path": rel, "replace": str(replace).lower()}
            self._note_sent(run_id, rel)
            if not self.defers():
                self._send_folder(run_id, rel, folder, params)
                return
            # the lane tars and sends it; the folder moves out of the block's temporary one
            kept = Path(tempfile.mkdtemp(prefix="autolog-staged-"))
            os.rename(folder, kept / "folder")
            self.lane.defer(self._send_kept_folder, run_id, rel, kept, params)

    def _send_kept_folder(self, run_id: str, rel: str, kept: Path, params: Any) -> None:
        try:
            self._send_folder(run_id, rel, kept / "folder", params)
        finally:
            shutil.rmtree(kept, ignore_errors=True)

    # -- reads ---------------------------------------------------------------------------

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        rel = check_relative(path)
        resp = self.http.request("GET", _PROXY, params={"path": _join(self._prefix(run_id), rel)})
        files = _check(resp, self.http.url).get("files", [])
        return [
            FileInfo(_join(rel, f["path"]), bool(f.get("is_dir")), f.get("file_size"))
            for f in files
        ]

    def walk_artifacts(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        if self.mlflow_server:
            return self._mf_walk_artifacts(run_id, limit)
        got = self.http.call(
            "GET", "/api/2.0/autolog/artifacts/walk", params={"run_id": run_id, "limit": limit}
        )
        return list(got["tree"])

    def _fetch_file(self, run_id: str, rel: str, dest: Path) -> bool:
        """Download one file to dest (written whole, then renamed); False when rel is no file."""
        resp = self.http.request("GET", self._url(run_id, rel), stream=True)
        try:
            if resp.status_code == 404 or (resp.status_code == 400 and self.mlflow_server):
                return False  # MLflow's proxy answers 400 for a folder
            if resp.status_code >= 400:
                resp.read()
                _check(resp, self.http.url)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
            with open(tmp, "wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
            os.replace(tmp, dest)
            return True
        finally:
            resp.close()

    def _fetch_tree(self, run_id: str, rel: str, dest: Path) -> bool:
        """Download rel (a file or a folder) to dest; False when nothing is there."""
        if rel and self._fetch_file(run_id, rel, dest):
            return True
        entries = self.list_artifacts(run_id, rel)
        if not entries:
            return False
        dest.mkdir(parents=True, exist_ok=True)
        for f in entries:
            name = f.path.rsplit("/", 1)[-1]
            if f.is_dir:
                self._fetch_tree(run_id, f.path, dest / name)
            else:
                self._fetch_file(run_id, f.path, dest / name)
        return True

    def download_artifacts(
        self, run_id: str, path: str | None, dst_path: str | os.PathLike[str]
    ) -> Path:
        rel = check_relative(path)
        out = Path(dst_path) / (rel.rsplit("/", 1)[-1] if rel else "artifacts")
        Path(dst_path).mkdir(parents=True, exist_ok=True)
        if not self._fetch_tree(run_id, rel, out):
            raise ArtifactPathError(f"No artifact at {path!r} in run {run_id}.")
        return out

    def _contained(self, run_id: str, path: str | None) -> Path:
        base = self._base(run_id)
        base.mkdir(exist_ok=True)
        target = self._root.contained(base, path)
        real_base, real = os.path.realpath(base), os.path.realpath(target)
        if real != real_base and not real.startswith(real_base + os.sep):
            raise ArtifactPathError(
                f"Artifact path {path!r} resolves outside the artifacts of run {run_id}."
            )
        return target

    def artifact_local_path(self, run_id: str, path: str | None = "") -> Path:
        """A fresh local copy of an artifact (file or folder) in this store's cache."""
        target = self._contained(run_id, path)
        rel = check_relative(path)
        with tempfile.TemporaryDirectory(dir=self._cache, prefix=PARTIAL_PREFIX) as tmp:
            got = Path(tmp) / "got"
            if self._fetch_tree(run_id, rel, got):
                self._contained(run_id, path)  # re-checked: nothing on the way became a link
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif target.exists() or target.is_symlink():
                    target.unlink()
                os.replace(got, target)
            elif not rel:
                target.mkdir(parents=True, exist_ok=True)
        return target

    def artifact_dir(self, run_id: str, artifact_path: str | None = "") -> Path:
        """A local copy (see artifact_local_path); a path with nothing there does not exist."""
        return self.artifact_local_path(run_id, artifact_path)


def _small(content: Any) -> bytes | None:
    """The bytes of an upload small enough to keep in memory until the lane sends it."""
    if isinstance(content, bytes):
        return content
    content.seek(0, os.SEEK_END)
    size = content.tell()
    content.seek(0)
    return content.read() if size <= DEFER_MAX_BYTES else None


def _check(resp: Any, url: str) -> dict[str, Any]:
    from store.rest_http import answer

    return answer(resp, url)

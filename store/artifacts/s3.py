"""Artifacts in S3-compatible object storage (boto3): a store's artifact root ``s3://bucket/prefix``.

A run's artifacts live under ``s3://bucket/prefix/<experiment_id>/<run_id>/artifacts/``, as on
disk. Reached with the usual AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``/``AWS_REGION``, profiles) plus the endpoint of an S3-compatible server in
``AUTOLOG_S3_ENDPOINT_URL`` (or MLflow's ``MLFLOW_S3_ENDPOINT_URL``). Files above
``AUTOLOG_S3_MULTIPART_MB`` (8) go up in parts, in parallel; downloads stream to disk.

Paths given by callers are checked exactly as for a local root (no ``..``, no absolute path,
no NUL); object keys are built from the checked parts only. Reads that need a local file
(``artifact_local_path``, a model's folder) download into a cache folder
(``AUTOLOG_ARTIFACT_CACHE``, else ``~/.cache/autolog/artifacts``), replacing what was cached
there by rename, never writing through a link found in it.

Folders written whole (``staged_artifact_dir``, models): filled locally, uploaded under a hidden
``.autolog-partial-...`` key prefix of the run (never listed), then copied into place by the
server with ``MLmodel`` copied last, then the staging keys removed. S3 has no atomic rename of
many keys, so the rule is: **a model folder without MLmodel is incomplete** (model loading
refuses it, and every pickle's digest is checked after download anyway). Replacing an existing
folder removes its stale keys after the new files are in.

When the object store cannot be reached, the write raises :class:`ArtifactStorageError` (the
integrations turn it into one warning and the fit goes on) and the run gets the tag
``autolog.missing_artifacts``: the JSON list of artifact paths that did not reach storage.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.artifacts.local import PARTIAL_PREFIX, TEMP_PREFIX, check_relative
from store.entities import FileInfo
from store.errors import (
    ArtifactExistsError,
    ArtifactPathError,
    ArtifactStorageError,
    InvalidValueError,
)

MISSING_TAG = "autolog.missing_artifacts"
_HIDDEN = (PARTIAL_PREFIX, TEMP_PREFIX)


class S3Location:
    """``s3://bucket/key``; ``/`` appends a relative path (what ``Path`` does for a folder)."""

    def __init__(self, bucket: str, key: str = ""):
        self.bucket = bucket
        self.key = key.strip("/")

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
            raise InvalidValueError(f"Artifact root {uri!r} is not s3://bucket[/prefix].")
        bucket, _, key = uri[5:].partition("/")
        return cls(bucket, key)

    def __truediv__(self, rel: str | os.PathLike[str]) -> S3Location:
        rel = check_relative(os.fspath(rel))
        return S3Location(self.bucket, "/".join(p for p in (self.key, rel) if p))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"

    __repr__ = __str__

    @property
    def name(self) -> str:
        return self.key.rpartition("/")[2]

    @property
    def prefix(self) -> str:
        """The key prefix of the objects inside this folder."""
        return f"{self.key}/" if self.key else ""


def record_missing(store: Any, run_id: str, paths: list[str]) -> None:
    """Add ``paths`` to the run's :data:`MISSING_TAG` list (any store with get_run/set_tag,
    the REST client too); best effort: the tracking store may be down as well."""
    try:
        old = store.get_run(run_id).data.tags.get(MISSING_TAG)
        missing = json.loads(old) if old else []
        missing += [p for p in paths if p not in missing]
        store.set_tag(run_id, MISSING_TAG, json.dumps(missing))
    except Exception:  # the caller's own error says what failed
        pass


def s3_client() -> Any:
    """A boto3 S3 client configured from the environment (see the module doc)."""
    import boto3
    from botocore.config import Config

    endpoint = (
        os.environ.get("AUTOLOG_S3_ENDPOINT_URL")
        or os.environ.get("MLFLOW_S3_ENDPOINT_URL")
        or None
    )
    config = Config(
        connect_timeout=float(os.environ.get("AUTOLOG_S3_CONNECT_TIMEOUT", "5")),
        read_timeout=60,
        retries={"mode": "standard", "total_max_attempts": 3},
        s3={"addressing_style": "path"} if endpoint else None,
        # a checksum only where S3 requires one (as before boto3 1.36): the default, one on
        # every PUT, cost 0.35 ms of CPU per upload and some S3-compatible servers refuse it
        request_checksum_calculation="when_required",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    mb = 1024 * 1024
    part = int(float(os.environ.get("AUTOLOG_S3_MULTIPART_MB", "8")) * mb)
    return TransferConfig(multipart_threshold=part, multipart_chunksize=max(part, 5 * mb))


def _cache_root() -> Path:
    folder = os.environ.get("AUTOLOG_ARTIFACT_CACHE")
    return Path(folder) if folder else Path.home() / ".cache" / "autolog" / "artifacts"


def _hidden(name: str) -> bool:
    return name.startswith(_HIDDEN)


_client_lock = threading.Lock()


def _new_client_lock() -> None:
    global _client_lock
    _client_lock = threading.Lock()  # a forked child must not inherit one held at the fork


os.register_at_fork(after_in_child=_new_client_lock)


class S3Root:
    """The store's ``artifacts`` when its root is in S3: ``root`` and a lazily made client."""

    def __init__(self, uri: str):
        self.root = S3Location.parse(uri)
        self._client: Any = None
        self._pid = -1
        self.buckets_seen: set[str] = set()  # buckets known to exist (a miss is asked again)

    @property
    def client(self) -> Any:
        if self._client is None or self._pid != os.getpid():  # boto3 clients are not fork-safe
            # one client for the threads that ask at once (a server's first burst of uploads
            # made one each: 8 clients, about 60 ms of CPU apiece)
            with _client_lock:
                if self._client is None or self._pid != os.getpid():
                    self._client, self._pid = s3_client(), os.getpid()
        return self._client


class S3RunArtifacts:
    """The artifact methods of a tracking store whose artifact root is in S3 (mixed in first)."""

    if TYPE_CHECKING:
        artifacts: S3Root

        def run_artifact_base(self, run_id: str) -> Any: ...
        def get_run(self, run_id: str) -> Any: ...
        def set_tag(self, run_id: str, key: str, value: Any) -> None: ...

    # -- plumbing

    def _base(self, run_id: str) -> S3Location:
        base = self.run_artifact_base(run_id)
        return base if isinstance(base, S3Location) else S3Location.parse(str(base))

    def _call(self, run_id: str, paths: list[str], fn: Any, *args: Any, **kw: Any) -> Any:
        """fn(*args, **kw) on the client; a failure to reach storage is recorded on the run."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kw)
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            if paths:
                self._record_missing(run_id, paths)
            raise ArtifactStorageError(
                f"Object storage at {self.artifacts.root} failed for {', '.join(paths) or 'a read'}"
                f" of run {run_id}: {exc}. Check AUTOLOG_S3_ENDPOINT_URL and the AWS credentials."
            ) from exc

    def _record_missing(self, run_id: str, paths: list[str]) -> None:
        record_missing(self, run_id, paths)

    def _check_bucket(self, run_id: str, paths: list[str], bucket: str) -> None:
        """Refuse a write into a missing bucket, as AWS does (some S3-compatible servers create
        the bucket on the first PUT instead; a bucket nobody made is a typo, not a wish).
        Any other answer (403 without ListBucket, storage down) is left to the write itself."""
        if bucket in self.artifacts.buckets_seen:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.artifacts.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                self._record_missing(run_id, paths)
                raise ArtifactStorageError(
                    f"Object storage at {self.artifacts.root} failed for {', '.join(paths)} of"
                    f" run {run_id}: bucket {bucket!r} does not exist (NoSuchBucket). Create it"
                    f" first (e.g. `aws s3 mb s3://{bucket}`) or point the artifact root at an"
                    " existing one."
                ) from exc
        except BotoCoreError:
            return  # not reached: the write's own retries and error say so
        self.artifacts.buckets_seen.add(bucket)

    def _upload(self, run_id: str, src: str, rel: str, record: str | None = None) -> S3Location:
        """Upload src to rel; a failure records ``record`` (default rel) as missing."""
        target = self._base(run_id) / rel
        missing = [record or rel]
        self._check_bucket(run_id, missing, target.bucket)
        client = self.artifacts.client
        config = _transfer_config()
        if os.path.getsize(src) < config.multipart_threshold:
            # one PUT: upload_file would start a transfer manager and its threads per file
            with open(src, "rb") as body:
                self._call(
                    run_id, missing, client.put_object, Bucket=target.bucket, Key=target.key,
                    Body=body,
                )  # fmt: skip
            return target
        self._call(
            run_id, missing, client.upload_file, src, target.bucket, target.key, Config=config
        )
        return target

    def _objects(self, folder: S3Location) -> Iterator[dict[str, Any]]:
        """Every object under folder (recursively), hidden work files included."""
        pages = self.artifacts.client.get_paginator("list_objects_v2").paginate(
            Bucket=folder.bucket, Prefix=folder.prefix
        )
        for page in pages:
            yield from page.get("Contents", [])

    # -- writing

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Any:
        src = Path(local_path)
        if not src.is_file():
            raise ArtifactPathError(f"Cannot log artifact {str(src)!r}: no such file.")
        rel = check_relative("/".join(filter(None, [check_relative(artifact_path), src.name])))
        return self._upload(run_id, str(src), rel)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Any:
        src = Path(local_dir)
        if not src.is_dir():
            raise ArtifactPathError(f"Cannot log artifacts from {str(src)!r}: not a directory.")
        prefix = check_relative(artifact_path)
        for folder, dirs, files in os.walk(src, followlinks=True):
            dirs.sort()
            sub = os.path.relpath(folder, src).replace(os.sep, "/")
            for name in sorted(files):
                rel = "/".join(p for p in (prefix, sub, name) if p not in ("", "."))
                self._upload(run_id, os.path.join(folder, name), check_relative(rel))
        return self._base(run_id) / prefix

    def write_artifact_bytes(self, run_id: str, artifact_file: str, data: bytes) -> Any:
        rel = check_relative(artifact_file)
        if not rel:
            raise InvalidValueError("artifact_file must name a file, e.g. 'notes/summary.txt'.")
        target = self._base(run_id) / rel
        self._check_bucket(run_id, [rel], target.bucket)
        client = self.artifacts.client
        self._call(
            run_id, [rel], client.put_object, Bucket=target.bucket, Key=target.key, Body=data
        )
        return target

    @contextmanager
    def _writer(self, run_id: str, rel: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="autolog-s3-") as tmp:
            path = Path(tmp) / f"{TEMP_PREFIX}{Path(rel).name}"
            yield path  # the suffix stays: savefig picks its format by it
            self._upload(run_id, str(path), rel)

    def artifact_writer(self, run_id: str, artifact_file: str) -> AbstractContextManager[Path]:
        """A local temporary path; uploaded (one PUT: whole or not at all) when the block ends."""
        rel = check_relative(artifact_file)
        if not rel:
            raise InvalidValueError("artifact_file must name a file, e.g. 'notes/summary.txt'.")
        self._base(run_id)  # RunNotFoundError before the caller writes anything
        return self._writer(run_id, rel)

    # -- reading

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        rel = check_relative(path)
        folder = self._base(run_id) / rel
        out = []
        pages = self.artifacts.client.get_paginator("list_objects_v2").paginate(
            Bucket=folder.bucket, Prefix=folder.prefix, Delimiter="/"
        )
        for page in self._call(run_id, [], list, pages):
            for sub in page.get("CommonPrefixes", []):
                name = sub["Prefix"][len(folder.prefix) :].rstrip("/")
                if not _hidden(name):
                    out.append(FileInfo(f"{rel}/{name}" if rel else name, True, None))
            for obj in page.get("Contents", []):
                name = obj["Key"][len(folder.prefix) :]
                if name and not _hidden(name):
                    out.append(FileInfo(f"{rel}/{name}" if rel else name, False, obj["Size"]))
        return sorted(out, key=lambda f: f.path)

    def walk_artifacts(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        """Every artifact as nested dicts, folders first, at most limit entries (one listing)."""
        base = self._base(run_id)
        tree: dict[str, Any] = {}
        for obj in self._call(run_id, [], list, self._objects(base)):
            parts = obj["Key"][len(base.prefix) :].split("/")
            if any(_hidden(p) for p in parts) or not parts[-1]:
                continue
            node = tree
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = obj["Size"]
        count = 0

        def walk(node: dict[str, Any], rel: str) -> list[dict[str, Any]]:
            nonlocal count
            out: list[dict[str, Any]] = []
            for name, sub in sorted(
                node.items(), key=lambda kv: (not isinstance(kv[1], dict), kv[0])
            ):
                if count >= limit:
                    break
                count += 1
                child = f"{rel}/{name}" if rel else name
                if isinstance(sub, dict):
                    out.append({"name": name, "path": child, "is_dir": True, "children": []})
                    out[-1]["children"] = walk(sub, child)
                else:
                    out.append({"name": name, "path": child, "is_dir": False, "file_size": sub})
            return out

        return walk(tree, "")

    def _download(self, run_id: str, src: S3Location, rel: str, dst: Path) -> bool:
        """src (a file or a folder) to dst, replacing dst by rename; whether anything was there."""
        client = self.artifacts.client
        objects = [
            o
            for o in self._call(run_id, [], list, self._objects(src))
            if not any(_hidden(p) for p in o["Key"][len(src.prefix) :].split("/"))
        ]
        dst.parent.mkdir(parents=True, exist_ok=True)
        work = dst.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex[:16]}"
        try:
            if objects:  # a folder
                for o in objects:
                    target = work.joinpath(*o["Key"][len(src.prefix) :].split("/"))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._call(run_id, [], client.download_file, src.bucket, o["Key"], str(target))
            else:
                try:
                    client.head_object(Bucket=src.bucket, Key=src.key)
                except Exception:
                    return False
                self._call(run_id, [], client.download_file, src.bucket, src.key, str(work))
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            os.replace(work, dst)  # replaces a link itself, never writes through it
            return True
        finally:
            if os.path.lexists(work):
                shutil.rmtree(work) if work.is_dir() else os.unlink(work)

    def _cache_dir(self, run_id: str) -> Path:
        base = self._base(run_id)
        return _cache_root().joinpath(base.bucket, *base.key.split("/"))

    def artifact_local_path(self, run_id: str, path: str | None = "") -> Path:
        """A fresh local copy (in the cache folder) of an artifact file or folder.

        Like a local root, the path returned may not exist (no such artifact); a link in the
        cache folder never leads a read outside it.
        """
        rel = check_relative(path)
        cache = self._cache_dir(run_id)
        target = cache.joinpath(*rel.split("/")) if rel else cache
        cache.mkdir(parents=True, exist_ok=True)
        real_cache = os.path.realpath(cache)
        real = os.path.realpath(target)
        if real != real_cache and not real.startswith(real_cache + os.sep):
            raise ArtifactPathError(
                f"Artifact path {path!r} resolves outside the artifacts of run {run_id}."
            )
        found = self._download(run_id, self._base(run_id) / rel, rel, target)
        if rel and not found and os.path.lexists(target) and not target.is_symlink():
            shutil.rmtree(target) if target.is_dir() else os.unlink(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def download_artifacts(
        self, run_id: str, path: str | None, dst_path: str | os.PathLike[str]
    ) -> Path:
        rel = check_relative(path)
        dst = Path(dst_path)
        dst.mkdir(parents=True, exist_ok=True)
        out = dst / (rel.rpartition("/")[2] if rel else "artifacts")
        if not self._download(run_id, self._base(run_id) / rel, rel, out):
            raise ArtifactPathError(f"No artifact at {path!r} under {self._base(run_id)}.")
        return out

    def artifact_stream(self, run_id: str, path: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes of one artifact file, chunk by chunk (for a server proxying downloads)."""
        target = self._base(run_id) / check_relative(path)
        client = self.artifacts.client
        body = self._call(run_id, [], client.get_object, Bucket=target.bucket, Key=target.key)
        yield from body["Body"].iter_chunks(chunk_size)

    def artifact_dir(self, run_id: str, artifact_path: str | None = "") -> Path:
        """A local copy, as artifact_local_path (the files themselves are in object storage)."""
        return self.artifact_local_path(run_id, artifact_path)

    # -- folders written whole

    @contextmanager
    def _staged(self, run_id: str, rel: str, replace: bool) -> Iterator[Path]:
        base = self._base(run_id)
        dest = base / rel
        work = base / f"{PARTIAL_PREFIX}{uuid.uuid4().hex}"
        client = self.artifacts.client
        with tempfile.TemporaryDirectory(prefix="autolog-s3-stage-") as tmp:
            yield Path(tmp)
            files = sorted(
                (p.relative_to(tmp).as_posix() for p in Path(tmp).rglob("*") if p.is_file()),
                key=lambda f: (f == "MLmodel", f),  # MLmodel last: it marks the folder complete
            )
            try:
                for f in files:
                    self._upload(
                        run_id, os.path.join(tmp, f), f"{work.key[len(base.prefix) :]}/{f}", rel
                    )
                old = [o["Key"] for o in self._objects(dest)]
                if old and not replace:
                    raise ArtifactExistsError(
                        f"{dest} was created by someone else meanwhile ({len(old)} files there)"
                    )
                for f in files:
                    self._call(
                        run_id,
                        [f"{rel}/{f}"],
                        client.copy_object,
                        Bucket=dest.bucket,
                        Key=f"{dest.key}/{f}",
                        CopySource={"Bucket": work.bucket, "Key": f"{work.key}/{f}"},
                    )
                new = {f"{dest.key}/{f}" for f in files}
                self._delete(run_id, dest.bucket, [k for k in old if k not in new])
            except BaseException:
                # the failure that stopped the upload is the one to report, not the cleanup's
                with contextlib.suppress(Exception):
                    self._delete(run_id, work.bucket, [o["Key"] for o in self._objects(work)])
                raise
            self._delete(run_id, work.bucket, [o["Key"] for o in self._objects(work)])

    def _delete(self, run_id: str, bucket: str, keys: list[str]) -> None:
        client = self.artifacts.client
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            self._call(run_id, [], client.delete_objects, Bucket=bucket, Delete={"Objects": chunk})

    def staged_artifact_dir(
        self, run_id: str, artifact_path: str, replace: bool = True
    ) -> AbstractContextManager[Path]:
        """A local folder to fill; on success its files are put in place (see the module doc)."""
        rel = check_relative(artifact_path)
        if not rel:
            raise InvalidValueError(
                "artifact_path must name a folder inside the run, e.g. 'model'; got "
                f"{artifact_path!r}."
            )
        return self._staged(run_id, rel, replace)


_CLASSES: dict[type, type] = {}


def with_s3_artifacts(store_class: type, root: str) -> Any:
    """A factory of ``store_class`` stores whose artifact root is ``root`` (``s3://...``)."""
    cls = _CLASSES.get(store_class)
    if cls is None:
        cls = type(f"S3{store_class.__name__}", (S3RunArtifacts, store_class), {})
        _CLASSES[store_class] = cls

    def make(*args: Any, **kw: Any) -> Any:
        store = cls(*args, **kw)
        store.artifacts = S3Root(root)
        store._artifact_bases = {}
        return store

    return make

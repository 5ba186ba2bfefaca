"""The artifact methods of a tracking store, over its local artifact root (mixed into it)."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.artifacts.local import ArtifactRoot, check_relative, is_hidden
from store.artifacts.staging import staged_folder
from store.entities import FileInfo
from store.errors import ArtifactPathError, InvalidValueError


class RunArtifacts:
    """Artifacts by run id; the store gives each run's folder (``run_artifact_base``)."""

    if TYPE_CHECKING:
        artifacts: ArtifactRoot

        def run_artifact_base(self, run_id: str) -> Path: ...

    def artifact_dir(self, run_id: str, artifact_path: str | None = "") -> Path:
        return self.artifacts.contained(self.run_artifact_base(run_id), artifact_path)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Path:
        return self.artifacts.log_file(self.run_artifact_base(run_id), local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Path:
        return self.artifacts.log_dir(self.run_artifact_base(run_id), local_dir, artifact_path)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self.artifacts.list(self.run_artifact_base(run_id), path)

    def download_artifacts(
        self, run_id: str, path: str | None, dst_path: str | os.PathLike[str]
    ) -> Path:
        return self.artifacts.copy_out(self.run_artifact_base(run_id), path, dst_path)

    def write_artifact_bytes(self, run_id: str, artifact_file: str, data: bytes) -> Path:
        with self.artifact_writer(run_id, artifact_file) as tmp:
            tmp.write_bytes(data)
        return self.run_artifact_base(run_id) / check_relative(artifact_file)

    def artifact_writer(self, run_id: str, artifact_file: str) -> AbstractContextManager[Path]:
        """A temporary path to write artifact_file into; renamed into place when the block ends."""
        rel = check_relative(artifact_file)
        if not rel:
            raise InvalidValueError("artifact_file must name a file, e.g. 'notes/summary.txt'.")
        return self.artifacts.writing(self.run_artifact_base(run_id), rel)

    def artifact_local_path(self, run_id: str, path: str | None = "") -> Path:
        """The local path of an artifact, refusing anything outside this run's own folder.

        The root's containment refuses ``..``, absolute paths and NUL bytes and resolves links
        against the artifact root; this adds that the real path stays inside the run's folder
        (a link from one run into another's artifacts is refused too).
        """
        base = self.run_artifact_base(run_id)
        target = self.artifacts.contained(base, path)
        real_base = os.path.realpath(base)
        real = os.path.realpath(target)
        if real != real_base and not real.startswith(real_base + os.sep):
            raise ArtifactPathError(
                f"Artifact path {path!r} resolves outside the artifacts of run {run_id}."
            )
        return target

    def walk_artifacts(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        """Every artifact as nested dicts, folders first; at most limit entries.

        Links and unfinished writes (temporary files, staged folders) are skipped.
        """
        base = self.run_artifact_base(run_id)
        count = 0

        def walk(folder: Path, rel: str) -> list[dict[str, Any]]:
            nonlocal count
            try:
                entries = sorted(os.scandir(folder), key=lambda e: (not e.is_dir(), e.name))
            except OSError:
                return []
            out: list[dict[str, Any]] = []
            for e in entries:
                if count >= limit or is_hidden(e):
                    continue
                count += 1
                child = f"{rel}/{e.name}" if rel else e.name
                if e.is_dir():
                    out.append({"name": e.name, "path": child, "is_dir": True, "children": []})
                    out[-1]["children"] = walk(Path(e.path), child)
                else:
                    size = e.stat().st_size
                    out.append({"name": e.name, "path": child, "is_dir": False, "file_size": size})
            return out

        return walk(base, "") if base.is_dir() else []

    def staged_artifact_dir(
        self, run_id: str, artifact_path: str, replace: bool = True
    ) -> AbstractContextManager[Path]:
        """A fresh folder to fill; on success it becomes ``artifact_path`` in one rename.

        The folder is made beside the run's artifact folder (same file system, never listed)
        under a ``.autolog-partial-`` name; leftovers of dead processes there are removed first.
        replace: an existing destination is swapped for the new folder once that is complete;
        otherwise anything but an empty folder there at the end raises ArtifactExistsError. On
        an exception the staged folder is removed and the destination is untouched.
        """
        rel = check_relative(artifact_path)
        if not rel:
            raise InvalidValueError(
                "artifact_path must name a folder inside the run, e.g. 'model'; got "
                f"{artifact_path!r}."
            )
        base = self.run_artifact_base(run_id)
        dest = self.artifacts.contained(base, rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.artifacts.contained(base, rel)  # re-check once the folders exist
        return staged_folder(dest, base.parent, replace)

"""The artifact methods of a tracking store, over its local artifact root (mixed into it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from store.artifacts.local import ArtifactRoot, check_relative
from store.entities import FileInfo
from store.errors import InvalidValueError


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
        rel = check_relative(artifact_file)
        if not rel:
            raise InvalidValueError("artifact_file must name a file, e.g. 'notes/summary.txt'.")
        base = self.run_artifact_base(run_id)
        dest = self.artifacts.contained(base, rel)
        if not dest.parent.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.artifacts.contained(base, rel)  # re-check once the folders exist
        dest.write_bytes(data)
        return dest

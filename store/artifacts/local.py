"""Artifact files on disk under one root; no path given by a caller can leave it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from store.entities import FileInfo
from store.errors import ArtifactPathError


def check_relative(artifact_path: str | None) -> str:
    """Return a normalized relative posix path, refusing anything that could escape its root."""
    if artifact_path is None or artifact_path in ("", "."):
        return ""
    raw = str(artifact_path).replace("\\", "/")
    if "\x00" in raw:
        raise ArtifactPathError(f"Artifact path {artifact_path!r} contains a NUL byte; remove it.")
    if raw.startswith("/") or PurePosixPath(raw).is_absolute() or (len(raw) > 1 and raw[1] == ":"):
        raise ArtifactPathError(
            f"Artifact path {artifact_path!r} is absolute; give a path relative to the run's "
            "artifact root, e.g. 'plots/roc.png'."
        )
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArtifactPathError(
            f"Artifact path {artifact_path!r} contains '..'; artifact paths must stay inside the "
            "run's artifact root."
        )
    return "/".join(parts)


def _link_on_the_way(base: str, rel: str) -> bool:
    """Whether a component of rel below base is a symbolic link (missing ones are not)."""
    path = base
    for part in rel.split("/") if rel else ():
        path = os.path.join(path, part)
        if os.path.islink(path):
            return True
    return False


class ArtifactRoot:
    """The folder holding every run's artifacts: <root>/<experiment_id>/<run_id>/artifacts/..."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._real_root: str | None = None
        self._bases_inside: set[str] = set()

    @property
    def real_root(self) -> str:
        """The root with its links resolved, once (the root is where the store was opened)."""
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root)
        return self._real_root

    def contained(self, base: Path, artifact_path: str | None) -> Path:
        """The absolute path of artifact_path under base, refusing escapes (also through links).

        A run's folder is resolved once (``_inside``); below it, only the components of
        artifact_path are checked for links, one ``lstat`` each, rather than resolving the
        whole path again for every file.
        """
        rel = check_relative(artifact_path)
        target = base / rel if rel else base
        if self._inside(base) and not _link_on_the_way(str(base), rel):
            return target
        real_root = self.real_root
        real_target = os.path.realpath(target)
        if real_target != real_root and not real_target.startswith(real_root + os.sep):
            raise ArtifactPathError(
                f"Artifact path {artifact_path!r} resolves to {real_target}, outside the artifact "
                f"root {real_root} (a link points out of it); remove the link."
            )
        return target

    def _inside(self, base: Path) -> bool:
        """Whether base, once its links are resolved, is a folder inside the root (cached)."""
        key = str(base)
        if key in self._bases_inside:
            return True
        if not base.is_dir():  # not made yet: resolved again next time
            return False
        real, real_root = os.path.realpath(base), self.real_root
        if real != real_root and not real.startswith(real_root + os.sep):
            return False
        if len(self._bases_inside) >= 10_000:
            self._bases_inside.clear()
        self._bases_inside.add(key)
        return True

    def log_file(
        self, base: Path, local_path: str | os.PathLike[str], artifact_path: str | None
    ) -> Path:
        src = Path(local_path)
        if not src.is_file():
            raise ArtifactPathError(f"Cannot log artifact {str(src)!r}: no such file.")
        dest_dir = self.contained(base, artifact_path)
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = self.contained(
            base, "/".join(filter(None, [check_relative(artifact_path), src.name]))
        )
        shutil.copyfile(src, dest)
        return dest

    def log_dir(
        self, base: Path, local_dir: str | os.PathLike[str], artifact_path: str | None
    ) -> Path:
        src = Path(local_dir)
        if not src.is_dir():
            raise ArtifactPathError(f"Cannot log artifacts from {str(src)!r}: not a directory.")
        dest = self.contained(base, artifact_path)
        shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=False)
        return dest

    def list(self, base: Path, path: str | None = None) -> list[FileInfo]:
        rel = check_relative(path)
        target = self.contained(base, rel)
        if not target.is_dir():
            return []
        out = []
        for entry in sorted(os.scandir(target), key=lambda e: e.name):
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                continue
            if entry.is_dir():
                out.append(FileInfo(child, True, None))
            else:
                out.append(FileInfo(child, False, entry.stat().st_size))
        return out

    def copy_out(self, base: Path, path: str | None, dst: str | os.PathLike[str]) -> Path:
        src = self.contained(base, path)
        if not src.exists():
            raise ArtifactPathError(f"No artifact at {path!r} under {base}.")
        dst_path = Path(dst)
        dst_path.mkdir(parents=True, exist_ok=True)
        out = dst_path / (src.name if check_relative(path) else "artifacts")
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True, symlinks=False)
        else:
            shutil.copyfile(src, out)
        return out

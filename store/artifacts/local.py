"""Artifact files on disk under one root; no path given by a caller can leave it.

No link found on disk leads a read or write out of the run's own artifact folder: a path
through a link must resolve inside that folder, and listings and folder copies skip links.
Files are written under a temporary name in their folder and renamed into place, so a reader
(or a process killed mid-write) never leaves a truncated file under the artifact's name;
temporary files are never listed or copied out.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


TEMP_PREFIX = ".autolog-tmp-"  # a file being written (ArtifactRoot.writing)
PARTIAL_PREFIX = ".autolog-partial-"  # a folder being filled (staged folders, model saves)
_UNFINISHED = (TEMP_PREFIX, PARTIAL_PREFIX)


def is_hidden(entry: os.DirEntry[str]) -> bool:
    """Whether a folder entry is left out of listings and copies (a link or a partial write)."""
    return entry.name.startswith(_UNFINISHED) or entry.is_symlink()


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


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
        real_root, real_base = self.real_root, os.path.realpath(base)
        if not _under(real_base, real_root):
            raise ArtifactPathError(
                f"The run's artifact folder {base} resolves to {real_base}, outside the artifact "
                f"root {real_root} (a link points out of it); remove the link."
            )
        real_target = os.path.realpath(target)
        if not _under(real_target, real_base):
            raise ArtifactPathError(
                f"Artifact path {artifact_path!r} resolves to {real_target}, outside this run's "
                f"artifact folder {real_base} (a link points out of it); remove the link."
            )
        return target

    def _inside(self, base: Path) -> bool:
        """Whether base, once its links are resolved, is a folder inside the root (cached)."""
        key = str(base)
        if key in self._bases_inside:
            return True
        if not base.is_dir():  # not made yet: resolved again next time
            return False
        if not _under(os.path.realpath(base), self.real_root):
            return False
        if len(self._bases_inside) >= 10_000:
            self._bases_inside.clear()
        self._bases_inside.add(key)
        return True

    @contextmanager
    def writing(self, base: Path, artifact_path: str) -> Iterator[Path]:
        """A temporary path to write the file artifact_path into; renamed into place on success.

        The temporary name keeps the file's suffix (savefig picks its format by it). No fsync:
        the rename guards against a killed process and against readers, not a power cut.
        """
        dest = self.contained(base, artifact_path)
        if not dest.parent.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.contained(base, artifact_path)  # re-check once the folders exist
        tmp = dest.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex[:16]}{dest.suffix[:32]}"
        try:
            yield tmp
            os.replace(tmp, dest)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    def _copy_in(self, base: Path, src: str, artifact_path: str) -> Path:
        with self.writing(base, artifact_path) as tmp:
            shutil.copyfile(src, tmp)
        return base / artifact_path

    def log_file(
        self, base: Path, local_path: str | os.PathLike[str], artifact_path: str | None
    ) -> Path:
        src = Path(local_path)
        if not src.is_file():
            raise ArtifactPathError(f"Cannot log artifact {str(src)!r}: no such file.")
        rel = "/".join(filter(None, [check_relative(artifact_path), src.name]))
        return self._copy_in(base, str(src), check_relative(rel))

    def log_dir(
        self, base: Path, local_dir: str | os.PathLike[str], artifact_path: str | None
    ) -> Path:
        """Copy a local folder's files (links in it followed, as copytree does) file by file."""
        src = Path(local_dir)
        if not src.is_dir():
            raise ArtifactPathError(f"Cannot log artifacts from {str(src)!r}: not a directory.")
        prefix = check_relative(artifact_path)
        dest = self.contained(base, prefix)
        dest.mkdir(parents=True, exist_ok=True)
        for folder, dirs, files in os.walk(src, followlinks=True):
            dirs.sort()
            sub = os.path.relpath(folder, src).replace(os.sep, "/")
            for name in sorted(files):
                rel = "/".join(p for p in (prefix, sub, name) if p not in ("", "."))
                self._copy_in(base, os.path.join(folder, name), check_relative(rel))
            for name in dirs:  # empty folders too, as copytree makes them
                rel = "/".join(p for p in (prefix, sub, name) if p not in ("", "."))
                self.contained(base, rel).mkdir(exist_ok=True)
        return dest

    def list(self, base: Path, path: str | None = None) -> list[FileInfo]:
        rel = check_relative(path)
        target = self.contained(base, rel)
        if not target.is_dir():
            return []
        out = []
        for entry in sorted(os.scandir(target), key=lambda e: e.name):
            child = f"{rel}/{entry.name}" if rel else entry.name
            if is_hidden(entry):
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
            shutil.copytree(src, out, ignore=_hidden_names, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, out)
        return out


def _hidden_names(folder: str, names: list[str]) -> set[str]:
    """copytree's ignore: links (they could lead anywhere) and partial writes are not copied."""
    with os.scandir(folder) as entries:
        return {e.name for e in entries if is_hidden(e)}

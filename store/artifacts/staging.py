"""Folders written whole or not at all: filled under a work name, renamed into place.

The work folder (``.autolog-partial-<host>-<pid>-<random>``) is made in a folder on the
destination's file system, so the final rename is atomic: a reader, or a process killed
mid-way, never sees a half-written folder under its real name. A killed process leaves its
work folder behind; the next staging in the same place removes those of dead processes of
this host. Listings skip the prefix (:func:`store.artifacts.local.is_hidden`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from store.artifacts.local import PARTIAL_PREFIX
from store.errors import ArtifactExistsError
from store.processes import HOST, pid_alive


def _work_name() -> str:
    return f"{PARTIAL_PREFIX}{HOST}-{os.getpid()}-{uuid.uuid4().hex}"


def remove_dead_partials(parent: Path) -> None:
    """Remove the work folders in parent of processes of this host that died mid-way."""
    prefix = f"{PARTIAL_PREFIX}{HOST}-"
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        pid_text = entry.name[len(prefix) :].partition("-")[0]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
            shutil.rmtree(entry.path, ignore_errors=True)


@contextmanager
def staged_folder(dest: Path, work_parent: Path, replace: bool = True) -> Iterator[Path]:
    """A fresh folder in work_parent that becomes dest when the block ends without an exception.

    work_parent must be on dest's file system. replace: an existing dest is swapped for the new
    folder once that is complete; otherwise a dest that is anything but an empty folder when
    the rename comes (another writer got there first) raises ArtifactExistsError. Either way,
    on an exception the work folder is removed and dest is as it was.
    """
    work_parent.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(work_parent)
    work = work_parent / _work_name()
    work.mkdir()
    try:
        yield work
        dest.parent.mkdir(parents=True, exist_ok=True)
        if replace:
            _swap_in(work, dest, work_parent)
        else:
            _move_in(work, dest)
    finally:
        if os.path.lexists(work):
            shutil.rmtree(work, ignore_errors=True)


def _move_in(work: Path, dest: Path) -> None:
    try:
        if dest.is_dir() and not dest.is_symlink():
            dest.rmdir()  # only an empty one; os.rename onto a folder is not portable
        os.rename(work, dest)
    except OSError as e:
        raise ArtifactExistsError(f"{dest} was created by someone else meanwhile ({e})") from e


def _swap_in(work: Path, dest: Path, work_parent: Path) -> None:
    old = None
    if dest.is_symlink() or dest.exists():
        old = work_parent / _work_name()
        old.mkdir()
        os.replace(dest, old / dest.name)
    try:
        os.replace(work, dest)
    except BaseException:
        if old is not None:
            os.replace(old / dest.name, dest)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

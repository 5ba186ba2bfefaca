"""What every run records about where it ran: source, git, user, host, Python, packages.

Everything here is computed once per process and cached: a run start costs a dict copy.
Git is read from the repository around the source script with one `git` call set per
process (commit, branch, remote, dirty flag, capped diff); no subprocess per run.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from functools import lru_cache

# Distributions whose versions every run records (those installed).
TRACKED_DISTRIBUTIONS = (
    "autolog",
    "scikit-learn",
    "xgboost",
    "xgboost-cpu",
    "lightgbm",
    "statsmodels",
    "torch",
    "lightning",
    "pytorch-lightning",
    "numpy",
    "pandas",
    "scipy",
)
GIT_DIFF_CAP = 200_000  # characters of uncommitted diff kept as an artifact
GIT_DIFF_ARTIFACT = "source/git_diff.patch"

_lock = threading.Lock()


def _source() -> tuple[str, str]:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path:
        return os.path.abspath(path), "LOCAL"
    if "ipykernel" in sys.modules:
        return "<notebook>", "NOTEBOOK"
    return "<interactive>", "LOCAL"


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in TRACKED_DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git(args: list[str], cwd: str) -> str | None:
    import subprocess

    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@lru_cache(maxsize=4)
def git_info(directory: str) -> dict[str, str]:
    """Commit, branch, remote and dirty flag of the repository holding directory ({} if none)."""
    top = _git(["rev-parse", "--show-toplevel"], directory)
    if not top:
        return {}
    top = top.strip()
    info = {"autolog.source.git.repo": top}
    commit = _git(["rev-parse", "HEAD"], top)
    if commit:
        info["mlflow.source.git.commit"] = commit.strip()
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], top)
    if branch:
        info["mlflow.source.git.branch"] = branch.strip()
    remote = _git(["config", "--get", "remote.origin.url"], top)
    if remote:
        info["mlflow.source.git.repoURL"] = remote.strip()
    status = _git(["status", "--porcelain", "--untracked-files=no"], top)
    info["mlflow.source.git.dirty"] = "true" if status and status.strip() else "false"
    return info


@lru_cache(maxsize=4)
def git_diff(directory: str) -> str:
    """The uncommitted diff against HEAD, capped at GIT_DIFF_CAP characters ('' when clean)."""
    info = git_info(directory)
    if info.get("mlflow.source.git.dirty") != "true":
        return ""
    diff = _git(["diff", "HEAD"], info["autolog.source.git.repo"]) or ""
    if len(diff) > GIT_DIFF_CAP:
        diff = diff[:GIT_DIFF_CAP] + f"\n# ... truncated at {GIT_DIFF_CAP} characters\n"
    return diff


@lru_cache(maxsize=1)
def _static_tags() -> dict[str, str]:
    import getpass
    import platform
    import socket

    source, source_type = _source()
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    tags = {
        "mlflow.source.name": source,
        "mlflow.source.type": source_type,
        "autolog.source.argv": json.dumps(sys.argv),
        "mlflow.user": user,
        "autolog.host": socket.gethostname(),
        "autolog.python_version": platform.python_version(),
        "autolog.platform": platform.platform(),
    }
    return tags


def run_context_tags() -> dict[str, str]:
    """Tags describing where this process runs; cheap after the first call."""
    with _lock:
        tags = dict(_static_tags())
        tags["autolog.packages"] = json.dumps(package_versions(), sort_keys=True)
        if os.environ.get("AUTOLOG_DISABLE_GIT") != "1":
            tags.update(git_info(_source_dir()))
    return tags


def source_git_diff() -> str:
    if os.environ.get("AUTOLOG_DISABLE_GIT") == "1":
        return ""
    with _lock:
        return git_diff(_source_dir())


def _source_dir() -> str:
    source, _ = _source()
    return os.path.dirname(source) if os.path.isabs(source) else os.getcwd()


def current_user() -> str:
    return _static_tags()["mlflow.user"]

"""Where a project's code comes from: a local folder, or a git repository at a version.

A local folder runs in place (as MLflow's local projects do). A version (``--version``) or a
remote git URL is checked out into a fresh temporary clone, removed when the run ends; the
user's own working tree is never switched to another commit.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from autolog.projects.errors import ProjectError

_REMOTE_SCHEMES = ("http", "https", "ssh", "git", "git+ssh", "git+https")


@dataclass
class Fetched:
    """A project ready to run: its directory and the git facts recorded on the run."""

    uri: str  # normalized: an absolute path or the remote URL, with #subdirectory
    directory: str
    commit: str | None = None
    branch: str | None = None
    repo_url: str | None = None
    repo_root: str | None = None
    dirty: bool = False
    temp_dir: str | None = None

    def cleanup(self) -> None:
        if self.temp_dir:
            import shutil

            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


def split_uri(uri: str) -> tuple[str, str]:
    """(base URI, subdirectory) from ``base#subdirectory``."""
    base, _, sub = uri.strip().strip("'\"").partition("#")
    sub = sub.strip("/")
    if sub and (os.path.isabs(sub) or ".." in sub.split("/")):
        raise ProjectError(
            f"Subdirectory {sub!r} in {uri!r} leaves the project; give a path inside it, "
            "e.g. repo#examples/train."
        )
    return base, sub


def _git(args: list[str], cwd: str | None = None, what: str = "") -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ProjectError("git is not installed; install git to run git projects.") from None
    if done.returncode != 0:
        raise ProjectError(f"{what or 'git ' + ' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _git_or_none(args: list[str], cwd: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def is_remote(base: str) -> bool:
    scheme = base.split("://", 1)[0].lower() if "://" in base else ""
    # scp-like git@host:path has no scheme but a colon before the first slash
    scp_like = "@" in base.split("/", 1)[0] and ":" in base.split("/", 1)[0]
    return scheme in _REMOTE_SCHEMES or scp_like


def fetch_project(uri: str, version: str | None = None) -> Fetched:
    """Find or check out the project that uri names, at version when given."""
    base, sub = split_uri(uri)
    local = base[len("file://") :] if base.startswith("file://") else base
    if not is_remote(base) and os.path.isdir(local):
        path = os.path.abspath(local)
        normalized = path + (f"#{sub}" if sub else "")
        if version is None:
            return _in_place(normalized, path, sub)
        top = _git_or_none(["rev-parse", "--show-toplevel"], path)
        if top is None:
            raise ProjectError(
                f"--version {version!r} needs a git repository, but {path} is not in one; "
                "drop --version or point at the repository."
            )
        rel = os.path.relpath(path, top)
        return _clone(normalized, top, version, os.path.normpath(os.path.join(rel, sub)))
    if is_remote(base):
        return _clone(base + (f"#{sub}" if sub else ""), base, version, sub, remote=True)
    raise ProjectError(
        f"Project URI {uri!r} is neither an existing folder nor a git URL; pass a local folder, "
        "file:///path, or a repository such as https://host/org/repo.git."
    )


def _in_place(normalized: str, path: str, sub: str) -> Fetched:
    directory = os.path.join(path, sub) if sub else path
    if not os.path.isdir(directory):
        raise ProjectError(f"Subdirectory {sub!r} does not exist in {path}; check the #part.")
    fetched = Fetched(normalized, directory)
    _record_git(fetched, directory)
    return fetched


def _clone(
    normalized: str, source: str, version: str | None, sub: str, remote: bool = False
) -> Fetched:
    import shutil
    import tempfile

    temp = tempfile.mkdtemp(prefix="autolog-project-")
    checkout = os.path.join(temp, "code")
    try:
        args = ["clone", "--quiet"]
        if version is None and remote:
            args += ["--depth", "1"]
        _git([*args, source, checkout], what=f"Cloning {source}")
        if version is not None:
            try:
                _git(["checkout", "--quiet", version], cwd=checkout)
            except ProjectError:
                raise ProjectError(
                    f"Version {version!r} is not a commit, branch or tag of {source}; list them "
                    "with `git log --oneline` / `git branch -a` / `git tag`."
                ) from None
        directory = (
            os.path.normpath(os.path.join(checkout, sub)) if sub not in ("", ".") else checkout
        )
        if not os.path.isdir(directory):
            raise ProjectError(
                f"Subdirectory {sub!r} does not exist in {source} at {version or 'HEAD'}."
            )
        fetched = Fetched(normalized, directory, temp_dir=temp)
        _record_git(fetched, checkout)
        if remote:
            fetched.repo_url = source
        return fetched
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _record_git(fetched: Fetched, directory: str) -> None:
    out = _git_or_none(["rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD"], directory)
    if not out:
        return
    parts = out.splitlines()
    if len(parts) != 3:
        return
    fetched.repo_root, fetched.commit = parts[0], parts[1]
    fetched.branch = parts[2] if parts[2] != "HEAD" else None
    fetched.repo_url = _git_or_none(["config", "--get", "remote.origin.url"], directory) or None
    status = _git_or_none(["status", "--porcelain", "--untracked-files=no"], directory)
    fetched.dirty = bool(status)

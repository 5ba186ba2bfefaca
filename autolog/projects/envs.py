"""Environments a project runs in: local, virtualenv (cached by content hash), conda, docker.

A virtualenv is built once per distinct content (Python version, the declared dependencies, the
text of every requirements file they include, and the autolog added to it) under
``$AUTOLOG_ENVS_DIR`` (default ``~/.cache/autolog/envs``), behind a file lock, and marked
complete only when every install succeeded, so a crashed build is never reused. The running
autolog is added to the environment (unless the project lists it) so that the project's
``autolog.autolog()`` continues the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from autolog.projects.errors import ProjectError
from autolog.projects.spec import Project, _Checker, _read_yaml

MANAGERS = ("local", "virtualenv", "conda")
COMPLETE_MARKER = ".autolog-env-complete"


@dataclass
class Environment:
    """How to launch the entry point: argv prefix before ``bash -c`` and variables to set."""

    manager: str
    env: dict[str, str] = field(default_factory=dict)
    prefix: list[str] = field(default_factory=list)
    location: str | None = None


def choose_manager(project: Project, requested: str | None) -> str:
    """The env manager to use: the requested one, else the one the project's files call for."""
    if requested is not None and requested not in MANAGERS:
        raise ProjectError(f"Unknown env manager {requested!r}; use one of {', '.join(MANAGERS)}.")
    if project.env_type == "docker_env":
        return "docker"
    if requested == "conda" and project.env_type == "python_env":
        raise ProjectError(
            "A python_env project cannot run with conda; use --env-manager virtualenv or local."
        )
    if requested is not None:
        return requested
    return {"python_env": "virtualenv", "conda_env": "conda"}.get(project.env_type or "", "local")


def prepare(project: Project, manager: str, quiet: bool = False) -> Environment:
    if manager == "local":
        # the current environment: its interpreter is the `python` the command finds first
        bin_dir = os.path.dirname(sys.executable)
        return Environment("local", {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")})
    if manager == "virtualenv":
        return _virtualenv(project, quiet)
    if manager == "conda":
        return _conda(project)
    return _docker(project)


def envs_root() -> str:
    root = os.environ.get("AUTOLOG_ENVS_DIR")
    if not root:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(cache, "autolog", "envs")
    return os.path.abspath(root)


# -- virtualenv --------------------------------------------------------------------------


def python_requirements(project: Project) -> tuple[str | None, list[str], list[str]]:
    """(python version, build dependencies, dependencies) the project declares."""
    path = project.env_file
    if path is None:
        return None, [], []
    if os.path.basename(path) == "requirements.txt" and project.env_type == "python_env":
        return None, [], ["-r", path]
    data, lines = _read_yaml(path)
    check = _Checker(path, lines)
    data = check.mapping(data, (), "An environment file")
    if project.env_type == "conda_env":
        return _from_conda(data)
    check.known(data, ("python", "build_dependencies", "dependencies"), ())
    lists = []
    for key in ("build_dependencies", "dependencies"):
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise check.fail((key,), f"{key} must be a list of requirement strings.")
        lists.append(_expand_requirement_files(value, project.directory))
    python = data.get("python")
    return (None if python is None else str(python)), lists[0], lists[1]


def _from_conda(data: dict[str, Any]) -> tuple[str | None, list[str], list[str]]:
    python, deps = None, []
    for dep in data.get("dependencies") or []:
        if isinstance(dep, str) and dep.split("=")[0].strip() == "python":
            python = dep.split("=", 1)[1].lstrip("=") or None
        elif isinstance(dep, dict):
            deps += [str(d) for d in dep.get("pip") or []]
    return python, ["pip"], deps


def _expand_requirement_files(reqs: list[str], directory: str) -> list[str]:
    """-r lines made absolute (pip reads them relative to its own working directory)."""
    out = []
    for req in reqs:
        if req.startswith(("-r ", "--requirement ")):
            out += ["-r", os.path.join(directory, req.split(None, 1)[1].strip())]
        else:
            out.append(req)
    return out


def _autolog_requirement() -> str:
    """The running autolog: its source checkout when it runs from one (an editable install, or
    the repository on sys.path), else the installed distribution's version."""
    from importlib import metadata
    from pathlib import Path

    import autolog

    checkout = Path(autolog.__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "store").is_dir():
        return f"autolog @ {checkout.as_uri()}"
    try:
        dist = metadata.distribution("autolog")
    except metadata.PackageNotFoundError:
        return ""
    direct = dist.read_text("direct_url.json")
    if direct:
        url = json.loads(direct).get("url", "")
        if url.startswith("file://"):
            return f"autolog @ {url}"
    return f"autolog=={dist.version}"


def _find_python(version: str | None) -> str:
    import shutil

    if version is None:
        return sys.executable
    wanted = ".".join(version.split(".")[:2])
    if wanted == f"{sys.version_info[0]}.{sys.version_info[1]}":
        return sys.executable
    found = shutil.which(f"python{wanted}")
    if found is None:
        raise ProjectError(
            f"The project asks for Python {version}, but no python{wanted} is on PATH (this is "
            f"Python {sys.version.split()[0]}); install Python {wanted}, or run with "
            "--env-manager local."
        )
    return found


def env_key(python: str, build: list[str], deps: list[str]) -> str:
    """Content hash naming the environment: interpreter, requirements and included files."""
    import hashlib

    h = hashlib.sha256()
    h.update(os.path.realpath(python).encode())
    for req in [*build, "|", *deps]:
        h.update(req.encode() + b"\0")
    for i, req in enumerate(deps):
        if req == "-r" and i + 1 < len(deps) and os.path.isfile(deps[i + 1]):
            with open(deps[i + 1], "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:20]


def _virtualenv(project: Project, quiet: bool) -> Environment:
    version, build, deps = python_requirements(project)
    if not any("autolog" in r.split("@")[0].split("=")[0].strip() for r in deps):
        extra = _autolog_requirement()
        deps = [*deps, extra] if extra else deps
    python = _find_python(version)
    key = env_key(python, build, deps)
    root = envs_root()
    location = os.path.join(root, f"{project.name or 'project'}-{key}"[-80:])
    os.makedirs(root, exist_ok=True)
    import fcntl

    with open(location + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per environment; others wait and reuse
        if not os.path.exists(os.path.join(location, COMPLETE_MARKER)):
            _build_virtualenv(location, python, build, deps, project.directory, quiet)
    bin_dir = os.path.join(location, "bin")
    env = {"VIRTUAL_ENV": location, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    return Environment("virtualenv", env, location=location)


def _build_virtualenv(
    location: str, python: str, build: list[str], deps: list[str], cwd: str, quiet: bool
) -> None:
    import shutil

    shutil.rmtree(location, ignore_errors=True)
    if not quiet:
        print(f"autolog: building the project environment in {location}", file=sys.stderr)
    # Without pip the venv is made in a fraction of a second; our own pip installs into it.
    own_pip = python == sys.executable and _has_pip()
    venv_args = [python, "-m", "venv", *(["--without-pip"] if own_pip else []), location]
    _check_call(venv_args, cwd, "Creating the virtual environment")
    env_python = os.path.join(location, "bin", "python")
    pip = (
        [sys.executable, "-m", "pip", "--python", env_python]
        if own_pip
        else [env_python, "-m", "pip"]
    )
    for reqs in (build, deps):
        if reqs:
            _check_call([*pip, "install", "--quiet", *reqs], cwd, f"pip install {' '.join(reqs)}")
    with open(os.path.join(location, COMPLETE_MARKER), "w") as f:
        json.dump({"python": python, "build_dependencies": build, "dependencies": deps}, f)


def _has_pip() -> bool:
    from importlib.util import find_spec

    return find_spec("pip") is not None


def _check_call(args: list[str], cwd: str, what: str) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise ProjectError(
            f"{what} failed (exit {done.returncode}); fix the project's dependencies or run with "
            "--env-manager local:\n" + "\n".join(tail)
        )


# -- conda and docker --------------------------------------------------------------------


def _conda(project: Project) -> Environment:
    import shutil

    conda = os.environ.get("CONDA_EXE") or shutil.which("conda")
    if not conda:
        raise ProjectError(
            "This project runs with conda, but conda is not installed (no conda on PATH, "
            "CONDA_EXE unset); install conda, or use --env-manager virtualenv or local."
        )
    if project.env_file is None:
        raise ProjectError("--env-manager conda needs a conda.yaml (conda_env) in the project.")
    import hashlib

    with open(project.env_file, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:20]
    prefix = os.path.join(envs_root(), f"conda-{key}")
    if not os.path.exists(os.path.join(prefix, COMPLETE_MARKER)):
        shutil.rmtree(prefix, ignore_errors=True)
        _check_call(
            [conda, "env", "create", "--yes", "-p", prefix, "-f", project.env_file],
            project.directory,
            "conda env create",
        )
        open(os.path.join(prefix, COMPLETE_MARKER), "w").close()
    return Environment(
        "conda", prefix=[conda, "run", "--no-capture-output", "-p", prefix], location=prefix
    )


def _docker(project: Project) -> Environment:
    import shutil

    docker = shutil.which("docker")
    image = (project.docker_env or {}).get("image")
    if docker is None:
        raise ProjectError(
            f"This project declares docker_env (image {image!r}) and needs Docker, which is not "
            "installed; install Docker, or remove docker_env to run it locally."
        )
    done = subprocess.run([docker, "info"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise ProjectError(
            f"This project declares docker_env (image {image!r}) and needs Docker, but the "
            f"Docker daemon is not reachable ({reason}); start Docker and try again."
        )
    return Environment("docker", prefix=[docker], location=image)

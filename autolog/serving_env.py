"""Environments to serve a model in: a cached virtualenv built from the model's pins, and a
Docker build context.

A virtualenv is keyed by the SHA-256 of its requirements (the model's ``requirements.txt`` plus
what autolog needs to serve) and the Python version, built once under
``$AUTOLOG_ENV_CACHE`` (default ``~/.cache/autolog/envs``) with pip (which reuses its own wheel
cache), and marked ready only when pip succeeded. autolog itself is not pip-installed there: its
packages (``autolog``, ``integrations``, ``store``) are copied beside the environment and put
on ``PYTHONPATH``, so the server runs the same autolog code as the caller whatever the model's
pins are, and the same way inside the Docker image.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from autolog.errors import AutologError

__all__ = ["ensure_virtualenv", "generate_dockerfile", "model_requirements", "serve_requirements"]

_PACKAGES = ("autolog", "integrations", "store")
_FALLBACK = ["wrapt>=2.2", "sqlite-utils>=4", "pyyaml>=6", "numpy>=1.24", "click>=8.1",
             "packaging>=23", "cloudpickle>=3", "starlette>=0.40", "uvicorn>=0.30"]  # fmt: skip


def cache_root() -> Path:
    base = os.environ.get("AUTOLOG_ENV_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "autolog" / "envs"


def model_requirements(model_dir: Path) -> list[str]:
    """The model's pinned requirements (autolog itself left out: it travels as source)."""
    try:
        lines = (model_dir / "requirements.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        req = line.split("#", 1)[0].strip()
        if not req or req.startswith("-"):
            continue
        name = req.split(";")[0].split("[")[0]
        for sep in ("==", ">=", "<=", "~=", "!=", ">", "<"):
            name = name.split(sep)[0]
        if name.strip().lower() not in ("autolog", "mlflow", "mlflow-skinny"):
            out.append(req)
    return out


def serve_requirements() -> list[str]:
    """What ``autolog models serve`` needs besides the model's own libraries."""
    from packaging.requirements import Requirement

    try:
        declared = importlib.metadata.requires("autolog") or []
    except importlib.metadata.PackageNotFoundError:
        return [*_FALLBACK, "pandas>=2"]
    out = []
    for text in declared:
        req = Requirement(text)
        wanted = req.marker is None or any(
            req.marker.evaluate({"extra": e}) for e in ("ui", "pandas")
        )
        if wanted and req.name != "jinja2":
            out.append(f"{req.name}{req.specifier}")  # the extra's marker dropped
    return sorted(set(out))


def python_version(model_dir: Path) -> str | None:
    import yaml

    try:
        env = yaml.safe_load((model_dir / "python_env.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return str(env.get("python")) if isinstance(env, dict) and env.get("python") else None


def env_key(requirements: list[str]) -> str:
    text = "\n".join(sorted(requirements)) + f"\npython {sys.version_info[0]}.{sys.version_info[1]}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def ensure_virtualenv(requirements: list[str], cache: Path | None = None) -> Path:
    """The Python of a virtualenv holding ``requirements``, built on first use and cached.

    :raises AutologError: pip failed; the message has the end of pip's output.
    """
    root = (cache or cache_root()) / env_key(requirements)
    python = root / "bin" / "python"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two servers starting at once build it once
        if (root / ".ready").exists():
            return python
        shutil.rmtree(root, ignore_errors=True)
        print(f"autolog: building a virtualenv for the model in {root} ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(root)
        (root / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        proc = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--no-input",
                "-q",
                "-r",
                str(root / "requirements.txt"),
            ],  # fmt: skip
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise AutologError(
                f"pip could not install the model's requirements into {root}:\n"
                f"{(proc.stdout + proc.stderr)[-2000:]}"
            )
        (root / ".ready").write_text("ok\n")
    return python


def copy_source(dest: Path) -> Path:
    """Copy autolog's own packages to ``dest`` (a folder to put on PYTHONPATH)."""
    import autolog

    top = Path(autolog.__file__).resolve().parents[1]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in _PACKAGES:
        if (top / name).is_dir():
            shutil.copytree(top / name, dest / name, ignore=ignore, dirs_exist_ok=True)
    return dest


def _source_digest() -> str:
    import autolog

    top = Path(autolog.__file__).resolve().parents[1]
    h = hashlib.sha256()
    for name in _PACKAGES:
        for f in sorted((top / name).rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(top)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:20]


def exec_in_virtualenv(model_dir: Path, argv: list[str]) -> None:
    """Replace this process by ``python -m autolog <argv>`` in the model's own virtualenv."""
    saved, running = python_version(model_dir), f"{sys.version_info[0]}.{sys.version_info[1]}"
    if saved and saved.split(".")[:2] != running.split("."):
        print(
            f"autolog: warning: the model was saved with Python {saved}; its virtualenv uses "
            f"this Python ({running}).",
            file=sys.stderr,
        )
    python = ensure_virtualenv(model_requirements(model_dir) + serve_requirements())
    src = cache_root() / "src" / _source_digest()
    if not (src / "autolog").is_dir():
        tmp = src.with_name(f"{src.name}.{os.getpid()}")
        copy_source(tmp)
        try:
            tmp.rename(src)
        except OSError:  # another process put it there first
            shutil.rmtree(tmp, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(src)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(str(python), [str(python), "-m", "autolog", *argv], env)


# ---------------------------------------------------------------------------------------------
# Docker

_DOCKERFILE = """\
# Generated by `autolog models generate-dockerfile -m {uri}`.
# Build: docker build -t NAME .   Run: docker run -p 8080:8080 NAME
FROM python:{python}-slim
WORKDIR /opt/autolog
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY src/ src/
COPY model/ model/
ENV PYTHONPATH=/opt/autolog/src
EXPOSE 8080
# --allow-pickle: this model was loaded (so its recorded digest was checked, or pickle allowed)
# by generate-dockerfile before it was copied here.
CMD ["python", "-m", "autolog", "models", "serve", "-m", "model", "--host", "0.0.0.0", "--port", "8080", "--allow-pickle"]
"""


def generate_dockerfile(model_uri: str, directory: Path, model_dir: Path) -> Path:
    """Write a build context for ``model_uri`` (whose files are in ``model_dir``) to ``directory``.

    The context holds ``model/``, ``requirements.txt`` (the model's pins and what serving needs),
    ``src/`` (autolog's packages) and a ``Dockerfile`` serving on 0.0.0.0:8080.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "model").exists():
        shutil.rmtree(directory / "model")
    shutil.copytree(model_dir, directory / "model", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(directory / "src", ignore_errors=True)
    copy_source(directory / "src")
    reqs = model_requirements(model_dir) + serve_requirements()
    (directory / "requirements.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
    python = python_version(model_dir) or f"{sys.version_info[0]}.{sys.version_info[1]}"
    (directory / "Dockerfile").write_text(
        _DOCKERFILE.format(uri=model_uri, python=python), encoding="utf-8"
    )
    return directory / "Dockerfile"


def docker_build(directory: Path, name: str) -> None:
    """``docker build -t name directory``, or a clear error when no Docker daemon answers."""
    docker = shutil.which("docker")
    if docker is None:
        raise AutologError(
            f"No `docker` command on this machine. The build context is ready in {directory}: "
            f"build it where Docker runs with `docker build -t {name} {directory}`."
        )
    info = subprocess.run([docker, "info"], capture_output=True, text=True)
    if info.returncode != 0:
        raise AutologError(
            f"The Docker daemon is not reachable ({info.stderr.strip()[-300:]}). The build "
            f"context is ready in {directory}: `docker build -t {name} {directory}`."
        )
    proc = subprocess.run([docker, "build", "-t", name, str(directory)])
    if proc.returncode != 0:
        raise AutologError(f"`docker build -t {name} {directory}` failed (exit {proc.returncode})")

"""What a model directory may make autolog do when it is loaded: the pickle gate.

Unpickling runs whatever code the file names, so a pickle is only unpickled when

- the model was loaded through ``runs:/``, ``models:/`` (resolved to the run that logged it)
  and the file's bytes have the SHA-256 digest the store recorded when the model was logged
  (a mismatch is refused whatever the opt-ins say: the file changed after logging); or
- the caller opted in: ``load_model(..., allow_pickle=True)``, ``AUTOLOG_ALLOW_PICKLE=1`` or
  MLflow's ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``.

Every path an MLmodel names must stay inside the model directory (no ``..``, no absolute
path, no link out of it). The load context travels in a :class:`contextvars.ContextVar` set
around one flavor's ``load_native`` call, so flavors keep their ``load_native(path, conf)``
signature and concurrent loads in other threads never see it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autolog.errors import ModelLoadError

ALLOW_ENV = "AUTOLOG_ALLOW_PICKLE"
MLFLOW_ALLOW_ENV = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
OPT_IN = (
    f"load_model(..., allow_pickle=True), or set {ALLOW_ENV}=1 "
    f"({MLFLOW_ALLOW_ENV}=true is honoured too)"
)
# MLmodel keys whose values are paths relative to the model directory (MLflow's and ours).
PATH_KEYS = frozenset(
    {
        "pickled_model",
        "model_path",
        "data",
        "model_data",
        "state_dict",
        "model_spec",
        "init_tensors",
        "estimator",
        "code",
        "conda",
        "virtualenv",
        "artifact_path",
    }
)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LoadContext:
    """One load: the model directory, its recorded digests (None: none) and the opt-in."""

    root: Path
    origin: str
    digests: Mapping[str, str] | None = None
    allow_pickle: bool | None = None


_CONTEXT: contextvars.ContextVar[LoadContext | None] = contextvars.ContextVar(
    "autolog_model_load", default=None
)


@contextlib.contextmanager
def loading(ctx: LoadContext) -> Iterator[None]:
    token = _CONTEXT.set(ctx)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ModelLoadError(
        f"{name}={raw!r} is not understood; set it to 1/true to allow unpickling or 0/false"
    )


def opted_in(allow_pickle: bool | None) -> bool:
    """Whether the caller allows unpickling: the argument wins, else the environment."""
    if allow_pickle is not None:
        return bool(allow_pickle)
    return _env_flag(ALLOW_ENV) or _env_flag(MLFLOW_ALLOW_ENV)


def sha256_file(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def digests_of(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, keyed by its POSIX path relative to it."""
    out = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            file = Path(dirpath, name)
            out[file.relative_to(folder).as_posix()] = sha256_file(file)
    return dict(sorted(out.items()))


def contained(root: Path, name: str | os.PathLike[str]) -> Path:
    """``root/name`` once checked to stay inside ``root`` (links resolved).

    :raises ModelLoadError: for an absolute path, ``..`` out of the directory or a link
        pointing out of it, naming the path.
    """
    text = os.fspath(name)
    if not isinstance(text, str) or not text:
        raise ModelLoadError(f"{root}: MLmodel names an empty or non-text path {name!r}")
    if os.path.isabs(text):
        raise ModelLoadError(
            f"{root}: MLmodel names the absolute path {text!r}; a model's files must be "
            "inside its directory"
        )
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(root / text))
    if real != real_root and not real.is_relative_to(real_root):
        raise ModelLoadError(
            f"{root}: MLmodel names {text!r}, which resolves to {real}, outside the model "
            "directory (through '..' or a link); refusing to read it"
        )
    return root / text


def check_paths(root: Path, sections: Mapping[str, Any]) -> None:
    """Every path-valued key of every MLmodel section must stay inside ``root``."""
    for section, conf in sections.items():
        if not isinstance(conf, Mapping):
            continue
        for key, value in conf.items():
            if isinstance(value, Mapping):
                check_paths(root, {f"{section}.{key}": value})
            elif key in PATH_KEYS:
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, str):
                        contained(root, item)


def _relative(root: Path, file: Path) -> str:
    real_root = Path(os.path.realpath(root))
    return Path(os.path.realpath(file)).relative_to(real_root).as_posix()


def verify(root: Path, rel: str, data: bytes, digests: Mapping[str, str]) -> None:
    """Refuse ``data`` unless it has the digest recorded for ``rel`` when it was logged."""
    expected = digests.get(rel)
    if expected is None:
        raise ModelLoadError(
            f"{root / rel}: no digest was recorded for this file when the model was logged (it "
            "was added after logging); refusing to load it"
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelLoadError(
            f"{root / rel} changed after logging: its SHA-256 is {actual}, the store recorded "
            f"{expected}; refusing to load it. If the new file is intended, load the directory "
            f"by its path with {OPT_IN}"
        )


def approve(root: Path, file: Path, data: bytes, what: str) -> None:
    """The gate: allow running ``what`` from ``file``'s bytes ``data``, or raise."""
    ctx = _CONTEXT.get()
    rel = _relative(root, file)
    if ctx is not None and ctx.digests is not None and _same(ctx.root, root):
        verify(root, rel, data, ctx.digests)
        return
    if opted_in(ctx.allow_pickle if ctx is not None else None):
        return
    if ctx is not None and ctx.digests is None and ctx.origin.startswith(("runs:/", "models:/")):
        why = f"no digest was recorded for {ctx.origin} when it was logged"
    else:
        why = "it was loaded by path, so nothing vouches for its bytes"
    raise ModelLoadError(
        f"{file}: refusing to unpickle {what} ({why}); unpickling runs any code the file "
        f"names. Load it through runs:/ or models:/ (checked against the digest recorded when "
        f"it was logged), or, if you trust the file, opt in: {OPT_IN}"
    )


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def pickle_bytes(root: Path, name: str | os.PathLike[str], what: str = "a pickle") -> bytes:
    """The bytes of the pickle ``name`` in the model directory ``root``, once the gate allows
    them. Read once: what is checked is exactly what gets unpickled."""
    file = contained(root, name)
    data = file.read_bytes()
    approve(root, file, data, what)
    return data

"""MLproject files (MLflow's format): read, validate, resolve parameters, render commands.

Every error names the file, the line and the fix. A directory without an MLproject runs by
convention: ``-e train.py`` / ``-e run.sh`` (``main`` falls back to main.py / main.sh), with the
environment from python_env.yaml, conda.yaml or requirements.txt.
"""

from __future__ import annotations

import os
import shlex
import string
from dataclasses import dataclass, field
from typing import Any

from autolog.projects.errors import ProjectError

MLPROJECT = "MLproject"
PARAM_TYPES = ("string", "float", "int", "path", "uri")
TOP_KEYS = ("name", "python_env", "conda_env", "docker_env", "entry_points")
ENV_KEYS = ("python_env", "conda_env", "docker_env")
ENTRY_KEYS = ("command", "parameters")
PARAM_KEYS = ("type", "default")
SCRIPT_RUNNERS = {".py": "python", ".sh": "bash"}


@dataclass
class Parameter:
    name: str
    type: str = "string"
    default: str | None = None


@dataclass
class EntryPoint:
    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)


@dataclass
class Project:
    """A project directory: its name, environment and entry points."""

    directory: str
    name: str | None
    env_type: str | None  # "python_env", "conda_env", "docker_env" or None (nothing declared)
    env_file: str | None  # python_env.yaml / conda.yaml / requirements.txt (absolute)
    docker_env: dict[str, Any] | None
    entry_points: dict[str, EntryPoint]
    has_mlproject: bool

    def get_entry_point(self, name: str) -> EntryPoint:
        """The entry point by name, else a .py/.sh file of the project run as a script."""
        if name in self.entry_points:
            return self.entry_points[name]
        script = name
        if name == "main" and not self.has_mlproject:
            script = next((s for s in ("main.py", "main.sh") if self._has_file(s)), name)
        ext = os.path.splitext(script)[1]
        if ext in SCRIPT_RUNNERS and self._has_file(script):
            return EntryPoint(script, f"{SCRIPT_RUNNERS[ext]} {shlex.quote(script)}")
        import difflib

        known = sorted(self.entry_points)
        where = f"entry points {known}" if known else "no MLproject entry points"
        hint = difflib.get_close_matches(name, known, n=1)
        raise ProjectError(
            f"Unknown entry point {name!r} in {self.directory} (it has {where}). "
            + (f"Did you mean {hint[0]!r}? " if hint else "")
            + "Pass one of them with -e, or a .py/.sh file of the project."
        )

    def _has_file(self, rel: str) -> bool:
        full = os.path.realpath(os.path.join(self.directory, rel))
        inside = full.startswith(os.path.realpath(self.directory) + os.sep)
        return inside and os.path.isfile(full)


def load_project(directory: str) -> Project:
    """Read and validate the project in directory (MLproject file, or by convention)."""
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise ProjectError(f"Project directory {directory} does not exist.")
    path = _find_mlproject(directory)
    if path is None:
        return _by_convention(directory)
    data, lines = _read_yaml(path)
    return _from_mapping(directory, path, data, lines)


def _find_mlproject(directory: str) -> str | None:
    # MLflow matches the file name case-insensitively
    for entry in sorted(os.listdir(directory)):
        if entry.lower() == "mlproject" and os.path.isfile(os.path.join(directory, entry)):
            return os.path.join(directory, entry)
    return None


def _by_convention(directory: str) -> Project:
    env_type, env_file = None, None
    for name, kind in (
        ("python_env.yaml", "python_env"),
        ("conda.yaml", "conda_env"),
        ("requirements.txt", "python_env"),
    ):
        if os.path.isfile(os.path.join(directory, name)):
            env_type, env_file = kind, os.path.join(directory, name)
            break
    return Project(directory, None, env_type, env_file, None, {}, has_mlproject=False)


def _read_yaml(path: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """The file's data and the line (1-based) of every mapping key, by key path."""
    import yaml

    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else {}
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark else ""
        raise ProjectError(
            f"{path}{line}: not valid YAML ({exc.problem or exc.context}). Fix the syntax there "
            "(indent nested keys with spaces, quote values containing ':' or '#')."
        ) from None
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return data, lines


def _collect_lines(node: Any, prefix: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            out[path] = key.start_mark.line + 1
            _collect_lines(value, path, out)


class _Checker:
    """Raises errors that name the MLproject line of the offending key."""

    def __init__(self, path: str, lines: dict[tuple[str, ...], int]):
        self.path = path
        self.lines = lines

    def fail(self, keys: tuple[str, ...], message: str) -> ProjectError:
        line = self.lines.get(keys) or (self.lines.get(keys[:-1]) if keys else None)
        where = f"{self.path} line {line}" if line else self.path
        return ProjectError(f"{where}: {message}")

    def mapping(self, value: Any, keys: tuple[str, ...], what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(keys, f"{what} must be a mapping of keys to values, not {value!r}.")
        return value

    def known(self, data: dict[str, Any], allowed: tuple[str, ...], keys: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                import difflib

                hint = difflib.get_close_matches(str(key), allowed, n=1)
                fix = (
                    f"did you mean {hint[0]!r}?" if hint else f"allowed keys: {', '.join(allowed)}."
                )
                raise self.fail((*keys, str(key)), f"unknown key {key!r}; {fix}")


def _from_mapping(directory: str, path: str, data: Any, lines: dict) -> Project:
    check = _Checker(path, lines)
    data = check.mapping(data, (), "An MLproject file")
    check.known(data, TOP_KEYS, ())
    envs = [k for k in ENV_KEYS if data.get(k) is not None]
    if len(envs) > 1:
        raise check.fail(
            (envs[1],), f"a project declares one environment, not {' and '.join(envs)}; keep one."
        )
    env_type, env_file, docker = None, None, None
    if envs == ["docker_env"]:
        env_type, docker = "docker_env", _docker_env(check, data["docker_env"])
    elif envs:
        env_type = envs[0]
        env_file = _env_file(check, directory, env_type, data[env_type])
    else:
        convention = _by_convention(directory)
        env_type, env_file = convention.env_type, convention.env_file
    name = data.get("name")
    if name is not None and not isinstance(name, (str, int, float)):
        raise check.fail(("name",), f"name must be a string, not {name!r}.")
    entries = check.mapping(data.get("entry_points"), ("entry_points",), "entry_points")
    entry_points = {str(ep): _entry_point(check, str(ep), spec) for ep, spec in entries.items()}
    return Project(
        directory,
        None if name is None else str(name),
        env_type,
        env_file,
        docker,
        entry_points,
        has_mlproject=True,
    )


def _env_file(check: _Checker, directory: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise check.fail((key,), f"{key} must name a file of the project, e.g. {key}: ...yaml.")
    full = os.path.realpath(os.path.join(directory, value))
    if not full.startswith(os.path.realpath(directory) + os.sep):
        raise check.fail((key,), f"{key} file {value!r} is outside the project; move it inside.")
    if not os.path.isfile(full):
        raise check.fail((key,), f"{key} names {value!r}, but {full} does not exist; create it.")
    return full


def _docker_env(check: _Checker, value: Any) -> dict[str, Any]:
    env = check.mapping(value, ("docker_env",), "docker_env")
    check.known(env, ("image", "volumes", "environment"), ("docker_env",))
    if not isinstance(env.get("image"), str) or not env["image"]:
        raise check.fail(("docker_env",), "docker_env needs an image, e.g. image: python:3.11.")
    volumes = env.get("volumes") or []
    if not isinstance(volumes, list) or not all(isinstance(v, str) for v in volumes):
        raise check.fail(
            ("docker_env", "volumes"), 'volumes must be a list of strings, e.g. ["/data:/data"].'
        )
    environment = env.get("environment") or []
    ok = isinstance(environment, list) and all(
        isinstance(e, str) or (isinstance(e, list) and len(e) == 2) for e in environment
    )
    if not ok:
        raise check.fail(
            ("docker_env", "environment"),
            'environment must list names to copy or [name, value] pairs, e.g. ["HOME", ["A", "1"]].',
        )
    return {"image": env["image"], "volumes": volumes, "environment": environment}


def _entry_point(check: _Checker, name: str, spec: Any) -> EntryPoint:
    keys = ("entry_points", name)
    spec = check.mapping(spec, keys, f"entry point {name!r}")
    check.known(spec, ENTRY_KEYS, keys)
    command = spec.get("command")
    if not isinstance(command, str) or not command.strip():
        raise check.fail(
            keys, f"entry point {name!r} needs a command, e.g. command: python {name}.py"
        )
    raw = check.mapping(spec.get("parameters"), (*keys, "parameters"), "parameters")
    params = {str(p): _parameter(check, (*keys, "parameters", str(p)), v) for p, v in raw.items()}
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(command) if f is not None]
    except ValueError as exc:
        raise check.fail(
            (*keys, "command"),
            f"command has unbalanced braces ({exc}); write {{{{ }}}} for literals.",
        ) from None
    for f in fields:
        if f not in params:
            raise check.fail(
                (*keys, "command"),
                f"command uses {{{f}}} but {f!r} is not a parameter of {name!r}; declare it "
                "under parameters (or write {{ }} for a literal brace).",
            )
    return EntryPoint(name, command, params)


def _parameter(check: _Checker, keys: tuple[str, ...], spec: Any) -> Parameter:
    name = keys[-1]
    if isinstance(spec, str):
        ptype, default = spec, None
    elif isinstance(spec, dict):
        check.known(spec, PARAM_KEYS, keys)
        ptype, default = spec.get("type", "string"), spec.get("default")
    else:
        raise check.fail(keys, f"parameter {name!r} must be a type name or {{type, default}}.")
    if ptype not in PARAM_TYPES:
        raise check.fail(
            keys, f"parameter {name!r} has type {ptype!r}; use one of {', '.join(PARAM_TYPES)}."
        )
    if default is not None:
        if isinstance(default, (dict, list)):
            raise check.fail(keys, f"default of {name!r} must be a single value, not {default!r}.")
        default = _yaml_scalar(default)
        if ptype in ("float", "int"):
            try:
                _check_number(ptype, default)
            except ValueError:
                raise check.fail(keys, f"default {default!r} of {name!r} is not a valid {ptype}.")
    return Parameter(name, ptype, default)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_number(ptype: str, value: str) -> None:
    if ptype == "int":
        int(value)
    else:
        float(value)


# -- parameters and commands -------------------------------------------------------------


def resolve_parameters(
    entry: EntryPoint, given: dict[str, str], storage_dir: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """(declared parameters with their final values, extra parameters passed through)."""
    missing = [
        p for p in entry.parameters if p not in given and entry.parameters[p].default is None
    ]
    if missing:
        first = missing[0]
        raise ProjectError(
            f"Entry point {entry.name!r} needs a value for "
            f"{', '.join(repr(m) for m in missing)}; pass -P {first}=VALUE."
        )
    final = {}
    for name, param in entry.parameters.items():
        value = given.get(name, param.default)
        final[name] = _typed_value(entry, param, str(value), storage_dir)
    extra = {k: str(v) for k, v in given.items() if k not in entry.parameters}
    return final, extra


def _typed_value(entry: EntryPoint, param: Parameter, value: str, storage_dir: str | None) -> str:
    where = f"Parameter {param.name!r} of entry point {entry.name!r}"
    if param.type in ("float", "int"):
        try:
            _check_number(param.type, value)
        except ValueError:
            example = "3" if param.type == "int" else "0.5"
            raise ProjectError(
                f"{where} is {'an' if param.type == 'int' else 'a'} {param.type}, got {value!r}; "
                f"pass a number, e.g. -P {param.name}={example}."
            ) from None
    elif param.type == "uri":
        import urllib.parse

        if not urllib.parse.urlparse(value).scheme:
            raise ProjectError(
                f"{where} is a uri, got {value!r} (no scheme); pass e.g. file:///data/x.csv or "
                "s3://bucket/key."
            )
    elif param.type == "path":
        return _path_value(where, value, storage_dir)
    return value


def _path_value(where: str, value: str, storage_dir: str | None) -> str:
    if value.startswith("runs:/"):
        if storage_dir is None:  # when only recording the value, keep the URI as given
            return value
        run_id, _, artifact = value[len("runs:/") :].strip("/").partition("/")
        from autolog.tracking import Client

        dst = os.path.join(storage_dir, f"param-{len(os.listdir(storage_dir))}")
        os.makedirs(dst)
        return Client().download_artifacts(run_id, artifact, dst)
    local = value[len("file://") :] if value.startswith("file://") else value
    if "://" in local:
        raise ProjectError(
            f"{where} is a path, got {value!r}; pass a local path, file:// or runs:/<run_id>/<path>."
        )
    if not os.path.exists(local):
        raise ProjectError(
            f"{where} is a path, but {os.path.abspath(local)} does not exist; pass an existing "
            "file or folder."
        )
    return os.path.abspath(local)


def render_command(entry: EntryPoint, final: dict[str, str], extra: dict[str, str]) -> str:
    """The shell command: declared values substituted and extras appended, all shell-quoted."""
    quoted = {k: shlex.quote(v) for k, v in final.items()}
    parts = [entry.command.format(**quoted)]
    parts += [f"--{shlex.quote(k)} {shlex.quote(v)}" for k, v in extra.items()]
    return " ".join(parts)

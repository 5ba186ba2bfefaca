"""The endpoint table the server's handler modules fill, and the argument helpers they share.

A handler is a plain function ``(store, args) -> dict`` run in a worker thread: ``args`` is the
JSON body (POST, PATCH, DELETE) or the query string (GET, a repeated key becoming a list); what
it returns is the JSON response. Store exceptions become MLflow's error responses in app.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from store.errors import InvalidValueError

Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Endpoint:
    path: str  # under /api/2.0/mlflow/ unless it starts with /
    methods: tuple[str, ...]
    handler: Handler
    write: bool  # needs a user with write access when auth is on
    admin: bool = False


ENDPOINTS: list[Endpoint] = []


def endpoint(
    path: str, *methods: str, write: bool = False, admin: bool = False
) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ENDPOINTS.append(Endpoint(path, methods or ("GET",), fn, write, admin))
        return fn

    return register


def required(args: dict[str, Any], name: str, kind: type | tuple[type, ...] = str) -> Any:
    """args[name], present and of the JSON type given (MLflow's message for a missing one)."""
    value = args.get(name)
    if value is None or value == "":
        raise InvalidValueError(f"Missing value for required parameter '{name}'.")
    return typed(args, name, kind)


def typed(
    args: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    value = args.get(name, default)
    if value is None:
        return default
    if isinstance(value, list) and kind is not list and len(value) == 1:
        value = value[0]  # a query-string key given once
    if kind is int and isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidValueError(
            f"Invalid value {value!r} for parameter '{name}': expected {names}."
        )
    return value


def listed(args: dict[str, Any], name: str) -> list[Any]:
    value = args.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    return value


def pairs(args: dict[str, Any], name: str) -> dict[str, Any]:
    """A list of {"key", "value"} objects as a dict (tags, params)."""
    out: dict[str, Any] = {}
    for item in listed(args, name):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise InvalidValueError(
                f'Invalid entry {item!r} in \'{name}\': give objects {{"key": ..., "value": ...}}.'
            )
        out[item["key"]] = item.get("value", "")
    return out

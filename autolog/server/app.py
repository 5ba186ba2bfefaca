"""The tracking server as one ASGI app: MLflow's REST API, the artifact proxy and the UI over
one store, with optional authentication.

Every API handler is a plain store call run in a worker thread (the store is thread-safe and
blocking); errors come back in MLflow's format, ``{"error_code": ..., "message": ...}``, plus
``autolog_error`` (the exception's class name) so autolog's client re-raises the same error.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from typing import Any

from anyio import CapacityLimiter, to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from autolog.server import artifacts
from autolog.server import extensions as _extensions  # noqa: F401  (fills ENDPOINTS)
from autolog.server import logged_models as _logged_models  # noqa: F401
from autolog.server import registry as _registry  # noqa: F401
from autolog.server import tracking as _tracking  # noqa: F401
from autolog.server.endpoints import ENDPOINTS, Endpoint
from autolog.server.turns import LoopTurns
from store import rest_json
from store.errors import ArtifactStorageError, InvalidValueError
from store.sqlite_writes import WouldWait

log = logging.getLogger("autolog.server")
MAX_JSON_BYTES = int(os.environ.get("AUTOLOG_SERVER_MAX_JSON_BYTES", 32 * 2**20))
MLFLOW_API = "/api/2.0/mlflow/"
# On SQLite (one writer at a time however they are run) these writes, when their body is at
# most INLINE_MAX_BYTES, run on the event loop itself: the hop to a worker thread and back, with
# the GIL handed between the two threads, cost a quarter of the server's CPU for a 1,000-point
# log-batch (8 clients, one worker, A/B on 2026-12-06: 5.4-5.5 -> 4.0-4.8 ms per batch, 145k ->
# 189-227k points/s, p50 54 -> 27-36 ms). A larger body (seconds of SQLite work) goes to a
# thread, so it does not hold every other request up; so does a write while another thread or
# process holds the store's write lock: the loop never waits for one. The loop runs one such
# write per turn, in order, reading its sockets between two (autolog.server.turns).
INLINE_WRITES = frozenset(
    {"runs/create", "runs/update", "runs/log-batch", "runs/log-metric", "runs/log-parameter",
     "runs/set-tag"}
)  # fmt: skip
INLINE_MAX_BYTES = 2**20


class MalformedRequestError(InvalidValueError):
    """The request body is not a JSON object, or is too large."""


def error_response(exc: BaseException) -> JSONResponse:
    code, status = rest_json.error_code(exc)
    if isinstance(exc, MalformedRequestError):
        code = "MALFORMED_REQUEST"
    message = (
        str(exc)
        if status < 500 or isinstance(exc, ArtifactStorageError)  # names the bucket, the cause
        else f"Internal error: {type(exc).__name__}; see the server log."
    )
    if status >= 500:
        log.exception("request failed", exc_info=exc)
    body = {"error_code": code, "message": message, "autolog_error": type(exc).__name__}
    return JSONResponse(body, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise MalformedRequestError(
                f"Request body exceeds {MAX_JSON_BYTES} bytes; send smaller batches (or raise "
                "AUTOLOG_SERVER_MAX_JSON_BYTES on the server)."
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        body = rest_json.loads(raw)
    except ValueError as exc:
        raise MalformedRequestError(f"Malformed JSON in the request body: {exc}.") from exc
    if not isinstance(body, dict):
        raise MalformedRequestError(
            f"The request body must be a JSON object, not {type(body).__name__}."
        )
    return body


def _query_args(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in args:
            args[key] = [*args[key], value] if isinstance(args[key], list) else [args[key], value]
        else:
            args[key] = (
                [value] if key in ("experiment_ids", "order_by", "stages", "run_ids") else value
            )
    return args


def _encoded(ep: Endpoint, store: Any, args: dict[str, Any]) -> bytes:
    """The handler's answer as JSON bytes, made in the worker thread: encoding a thousand runs
    on the event loop would stall every other client meanwhile."""
    result = ep.handler(store, args)
    return json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _api_route(path: str, by_method: dict[str, Endpoint]) -> Route:
    async def call(request: Request) -> Response:
        ep = by_method[request.method]
        try:
            args = _query_args(request) if request.method == "GET" else await _json_body(request)
            args.update(request.path_params)  # logged-models/{model_id}: the path names it
            store = request.app.state.tracking_store
            # one write at a time per process: concurrent writers would wait on SQLite's lock
            # through its busy handler, which sleeps in steps of up to 100 ms (the p99 of
            # concurrent log-batch calls); a Python lock hands over at once, in arrival order
            limiter = request.app.state.write_limiter if ep.write else None
            body = None
            if _inline(request, ep):  # on the loop, one write per turn (autolog.server.turns)
                body = await request.app.state.loop_turns.run(
                    lambda: _encoded_if_free(ep, store, args)
                )
            if body is None:
                body = await to_thread.run_sync(_encoded, ep, store, args, limiter=limiter)
        except Exception as exc:
            return error_response(exc)
        return Response(body, media_type="application/json")

    return Route(path, call, methods=list(by_method))


_HOT = ("runs/log-batch", "runs/create", "runs/update", "runs/log-metric", "runs/set-tag")


def _encoded_if_free(ep: Endpoint, store: Any, args: dict[str, Any]) -> bytes | None:
    """The answer, or None when another thread or process holds the write lock, or another
    program SQLite's (the caller then runs the write in a thread: the loop never waits for a
    lock). Each inline write is one transaction, rolled back when it would wait."""
    with store.writing_now() as free:
        if not free:
            return None
        try:
            return _encoded(ep, store, args)
        except WouldWait:
            return None


def _inline(request: Request, ep: Endpoint) -> bool:
    """Whether this request's write runs on the event loop (see INLINE_WRITES)."""
    if not (ep.path in INLINE_WRITES and _serial(request.app.state.tracking_store)):
        return False
    size = request.headers.get("content-length", "")
    return size.isdigit() and int(size) <= INLINE_MAX_BYTES


def _guard(fn: Any) -> Any:
    async def call(request: Request) -> Response:
        try:
            return await fn(request)
        except Exception as exc:
            return error_response(exc)

    return call


def write_endpoints() -> dict[tuple[str, str], bool]:
    """(method, path) -> whether it writes, for the auth middleware."""
    return {(ep_method, full_path(ep)): ep.write for ep in ENDPOINTS for ep_method in ep.methods}


def full_path(ep: Endpoint) -> str:
    return ep.path if ep.path.startswith("/") else MLFLOW_API + ep.path


async def server_info(request: Request) -> Response:
    from autolog import __version__

    return JSONResponse({"store_type": "SqlStore", "server": "autolog", "version": __version__})


async def health(request: Request) -> Response:
    return PlainTextResponse("OK")


def create_app(
    store: Any,
    *,
    auth: Any = None,
    ui: bool = True,
    host: str = "127.0.0.1",
    port: int = 5000,
    testing_reset: Any = None,
) -> Starlette:
    """The server's app over ``store`` (a TrackingStore and RegistryStore).

    :param auth: an :class:`autolog.server.auth.Authenticator` to require credentials, or None.
    :param ui: serve the browser UI at ``/`` over the same store.
    :param testing_reset: a function giving a fresh store in a folder, served at a reset
        endpoint (tests only: it lets a request choose a folder on the server's machine).
    """
    grouped: dict[str, dict[str, Endpoint]] = defaultdict(dict)
    for ep in ENDPOINTS:
        for method in ep.methods:
            grouped[full_path(ep)][method] = ep
    proxy = "/api/2.0/mlflow-artifacts/artifacts"
    # starlette tries routes in order: what a logging client sends most goes first (the 60th
    # route cost 55 us of matching per request)
    hot = [MLFLOW_API + p for p in _HOT]
    routes: list[Any] = [_api_route(path, grouped[path]) for path in hot]
    routes.append(Route(proxy + "/{path:path}", _guard(artifacts.upload), methods=["PUT"]))
    routes += [_api_route(path, eps) for path, eps in grouped.items() if path not in hot]
    routes += [
        Route(proxy, _guard(artifacts.list_files), methods=["GET"]),
        Route(proxy + "/{path:path}", _guard(artifacts.download), methods=["GET"]),
        Route(
            "/api/2.0/autolog/artifacts/staged", _guard(artifacts.upload_folder), methods=["PUT"]
        ),
        Route("/api/3.0/mlflow/server-info", server_info),
        Route("/health", health),
    ]
    if testing_reset is not None:
        routes.append(Route("/api/2.0/autolog/testing/reset", _reset, methods=["POST"]))
    if ui:
        from autolog.ui.app import create_app as create_ui

        routes.append(Mount("/", create_ui(store, host=host, port=port)))
    app = Starlette(routes=routes)
    app.state.tracking_store = store
    app.state.write_limiter = _write_limiter(store)
    app.state.loop_turns = LoopTurns()
    app.state.testing_reset = testing_reset
    if auth is not None:
        from autolog.server.auth import AuthMiddleware

        app.add_middleware(AuthMiddleware, authenticator=auth, writes=write_endpoints())
    return app


def _serial(store: Any) -> bool:
    """Whether the store takes one writer at a time (SQLite; PostgreSQL's go on together)."""
    return bool(getattr(getattr(store, "dialect", None), "name", "sqlite") == "sqlite")


def _write_limiter(store: Any) -> CapacityLimiter:
    """One writer at a time on SQLite (see _api_route), many on PostgreSQL."""
    return CapacityLimiter(1 if _serial(store) else 64)


async def _reset(request: Request) -> Response:
    """A fresh, empty store behind the API (the contract suite's fresh store per test)."""
    try:
        folder = str((await _json_body(request))["folder"])
    except Exception as exc:
        return error_response(exc)
    old = request.app.state.tracking_store
    request.app.state.tracking_store = await run_in_threadpool(
        request.app.state.testing_reset, folder
    )
    request.app.state.write_limiter = _write_limiter(request.app.state.tracking_store)
    await run_in_threadpool(old.close)
    return JSONResponse({})

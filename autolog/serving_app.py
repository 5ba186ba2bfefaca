"""The ASGI app behind :func:`autolog.serving.app` (kept apart so the parsing imports no web
framework).

``POST /invocations`` is answered by a plain ASGI callable: the body is read from ``receive``
once and the answer sent as two messages, with no routing, request object or middleware on the
hot path. Every other request, and the lifespan,
go to a small Starlette app (``/ping``, ``/health``, ``/version``, 404 and 405 answers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from autolog import __version__
from autolog.serving import BadRequest, in_thread, parse_request, predict, predictions_json
from autolog.serving_fast import FastPath, fast_path

_log = logging.getLogger("autolog.serving")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before its request body arrived; nothing is answered."""


class ScoringApp:
    """``/invocations`` for one loaded model; anything else goes to the Starlette app."""

    def __init__(self, model: Any, *, max_body_bytes: int, timeout: float):
        self.model = model
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout
        self.fast: FastPath | None = fast_path(model)
        self.rest = _rest_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if path == "/invocations" and scope["type"] == "http" and scope["method"] == "POST":
            await self.invocations(scope, receive, send)
        else:
            await self.rest(scope, receive, send)

    async def invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctype = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                ctype = value
            elif name == b"content-length":
                length = value
        try:
            body = await _body(receive, length, self.max_body_bytes)
            status, answer = 200, await self._answer(body, ctype)
        except ClientGone:
            return
        except BadRequest as e:
            status, answer = e.status, _error(str(e), e.code)
        except Exception as e:  # the model's own failure: report it and keep serving
            _log.exception("The model failed on a request")
            status = 500
            answer = _error(f"The model failed: {type(e).__name__}: {e}", "INTERNAL_ERROR")
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _answer(self, body: bytes, ctype: bytes | None) -> bytes:
        fast = self.fast.parse(body, ctype) if self.fast is not None else None
        if fast is not None:
            assert self.fast is not None
            if self.fast.inline(fast):
                raw = self.fast.predict(fast)
            else:
                raw = await in_thread(self.timeout, self.fast.predict, fast)
        else:
            text = ctype.decode("latin-1") if ctype is not None else None
            data, params = parse_request(body, text, self.model)
            raw = await in_thread(self.timeout, predict, self.model, data, params)
        return predictions_json(raw)


async def _body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(_too_large(int(declared), limit), 413, "RESOURCE_LIMIT_EXCEEDED")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if not chunks and not more and len(chunk) <= limit:
            return chunk  # the whole body in one message: the usual case
        size += len(chunk)
        if size > limit:
            raise BadRequest(_too_large(size, limit), 413, "RESOURCE_LIMIT_EXCEEDED")
        chunks.append(chunk)
        if not more:
            return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"The request body ({size} bytes) is over the server's limit of {limit} bytes; "
        "send smaller batches or start the server with a larger --max-body-mb"
    )


def _error(message: str, code: str) -> bytes:
    return json.dumps({"error_code": code, "message": message}).encode()


def _rest_app() -> Starlette:
    async def ping(request: Request) -> Response:
        return Response("\n", media_type="application/json")

    async def version(request: Request) -> Response:
        return Response(__version__, media_type="application/json")

    async def unreachable(request: Request) -> Response:  # POST never gets here (ScoringApp)
        return Response(status_code=500)

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/health", ping, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/invocations", unreachable, methods=["POST"]),  # 405 for other methods
        ]
    )


def build_app(model: Any, *, max_body_bytes: int, timeout: float) -> ScoringApp:
    """Routes ``/invocations``, ``/ping``, ``/health`` and ``/version`` around a loaded model."""
    return ScoringApp(model, max_body_bytes=max_body_bytes, timeout=timeout)

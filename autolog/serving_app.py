"""The Starlette app behind :func:`autolog.serving.app` (kept apart so the parsing imports no web
framework)."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from autolog import __version__
from autolog.serving import BadRequest, parse_request, predict_async, predictions_json

_log = logging.getLogger("autolog.serving")


def _error(message: str, status: int, code: str) -> Response:
    body = json.dumps({"error_code": code, "message": message})
    return Response(body, status_code=status, media_type="application/json")


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(_too_large(int(declared), limit), 413, "RESOURCE_LIMIT_EXCEEDED")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(_too_large(size, limit), 413, "RESOURCE_LIMIT_EXCEEDED")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"The request body ({size} bytes) is over the server's limit of {limit} bytes; "
        "send smaller batches or start the server with a larger --max-body-mb"
    )


def build_app(model: Any, *, max_body_bytes: int, timeout: float) -> Starlette:
    """Routes ``/invocations``, ``/ping``, ``/health`` and ``/version`` around a loaded model."""

    async def ping(request: Request) -> Response:
        return Response("\n", media_type="application/json")

    async def version(request: Request) -> Response:
        return Response(__version__, media_type="application/json")

    async def invocations(request: Request) -> Response:
        try:
            body = await _body(request, max_body_bytes)
            data, params = parse_request(body, request.headers.get("content-type"), model)
            raw = await predict_async(model, data, params, timeout)
            return Response(predictions_json(raw), media_type="application/json")
        except BadRequest as e:
            return _error(str(e), e.status, e.code)
        except Exception as e:  # the model's own failure: report it and keep serving
            _log.exception("The model failed on a request")
            return _error(f"The model failed: {type(e).__name__}: {e}", 500, "INTERNAL_ERROR")

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/health", ping, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ]
    )

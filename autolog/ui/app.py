"""The browser app behind ``autolog ui``: pages and a JSON API over one store, which it only
reads (but for restoring a deleted run).

    autolog ui --store ./autolog-runs --port 5000      # then open http://127.0.0.1:5000

Pages are rendered on the server (a first response needs no JavaScript and is one page of
runs however many there are); charts and artifact previews are drawn in the browser by our own
small script (static/app.js) from the JSON API (api.py). Nothing is loaded from the network.

Security: bound to a loopback address, requests must name that address in their Host header
(a page of another site that rebinds its DNS name to 127.0.0.1 is refused with 400). Every
route is GET but one: restoring a deleted run (POST, accepted only with a header that another
site's page cannot send without a CORS preflight, which is never granted); artifact files are confined to their run's artifact folder and served with
``Content-Security-Policy: sandbox``, so an HTML or SVG artifact cannot script this app.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from autolog.ui import api, data, datasets, pages_compare, pages_registry, pages_run, pages_runs
from store.base import TrackingStore as Store
from store.errors import (
    ArtifactPathError,
    AutologError,
    ExperimentNotFoundError,
    LoggedModelNotFoundError,
    RegisteredModelNotFoundError,
    RunNotFoundError,
)

HERE = Path(__file__).parent
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


# -- middleware -------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """Host header values accepted when bound to ``host:port``; None means no check.

    Bound to a loopback address, only the loopback names with this port are accepted (the
    port may be left out only for port 80). Bound to anything else the user chose to expose
    the app, and any Host is accepted.
    """
    if not is_loopback(host):
        return None
    names = {f"{name}:{port}" for name in LOOPBACK_NAMES}
    if port == 80:
        names |= set(LOOPBACK_NAMES)
    return names


class HostCheck:
    """Refuse requests whose Host header is not one of ours (DNS rebinding defence)."""

    def __init__(self, app: ASGIApp, allowed: set[str] | None):
        self.app = app
        self.allowed = None if allowed is None else {h.lower() for h in allowed}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and self.allowed is not None:
            host = ""
            for name, value in scope.get("headers", []):
                if name == b"host":
                    host = value.decode("latin-1").lower()
                    break
            if host not in self.allowed:
                response = PlainTextResponse(
                    f"Invalid Host header {host!r}: this autolog UI answers only to "
                    f"{', '.join(sorted(self.allowed))}.",
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Headers every response carries; responses that set their own CSP keep it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"x-frame-options": b"SAMEORIGIN",
                    b"content-security-policy": PAGE_CSP.encode(),
                }
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- templates --------------------------------------------------------------------------


def fmt_time(ms: int | None) -> str:
    if not ms:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    secs = ms / 1000
    if secs < 1:
        return f"{ms:.0f}ms"
    if secs < 60:
        return f"{secs:.1f}s"
    if secs < 3600:
        return f"{int(secs // 60)}m {int(secs % 60)}s"
    return f"{int(secs // 3600)}h {int(secs % 3600 // 60)}m"


def fmt_size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        time=fmt_time,
        duration=fmt_duration,
        value=data.format_value,
        size=fmt_size,
        q=lambda s: quote(str(s), safe=""),
        fromjson=datasets.from_json,
    )
    env.globals.update(artifact_url=api.artifact_url)
    return env


_env = _environment()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("title", "autolog")
    context.setdefault("nav", "")
    html = _env.get_template(template).render(
        request=request, store_uri=request.app.state.store_label, **context
    )
    return HTMLResponse(html, status_code=status_code)


# -- pages ------------------------------------------------------------------------------


def page_experiments(request: Request) -> HTMLResponse:
    exps = data.experiments(api.store_of(request))
    return render(
        request,
        "experiments.html",
        title="Experiments",
        nav="experiments",
        experiments=exps,
        total=sum(e["run_count"] for e in exps),
    )


def page_logged_model(request: Request) -> HTMLResponse:
    store = api.store_of(request)
    view = data.logged_model_view(store, request.path_params["model_id"])
    model = view["model"]
    return render(request, "logged_model.html", title=model.name, nav="models", **view)


# -- errors -----------------------------------------------------------------------------

_NOT_FOUND = (
    RunNotFoundError,
    ExperimentNotFoundError,
    RegisteredModelNotFoundError,
    LoggedModelNotFoundError,
    FileNotFoundError,
)


def _status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, HTTPException):
        return exc.status_code, "RESOURCE_DOES_NOT_EXIST" if exc.status_code == 404 else "ERROR"
    if isinstance(exc, _NOT_FOUND):
        return 404, "RESOURCE_DOES_NOT_EXIST"
    return 400, "INVALID_PARAMETER_VALUE"


async def handle_error(request: Request, exc: Exception) -> Response:
    status, code = _status_of(exc)
    if isinstance(exc, HTTPException):
        message = str(exc.detail)
    elif isinstance(exc, ArtifactPathError) and "outside" in str(exc):
        # the store's message names real paths on disk; a browser needs no map of them
        message = "Refused: this path leaves the run's artifact folder (through a link)."
    elif isinstance(exc, FileNotFoundError):
        message = f"No artifact at {exc.args[0]!r}." if exc.args else "Not found."
    else:
        message = str(exc)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error_code": code, "message": message}, status_code=status)
    return render(
        request, "error.html", status_code=status, title="Error", status=status, message=message
    )


# -- the app ----------------------------------------------------------------------------


def create_app(
    store: Store | str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    allowed: set[str] | None = None,
) -> Starlette:
    """The UI as an ASGI app.

    :param store: a Store, a tracking URI, or None for the current tracking URI.
    :param host: the address the server binds (decides the Host-header check).
    :param port: the port the server binds.
    :param allowed: Host header values to accept instead of the ones derived from host/port.
    """
    from autolog import tracking

    if not isinstance(store, Store):
        client = tracking.Client(store)
        label = client.tracking_uri
        store = client.store
    else:
        label = store.location
    routes = [
        Route("/", page_experiments),
        Route("/experiments/{experiment_id:int}", pages_runs.page_experiment),
        Route("/runs", pages_runs.page_all_runs),
        Route("/runs/{run_id}", pages_run.page_run),
        Route("/compare", pages_compare.page_compare),
        Route("/api/runs/{run_id}/restore", pages_runs.api_restore_run, methods=["POST"]),
        Route("/datasets/{digest}", datasets.page_dataset),
        Route("/models", pages_registry.page_models),
        Route("/models/{name}", pages_registry.page_model),
        Route("/models/{name}/versions/{version}", pages_registry.page_model_version),
        Route("/logged-models/{model_id}", page_logged_model),
        *api.routes,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers: dict[Any, Any] = {
        AutologError: handle_error,
        FileNotFoundError: handle_error,
        ArtifactPathError: handle_error,
        HTTPException: handle_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.store = store
    app.state.store_label = label
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        HostCheck, allowed=allowed if allowed is not None else allowed_hosts(host, port)
    )
    return app

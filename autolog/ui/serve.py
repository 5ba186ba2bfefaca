"""Serving the UI: bind the port first (a busy port is one clear line, before any banner; port 0
gets a free port whose number is printed), then hand the bound socket to uvicorn."""

from __future__ import annotations

import errno
import socket
from typing import Any

from starlette.applications import Starlette

from autolog.errors import AutologError
from autolog.ui import app as ui_app


class PortInUseError(AutologError):
    """The port the UI was asked to bind is taken by another program."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; PortInUseError names the port and the fix."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"Port {port} on {host} is already in use; pass --port N for another port, or "
                "--port 0 for any free one."
            ) from None
        raise AutologError(f"Cannot bind {host}:{port}: {exc.strerror}.") from None
    sock.listen(128)
    return sock


def server_app(uri: Any = None, host: str = "127.0.0.1", port: int = 5000) -> Starlette:
    """The app as ``autolog ui`` serves it, its database opened before the first request."""
    app = ui_app.create_app(uri, host=host, port=port)
    app.state.store.experiment_run_counts()  # connect (and import sqlite-utils) now, not in a request
    for name in ui_app._env.list_templates(extensions=["html"]):
        ui_app._env.get_template(name)  # compiled once, here
    return app


def serve(uri: str | None = None, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Run the UI with uvicorn until interrupted; the store must exist (a read creates none)."""
    import uvicorn

    from autolog import tracking
    from store.base import open_store

    uri = tracking.Client(uri).tracking_uri
    open_store(uri, create=False)  # StoreNotFoundError names the stores nearby
    sock = bind(host, port)
    port = sock.getsockname()[1]
    app = server_app(uri, host=host, port=port)
    shown = f"[{host}]" if ":" in host else host
    print(f"autolog UI for {app.state.store_label}: http://{shown}:{port}/  (Ctrl+C to stop)")
    if not ui_app.is_loopback(host):
        print(
            f"Warning: bound to {host}, the UI is reachable from other machines and shows every "
            "run and artifact of this store to anyone who can connect."
        )
    config = uvicorn.Config(app, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])

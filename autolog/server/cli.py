"""`autolog server`: run the tracking server, and manage its users (`autolog server users`)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

ENV_BACKEND = "AUTOLOG_SERVER_BACKEND_STORE_URI"
ENV_ARTIFACTS = "AUTOLOG_SERVER_ARTIFACTS_DESTINATION"
ENV_AUTH = "AUTOLOG_SERVER_AUTH"
ENV_HOST = "AUTOLOG_SERVER_HOST"
ENV_PORT = "AUTOLOG_SERVER_PORT"
ENV_TESTING_RESET = "AUTOLOG_SERVER_TESTING_RESET"
DEFAULT_BACKEND = "autolog-runs"


def open_backend(uri: str, artifacts: str | None = None) -> Any:
    """The store a server serves: a folder, sqlite:/// file or postgresql:// database, with its
    artifacts in ``artifacts`` (a folder or s3://bucket/prefix) where given."""
    from store.base import open_store

    if artifacts is None:
        return open_store(uri)
    if "://" not in uri:  # a folder: its database file, artifacts elsewhere
        uri = f"sqlite:///{Path(uri).absolute() / 'autolog.db'}"
    if not artifacts.startswith("s3://"):
        artifacts = str(Path(artifacts.removeprefix("file://")).absolute())
    # sqlite:/// and postgresql:// URIs both take the artifact root as a query parameter
    return open_store(f"{uri}{'&' if '?' in uri else '?'}{urlencode({'artifact_root': artifacts})}")


def app_from_env(freeze: bool = True) -> Any:
    """The app for one uvicorn worker, configured by the parent through the environment.

    :param freeze: move what start-up allocated (the store, the UI, numpy and pandas) out of
        the garbage collector's reach (``gc.freeze``). Without it a full collection walks those
        ~80,000 objects every few hundred requests of log-batch garbage: 170 to 240 ms with the
        whole server stopped, at load average 14 on this project's 2-core machine (2026-12-05),
        the largest single pause a client saw.
    """
    from autolog.server.app import create_app
    from autolog.server.auth import Authenticator

    store = open_backend(
        os.environ.get(ENV_BACKEND, DEFAULT_BACKEND), os.environ.get(ENV_ARTIFACTS)
    )
    store.experiment_run_counts()  # open (and migrate) before the first request
    auth = Authenticator(store) if os.environ.get(ENV_AUTH) == "1" else None
    host, port = os.environ.get(ENV_HOST, "127.0.0.1"), int(os.environ.get(ENV_PORT, "5000"))
    reset = None
    if os.environ.get(ENV_TESTING_RESET) == "1":  # autolog.server.testing only

        def reset(folder: str) -> Any:  # a folder, or a store URI (postgresql://...)
            return open_backend(folder if "://" in folder else f"sqlite:///{folder}/contract.db")

    app = create_app(store, auth=auth, host=host, port=port, testing_reset=reset)
    if freeze:
        freeze_heap()
    return app


def freeze_heap() -> None:
    """Collect once, then exempt every object alive now from later collections (a server's
    start-up state lives as long as the process)."""
    import gc

    gc.collect()
    gc.freeze()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_backend_option = click.option(
    "--backend-store-uri",
    default=DEFAULT_BACKEND,
    show_default=True,
    help="Where runs are kept: a folder, sqlite:///path.db or postgresql://...",
)


@click.group("server", invoke_without_command=True)
@_backend_option
@click.option(
    "--artifacts-destination",
    default=None,
    help="Folder for artifacts (default: inside the backend store's folder).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes."
)
@click.option("--auth", is_flag=True, help="Require credentials (users: `autolog server users`).")
@click.pass_context
def server(
    ctx: click.Context, backend_store_uri: str, artifacts_destination: str | None, host: str,
    port: int, workers: int, auth: bool,
) -> None:  # fmt: skip
    """Serve MLflow's REST API, the artifact proxy and the UI over one store."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {
            **(ctx.obj or {}),
            "backend": backend_store_uri,
            "artifacts": artifacts_destination,
        }
        return
    import uvicorn

    os.environ[ENV_BACKEND] = backend_store_uri
    if artifacts_destination:
        os.environ[ENV_ARTIFACTS] = artifacts_destination
    os.environ.update({ENV_AUTH: "1" if auth else "0", ENV_HOST: host, ENV_PORT: str(port)})
    # fail here, with the error, on a bad store URI (uvicorn builds the app again to serve it)
    app_from_env(freeze=False).state.tracking_store.close()
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"autolog server for {backend_store_uri}: http://{shown}:{port}/ ({workers} worker(s), auth {'on' if auth else 'off'})"
    )
    if not auth and not _loopback(host):
        click.echo(
            f"Warning: bound to {host} without --auth: anyone who can reach this address can read "
            "and change every run, model and artifact. Add --auth and create users with "
            "`autolog server users add`.",
            err=True,
        )
    uvicorn.run(
        "autolog.server.cli:app_from_env", factory=True, host=host, port=port, workers=workers,
        log_level="warning",
    )  # fmt: skip


@server.group("users")
def users() -> None:
    """Add, remove and list the users of a server started with --auth."""


def _auth_store(ctx: click.Context) -> Any:
    obj = ctx.find_object(dict) or {}
    return open_backend(obj.get("backend", DEFAULT_BACKEND), obj.get("artifacts"))


@users.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["read", "write", "admin"]), default="read", show_default=True
)
@click.option(
    "--password",
    default=None,
    help="A password for HTTP Basic (prompted if neither this nor --token).",
)
@click.option(
    "--token",
    "make_token",
    is_flag=True,
    help="Create an API token (printed once) instead of a password.",
)
@click.pass_context
def users_add(
    ctx: click.Context, name: str, role: str, password: str | None, make_token: bool
) -> None:
    """Add a user with a role; it gets a password, a token, or both."""
    from autolog.server.auth import hash_password, hash_token, new_token

    if password is None and not make_token:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = _auth_store(ctx)
    store.add_user(name, role, hash_password(password) if password else None)
    if make_token:
        token = new_token()
        store.add_token(name, hash_token(token))
        click.echo(f"Token for {name} (shown once; clients set AUTOLOG_TRACKING_TOKEN): {token}")
    click.echo(f"Added {name} ({role}).")


@users.command("remove")
@click.argument("name")
@click.pass_context
def users_remove(ctx: click.Context, name: str) -> None:
    """Remove a user and its tokens."""
    _auth_store(ctx).remove_user(name)
    click.echo(f"Removed {name}.")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """The users, their roles and how many tokens each has."""
    for u in _auth_store(ctx).list_users():
        click.echo(f"{u['name']}\t{u['role']}\t{u['tokens']} token(s)")

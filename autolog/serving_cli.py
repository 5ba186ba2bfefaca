"""``autolog models serve | predict | generate-dockerfile | build-docker``.

Attached to the ``models`` group of :mod:`autolog.cli` by :func:`add_commands`; everything heavy
(pandas, uvicorn, the model's library) is imported inside the commands, so ``autolog --help``
stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from autolog.errors import AutologError

_MODEL_URI = click.option(
    "-m",
    "--model-uri",
    required=True,
    help="runs:/<run_id>/<path>, models:/<name>@<alias>, models:/<name>/<version> or a path.",
)
_ALLOW_PICKLE = click.option(
    "--allow-pickle",
    is_flag=True,
    help="Load a pickled model from a plain path (runs:/ and models:/ are checked by digest).",
)


def _use_store(ctx: click.Context) -> None:
    store = (ctx.find_root().obj or {}).get("store")
    if store:
        from autolog import tracking

        tracking.set_tracking_uri(store)
        os.environ["AUTOLOG_TRACKING_URI"] = store  # for a server started in a virtualenv


def _fail_cleanly(fn: Any) -> Any:
    """autolog's errors as one line on stderr and exit code 2 (as in :mod:`autolog.cli`)."""

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AutologError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return inner


@click.command("serve")
@_MODEL_URI
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5001, show_default=True, type=int, help="Port to bind.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Processes.")
@click.option(
    "--env-manager",
    type=click.Choice(["local", "virtualenv"]),
    default="local",
    show_default=True,
    help="local: this environment (warns on version differences); virtualenv: one built "
    "from the model's requirements (cached).",
)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per prediction (503).")
@click.option("--max-body-mb", default=100.0, show_default=True, help="Request size limit (413).")
@_ALLOW_PICKLE
@click.pass_context
@_fail_cleanly
def serve(
    ctx: click.Context,
    model_uri: str,
    host: str,
    port: int,
    workers: int,
    env_manager: str,
    timeout: float,
    max_body_mb: float,
    allow_pickle: bool,
) -> None:
    """Serve a model over HTTP with MLflow's scoring protocol (POST /invocations, GET /ping)."""
    _use_store(ctx)
    if env_manager == "virtualenv":
        from autolog.models import resolve_model_uri
        from autolog.serving_env import exec_in_virtualenv

        argv = ["models", "serve", "-m", model_uri, "--host", host, "--port", str(port),
                "--workers", str(workers), "--timeout", str(timeout),
                "--max-body-mb", str(max_body_mb)]  # fmt: skip
        exec_in_virtualenv(resolve_model_uri(model_uri), argv + ["--allow-pickle"] * allow_pickle)
        return
    try:
        from autolog import serving
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise AutologError(f"Serving needs its extras: pip install 'autolog[ui]' ({exc}).")
    serving.serve(
        model_uri,
        host=host,
        port=port,
        workers=workers,
        allow_pickle=allow_pickle,
        timeout=timeout,
        max_body_mb=max_body_mb,
    )


@click.command("predict")
@_MODEL_URI
@click.option(
    "-i", "--input-path", required=True, help="CSV, JSON, JSON Lines or Parquet; - is stdin."
)
@click.option(
    "-o", "--output-path", default="-", show_default=True, help="Where to write; - is stdout."
)
@click.option(
    "--input-format", type=click.Choice(["csv", "json", "jsonl", "parquet"]), default=None
)
@click.option(
    "--output-format", type=click.Choice(["csv", "json", "jsonl", "parquet"]), default=None
)
@click.option("--chunk-rows", default=10_000, show_default=True, type=int, help="Rows per chunk.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@_ALLOW_PICKLE
@click.pass_context
@_fail_cleanly
def predict(
    ctx: click.Context,
    model_uri: str,
    input_path: str,
    output_path: str,
    input_format: str | None,
    output_format: str | None,
    chunk_rows: int,
    no_progress: bool,
    allow_pickle: bool,
) -> None:
    """Score a file in chunks (memory bounded by --chunk-rows), with the signature enforced."""
    _use_store(ctx)
    from autolog.serving import load
    from autolog.serving_batch import format_of, predict_file

    format_of(input_path, input_format, "input")  # a bad name fails before the model loads
    format_of(output_path, output_format, "output")
    model = load(model_uri, allow_pickle=allow_pickle)
    predict_file(
        model,
        input_path,
        output_path,
        input_format=input_format,
        output_format=output_format,
        chunk_rows=chunk_rows,
        progress=not no_progress,
    )


def _context(model_uri: str, directory: Path, allow_pickle: bool) -> Path:
    from autolog.models import resolve_model_uri
    from autolog.serving import load
    from autolog.serving_env import generate_dockerfile

    model = load(model_uri, allow_pickle=allow_pickle)  # proves it loads (and is trusted)
    path = Path(getattr(model, "path", None) or resolve_model_uri(model_uri))
    return generate_dockerfile(model_uri, directory, path)


@click.command("generate-dockerfile")
@_MODEL_URI
@click.option(
    "-d", "--directory", default="autolog-docker", show_default=True, help="Output folder."
)
@_ALLOW_PICKLE
@click.pass_context
@_fail_cleanly
def generate_dockerfile(
    ctx: click.Context, model_uri: str, directory: str, allow_pickle: bool
) -> None:
    """Write a Docker build context that serves the model on 0.0.0.0:8080."""
    _use_store(ctx)
    dockerfile = _context(model_uri, Path(directory), allow_pickle)
    click.echo(f"Wrote {dockerfile}; build it with: docker build -t NAME {directory}")


@click.command("build-docker")
@_MODEL_URI
@click.option("-n", "--name", required=True, help="Image name (tag).")
@_ALLOW_PICKLE
@click.pass_context
@_fail_cleanly
def build_docker(ctx: click.Context, model_uri: str, name: str, allow_pickle: bool) -> None:
    """Build a Docker image serving the model (needs a running Docker daemon)."""
    _use_store(ctx)
    from autolog.serving_env import docker_build

    directory = Path(tempfile.mkdtemp(prefix="autolog-docker-"))
    _context(model_uri, directory, allow_pickle)
    docker_build(directory, name)
    click.echo(f"Built image {name}: docker run -p 8080:8080 {name}")


def add_commands(group: click.Group) -> None:
    """Attach the serving commands to ``autolog models``."""
    for cmd in (serve, predict, generate_dockerfile, build_docker):
        group.add_command(cmd)

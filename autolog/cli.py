"""The ``autolog`` command line: find, show, compare and delete runs; browse them in the UI.

Library errors become one line on stderr and exit code 2, never a traceback. Read commands
never create a store: a missing one is an error naming the stores nearby. The commands live
in cli_runs.py (runs, experiments) and cli_models.py (models); tables in cli_common.py.
"""

from __future__ import annotations

import sys

import click

from autolog.cli_common import fail_cleanly
from autolog.cli_models import models
from autolog.cli_runs import experiments, runs
from autolog.errors import AutologError


@click.group()
@click.option(
    "--store",
    envvar="AUTOLOG_TRACKING_URI",
    default=None,
    help="Tracking URI: a folder, its .db file, or sqlite:///file.db (default: ./autolog-runs).",
)
@click.pass_context
def main(ctx: click.Context, store: str | None) -> None:
    """autolog: look at what autolog() recorded."""
    ctx.ensure_object(dict)
    ctx.obj["store"] = store


main.add_command(runs)
main.add_command(experiments)
main.add_command(models)


@main.command("ui")
@click.option(
    "--store",
    "uri",
    default=None,
    help="Tracking URI to show (default: the --store given before `ui`, else ./autolog-runs).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=5000, show_default=True, type=int, help="Port to bind (0: any free port)."
)
@click.pass_context
@fail_cleanly
def ui(ctx: click.Context, uri: str | None, host: str, port: int) -> None:
    """Browse runs, metrics, artifacts and models in a local web app (read-only)."""
    try:
        from autolog.ui import PortInUseError, serve
    except ImportError as exc:
        raise AutologError(f"The UI needs its extras: pip install 'autolog[ui]' ({exc}).")
    try:
        serve(uri or ctx.obj.get("store"), host=host, port=port)
    except PortInUseError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


from autolog.projects.cli import run_command  # noqa: E402  (`autolog run`; imports lazily)
from autolog.server.cli import server  # noqa: E402  (`autolog server`; imports lazily)
from autolog.serving_cli import add_commands as _add_serving_commands  # noqa: E402

main.add_command(run_command)
main.add_command(server)
_add_serving_commands(models)  # models serve | predict | generate-dockerfile | build-docker

from autolog.db_cli import db_group  # noqa: E402  (`autolog db copy SRC DST`)

main.add_command(db_group)

if __name__ == "__main__":  # pragma: no cover
    main()

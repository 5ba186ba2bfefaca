"""`autolog run`: run a project's entry point as a tracked run (MLflow's `mlflow run` options).

Start-up budget (< 300 ms before the entry point starts, benchmarks/projects_bench.py): this
process only writes text into the store, yet sqlite-utils imports pandas and numpy when they are
installed (0.75 s of the 0.83 s measured); the command hides them from it (_without_dataframes).
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import click


def _parse_params(values: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="-P")
        params[key] = value
    return params


def _without_dataframes() -> None:
    """Make pandas/numpy unimportable in this process (sqlite-utils then skips them)."""
    for name in ("pandas", "numpy"):
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def _terminate_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@click.command("run")
@click.argument("uri")
@click.option(
    "-e", "--entry-point", default="main", show_default=True, help="Entry point, or a .py/.sh file."
)
@click.option(
    "-P",
    "--param-list",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter; unknown names are passed as --NAME VALUE.",
)
@click.option(
    "--env-manager",
    type=click.Choice(["local", "virtualenv", "conda"]),
    default=None,
    help="Default: virtualenv for python_env projects, conda for conda_env, else local.",
)
@click.option("--experiment-name", default=None, help="Experiment (created when missing).")
@click.option("--experiment-id", default=None, help="Experiment by id.")
@click.option("--run-name", default=None, help="Name of the run.")
@click.option("-v", "--version", default=None, help="Git commit, branch or tag to run.")
@click.pass_context
def run_command(
    ctx: click.Context,
    uri: str,
    entry_point: str,
    params: tuple[str, ...],
    env_manager: str | None,
    experiment_name: str | None,
    experiment_id: str | None,
    run_name: str | None,
    version: str | None,
) -> None:
    """Run the project at URI (folder, git repository, optional #subdirectory) as one run."""
    from autolog.errors import AutologError
    from autolog.projects.runner import run

    parameters = _parse_params(params)
    _without_dataframes()
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        submitted = run(
            uri,
            entry_point,
            parameters,
            version=version,
            env_manager=env_manager,
            experiment_name=experiment_name,
            experiment_id=experiment_id,
            run_name=run_name,
            synchronous=False,
            tracking_uri=(ctx.obj or {}).get("store"),
        )
    except AutologError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"autolog: run {submitted.run_id} started", err=True)
    try:
        ok = submitted.wait()
    except KeyboardInterrupt:
        submitted.cancel()
        click.echo(f"autolog: run {submitted.run_id} KILLED", err=True)
        sys.exit(130)
    status = submitted.get_status()
    click.echo(f"autolog: run {submitted.run_id} {status}", err=True)
    if not ok:
        sys.exit(submitted.returncode if submitted.returncode and submitted.returncode > 0 else 1)

"""The ``autolog`` command line: find, show, compare and delete runs.

Library errors become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import sys
from collections.abc import Callable
from typing import Any

import click

from autolog.errors import AutologError

# Tags recorded on every run; hidden from the default views (``runs show --all-tags`` shows them).
_CONTEXT_TAG_PREFIXES = ("autolog.source.", "autolog.packages", "autolog.platform", "autolog.host")


def _fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AutologError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return inner


def _client(ctx: click.Context) -> Any:
    from autolog.tracking import Client

    return Client(ctx.obj.get("store"))


def _fmt_time(ms: int | None) -> str:
    if not ms:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_duration(start: int | None, end: int | None) -> str:
    if not start or not end:
        return "-"
    secs = (end - start) / 1000
    return f"{secs:.1f}s" if secs < 120 else f"{secs / 60:.1f}m"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.6g}"
    return str(v)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(line.rstrip() for line in out)


@click.group()
@click.option(
    "--store",
    envvar="AUTOLOG_TRACKING_URI",
    default=None,
    help="Tracking URI: a folder or sqlite:///file.db (default: ./autolog-runs).",
)
@click.pass_context
def main(ctx: click.Context, store: str | None) -> None:
    """autolog: look at what autolog() recorded."""
    ctx.ensure_object(dict)
    ctx.obj["store"] = store


@main.group()
def runs() -> None:
    """List, show, compare and delete runs."""


def _experiment_ids(client: Any, experiment: tuple[str, ...]) -> list[str] | None:
    if not experiment:
        return None
    ids = []
    for name in experiment:
        exp = client.get_experiment_by_name(name)
        if exp is None and name.isdigit():
            exp = client.get_experiment(name)
        if exp is None:
            known = ", ".join(e.name for e in client.search_experiments())
            raise AutologError(f"No experiment named {name!r}; known: {known}.")
        ids.append(exp.experiment_id)
    return ids


@runs.command("list")
@click.option(
    "--filter",
    "filter_string",
    default="",
    help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\"",
)
@click.option(
    "--experiment", "-e", multiple=True, help="Experiment name or id (repeatable; default: all)."
)
@click.option("--order-by", multiple=True, help='e.g. "metrics.acc DESC" (repeatable).')
@click.option("--max-results", "-n", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@_fail_cleanly
def runs_list(
    ctx: click.Context,
    filter_string: str,
    experiment: tuple[str, ...],
    order_by: tuple[str, ...],
    max_results: int,
    as_json: bool,
) -> None:
    """List runs, newest first."""
    client = _client(ctx)
    found = client.search_runs(
        experiment_ids=_experiment_ids(client, experiment),
        filter_string=filter_string,
        order_by=list(order_by) or None,
        max_results=max_results,
    )
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in found], indent=2, default=str))
        return
    if not found:
        click.echo("No runs.")
        return
    rows = []
    for r in found:
        metrics = ", ".join(f"{k}={_fmt_value(v)}" for k, v in sorted(r.data.metrics.items())[:3])
        rows.append(
            [
                r.info.run_id,
                r.info.run_name or "",
                r.info.status,
                _fmt_time(r.info.start_time),
                _fmt_duration(r.info.start_time, r.info.end_time),
                r.data.tags.get("autolog.integration", ""),
                metrics,
            ]
        )
    click.echo(
        _table(["run_id", "name", "status", "started", "duration", "integration", "metrics"], rows)
    )


@runs.command("show")
@click.argument("run_id")
@click.option("--all-tags", is_flag=True, help="Also show the run-context tags.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_fail_cleanly
def runs_show(ctx: click.Context, run_id: str, all_tags: bool, as_json: bool) -> None:
    """Show one run: info, params, latest metrics, tags, artifacts."""
    client = _client(ctx)
    run = client.get_run(run_id)
    if as_json:
        click.echo(json.dumps(run.to_dict(), indent=2, default=str))
        return
    i = run.info
    click.echo(f"Run {i.run_id}  ({i.run_name})")
    click.echo(f"  status:     {i.status}")
    click.echo(f"  experiment: {i.experiment_id}")
    click.echo(
        f"  started:    {_fmt_time(i.start_time)}   duration: {_fmt_duration(i.start_time, i.end_time)}"
    )
    if i.parent_run_id:
        click.echo(f"  parent:     {i.parent_run_id}")
    click.echo(f"  artifacts:  {i.artifact_uri}")
    for title, data in (("Params", run.data.params), ("Metrics", run.data.metrics)):
        click.echo(f"{title}:")
        for k in sorted(data):
            click.echo(f"  {k} = {_fmt_value(data[k])}")
    click.echo("Tags:")
    for k in sorted(run.data.tags):
        if all_tags or not k.startswith(_CONTEXT_TAG_PREFIXES):
            click.echo(f"  {k} = {run.data.tags[k]}")
    files = client.list_artifacts(run_id)
    if files:
        click.echo("Artifacts:")
        for f in files:
            click.echo(f"  {f.path}{'/' if f.is_dir else ''}")


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--all", "show_all", is_flag=True, help="Also show rows where every run agrees.")
@click.pass_context
@_fail_cleanly
def runs_compare(ctx: click.Context, run_ids: tuple[str, ...], show_all: bool) -> None:
    """Params and latest metrics side by side; rows that differ are marked with '*'."""
    if len(run_ids) < 2:
        raise AutologError("Give at least two run ids to compare.")
    client = _client(ctx)
    found = [client.get_run(r) for r in run_ids]
    headers = ["", "key", *[r.info.run_name or r.info.run_id[:8] for r in found]]
    rows: list[list[str]] = []
    for section, getter in (
        ("param", lambda r: r.data.params),
        ("metric", lambda r: r.data.metrics),
    ):
        keys = sorted(set().union(*(getter(r).keys() for r in found)))
        for k in keys:
            values = [_fmt_value(getter(r)[k]) if k in getter(r) else "-" for r in found]
            differs = len(set(values)) > 1
            if differs or show_all:
                rows.append(["*" if differs else "", f"{section}s.{k}", *values])
    click.echo(_table(headers, rows) if rows else "The runs have identical params and metrics.")


@runs.command("delete")
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_context
@_fail_cleanly
def runs_delete(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Mark runs deleted (hidden from search; `autolog runs restore` brings them back)."""
    client = _client(ctx)
    for rid in run_ids:
        client.delete_run(rid)
        click.echo(f"Deleted run {rid}")


@runs.command("restore")
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_context
@_fail_cleanly
def runs_restore(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Restore deleted runs."""
    client = _client(ctx)
    for rid in run_ids:
        client.restore_run(rid)
        click.echo(f"Restored run {rid}")


@main.group()
def experiments() -> None:
    """List experiments."""


@experiments.command("list")
@click.pass_context
@_fail_cleanly
def experiments_list(ctx: click.Context) -> None:
    """List experiments with their run counts."""
    client = _client(ctx)
    rows = []
    for e in client.search_experiments():
        n = client.store.count_runs([e.experiment_id])
        rows.append([e.experiment_id, e.name, str(n), _fmt_time(e.creation_time)])
    click.echo(_table(["id", "name", "runs", "created"], rows))


@main.group()
def models() -> None:
    """List and show registered models; set aliases and stages."""


def _first_line(text: str | None, width: int = 50) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


@models.command("list")
@click.option("--filter", "filter_string", default="", help="e.g. \"name LIKE 'churn%'\"")
@click.option("--max-results", "-n", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@_fail_cleanly
def models_list(ctx: click.Context, filter_string: str, max_results: int, as_json: bool) -> None:
    """List registered models by name."""
    found = _client(ctx).search_registered_models(filter_string or None, max_results=max_results)
    if as_json:
        click.echo(json.dumps([m.to_dict() for m in found], indent=2, default=str))
        return
    if not found:
        click.echo("No registered models.")
        return
    rows = []
    for m in found:
        latest = max((int(v.version) for v in m.latest_versions), default=None)
        stages = ", ".join(
            f"{v.current_stage}: {v.version}"
            for v in m.latest_versions
            if v.current_stage != "None"
        )
        aliases = ", ".join(f"{a}: {v}" for a, v in sorted(m.aliases.items()))
        rows.append(
            [
                m.name,
                "-" if latest is None else str(latest),
                aliases,
                stages,
                _fmt_time(m.last_updated_timestamp),
                _first_line(m.description),
            ]
        )
    click.echo(_table(["name", "latest", "aliases", "stages", "updated", "description"], rows))


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_fail_cleanly
def models_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one registered model: description, tags, aliases and every version."""
    client = _client(ctx)
    model = client.get_registered_model(name)
    quoted = name.replace("'", "''")
    versions = client.search_model_versions(f"name = '{quoted}'", max_results=None)
    if as_json:
        d = model.to_dict()
        d["versions"] = [v.to_dict() for v in versions]
        click.echo(json.dumps(d, indent=2, default=str))
        return
    click.echo(f"Registered model {model.name}")
    click.echo(f"  created:  {_fmt_time(model.creation_timestamp)}")
    click.echo(f"  updated:  {_fmt_time(model.last_updated_timestamp)}")
    if model.description:
        click.echo("Description:")
        for line in model.description.splitlines():
            click.echo(f"  {line}".rstrip())
    if model.tags:
        click.echo("Tags:")
        for k in sorted(model.tags):
            click.echo(f"  {k} = {model.tags[k]}")
    if model.aliases:
        click.echo("Aliases:")
        for alias in sorted(model.aliases):
            click.echo(f"  @{alias} -> version {model.aliases[alias]}")
    if not versions:
        click.echo("No versions.")
        return
    rows = [
        [
            v.version,
            v.current_stage,
            ", ".join(f"@{a}" for a in v.aliases),
            _fmt_time(v.creation_timestamp),
            v.run_id or "-",
            v.source,
            _first_line(v.description, 40),
        ]
        for v in versions
    ]
    click.echo("Versions:")
    click.echo(
        _table(["version", "stage", "aliases", "created", "run_id", "source", "description"], rows)
    )


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead of setting it.")
@click.pass_context
@_fail_cleanly
def models_alias(
    ctx: click.Context, name: str, alias: str, version: str | None, delete: bool
) -> None:
    """Point ALIAS of model NAME at VERSION (then load it as models:/NAME@ALIAS)."""
    client = _client(ctx)
    if delete:
        if version is not None:
            raise AutologError(
                "Give no VERSION with --delete: `autolog models alias NAME ALIAS --delete`."
            )
        client.delete_registered_model_alias(name, alias)
        click.echo(f"Deleted alias @{alias} of {name}")
        return
    if version is None:
        raise AutologError(
            "Missing VERSION: `autolog models alias NAME ALIAS VERSION` (or --delete)."
        )
    client.set_registered_model_alias(name, alias, version)
    click.echo(
        f"{name}@{alias} -> version {client.get_model_version_by_alias(name, alias).version}"
    )


@models.command("stage")
@click.argument("name")
@click.argument("version")
@click.argument("stage")
@click.option(
    "--archive-existing",
    is_flag=True,
    help="Move the versions already in STAGE to Archived (Staging and Production only).",
)
@click.pass_context
@_fail_cleanly
def models_stage(
    ctx: click.Context, name: str, version: str, stage: str, archive_existing: bool
) -> None:
    """Move VERSION of model NAME to STAGE: None, Staging, Production or Archived."""
    client = _client(ctx)
    quoted = name.replace("'", "''")

    def stages() -> dict[str, str]:
        found = client.search_model_versions(f"name = '{quoted}'", max_results=None)
        return {v.version: v.current_stage for v in found}

    before = stages() if archive_existing else {}
    mv = client.transition_model_version_stage(name, version, stage, archive_existing)
    click.echo(f"{name} version {mv.version} -> {mv.current_stage}")
    if archive_existing:
        after = stages()
        for v in sorted(after, key=int):
            if v != mv.version and before.get(v) != after[v]:
                click.echo(f"{name} version {v} -> {after[v]}")


@main.command("ui")
@click.option(
    "--store",
    "store_uri",
    default=None,
    help="Tracking URI to show (default: the --store given before `ui`, else ./autolog-runs).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to bind.")
@click.pass_context
@_fail_cleanly
def ui(ctx: click.Context, store_uri: str | None, host: str, port: int) -> None:
    """Browse runs, metrics, artifacts and models in a local web app (read-only)."""
    try:
        from autolog.ui import serve
    except ImportError as exc:
        raise AutologError(f"The UI needs its extras: pip install 'autolog[ui]' ({exc}).")
    serve(store_uri or ctx.obj.get("store"), host=host, port=port)


from autolog.projects.cli import run_command  # noqa: E402  (`autolog run`; imports lazily)

main.add_command(run_command)
from autolog.db_cli import db_group  # noqa: E402  (`autolog db copy SRC DST`)

main.add_command(db_group)


if __name__ == "__main__":  # pragma: no cover
    main()

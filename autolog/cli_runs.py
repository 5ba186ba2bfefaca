"""``autolog runs ...`` and ``autolog experiments ...``: find, show, compare, delete, restore."""

from __future__ import annotations

import json
from typing import Any

import click

from autolog.cli_common import (
    client,
    counted,
    fail_cleanly,
    fmt_duration,
    fmt_time,
    fmt_value,
    resolve_run_id,
    status_style,
    store_label,
    table,
)
from autolog.errors import AutologError
from autolog.run_columns import default_metric_columns

# Tags recorded on every run; hidden from the default views (``runs show --all`` shows them).
_CONTEXT_TAG_PREFIXES = (
    "mlflow.source.",
    "autolog.source.",
    "autolog.packages",
    "autolog.platform",
    "autolog.host",
)


@click.group()
def runs() -> None:
    """List, show, compare, delete and restore runs (ids may be given as prefixes)."""


def _experiment_ids(c: Any, experiment: tuple[str, ...]) -> list[str] | None:
    if not experiment:
        return None
    ids = []
    for name in experiment:
        exp = c.get_experiment_by_name(name)
        if exp is None and name.isdigit():
            exp = c.get_experiment(name)
        if exp is None:
            known = ", ".join(e.name for e in c.search_experiments())
            raise AutologError(f"No experiment named {name!r}; known: {known}.")
        ids.append(exp.experiment_id)
    return ids


def _metric_columns(found: list[Any], metrics: str | None) -> list[str]:
    if metrics:
        return [m.strip() for m in metrics.split(",") if m.strip()]
    return default_metric_columns([r.data.metrics.keys() for r in found], limit=3)


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
@click.option(
    "--metrics",
    "-m",
    default=None,
    help="Metric columns, e.g. val_loss,acc (default: the metrics the listed runs share).",
)
@click.option("--deleted", is_flag=True, help="List deleted runs (restore with `runs restore`).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@fail_cleanly
def runs_list(
    ctx: click.Context,
    filter_string: str,
    experiment: tuple[str, ...],
    order_by: tuple[str, ...],
    max_results: int,
    metrics: str | None,
    deleted: bool,
    as_json: bool,
) -> None:
    """List runs, newest first."""
    c = client(ctx)
    eids = _experiment_ids(c, experiment)
    found = c.search_runs(
        experiment_ids=eids,
        filter_string=filter_string,
        order_by=list(order_by) or None,
        max_results=max_results,
        run_view_type="DELETED_ONLY" if deleted else "ACTIVE_ONLY",
    )
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in found], indent=2, default=str))
        return
    total = c.store.count_runs(eids, filter_string, "deleted" if deleted else "active")
    kind = "deleted run" if deleted else "run"
    if not found:
        click.echo(
            f"No {kind}s in {store_label(c)}" + (" match the filter." if filter_string else ".")
        )
        return
    keys = _metric_columns(found, metrics)
    rows = []
    for r in found:
        m = r.data.metrics
        rows.append(
            [
                r.info.run_id,
                r.info.run_name or "",
                r.info.status,
                fmt_time(r.info.start_time),
                fmt_duration(r.info.start_time, r.info.end_time),
                *[fmt_value(m[k]) if k in m else "-" for k in keys],
            ]
        )
    headers = ["run_id", "name", "status", "started", "duration", *keys]
    click.echo(table(headers, rows, styles={2: status_style}, whole=(2,)))
    click.echo(f"{len(found)} of {counted(total, kind)} in {store_label(c)}")


def _hidden_tag(key: str, value: str) -> bool:
    """Context tags and autolog's internal JSON records (mlflow.log-model.history, ...)."""
    if key.startswith(_CONTEXT_TAG_PREFIXES):
        return True
    internal = key.startswith(("mlflow.", "autolog."))
    return internal and value.lstrip()[:1] in ("[", "{")


def _show_children(c: Any, run_id: str) -> None:
    child_ids = c.store.child_run_ids(run_id)
    if not child_ids:
        return
    children = c.store.get_runs(child_ids)
    keys = default_metric_columns([r.data.metrics.keys() for r in children], limit=2)
    if keys:  # ranked by the main metric, as a search's results are read
        lower_better = any(w in keys[0].lower() for w in ("loss", "error", "rmse", "mae", "mse"))
        nan = float("inf") if lower_better else float("-inf")
        children.sort(key=lambda r: r.data.metrics.get(keys[0], nan), reverse=not lower_better)
    rows = [
        [r.info.run_id, r.info.run_name or "", r.info.status,
         *[fmt_value(r.data.metrics[k]) if k in r.data.metrics else "-" for k in keys]]
        for r in children
    ]  # fmt: skip
    click.echo(f"Child runs ({len(children)}):")
    headers = ["run_id", "name", "status", *keys]
    click.echo(table(headers, rows, styles={2: status_style}, whole=(2,)))


def _show_datasets(run: Any) -> None:
    inputs = getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []
    if not inputs:
        return
    click.echo("Datasets:")
    for di in inputs:
        ds = di.dataset
        context = ", ".join(f"{t.key}={t.value}" for t in getattr(di, "tags", []) or [])
        click.echo(f"  {ds.name} (digest {ds.digest})" + (f"  [{context}]" if context else ""))


@runs.command("show")
@click.argument("run_id")
@click.option("--all", "--all-tags", "all_tags", is_flag=True, help="Also show context tags "
              "and autolog's internal JSON tags.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def runs_show(ctx: click.Context, run_id: str, all_tags: bool, as_json: bool) -> None:
    """Show one run: info, params, latest metrics, tags, children, datasets, artifacts."""
    c = client(ctx)
    run_id = resolve_run_id(c, run_id)
    run = c.get_run(run_id)
    if as_json:
        click.echo(json.dumps(run.to_dict(), indent=2, default=str))
        return
    i = run.info
    click.echo(click.style(f"Run {i.run_id}  ({i.run_name})", bold=True))
    click.echo(f"  status:     {status_style(i.status)}"
               + ("  (deleted)" if i.lifecycle_stage == "deleted" else ""))  # fmt: skip
    click.echo(f"  experiment: {c.get_experiment(i.experiment_id).name} (id {i.experiment_id})")
    click.echo(
        f"  started:    {fmt_time(i.start_time)}   duration: {fmt_duration(i.start_time, i.end_time)}"
    )
    if i.parent_run_id:
        parent = c.get_run(i.parent_run_id)
        click.echo(f"  parent:     {i.parent_run_id} ({parent.info.run_name})")
    click.echo(f"  artifacts:  {i.artifact_uri}")
    for title, data in (("Params", run.data.params), ("Metrics", run.data.metrics)):
        click.echo(f"{title}:")
        for k in sorted(data):
            click.echo(f"  {k} = {fmt_value(data[k])}")
    click.echo("Tags:")
    hidden = 0
    for k in sorted(run.data.tags):
        if all_tags or not _hidden_tag(k, str(run.data.tags[k])):
            click.echo(f"  {k} = {run.data.tags[k]}")
        else:
            hidden += 1
    if hidden:
        click.echo(f"  ({hidden} context and internal tags hidden; --all shows them)")
    _show_children(c, run_id)
    _show_datasets(run)
    files = c.list_artifacts(run_id)
    if files:
        click.echo("Artifacts:")
        for f in files:
            click.echo(f"  {f.path}{'/' if f.is_dir else ''}")


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--all", "show_all", is_flag=True, help="Also show rows where every run agrees.")
@click.pass_context
@fail_cleanly
def runs_compare(ctx: click.Context, run_ids: tuple[str, ...], show_all: bool) -> None:
    """Params and latest metrics side by side; rows that differ are marked with '*'."""
    if len(run_ids) < 2:
        raise AutologError("Give at least two run ids to compare.")
    c = client(ctx)
    found = [c.get_run(resolve_run_id(c, r)) for r in run_ids]
    headers = ["", "key", *[r.info.run_name or r.info.run_id[:8] for r in found]]
    rows: list[list[str]] = []
    for section, getter in (
        ("param", lambda r: r.data.params),
        ("metric", lambda r: r.data.metrics),
    ):
        keys = sorted(set().union(*(getter(r).keys() for r in found)))
        for k in keys:
            values = [fmt_value(getter(r)[k]) if k in getter(r) else "-" for r in found]
            differs = len(set(values)) > 1
            if differs or show_all:
                rows.append(["*" if differs else "", f"{section}s.{k}", *values])
    if not rows:
        click.echo("The runs have identical params and metrics.")
        return
    click.echo(table(headers, rows, id_columns=()))


@runs.command("delete")
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_context
@fail_cleanly
def runs_delete(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Mark runs deleted (hidden from search; `autolog runs restore` brings them back)."""
    c = client(ctx)
    for given in run_ids:
        rid = resolve_run_id(c, given)
        c.delete_run(rid)
        click.echo(f"Deleted run {rid}")


@runs.command("restore")
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_context
@fail_cleanly
def runs_restore(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Restore deleted runs (`autolog runs list --deleted` lists them)."""
    c = client(ctx)
    for given in run_ids:
        rid = resolve_run_id(c, given)
        if c.get_run(rid).info.lifecycle_stage != "deleted":
            click.echo(f"Run {rid} is not deleted; nothing to restore.")
            continue
        c.restore_run(rid)
        click.echo(f"Restored run {rid}")


@click.group()
def experiments() -> None:
    """List experiments."""


@experiments.command("list")
@click.pass_context
@fail_cleanly
def experiments_list(ctx: click.Context) -> None:
    """List experiments with their run counts."""
    c = client(ctx)
    rows = []
    for e in c.search_experiments():
        n = c.store.count_runs([e.experiment_id])
        rows.append([e.experiment_id, e.name, str(n), fmt_time(e.creation_time)])
    click.echo(table(["id", "name", "runs", "created"], rows, id_columns=()))
    click.echo(f"{counted(len(rows), 'experiment')} in {store_label(c)}")

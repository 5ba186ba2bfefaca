"""``autolog models ...``: list and show registered models, set aliases and stages
(``models serve | predict | ...`` are attached by autolog/serving_cli.py)."""

from __future__ import annotations

import json

import click

from autolog.cli_common import client as open_client
from autolog.cli_common import counted, fail_cleanly, first_line, fmt_time, store_label, table
from autolog.errors import AutologError


@click.group()
def models() -> None:
    """List and show registered models; set aliases and stages."""


@models.command("list")
@click.option("--filter", "filter_string", default="", help="e.g. \"name LIKE 'churn%'\"")
@click.option("--max-results", "-n", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@fail_cleanly
def models_list(ctx: click.Context, filter_string: str, max_results: int, as_json: bool) -> None:
    """List registered models by name."""
    client = open_client(ctx)
    found = client.search_registered_models(filter_string or None, max_results=max_results)
    if as_json:
        click.echo(json.dumps([m.to_dict() for m in found], indent=2, default=str))
        return
    if not found:
        match = " match the filter" if filter_string else ""
        click.echo(f"No registered models{match} in {store_label(client)}.")
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
                fmt_time(m.last_updated_timestamp),
                first_line(m.description),
            ]
        )
    headers = ["name", "latest", "aliases", "stages", "updated", "description"]
    click.echo(table(headers, rows, id_columns=()))
    click.echo(f"{counted(len(rows), 'registered model')} in {store_label(client)}")


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def models_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one registered model: description, tags, aliases and every version."""
    client = open_client(ctx)
    model = client.get_registered_model(name)
    quoted = name.replace("'", "''")
    versions = client.search_model_versions(f"name = '{quoted}'", max_results=None)
    if as_json:
        d = model.to_dict()
        d["versions"] = [v.to_dict() for v in versions]
        click.echo(json.dumps(d, indent=2, default=str))
        return
    click.echo(f"Registered model {model.name}")
    click.echo(f"  created:  {fmt_time(model.creation_timestamp)}")
    click.echo(f"  updated:  {fmt_time(model.last_updated_timestamp)}")
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
            fmt_time(v.creation_timestamp),
            v.run_id or "-",
            v.source,
            first_line(v.description, 40),
        ]
        for v in versions
    ]
    click.echo("Versions:")
    click.echo(
        table(
            ["version", "stage", "aliases", "created", "run_id", "source", "description"],
            rows,
            id_columns=(4,),
        )
    )


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead of setting it.")
@click.pass_context
@fail_cleanly
def models_alias(
    ctx: click.Context, name: str, alias: str, version: str | None, delete: bool
) -> None:
    """Point ALIAS of model NAME at VERSION (then load it as models:/NAME@ALIAS)."""
    client = open_client(ctx)
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
@fail_cleanly
def models_stage(
    ctx: click.Context, name: str, version: str, stage: str, archive_existing: bool
) -> None:
    """Move VERSION of model NAME to STAGE: None, Staging, Production or Archived."""
    client = open_client(ctx)
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

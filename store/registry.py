"""The model registry in the store: registered models, numbered versions, tags, aliases, stages.

Tables (created by :func:`create_registry_tables`, migration 2)::

    registered_models        name (PK), creation/last_updated timestamps, description,
                             last_version: the highest number ever given (numbers of deleted
                             versions are never reused, so "version 3" always means one model)
    registered_model_tags    (name, key) -> value
    model_versions           (name, version) PK; source (runs:/<run_id>/<path> or a path), run_id,
                             storage_location (the model directory; relative to the artifact
                             root when inside it), current_stage, status, description, user_id
    model_version_tags       (name, version, key) -> value
    registered_model_aliases (name, alias) -> version

Every child row references its parent with ``ON UPDATE CASCADE ON DELETE CASCADE``: renaming a
model renames its versions, tags and aliases; deleting a version deletes its tags and the
aliases pointing at it. A new version's number is taken from ``last_version`` inside the same
``BEGIN IMMEDIATE`` transaction that inserts it, so concurrent registrations from many
processes get consecutive numbers, none twice, none skipped.

The filter grammar of :meth:`RegistryStore.search_registered_models` and
:meth:`RegistryStore.search_model_versions` is the one of :mod:`store.search` (``AND``, ``OR``,
parentheses, ``= != < <= > >=``, ``[NOT] LIKE/ILIKE``, ``[NOT] IN``, ``IS [NOT] NULL``) over these
names::

    registered models: name, description, creation_timestamp, last_updated_timestamp, tags.<key>
    model versions:    name, version_number (or version), run_id, source_path (or source),
                       current_stage, status, user_id, description, creation_timestamp,
                       last_updated_timestamp, tags.<key>
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from store.errors import (
    RegistryValueError,
)

if TYPE_CHECKING:
    pass

T = TypeVar("T")

STAGES = ("None", "Staging", "Production", "Archived")
READY = "READY"
MAX_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
MAX_TAG_KEY_LENGTH = 250
MAX_DESCRIPTION_LENGTH = 100_000

_ALIAS_CHARS = re.compile(r"[A-Za-z0-9_.-]+")
_VERSION_LIKE = re.compile(r"v?\d+", re.IGNORECASE)


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- entities (MLflow's names and shapes) --------------------------------------------------


@dataclass
class ModelVersion:
    """One numbered version of a registered model.

    ``version`` is a string, as in MLflow's entities ("1", "2", ...); API calls accept it as an
    int or a string. ``source`` is the URI it was registered from (``runs:/<run_id>/<path>``)
    and ``storage_location`` the model directory on disk.
    """

    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    user_id: str | None = None
    current_stage: str = "None"
    source: str = ""
    run_id: str | None = None
    status: str = READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    run_link: str | None = None
    aliases: list[str] = field(default_factory=list)
    storage_location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "tags": dict(self.tags), "aliases": list(self.aliases)}


@dataclass
class RegisteredModel:
    """A named model: its versions, tags and aliases.

    ``latest_versions`` holds the newest version of each stage in use (MLflow's meaning);
    ``aliases`` maps each alias to its version (a string).
    """

    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "latest_versions": [v.to_dict() for v in self.latest_versions],
            "tags": dict(self.tags),
            "aliases": dict(self.aliases),
        }


# -- validation ----------------------------------------------------------------------------


def check_model_name(name: Any) -> str:
    """The name if it can name a registered model; else RegistryValueError saying why."""
    if not isinstance(name, str) or not name.strip():
        raise RegistryValueError(
            f"Invalid registered model name {name!r}: give a non-empty string such as 'churn-model'."
        )
    if len(name) > MAX_NAME_LENGTH:
        raise RegistryValueError(
            f"Invalid registered model name {name[:40]!r}...: {len(name)} characters, at most "
            f"{MAX_NAME_LENGTH}."
        )
    bad = sorted({ch for ch in name if ch in "/:@" or not ch.isprintable()})
    if bad:
        raise RegistryValueError(
            f"Invalid registered model name {name!r}: it contains {', '.join(map(repr, bad))}, "
            "which models:/ URIs use as separators; use letters, digits, spaces, '-', '_' or '.'."
        )
    if name != name.strip():
        raise RegistryValueError(
            f"Invalid registered model name {name!r}: remove the leading or trailing whitespace."
        )
    return name


def check_alias(alias: Any) -> str:
    """The alias if valid; versions (``3``, ``v3``) and ``latest`` are refused as ambiguous."""
    if not isinstance(alias, str) or not alias:
        raise RegistryValueError(
            f"Invalid alias {alias!r}: give a non-empty string such as 'champion'."
        )
    if len(alias) > MAX_ALIAS_LENGTH:
        raise RegistryValueError(
            f"Invalid alias {alias[:40]!r}...: {len(alias)} characters, at most {MAX_ALIAS_LENGTH}."
        )
    if _VERSION_LIKE.fullmatch(alias):
        raise RegistryValueError(
            f"Invalid alias {alias!r}: it looks like a version number, so models:/<name>@{alias} "
            "would be ambiguous; choose a word such as 'champion' or 'candidate'."
        )
    if alias.lower() == "latest":
        raise RegistryValueError(
            "Invalid alias 'latest': it is reserved for the newest version (models:/<name>/latest); "
            "choose another word."
        )
    if not _ALIAS_CHARS.fullmatch(alias):
        raise RegistryValueError(
            f"Invalid alias {alias!r}: use only letters, digits, '_', '-' and '.'."
        )
    return alias


def check_stage(stage: Any) -> str:
    """The canonical spelling of a stage (case-insensitive): None, Staging, Production, Archived."""
    if isinstance(stage, str):
        for known in STAGES:
            if stage.strip().lower() == known.lower():
                return known
    raise RegistryValueError(
        f"Unknown stage {stage!r}; use one of {', '.join(STAGES)} (the string 'None' for no stage)."
    )


def check_version(version: Any) -> int:
    """A version number (int or digit string, at least 1)."""
    if isinstance(version, bool):
        number = None
    elif isinstance(version, int):
        number = version
    elif isinstance(version, str) and version.strip().isdigit():
        number = int(version.strip())
    else:
        number = None
    if number is None or number < 1:
        raise RegistryValueError(
            f"Invalid model version {version!r}: give a version number such as 3 or '3' "
            "(versions start at 1)."
        )
    return number


def _check_tag_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise RegistryValueError(f"Invalid tag key {key!r}: keys must be non-empty strings.")
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise RegistryValueError(
            f"Invalid tag key {key[:40]!r}...: {len(key)} characters, at most {MAX_TAG_KEY_LENGTH}."
        )
    return key


def _check_description(description: Any) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str):
        raise RegistryValueError(
            f"Invalid description {description!r}: give Markdown text as a string."
        )
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise RegistryValueError(
            f"Description of {len(description)} characters is too long; at most "
            f"{MAX_DESCRIPTION_LENGTH}."
        )
    return description


def _tag_rows(tags: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [(_check_tag_key(k), str(v)) for k, v in (tags or {}).items()]


# -- search --------------------------------------------------------------------------------

# name in a filter -> (column, type); type "number", "string" or "stage"
_MODEL_ATTRIBUTES = {
    "name": ("name", "string"),
    "description": ("description", "string"),
    "creation_timestamp": ("creation_timestamp", "number"),
    "last_updated_timestamp": ("last_updated_timestamp", "number"),
}
_VERSION_ATTRIBUTES = {
    "name": ("name", "string"),
    "version_number": ("version", "number"),
    "version": ("version", "number"),
    "run_id": ("run_id", "string"),
    "source_path": ("source", "string"),
    "source": ("source", "string"),
    "current_stage": ("current_stage", "stage"),
    "stage": ("current_stage", "stage"),
    "status": ("status", "string"),
    "user_id": ("user_id", "string"),
    "description": ("description", "string"),
    "creation_timestamp": ("creation_timestamp", "number"),
    "last_updated_timestamp": ("last_updated_timestamp", "number"),
}
_TAG_PREFIXES = ("tags", "tag")
_ATTRIBUTE_PREFIXES = ("attributes", "attribute", "attr")


def _vocabulary(attributes: dict[str, tuple[str, str]]) -> Any:
    """The names of a registry search (built on first use: store.filters is not imported early)."""
    cached = _VOCABULARIES.get(id(attributes))
    if cached is not None:
        return cached
    from store.filters import Vocabulary

    def unknown(name: str, prefixed: bool) -> str:
        return f"unknown name '{name}'; allowed: {', '.join(attributes)}, tags.<key>"

    example = f"a comparison such as name = 'my-model' ({', '.join(attributes)}, tags.<key>)"
    _VOCABULARIES[id(attributes)] = vocabulary = Vocabulary(
        prefixes={
            **{p: "tags" for p in _TAG_PREFIXES},
            **{p: "attributes" for p in _ATTRIBUTE_PREFIXES},
        },
        attributes=attributes,
        unknown_attribute=unknown,
        checks={"stage": check_stage},
        example=example,
        prefix_hint=f"tags.<key> or {example}",
        spaces_as_underscores=False,
    )
    return vocabulary


_VOCABULARIES: dict[int, Any] = {}


def _search_sql(
    table: str,
    attributes: dict[str, tuple[str, str]],
    tag_table: str,
    tag_join: str,
    what: str,
    filter_string: str | None,
    order_by: Sequence[str] | None,
    default_order: list[tuple[str, bool]],
    tie_breakers: list[tuple[str, bool]],
    max_results: int | None,
    dialect: Any = None,
) -> tuple[str, list[Any]]:
    from store.sql.dialect import SQLITE
    from store.sql.search import Target, entity_search_sql

    if filter_string is not None and not isinstance(filter_string, str):
        raise RegistryValueError(f"filter_string must be a string, not {filter_string!r}")
    if max_results is not None and (
        isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0
    ):
        raise RegistryValueError(
            f"max_results must be an integer >= 0 or None, not {max_results!r}"
        )
    return entity_search_sql(
        "t.rowid",
        table,
        Target("t", {"tags": (tag_table, tag_join)}),
        _vocabulary(attributes),
        what,
        filter_string or "",
        order_by,
        default_order,
        tie_breakers,
        max_results,
        dialect or SQLITE,
    )

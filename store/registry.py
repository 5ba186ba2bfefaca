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

import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from store.errors import (
    RegisteredModelExistsError,
    RegisteredModelNotFoundError,
    RegistryValueError,
)

if TYPE_CHECKING:
    import sqlite3

    from store.artifacts import ArtifactRoot

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


# -- schema --------------------------------------------------------------------------------

_SCHEMA = (
    """CREATE TABLE registered_models (
        name TEXT PRIMARY KEY,
        creation_timestamp INTEGER NOT NULL,
        last_updated_timestamp INTEGER NOT NULL,
        description TEXT,
        last_version INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE registered_model_tags (
        name TEXT NOT NULL REFERENCES registered_models (name)
            ON UPDATE CASCADE ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT,
        PRIMARY KEY (name, key)
    )""",
    """CREATE TABLE model_versions (
        name TEXT NOT NULL REFERENCES registered_models (name)
            ON UPDATE CASCADE ON DELETE CASCADE,
        version INTEGER NOT NULL,
        creation_timestamp INTEGER NOT NULL,
        last_updated_timestamp INTEGER NOT NULL,
        description TEXT,
        user_id TEXT,
        current_stage TEXT NOT NULL DEFAULT 'None',
        source TEXT NOT NULL,
        run_id TEXT,
        storage_location TEXT,
        status TEXT NOT NULL DEFAULT 'READY',
        status_message TEXT,
        run_link TEXT,
        PRIMARY KEY (name, version)
    )""",
    "CREATE INDEX idx_model_versions_run_id ON model_versions (run_id)",
    "CREATE INDEX idx_model_versions_stage ON model_versions (name, current_stage, version)",
    """CREATE TABLE model_version_tags (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT,
        PRIMARY KEY (name, version, key),
        FOREIGN KEY (name, version) REFERENCES model_versions (name, version)
            ON UPDATE CASCADE ON DELETE CASCADE
    )""",
    """CREATE TABLE registered_model_aliases (
        name TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (name, alias),
        FOREIGN KEY (name, version) REFERENCES model_versions (name, version)
            ON UPDATE CASCADE ON DELETE CASCADE
    )""",
    "CREATE INDEX idx_registered_model_aliases_version ON registered_model_aliases (name, version)",
)


def create_registry_tables(db: Any) -> None:
    """Migration 2: the registry tables (runs inside the migration's transaction)."""
    for statement in _SCHEMA:
        db.execute(statement)


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
) -> tuple[str, list[Any]]:
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
    )


# -- the store mixin -----------------------------------------------------------------------

_VERSION_COLS = (
    "name, version, creation_timestamp, last_updated_timestamp, description, user_id, "
    "current_stage, source, run_id, status, status_message, run_link, storage_location"
)
_MAX_LISTED = 20


def _chunks(items: Sequence[T], size: int = 400) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RegistryStore:
    """The registry methods of :class:`store.sqlite.Store` (mixed into it)."""

    if TYPE_CHECKING:
        artifacts: ArtifactRoot

        @property
        def conn(self) -> sqlite3.Connection: ...

        def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    # -- errors naming what exists

    def _model_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM registered_models ORDER BY name")]

    def _no_model(self, name: str) -> RegisteredModelNotFoundError:
        import difflib

        names = self._model_names()
        if not names:
            known = "the registry is empty"
        else:
            close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
            shown = close + [n for n in names if n not in close]
            known = "registered models: " + ", ".join(shown[:_MAX_LISTED])
            if len(names) > _MAX_LISTED:
                known += f", ... ({len(names)} in all)"
        return RegisteredModelNotFoundError(
            f"No registered model named {name!r}; {known}. Register one with "
            f"autolog.register_model(model_uri, {name!r})."
        )

    def _require_model(self, c: sqlite3.Connection, name: str) -> None:
        if not c.execute("SELECT 1 FROM registered_models WHERE name = ?", [name]).fetchone():
            raise self._no_model(name)

    def _versions_text(self, name: str) -> str:
        rows = self.conn.execute(
            "SELECT version, current_stage FROM model_versions WHERE name = ? ORDER BY version",
            [name],
        ).fetchall()
        if not rows:
            return "it has no versions yet"
        shown = ", ".join(f"{v} ({s})" if s != "None" else str(v) for v, s in rows[-_MAX_LISTED:])
        more = f"... ({len(rows)} in all) " if len(rows) > _MAX_LISTED else ""
        return f"its versions: {more}{shown}"

    def _aliases_text(self, name: str) -> str:
        rows = self.conn.execute(
            "SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias",
            [name],
        ).fetchall()
        if not rows:
            return "it has no aliases"
        return "its aliases: " + ", ".join(f"{a} -> version {v}" for a, v in rows)

    def _no_version(self, name: str, version: int) -> RegisteredModelNotFoundError:
        self._require_model(self.conn, name)
        return RegisteredModelNotFoundError(
            f"Registered model {name!r} has no version {version}; {self._versions_text(name)}."
        )

    def _require_version(self, c: sqlite3.Connection, name: str, version: int) -> None:
        if not c.execute(
            "SELECT 1 FROM model_versions WHERE name = ? AND version = ?", [name, version]
        ).fetchone():
            raise self._no_version(name, version)

    # -- reading

    def _storage_out(self, location: str | None) -> str | None:
        if location is None:
            return None
        if os.path.isabs(location):
            return location
        return os.path.join(self.artifacts.root, *location.split("/"))

    def _storage_in(self, location: str | None) -> str | None:
        """Inside the artifact root: stored relative, so the store folder can move."""
        if location is None:
            return None
        path = os.path.abspath(location)
        root = str(self.artifacts.root)
        if path.startswith(root + os.sep):
            return os.path.relpath(path, root).replace(os.sep, "/")
        return path

    def _versions_from_rows(self, rows: Sequence[Sequence[Any]]) -> list[ModelVersion]:
        versions = [
            ModelVersion(
                name=r[0],
                version=str(r[1]),
                creation_timestamp=r[2],
                last_updated_timestamp=r[3],
                description=r[4],
                user_id=r[5],
                current_stage=r[6],
                source=r[7],
                run_id=r[8],
                status=r[9],
                status_message=r[10],
                run_link=r[11],
                storage_location=self._storage_out(r[12]),
            )
            for r in rows
        ]
        by_key = {(v.name, int(v.version)): v for v in versions}
        names = sorted({v.name for v in versions})
        for chunk in _chunks(names):
            marks = ",".join("?" * len(chunk))
            for n, ver, k, val in self.conn.execute(
                f"SELECT name, version, key, value FROM model_version_tags WHERE name IN ({marks})",
                list(chunk),
            ):
                if (n, ver) in by_key:
                    by_key[(n, ver)].tags[k] = val
            for n, alias, ver in self.conn.execute(
                "SELECT name, alias, version FROM registered_model_aliases "
                f"WHERE name IN ({marks}) ORDER BY alias",
                list(chunk),
            ):
                if (n, ver) in by_key:
                    by_key[(n, ver)].aliases.append(alias)
        return versions

    def _models_from_rows(self, rows: Sequence[Sequence[Any]]) -> list[RegisteredModel]:
        models = [
            RegisteredModel(
                name=r[0], creation_timestamp=r[1], last_updated_timestamp=r[2], description=r[3]
            )
            for r in rows
        ]
        by_name = {m.name: m for m in models}
        for chunk in _chunks(list(by_name)):
            marks = ",".join("?" * len(chunk))
            args = list(chunk)
            for n, k, v in self.conn.execute(
                f"SELECT name, key, value FROM registered_model_tags WHERE name IN ({marks})", args
            ):
                by_name[n].tags[k] = v
            for n, alias, ver in self.conn.execute(
                "SELECT name, alias, version FROM registered_model_aliases "
                f"WHERE name IN ({marks}) ORDER BY alias",
                args,
            ):
                by_name[n].aliases[alias] = str(ver)
            latest = self.conn.execute(
                f"SELECT {_VERSION_COLS} FROM model_versions WHERE (name, version) IN ("
                "SELECT name, MAX(version) FROM model_versions "
                f"WHERE name IN ({marks}) GROUP BY name, current_stage) ORDER BY name, version",
                args,
            ).fetchall()
            for v in self._versions_from_rows(latest):
                by_name[v.name].latest_versions.append(v)
        return models

    def get_registered_model(self, name: str) -> RegisteredModel:
        check_model_name(name)
        rows = self.conn.execute(
            "SELECT name, creation_timestamp, last_updated_timestamp, description "
            "FROM registered_models WHERE name = ?",
            [name],
        ).fetchall()
        if not rows:
            raise self._no_model(name)
        return self._models_from_rows(rows)[0]

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        check_model_name(name)
        number = check_version(version)
        rows = self.conn.execute(
            f"SELECT {_VERSION_COLS} FROM model_versions WHERE name = ? AND version = ?",
            [name, number],
        ).fetchall()
        if not rows:
            raise self._no_version(name, number)
        return self._versions_from_rows(rows)[0]

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        check_model_name(name)
        row = self.conn.execute(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
            [name, alias],
        ).fetchone()
        if row is None:
            self._require_model(self.conn, name)
            raise RegisteredModelNotFoundError(
                f"Registered model {name!r} has no alias {alias!r}; {self._aliases_text(name)}. "
                f"Set it with Client().set_registered_model_alias({name!r}, {alias!r}, <version>)."
            )
        return self.get_model_version(name, row[0])

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each stage (each of ``stages``, or each stage in use)."""
        check_model_name(name)
        self._require_model(self.conn, name)
        wanted = None if not stages else [check_stage(s) for s in stages]
        rows = self.conn.execute(
            f"SELECT {_VERSION_COLS} FROM model_versions WHERE (name, version) IN ("
            "SELECT name, MAX(version) FROM model_versions WHERE name = ? "
            "GROUP BY current_stage) ORDER BY version",
            [name],
        ).fetchall()
        versions = self._versions_from_rows(rows)
        if wanted is not None:
            versions = [v for v in versions if v.current_stage in wanted]
        return versions

    def latest_version_number(self, name: str) -> int | None:
        """The highest existing version number of ``name`` (None when it has no versions)."""
        check_model_name(name)
        self._require_model(self.conn, name)
        row = self.conn.execute(
            "SELECT MAX(version) FROM model_versions WHERE name = ?", [name]
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int | None = 100,
        order_by: Sequence[str] | None = None,
    ) -> list[RegisteredModel]:
        sql, params = _search_sql(
            "registered_models",
            _MODEL_ATTRIBUTES,
            "registered_model_tags",
            "{x}.name = t.name",
            "registered model",
            filter_string,
            order_by,
            [("name", True)],
            [("name", True)],
            max_results,
        )
        ids = [r[0] for r in self.conn.execute(sql, params)]
        rows = []
        for chunk in _chunks(ids):
            rows += self.conn.execute(
                "SELECT rowid, name, creation_timestamp, last_updated_timestamp, description "
                f"FROM registered_models WHERE rowid IN ({','.join('?' * len(chunk))})",
                list(chunk),
            ).fetchall()
        by_id = {r[0]: r[1:] for r in rows}
        return self._models_from_rows([by_id[i] for i in ids if i in by_id])

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = 10_000,
        order_by: Sequence[str] | None = None,
    ) -> list[ModelVersion]:
        sql, params = _search_sql(
            "model_versions",
            _VERSION_ATTRIBUTES,
            "model_version_tags",
            "{x}.name = t.name AND {x}.version = t.version",
            "model version",
            filter_string,
            order_by,
            [("name", True), ("version", False)],
            [("name", True), ("version", False)],
            max_results,
        )
        ids = [r[0] for r in self.conn.execute(sql, params)]
        rows = []
        for chunk in _chunks(ids):
            rows += self.conn.execute(
                f"SELECT rowid, {_VERSION_COLS} FROM model_versions "
                f"WHERE rowid IN ({','.join('?' * len(chunk))})",
                list(chunk),
            ).fetchall()
        by_id = {r[0]: r[1:] for r in rows}
        return self._versions_from_rows([by_id[i] for i in ids if i in by_id])

    def model_versions_of_run(self, run_id: str) -> list[ModelVersion]:
        """Every version registered from this run (lineage run -> versions), oldest first."""
        rows = self.conn.execute(
            f"SELECT {_VERSION_COLS} FROM model_versions WHERE run_id = ? "
            "ORDER BY creation_timestamp, name, version",
            [run_id],
        ).fetchall()
        return self._versions_from_rows(rows)

    # -- writing: registered models

    def create_registered_model(
        self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        check_model_name(name)
        tag_rows = _tag_rows(tags)
        description = _check_description(description)
        ts = _now_ms()

        def write(c: sqlite3.Connection) -> None:
            if c.execute("SELECT 1 FROM registered_models WHERE name = ?", [name]).fetchone():
                raise RegisteredModelExistsError(
                    f"Registered model {name!r} already exists; add a version with "
                    f"autolog.register_model(model_uri, {name!r}) or choose another name."
                )
            c.execute(
                "INSERT INTO registered_models (name, creation_timestamp, last_updated_timestamp, "
                "description, last_version) VALUES (?, ?, ?, ?, 0)",
                [name, ts, ts, description],
            )
            c.executemany(
                "INSERT OR REPLACE INTO registered_model_tags VALUES (?, ?, ?)",
                [(name, k, v) for k, v in tag_rows],
            )

        self._transaction(write)
        return self.get_registered_model(name)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        check_model_name(name)
        description = _check_description(description)

        def write(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE registered_models SET description = ?, last_updated_timestamp = ? "
                "WHERE name = ?",
                [description, _now_ms(), name],
            )
            if cur.rowcount == 0:
                raise self._no_model(name)

        self._transaction(write)
        return self.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        check_model_name(name)
        check_model_name(new_name)

        def write(c: sqlite3.Connection) -> None:
            self._require_model(c, name)
            if name == new_name:
                return
            if c.execute("SELECT 1 FROM registered_models WHERE name = ?", [new_name]).fetchone():
                raise RegisteredModelExistsError(
                    f"Cannot rename {name!r} to {new_name!r}: a registered model of that name "
                    "already exists; delete it or choose another name."
                )
            c.execute(
                "UPDATE registered_models SET name = ?, last_updated_timestamp = ? WHERE name = ?",
                [new_name, _now_ms(), name],
            )

        self._transaction(write)
        return self.get_registered_model(new_name)

    def delete_registered_model(self, name: str) -> None:
        """Delete the model with its versions, tags and aliases (the run artifacts stay)."""
        check_model_name(name)

        def write(c: sqlite3.Connection) -> None:
            if c.execute("DELETE FROM registered_models WHERE name = ?", [name]).rowcount == 0:
                raise self._no_model(name)

        self._transaction(write)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        check_model_name(name)
        row = (name, _check_tag_key(key), str(value))

        def write(c: sqlite3.Connection) -> None:
            self._require_model(c, name)
            c.execute("INSERT OR REPLACE INTO registered_model_tags VALUES (?, ?, ?)", row)
            c.execute(
                "UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?",
                [_now_ms(), name],
            )

        self._transaction(write)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        check_model_name(name)

        def write(c: sqlite3.Connection) -> None:
            self._require_model(c, name)
            c.execute("DELETE FROM registered_model_tags WHERE name = ? AND key = ?", [name, key])

        self._transaction(write)

    # -- writing: versions

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        storage_location: str | None = None,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        user_id: str | None = None,
        run_link: str | None = None,
        create_model: bool = False,
    ) -> ModelVersion:
        """Add the next version of ``name``; with ``create_model`` create the model if missing.

        The number is allocated in the transaction that inserts the row: concurrent callers get
        consecutive numbers.
        """
        check_model_name(name)
        if not isinstance(source, str) or not source:
            raise RegistryValueError(
                f"Invalid model source {source!r}: give the model's URI, e.g. runs:/<run_id>/model."
            )
        tag_rows = _tag_rows(tags)
        description = _check_description(description)
        location = self._storage_in(storage_location)

        def write(c: sqlite3.Connection) -> int:
            ts = _now_ms()
            if create_model:
                c.execute(
                    "INSERT OR IGNORE INTO registered_models (name, creation_timestamp, "
                    "last_updated_timestamp, last_version) VALUES (?, ?, ?, 0)",
                    [name, ts, ts],
                )
            rows = c.execute(
                "UPDATE registered_models SET last_version = last_version + 1, "
                "last_updated_timestamp = ? WHERE name = ? RETURNING last_version",
                [ts, name],
            ).fetchall()
            if not rows:
                raise self._no_model(name)
            version = int(rows[0][0])
            c.execute(
                "INSERT INTO model_versions (name, version, creation_timestamp, "
                "last_updated_timestamp, description, user_id, current_stage, source, run_id, "
                "status, run_link, storage_location) "
                "VALUES (?, ?, ?, ?, ?, ?, 'None', ?, ?, ?, ?, ?)",
                [
                    name,
                    version,
                    ts,
                    ts,
                    description,
                    user_id,
                    source,
                    run_id,
                    READY,
                    run_link,
                    location,
                ],
            )
            c.executemany(
                "INSERT OR REPLACE INTO model_version_tags VALUES (?, ?, ?, ?)",
                [(name, version, k, v) for k, v in tag_rows],
            )
            return version

        return self.get_model_version(name, self._transaction(write))

    def _touch_version(self, c: sqlite3.Connection, name: str, version: int) -> None:
        c.execute(
            "UPDATE model_versions SET last_updated_timestamp = ? WHERE name = ? AND version = ?",
            [_now_ms(), name, version],
        )

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        check_model_name(name)
        number = check_version(version)
        description = _check_description(description)

        def write(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE model_versions SET description = ?, last_updated_timestamp = ? "
                "WHERE name = ? AND version = ?",
                [description, _now_ms(), name, number],
            )
            if cur.rowcount == 0:
                raise self._no_version(name, number)

        self._transaction(write)
        return self.get_model_version(name, number)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        check_model_name(name)
        number = check_version(version)
        row = (name, number, _check_tag_key(key), str(value))

        def write(c: sqlite3.Connection) -> None:
            self._require_version(c, name, number)
            c.execute("INSERT OR REPLACE INTO model_version_tags VALUES (?, ?, ?, ?)", row)
            self._touch_version(c, name, number)

        self._transaction(write)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        check_model_name(name)
        number = check_version(version)

        def write(c: sqlite3.Connection) -> None:
            self._require_version(c, name, number)
            c.execute(
                "DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
                [name, number, key],
            )

        self._transaction(write)

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move a version to a stage; optionally archive the other versions in that stage."""
        check_model_name(name)
        number = check_version(version)
        target = check_stage(stage)
        if archive_existing_versions and target not in ("Staging", "Production"):
            raise RegistryValueError(
                f"archive_existing_versions=True only applies to Staging and Production, not "
                f"{target!r}; pass archive_existing_versions=False."
            )

        def write(c: sqlite3.Connection) -> None:
            self._require_version(c, name, number)
            ts = _now_ms()
            if archive_existing_versions:
                c.execute(
                    "UPDATE model_versions SET current_stage = 'Archived', "
                    "last_updated_timestamp = ? WHERE name = ? AND current_stage = ? "
                    "AND version != ?",
                    [ts, name, target, number],
                )
            c.execute(
                "UPDATE model_versions SET current_stage = ?, last_updated_timestamp = ? "
                "WHERE name = ? AND version = ?",
                [target, ts, name, number],
            )
            c.execute(
                "UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?",
                [ts, name],
            )

        self._transaction(write)
        return self.get_model_version(name, number)

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a version, its tags and the aliases pointing at it; its number is not reused."""
        check_model_name(name)
        number = check_version(version)

        def write(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "DELETE FROM model_versions WHERE name = ? AND version = ?", [name, number]
            )
            if cur.rowcount == 0:
                raise self._no_version(name, number)
            c.execute(
                "UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?",
                [_now_ms(), name],
            )

        self._transaction(write)

    # -- aliases

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        check_model_name(name)
        check_alias(alias)
        number = check_version(version)

        def write(c: sqlite3.Connection) -> None:
            self._require_version(c, name, number)
            c.execute(
                "INSERT OR REPLACE INTO registered_model_aliases VALUES (?, ?, ?)",
                [name, alias, number],
            )
            c.execute(
                "UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?",
                [_now_ms(), name],
            )

        self._transaction(write)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        check_model_name(name)

        def write(c: sqlite3.Connection) -> None:
            self._require_model(c, name)
            cur = c.execute(
                "DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?", [name, alias]
            )
            if cur.rowcount == 0:
                raise RegisteredModelNotFoundError(
                    f"Registered model {name!r} has no alias {alias!r}; {self._aliases_text(name)}."
                )

        self._transaction(write)

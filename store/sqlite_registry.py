"""The registry methods of the SQLite store (mixed into :class:`store.sqlite.Store`).

About 670 lines: one method per registry verb plus the errors naming what exists; splitting
the verbs apart would scatter one transaction discipline over several files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from store.errors import (
    RegisteredModelExistsError,
    RegisteredModelNotFoundError,
    RegistryValueError,
)
from store.registry import (
    _MODEL_ATTRIBUTES,
    _VERSION_ATTRIBUTES,
    READY,
    ModelVersion,
    RegisteredModel,
    _check_description,
    _check_tag_key,
    _now_ms,
    _search_sql,
    _tag_rows,
    check_alias,
    check_model_name,
    check_stage,
    check_version,
)

if TYPE_CHECKING:
    import sqlite3

    from store.artifacts import ArtifactRoot

T = TypeVar("T")

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
        dialect: Any

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

    def registry_summary(self, name: str) -> str:
        """The versions (with stages) of a model, for error messages."""
        return self._versions_text(name)

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
            "GROUP BY name, current_stage) ORDER BY version",
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
            self.dialect,
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
            self.dialect,
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
            _touch_model(c, name)

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
            version = self._next_version(c, name, ts, create_model)
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

    def _next_version(self, c: sqlite3.Connection, name: str, ts: int, create_model: bool) -> int:
        """Allocate the next version number of ``name`` (creating the model if asked)."""
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
        return int(rows[0][0])

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
            _touch_model(c, name)

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
            _touch_model(c, name)

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


def _touch_model(c: sqlite3.Connection, name: str) -> None:
    """Mark the registered model as changed now (a tag, alias or version of it changed)."""
    c.execute(
        "UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?",
        [_now_ms(), name],
    )

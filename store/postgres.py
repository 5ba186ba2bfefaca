"""The PostgreSQL store: the SQLite store's SQL, schema and migrations on a PostgreSQL database.

``postgresql://user:password@host:port/database`` (also ``postgres://`` and SQLAlchemy's
``postgresql+psycopg2://``), with psycopg 3 and its connection pool. Everything but the
connection handling is shared with :mod:`store.sqlite`: the mixins' SQL goes through
:class:`store.sql.connection.PgConnection`, the search compiles for
:data:`store.sql.dialect.POSTGRESQL`, migrations run through :class:`store.sql.migrate.PgSchema`.

Transactions: one per write, READ COMMITTED; a version number is allocated by an
``UPDATE ... RETURNING`` that locks the model's row, so concurrent registrations get consecutive
numbers. A write that fails for a reason that passes (lost connection, server restart,
deadlock, serialization failure, a unique-key race) is retried as a whole, with backoff, for up
to ``AUTOLOG_PG_RETRY_SECONDS`` (60 s). NaN is stored as NULL as in SQLite (so searches and
orderings treat it the same on both); +-inf are stored as they are.

Artifacts: ``?artifact_root=<folder or s3://bucket/prefix>`` in the URI, else the
``AUTOLOG_ARTIFACT_ROOT`` variable, else ``./autolog-artifacts``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from store.entities import LoggedModelOutput, Run, RunData, RunInputs, RunOutputs
from store.errors import InvalidValueError, StoreError
from store.sql.connection import PgConnection, Rows, TableInfo, load_tables
from store.sql.dialect import POSTGRESQL, Dialect
from store.sql.schema import MIGRATIONS
from store.sqlite import Store
from store.values import _from_db

T = TypeVar("T")

SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")
_MIGRATION_LOCK = 0x6175746F6C6F67  # pg_advisory_xact_lock key: "autolog"
_UNIQUE_RETRIES = 3
_PIPELINED_RUNS = 500  # get_runs of up to this many ids reads in one round trip


def _retry_seconds() -> float:
    return float(os.environ.get("AUTOLOG_PG_RETRY_SECONDS", "60"))


def split_uri(uri: str) -> tuple[str, str | None]:
    """(libpq connection URI, artifact root from ``?artifact_root=`` or None)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidValueError(
            f"Tracking URI {uri!r} is not a PostgreSQL URI; write "
            "postgresql://user:password@host:5432/database."
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    root = next((v for k, v in query if k == "artifact_root"), None)
    rest = urlencode([(k, v) for k, v in query if k != "artifact_root"])
    return urlunsplit(("postgresql", parts.netloc, parts.path, rest, "")), root


def _without_password(conninfo: str) -> str:
    parts = urlsplit(conninfo)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _Reader:
    """``store.conn`` of the PostgreSQL store: each statement on a pooled connection in
    autocommit (reads outside a write transaction), retried while the server is away."""

    def __init__(self, store: PostgresStore):
        self.store = store

    def execute(self, sql: str, params: Any = None) -> Rows:
        def attempt() -> Rows:
            with self.store.pool.connection() as raw:
                return PgConnection(raw, self.store.tables).execute(sql, params)

        return self.store._retry(attempt)


class PostgresStore(Store):
    """Runs, experiments, registry and lineage in a PostgreSQL database (see the module doc)."""

    dialect: Dialect = POSTGRESQL

    def __init__(self, uri: str, artifact_root: str | os.PathLike[str] | None = None):
        import psycopg

        self.conninfo, root = split_uri(uri)
        folder = root or artifact_root or os.environ.get("AUTOLOG_ARTIFACT_ROOT")
        super().__init__(Path("/nonexistent-postgres.db"), folder or "autolog-artifacts")
        self.integrity_errors = (psycopg.IntegrityError,)
        self._pool: Any = None
        self._pool_pid = -1
        self._pool_lock = threading.Lock()
        self.tables: tuple[tuple[str, TableInfo], ...] = ()

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    @property
    def location(self) -> str:
        """The database's URI without its password."""
        return _without_password(self.conninfo)

    # -- connections ----------------------------------------------------------------------

    @property
    def pool(self) -> Any:
        """This process's connection pool (a forked child makes its own), migrated on first use."""
        if self._pool is None or self._pool_pid != os.getpid():
            with self._pool_lock:
                if self._pool is None or self._pool_pid != os.getpid():
                    from psycopg_pool import ConnectionPool

                    if not self._migrated:
                        self._probe()

                    pool = ConnectionPool(
                        self.conninfo,
                        min_size=1,
                        max_size=int(os.environ.get("AUTOLOG_PG_POOL_SIZE", "8")),
                        kwargs={"autocommit": True},
                        # no check per checkout: it costs a round trip per statement (19 per
                        # logged run through the server); a connection found dead fails its
                        # statement, the pool drops it and _retry runs the statement again
                        timeout=_retry_seconds(),
                        open=False,
                        name="autolog",
                    )
                    pool.open(wait=False)
                    # published only once migrated: other threads read _pool without the lock
                    if not self._migrated:
                        self._retry(lambda: self._migrate_pg(pool))
                        self._migrated = True
                    self.tables = self._retry(lambda: self._load_tables(pool))
                    self._pool, self._pool_pid = pool, os.getpid()
        return self._pool

    def _probe(self) -> None:
        """Connect once, so that a wrong address, name or password fails at once and clearly
        (later, a lost connection is waited for and retried instead)."""
        import psycopg

        try:
            psycopg.connect(self.conninfo, connect_timeout=10).close()
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            raise StoreError(
                f"Cannot connect to the PostgreSQL store {self.location}: {reason}. Check the "
                "host, port, database name and credentials in the tracking URI "
                "(postgresql://user:password@host:5432/database)."
            ) from exc

    def _load_tables(self, pool: Any) -> tuple[tuple[str, TableInfo], ...]:
        with pool.connection() as raw:
            return load_tables(raw)

    @property
    def db(self) -> Any:
        raise StoreError("The PostgreSQL store has no sqlite_utils database; use its methods.")

    @property
    def conn(self) -> Any:
        self.pool  # noqa: B018  (connects and migrates on first use)
        return _Reader(self)

    @property
    def schema_version(self) -> int:
        row = self.conn.execute("SELECT version FROM autolog_schema_version").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.close()
        self._pool = None

    def _retry(self, fn: Callable[[], T]) -> T:
        """fn, again after a failure that passes (see the module doc), within the time limit."""
        import psycopg
        from psycopg import errors

        deadline = time.monotonic() + _retry_seconds()
        unique = 0
        for attempt in range(10_000):
            try:
                return fn()
            except errors.UniqueViolation:
                # Two writers checked "absent" at once; the next attempt reads the winner's row
                # and raises the store's own error (e.g. "already exists").
                unique += 1
                if unique > _UNIQUE_RETRIES:
                    raise
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(min(1.0, 0.005 * 2 ** min(attempt, 10)) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _transaction(self, fn: Callable[[Any], T]) -> T:
        """Run fn(connection) in one transaction, retried as a whole after a passing failure."""
        from psycopg import errors

        pool = self.pool

        def attempt() -> T:
            with pool.connection() as raw, raw.transaction():
                return fn(PgConnection(raw, self.tables))

        try:
            return self._retry(attempt)
        except (OverflowError, UnicodeEncodeError, errors.NumericValueOutOfRange) as exc:
            cause = exc if isinstance(exc, OverflowError) else OverflowError(str(exc))
            if isinstance(exc, UnicodeEncodeError):
                cause = exc  # type: ignore[assignment]
            raise InvalidValueError(
                f"A value cannot be stored: {exc}. Integers must lie in "
                "[-2**63, 2**63 - 1] and text must be valid UTF-8 (no lone surrogates)."
            ) from cause
        except errors.DataError as exc:
            raise InvalidValueError(
                f"A value cannot be stored in PostgreSQL: {exc}. Text cannot hold NUL "
                "characters ('\\x00'): remove them."
            ) from exc

    def _migrate_pg(self, pool: Any) -> None:
        from store.sql.migrate import PgSchema

        with pool.connection() as raw, raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
            raw.execute("CREATE TABLE IF NOT EXISTS autolog_schema_version (version BIGINT)")
            row = raw.execute("SELECT version FROM autolog_schema_version").fetchone()
            if row is None:
                raw.execute("INSERT INTO autolog_schema_version VALUES (0)")
            version = int(row[0]) if row else 0
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"The database {self.location} has schema version {version}, newer than "
                    f"this autolog knows ({len(MIGRATIONS)}); upgrade autolog."
                )
            schema = PgSchema(raw)
            for i in range(version, len(MIGRATIONS)):
                MIGRATIONS[i](schema)
                raw.execute("UPDATE autolog_schema_version SET version = %s", [i + 1])
            from store.sql.indexes import add_search_indexes

            add_search_indexes(raw)

    # -- what differs from SQLite -----------------------------------------------------------

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """As SQLite's, but the runs, params, tags, latest metrics and whether dataset inputs
        exist are read in one round trip (pipeline mode): the server reads a run back after
        each create, update and artifact upload, and five round trips were a third of the
        statements of a logged run."""
        if not run_ids or len(run_ids) > _PIPELINED_RUNS:
            return super().get_runs(run_ids)
        ids = list(dict.fromkeys(run_ids))
        any_id = "run_id = ANY(%s)"
        queries = [
            f"SELECT {self._RUN_COLS} FROM runs WHERE {any_id}",
            f"SELECT run_id, key, value FROM params WHERE {any_id}",
            f"SELECT run_id, key, value FROM tags WHERE {any_id}",
            f"SELECT run_id, key, value FROM latest_metrics WHERE {any_id}",
            "SELECT DISTINCT destination_id FROM inputs WHERE source_type = 'DATASET' AND "
            "destination_type = 'RUN' AND destination_id = ANY(%s)",
            "SELECT source_id, destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' "
            "AND destination_type = 'MODEL_OUTPUT' AND source_id = ANY(%s) ORDER BY ctid",
        ]
        pool = self.pool

        def attempt() -> list[list[tuple]]:
            with pool.connection() as raw, raw.pipeline():
                cursors = [raw.execute(q, [ids]) for q in queries]
                return [c.fetchall() for c in cursors]

        runs, params, tags, latest, with_inputs, model_outputs = self._retry(attempt)
        infos = {row[0]: self._run_info(row) for row in runs}
        datas = {rid: RunData() for rid in infos}
        for rid, k, v in params:
            datas[rid].params[k] = v
        for rid, k, v in tags:
            datas[rid].tags[k] = v
        for rid, k, v in latest:
            datas[rid].metrics[k] = _from_db(v)
        inputs = self._dataset_inputs([r[0] for r in with_inputs]) if with_inputs else {}
        outputs: dict[str, list[LoggedModelOutput]] = {}
        for rid, model_id, step in model_outputs:
            outputs.setdefault(rid, []).append(LoggedModelOutput(model_id, int(step)))
        self._mark_dead(infos)
        return [
            Run(infos[r], datas[r], RunInputs(inputs.get(r) or []), RunOutputs(outputs.get(r, [])))
            for r in run_ids
            if r in infos
        ]

    def _bucket_rows(
        self, run_id: str, key: str, bounds: list[tuple[int, int]], where: str, args: list[Any]
    ) -> list:
        """Every step range's (min, max, count, first step, last step) in one grouped query."""
        if not bounds:
            return []
        first, width = bounds[0][0], bounds[0][1] - bounds[0][0]
        last = bounds[-1][1]
        rows = self.conn.execute(
            "SELECT MIN(value), MAX(value), COUNT(*), MIN(step), MAX(step) FROM metrics "
            f"WHERE {where} AND step >= ? AND step < ? GROUP BY (step - ?) / ? ORDER BY 4",
            [*args, first, last, first, width],
        ).fetchall()
        return [tuple(r) for r in rows]


def store_for_uri(uri: str) -> PostgresStore:
    """The store for a ``postgresql://`` tracking URI (with an S3 artifact root if it names one)."""
    _, root = split_uri(uri)
    root = root or os.environ.get("AUTOLOG_ARTIFACT_ROOT")
    if root and root.startswith("s3://"):
        from store.artifacts.s3 import with_s3_artifacts

        return with_s3_artifacts(PostgresStore, root)(uri)
    return PostgresStore(uri)

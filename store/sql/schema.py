"""The schema of the SQL stores and its migrations (applied in order, never edited once applied)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from store.sql.dialect import POSTGRESQL
from store.values import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, now_ms


def _migration_1(db: Any) -> None:
    """The first schema: experiments, runs and their values, models; the default experiment."""
    _experiment_tables(db)
    _run_tables(db)
    _model_table(db)
    db.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
        "creation_time, last_update_time) VALUES (?, ?, ?, 'active', ?, ?)",
        [
            DEFAULT_EXPERIMENT_ID,
            DEFAULT_EXPERIMENT_NAME,
            str(DEFAULT_EXPERIMENT_ID),
            now_ms(),
            now_ms(),
        ],
    )


def _experiment_tables(db: Any) -> None:
    db["experiments"].create(
        {
            "experiment_id": int,
            "name": str,
            "artifact_location": str,
            "lifecycle_stage": str,
            "creation_time": int,
            "last_update_time": int,
        },
        pk="experiment_id",
        not_null={"name"},
        defaults={"lifecycle_stage": "active"},
    )
    db["experiments"].create_index(["name"], unique=True)
    db["experiment_tags"].create(
        {"experiment_id": int, "key": str, "value": str},
        pk=("experiment_id", "key"),
        foreign_keys=[("experiment_id", "experiments", "experiment_id")],
    )


def _run_tables(db: Any) -> None:
    db["runs"].create(
        {
            "run_id": str,
            "experiment_id": int,
            "run_name": str,
            "status": str,
            "start_time": int,
            "end_time": int,
            "user_id": str,
            "host": str,
            "pid": int,
            "parent_run_id": str,
            "lifecycle_stage": str,
            "artifact_uri": str,
        },
        pk="run_id",
        not_null={"experiment_id", "status"},
        defaults={"lifecycle_stage": "active"},
        foreign_keys=[("experiment_id", "experiments", "experiment_id")],
    )
    db["runs"].create_index(["experiment_id", "start_time"])
    db["runs"].create_index(["status"])
    db["runs"].create_index(["parent_run_id"])
    for table in ("params", "tags"):
        db[table].create(
            {"run_id": str, "key": str, "value": str},
            pk=("run_id", "key"),
            foreign_keys=[("run_id", "runs", "run_id")],
        )
    db["metrics"].create(
        {"run_id": str, "key": str, "value": float, "timestamp": int, "step": int},
        foreign_keys=[("run_id", "runs", "run_id")],
    )
    db["metrics"].create_index(["run_id", "key", "step"])
    db["latest_metrics"].create(
        {"run_id": str, "key": str, "value": float, "timestamp": int, "step": int},
        pk=("run_id", "key"),
        foreign_keys=[("run_id", "runs", "run_id")],
    )


def _model_table(db: Any) -> None:
    db["models"].create(
        {
            "model_uuid": str,
            "run_id": str,
            "artifact_path": str,
            "flavors": str,
            "created_time": int,
            "signature": str,
        },
        pk="model_uuid",
        foreign_keys=[("run_id", "runs", "run_id")],
    )
    db["models"].create_index(["run_id"])


def _migration_3(db: Any) -> None:
    """Metric histories read from the index alone: (run_id, key, step) gains timestamp, value.

    A history's downsampled view scans min/max of value per step range; without the value in
    the index each point cost a table lookup (a 1,000,000-point history: 380 ms of CPU against
    175 ms with it). With the timestamp too, a history comes out of the index already in its
    (step, timestamp, rowid) order. The old index is a prefix of the new one, so it goes.
    """
    db.execute("DROP INDEX IF EXISTS idx_metrics_run_id_key_step")
    db["metrics"].create_index(["run_id", "key", "step", "timestamp", "value"], if_not_exists=True)


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


def _migration_4(db: Any) -> None:
    """The SHA-256 of every file of a logged model, recorded when it is logged.

    Loading a pickle through runs:/ or models:/ checks its bytes against this record, so a
    pickle replaced in the artifact folder afterwards is refused. Keyed by where the model
    was logged (the run and artifact path a URI names); ``model_uuid`` ties it to ``models``.
    """
    db["model_files"].create(
        {"run_id": str, "artifact_path": str, "file": str, "sha256": str, "model_uuid": str},
        pk=("run_id", "artifact_path", "file"),
        not_null={"sha256", "model_uuid"},
        foreign_keys=[("run_id", "runs", "run_id")],
        if_not_exists=True,
    )


_LOGGED_MODELS_SCHEMA = (
    # MLflow 3's logged models (mlflow/store/tracking/dbmodels/models.py); the files stay in
    # the source run's artifacts at artifact_path, so runs:/<run>/<path> keeps naming them
    """CREATE TABLE IF NOT EXISTS logged_models (
        model_id TEXT PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
        name TEXT NOT NULL,
        artifact_location TEXT NOT NULL,
        creation_timestamp BIGINT NOT NULL,
        last_updated_timestamp BIGINT NOT NULL,
        status TEXT NOT NULL DEFAULT 'PENDING',
        status_message TEXT,
        lifecycle_stage TEXT NOT NULL DEFAULT 'active',
        model_type TEXT,
        source_run_id TEXT REFERENCES runs (run_id),
        artifact_path TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS idx_logged_models_run ON logged_models (source_run_id, creation_timestamp)",
    "CREATE INDEX IF NOT EXISTS idx_logged_models_experiment ON logged_models "
    "(experiment_id, creation_timestamp)",
    """CREATE TABLE IF NOT EXISTS logged_model_params (
        model_id TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (model_id, key)
    )""",
    """CREATE TABLE IF NOT EXISTS logged_model_tags (
        model_id TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (model_id, key)
    )""",
    # one row per metric, the latest value per (key, dataset); the dataset columns stay NULL
    # for metrics computed on no recorded dataset
    """CREATE TABLE IF NOT EXISTS logged_model_metrics (
        model_id TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value DOUBLE PRECISION,
        timestamp BIGINT NOT NULL,
        step BIGINT NOT NULL,
        run_id TEXT,
        dataset_name TEXT,
        dataset_digest TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS idx_logged_model_metrics ON logged_model_metrics (model_id, key)",
)


def _rename_system_tags(db: Any) -> None:
    """autolog's old names of system tags become MLflow's (see store.system_tags).

    Where a run already holds the new name too (set by hand), the new one is kept.
    """
    from store.system_tags import RENAMED

    for table, owner in (("tags", "run_id"), ("experiment_tags", "experiment_id")):
        for old, new in RENAMED.items():
            db.execute(
                f"UPDATE {table} SET key = ? WHERE key = ? AND NOT EXISTS "
                f"(SELECT 1 FROM {table} t2 WHERE t2.{owner} = {table}.{owner} AND t2.key = ?)",
                [new, old, new],
            )
            db.execute(f"DELETE FROM {table} WHERE key = ?", [old])


def _migration_5(db: Any) -> None:
    """MLflow 3's logged models (records with an id m-<hex>), and MLflow's system tag names."""
    for statement in _LOGGED_MODELS_SCHEMA:
        db.execute(statement)
    # the files of a logged model (models) -> its record (logged_models)
    if "model_id" not in db["models"].columns_dict:
        db.execute("ALTER TABLE models ADD COLUMN model_id TEXT")
    _rename_system_tags(db)


def _migration_6(db: Any) -> None:
    """The tracking server's tables: its users and tokens (hashes only) and the keys of the
    metric batches it wrote, so a batch a client sends again after a lost answer is written once.
    """
    db["auth_users"].create(
        {"name": str, "role": str, "password_hash": str, "created_time": int},
        pk="name",
        not_null={"role"},
        if_not_exists=True,
    )
    db["auth_tokens"].create(
        {"token_hash": str, "name": str, "created_time": int},
        pk="token_hash",
        not_null={"name"},
        foreign_keys=[("name", "auth_users", "name")],
        if_not_exists=True,
    )
    db["batch_keys"].create(
        {"batch_key": str, "run_id": str, "created_time": int},
        pk="batch_key",
        if_not_exists=True,
    )


_DATASET_TABLES = (
    """CREATE TABLE IF NOT EXISTS datasets (
        dataset_uuid TEXT PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
        name TEXT NOT NULL,
        digest TEXT NOT NULL,
        dataset_source_type TEXT NOT NULL,
        dataset_source TEXT NOT NULL,
        dataset_schema TEXT,
        dataset_profile TEXT,
        UNIQUE (experiment_id, name, digest)
    )""",
    "CREATE INDEX IF NOT EXISTS idx_datasets_digest ON datasets (digest)",
    """CREATE TABLE IF NOT EXISTS inputs (
        input_uuid TEXT PRIMARY KEY,
        source_type TEXT NOT NULL,
        source_id TEXT NOT NULL,
        destination_type TEXT NOT NULL,
        destination_id TEXT NOT NULL,
        UNIQUE (source_type, source_id, destination_type, destination_id)
    )""",
    "CREATE INDEX IF NOT EXISTS idx_inputs_destination ON inputs (destination_type, destination_id)",
    """CREATE TABLE IF NOT EXISTS input_tags (
        input_uuid TEXT NOT NULL REFERENCES inputs (input_uuid) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (input_uuid, name)
    )""",
)


def _migration_7(db: Any) -> None:
    """Datasets as run inputs, in MLflow's three tables and column names.

    A dataset is stored once per (experiment, name, digest); ``inputs`` links it (source,
    type ``DATASET``) to each run that used it (destination, type ``RUN``), once per run;
    ``input_tags`` holds that link's tags (``mlflow.data.context``). Portable SQL: the same
    statements run on PostgreSQL.
    """
    for statement in _DATASET_TABLES:
        db.execute(statement)


def _migration_8(db: Any) -> None:
    """MLflow 3's model outputs of runs: ``inputs`` rows from a run (source, type
    ``RUN_OUTPUT``) to a logged model (destination, type ``MODEL_OUTPUT``), as MLflow's SQL
    store writes them, with the step the model was logged at (MLflow's ``inputs.step``)."""
    if "step" not in db["inputs"].columns_dict:
        db["inputs"].add_column("step", int, not_null_default=0)


def _migration_9(db: Any) -> None:
    """Metric points without a foreign key to ``runs``: looking the run up again for every
    point cost SQLite a sixth of a 1,000-point batch (2.27 -> 1.87 ms measured alone,
    2026-12-06), and PostgreSQL a trigger call per row. Nothing is lost: every write of points
    also upserts ``latest_metrics`` for the same run in the same transaction, and that table
    keeps its key, so a batch for a run that does not exist is still refused whole.
    """
    if db.dialect is POSTGRESQL:
        found = db.raw.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'metrics'::regclass "
            "AND contype = 'f'"
        ).fetchall()
        for (name,) in found:
            db.raw.execute(f'ALTER TABLE metrics DROP CONSTRAINT "{name}"')
        return
    drop_sqlite_foreign_keys(db.conn, "metrics")


# SQLite numbers new runs itself (PostgreSQL's run_key is an identity column): one more than
# the largest key, which the unique index finds without a scan; no run is ever removed for good
_SQLITE_RUN_KEY = """CREATE TRIGGER IF NOT EXISTS runs_run_key AFTER INSERT ON runs
    WHEN NEW.run_key IS NULL
    BEGIN
        UPDATE runs SET run_key = (SELECT COALESCE(MAX(run_key), 0) + 1 FROM runs)
        WHERE run_id = NEW.run_id;
    END"""
_POINTS_TABLE = """CREATE TABLE metric_points (
    run_key INTEGER NOT NULL,
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (run_key, key, step, timestamp, seq)
)"""


def _migration_10(db: Any) -> None:
    """Metric points keyed by an integer run key, each stored once (store.sqlite_points).

    Runs get ``run_key``, numbered in the order they were made. The points move to a table
    whose primary key is (run_key, key, step, timestamp, seq), WITHOUT ROWID on SQLite, where
    each point was a row plus an entry of the (run_id, key, step, timestamp, value) index. The
    moved points get negative ``seq``s in the order the old table read them in (new ones count
    up from 0), so no new point can meet one; ``latest_metrics`` gets ``next_seq``, the next
    free one of its run and key.
    """
    if "run_key" in db["runs"].columns_dict:  # done: the migration is one transaction
        return
    pg = db.dialect is POSTGRESQL
    if pg:
        db.raw.execute(
            "ALTER TABLE runs ADD COLUMN run_key BIGINT GENERATED BY DEFAULT AS IDENTITY"
        )
    else:
        db.execute("ALTER TABLE runs ADD COLUMN run_key INTEGER")
        db.execute("UPDATE runs SET run_key = rowid")
        db.execute(_SQLITE_RUN_KEY)
    db.execute("CREATE UNIQUE INDEX idx_runs_run_key ON runs (run_key)")
    db.execute(_POINTS_TABLE + ("" if pg else " WITHOUT ROWID"))
    db.execute(
        "INSERT INTO metric_points (run_key, key, step, timestamp, seq, value) "
        "SELECT r.run_key, m.key, m.step, m.timestamp, -ROW_NUMBER() OVER (PARTITION BY "
        "m.run_id, m.key, m.step, m.timestamp ORDER BY m.value DESC, m.rowid DESC), m.value "
        "FROM metrics m JOIN runs r ON r.run_id = m.run_id ORDER BY 1, 2, 3, 4"
    )
    db.execute("DROP TABLE metrics")
    db.execute("ALTER TABLE metric_points RENAME TO metrics")
    db["latest_metrics"].add_column("next_seq", int, not_null_default=0)


def drop_sqlite_foreign_keys(conn: Any, table: str) -> None:
    """Remove the REFERENCES clauses of ``table``'s definition, as SQLite's documentation allows
    for dropping a foreign key (ALTER TABLE, "making other kinds of table schema changes"):
    the rows on disk do not change, so the table is not copied whatever its size. A build of
    SQLite that refuses to edit its schema (defensive mode) keeps the key: slower, as correct.
    """
    sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
    ).fetchone()[0]
    bare = _REFERENCES.sub("", sql)
    if bare == sql:
        return
    version = int(conn.execute("PRAGMA schema_version").fetchone()[0])
    try:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", [bare, table]
        )
    except sqlite3.DatabaseError:
        return
    finally:
        conn.execute("PRAGMA writable_schema = OFF")
    conn.execute(f"PRAGMA schema_version = {version + 1}")


# a column's REFERENCES "other"("column") (how sqlite-utils writes it), with any ON clauses
_REFERENCES = re.compile(
    r'\s+REFERENCES\s+"?\w+"?\s*\(\s*"?\w+"?\s*\)(\s+ON\s+(DELETE|UPDATE)\s+'
    r"(CASCADE|RESTRICT|NO ACTION|SET NULL|SET DEFAULT))*",
    re.IGNORECASE,
)


# Append new migrations; never edit an applied one. Index i brings the schema to version i + 1.
MIGRATIONS: list[Callable[[Any], None]] = [
    _migration_1,
    create_registry_tables,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
    _migration_8,
    _migration_9,
    _migration_10,
]

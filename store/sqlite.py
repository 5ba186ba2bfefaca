"""The Store: one SQLite file (through sqlite-utils) plus an artifact folder beside it.

Every write runs in a ``BEGIN IMMEDIATE`` transaction retried on ``database is locked``, so
many processes can log into one file at once. WAL keeps readers off the writers' backs.
NaN metric values are stored as NULL (SQLite turns NaN into NULL anyway) and read back as NaN;
+-inf are stored as they are.

Connections, migrations and runs (dead ones marked on read) are here; experiments, values,
histories, models, artifacts and the registry are mixins in their own modules.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

from store.artifacts import ArtifactRoot
from store.artifacts.runs import RunArtifacts
from store.entities import LoggedModelOutput, Run, RunData, RunInfo, RunOutputs
from store.entities import RunInputs as Inputs
from store.errors import (
    ExperimentNotFoundError,
    InvalidValueError,
    RunNotFoundError,
    StoreError,
)
from store.locate import db_path_for_uri
from store.processes import HOST, pid_alive
from store.sql.dialect import SQLITE, Dialect
from store.sql.indexes import add_search_indexes
from store.sql.schema import MIGRATIONS
from store.sqlite_auth import AuthTables
from store.sqlite_experiments import Experiments
from store.sqlite_history import SampledHistory
from store.sqlite_inputs import RunInputs
from store.sqlite_logged_models import LoggedModels
from store.sqlite_models import ModelLineage
from store.sqlite_points import Point, latest_of, run_keys, write_points
from store.sqlite_registry import RegistryStore
from store.sqlite_values import RunValues
from store.sqlite_writes import BUSY_TIMEOUT_MS, WriteLock, Writes
from store.values import (  # noqa: F401  (check_key & co. were importable from here)
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    MAX_KEY_LENGTH,
    RUN_STATUSES,
    TERMINAL_STATUSES,
    _from_db,
    _metric,
    _text_rows,
    _to_db,
    check_key,
    check_metric_value,
    check_point,
    check_text,
    flatten,
    now_ms,
)

if TYPE_CHECKING:
    from store.base import RegistryStore as RegistryStoreInterface
    from store.base import TrackingStore

T = TypeVar("T")

_REAP_INTERVAL_S = 2.0


class Store(
    Writes,
    Experiments,
    RunValues,
    RunArtifacts,
    SampledHistory,
    ModelLineage,
    LoggedModels,
    RunInputs,
    RegistryStore,
    AuthTables,
):
    """Runs, experiments, params, metrics, tags and artifacts in one SQLite file."""

    dialect: Dialect = SQLITE  # the SQL the search compiler writes (PostgreSQL subclasses)
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def __init__(self, db_path: str | os.PathLike[str], artifact_root: str | os.PathLike[str]):
        self.db_path = Path(db_path).absolute()
        self.artifacts = ArtifactRoot(Path(artifact_root).absolute())
        self._local = threading.local()
        self._pid = os.getpid()
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._last_reap = 0.0
        self._artifact_bases: dict[str, Path] = {}
        self._write_lock = WriteLock(self.db_path)

    def __repr__(self) -> str:
        return f"Store({str(self.db_path)!r})"

    @property
    def location(self) -> str:
        """The folder holding the database file."""
        return str(self.db_path.parent)

    # -- connections ----------------------------------------------------------------------

    @property
    def db(self) -> Any:
        """This thread's sqlite_utils.Database (one connection per thread and process)."""
        if os.getpid() != self._pid:  # forked: never reuse the parent's connections
            self._local = threading.local()
            self._pid = os.getpid()
        db = getattr(self._local, "db", None)
        if db is None:
            import sqlite_utils  # imports numpy/pandas when installed: only on first use

            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.db_path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            db = sqlite_utils.Database(conn)
            db.dialect = SQLITE  # type: ignore[attr-defined]  # migrations read it
            self._local.db = db
            if not self._migrated:
                with self._migrate_lock:
                    if not self._migrated:
                        self._migrate(db)
                        self._migrated = True
        return db

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    @property
    def schema_version(self) -> int:
        row = self.conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    def _migrate(self, db: Any) -> None:
        conn = db.conn

        def apply(c: sqlite3.Connection) -> None:
            version = int(c.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"The database {self.db_path} has schema version {version}, newer than this "
                    f"autolog knows ({len(MIGRATIONS)}); upgrade autolog."
                )
            for i in range(version, len(MIGRATIONS)):
                MIGRATIONS[i](db)
                c.execute(f"PRAGMA user_version = {i + 1}")
            add_search_indexes(c)

        def attempt() -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                apply(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        with self._write_lock:
            self._retry(attempt)

    # -- runs -----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str | int = DEFAULT_EXPERIMENT_ID,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        run_id = run_id or uuid.uuid4().hex
        eid = int(experiment_id)
        start = now_ms() if start_time is None else int(start_time)
        rel = _run_artifact_rel(eid, run_id)
        tag_rows = _text_rows(run_id, tags or {}, "tag")

        def write(c: sqlite3.Connection) -> None:
            _require_experiment(c, eid, experiment_id)
            c.execute(
                "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, user_id, "
                "host, pid, parent_run_id, lifecycle_stage, artifact_uri) "
                "VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, 'active', ?)",
                [run_id, eid, run_name, start, user_id, HOST, os.getpid(), parent_run_id, rel],
            )
            c.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", tag_rows)

        self._transaction(write)
        # the run as written, not read back (six queries on PostgreSQL, for each run created)
        row = (run_id, eid, run_name, "RUNNING", start, None, user_id, rel, "active")
        info = self._run_info((*row, parent_run_id, HOST, os.getpid()))
        return Run(info, RunData(tags={k: v for _, k, v in tag_rows}), Inputs(), RunOutputs([]))

    def create_finished_runs(
        self,
        experiment_id: str | int,
        runs: Iterable[tuple[str | None, dict[str, Any], dict[str, Any], list[tuple]]],
        parent_run_id: str | None = None,
        user_id: str | None = None,
    ) -> list[str]:
        """Create FINISHED runs, each (run_name, tags, params, metrics), in one transaction.

        For runs recorded after the fact (a parameter search's candidates): one commit instead
        of a create_run, log_batch and set_terminated each. Returns the new run ids in order.
        """
        eid = int(experiment_id)
        now = now_ms()
        run_rows: list[list[Any]] = []
        tag_rows: list[tuple[str, str, str]] = []
        param_rows: list[tuple[str, str, str]] = []
        points: list[tuple[str, list[Point], dict[str, Point]]] = []
        for run_name, tags, params, metrics in runs:
            run_id = uuid.uuid4().hex
            run_rows.append(
                [run_id, eid, run_name, now, now, user_id, HOST, os.getpid(), parent_run_id]
                + [_run_artifact_rel(eid, run_id)]
            )
            tag_rows += _text_rows(run_id, tags, "tag")
            param_rows += _text_rows(run_id, flatten(params), "param")
            mine = [self._point(m) for m in metrics]
            points.append((run_id, mine, latest_of(mine)))

        def write(c: sqlite3.Connection) -> None:
            _require_experiment(c, eid, experiment_id)
            c.executemany(
                "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, end_time, "
                "user_id, host, pid, parent_run_id, lifecycle_stage, artifact_uri) "
                "VALUES (?, ?, ?, 'FINISHED', ?, ?, ?, ?, ?, ?, 'active', ?)",
                run_rows,
            )
            c.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", tag_rows)
            c.executemany("INSERT INTO params VALUES (?, ?, ?)", param_rows)
            keys = run_keys(c, [row[0] for row in run_rows])
            for run_id, mine, latest in points:
                write_points(c, run_id, keys[run_id], mine, latest)

        self._transaction(write)
        return [row[0] for row in run_rows]

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> None:
        if status is not None and status not in RUN_STATUSES:
            raise InvalidValueError(
                f"Invalid run status {status!r}; use one of {', '.join(RUN_STATUSES)}."
            )
        sets: list[str] = []
        args: list[Any] = []
        if status is not None:
            sets.append("status = ?")
            args.append(status)
        if end_time is not None:
            sets.append("end_time = ?")
            args.append(int(end_time))
        if run_name is not None:
            sets.append("run_name = ?")
            args.append(run_name)
        if not sets:
            return

        def write(c: sqlite3.Connection) -> None:
            cur = c.execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", [*args, run_id])
            if cur.rowcount == 0:
                raise self._no_run(run_id)

        self._transaction(write)

    def set_terminated(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None
    ) -> None:
        self.update_run(run_id, status=status, end_time=now_ms() if end_time is None else end_time)

    def delete_run(self, run_id: str) -> None:
        self._set_lifecycle(run_id, "deleted")

    def restore_run(self, run_id: str) -> None:
        self._set_lifecycle(run_id, "active")

    def _set_lifecycle(self, run_id: str, stage: str) -> None:
        def write(c: sqlite3.Connection) -> None:
            cur = c.execute("UPDATE runs SET lifecycle_stage = ? WHERE run_id = ?", [stage, run_id])
            if cur.rowcount == 0:
                raise self._no_run(run_id)

        self._transaction(write)

    @staticmethod
    def _no_run(run_id: str) -> RunNotFoundError:
        return RunNotFoundError(f"No run with id {run_id!r}; list runs with `autolog runs list`.")

    def reap_dead_runs(self, force: bool = False) -> int:
        """Mark RUNNING runs whose process on this host is gone as KILLED; return how many."""
        now = time.monotonic()
        if not force and now - self._last_reap < _REAP_INTERVAL_S:
            return 0
        self._last_reap = now
        rows = self.conn.execute(
            "SELECT run_id, pid FROM runs WHERE status = 'RUNNING' AND host = ?", [HOST]
        ).fetchall()
        dead = [rid for rid, pid in rows if pid is not None and not pid_alive(int(pid))]
        if dead:
            end = now_ms()
            self._transaction(
                lambda c: c.executemany(
                    "UPDATE runs SET status = 'KILLED', end_time = COALESCE(end_time, ?) "
                    "WHERE run_id = ? AND status = 'RUNNING'",
                    [(end, rid) for rid in dead],
                )
            )
        return len(dead)

    _RUN_COLS = (
        "run_id, experiment_id, run_name, status, start_time, end_time, user_id, artifact_uri, "
        "lifecycle_stage, parent_run_id, host, pid"
    )

    def _run_info(self, row: Sequence[Any]) -> RunInfo:
        rid, eid, name, status, start, end, user, art, stage, parent, host, pid = row
        return RunInfo(
            run_id=rid,
            experiment_id=str(eid),
            run_name=name,
            status=status,
            start_time=start,
            end_time=end,
            user_id=user,
            artifact_uri=str(self.artifacts.root / art),
            lifecycle_stage=stage,
            parent_run_id=parent,
            host=host,
            pid=pid,
        )

    def get_run_info(self, run_id: str) -> RunInfo:
        """A run's info alone (one query; get_run reads its params, tags and metrics too)."""
        row = self.conn.execute(
            f"SELECT {self._RUN_COLS} FROM runs WHERE run_id = ?", [run_id]
        ).fetchone()
        if row is None:
            raise self._no_run(run_id)
        infos = {run_id: self._run_info(row)}
        self._mark_dead(infos)
        return infos[run_id]

    def get_run(self, run_id: str) -> Run:
        runs = self.get_runs([run_id])
        if not runs:
            raise self._no_run(run_id)
        return runs[0]

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Runs with params, tags and latest metrics, in the order of run_ids (missing ids skipped).

        A RUNNING run of this host whose process is gone reads back KILLED at once: only the
        runs read have their pid checked, one signal-0 each.
        """
        conn = self.conn
        infos: dict[str, RunInfo] = {}
        datas: dict[str, RunData] = {}
        inputs: dict[str, Inputs] = {}
        outputs: dict[str, list[LoggedModelOutput]] = {}
        for start in range(0, len(run_ids), 500):
            chunk = list(run_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT {self._RUN_COLS} FROM runs WHERE run_id IN ({marks})", chunk
            ):
                infos[row[0]] = self._run_info(row)
                datas[row[0]] = RunData()
            for rid, k, v in conn.execute(
                f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})", chunk
            ):
                datas[rid].params[k] = v
            for rid, k, v in conn.execute(
                f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})", chunk
            ):
                datas[rid].tags[k] = v
            for rid, k, v in conn.execute(
                f"SELECT run_id, key, value FROM latest_metrics WHERE run_id IN ({marks})", chunk
            ):
                datas[rid].metrics[k] = _from_db(v)
            for rid, dataset_inputs in self._dataset_inputs(chunk).items():
                inputs[rid] = Inputs(dataset_inputs)
            outputs.update(self._model_outputs(chunk))
        self._mark_dead(infos)
        return [
            Run(infos[r], datas[r], inputs.get(r) or Inputs(), RunOutputs(outputs.get(r, [])))
            for r in run_ids
            if r in infos
        ]

    def _mark_dead(self, infos: dict[str, RunInfo]) -> None:
        """Mark (in the store and in infos) RUNNING runs whose process on this host is gone."""
        me = os.getpid()
        dead = [
            info
            for info in infos.values()
            if info.status == "RUNNING"
            and info.host == HOST
            and info.pid is not None
            and info.pid != me
            and not pid_alive(int(info.pid))
        ]
        if not dead:
            return
        end = now_ms()
        self._transaction(
            lambda c: c.executemany(
                "UPDATE runs SET status = 'KILLED', end_time = COALESCE(end_time, ?) "
                "WHERE run_id = ? AND status = 'RUNNING'",
                [(end, info.run_id) for info in dead],
            )
        )
        for info in dead:  # read back what the update left (another process may have ended it)
            row = self.conn.execute(
                "SELECT status, end_time FROM runs WHERE run_id = ?", [info.run_id]
            ).fetchone()
            if row is not None:
                info.status, info.end_time = row

    def search_runs(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int | None = 1000,
        offset: int = 0,
        lifecycle_stage: str | None = "active",
    ) -> list[Run]:
        args = (filter_string, order_by, max_results, offset, lifecycle_stage)
        return self.search_runs_page(experiment_ids, *args)[0]

    def search_runs_page(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int | None = 1000,
        offset: int = 0,
        lifecycle_stage: str | None = "active",
        after: Any = None,
    ) -> tuple[list[Run], list[list[Any]]]:
        """search_runs, and each run's sort key: ``after=`` one of them reads the runs after
        it without counting an offset (the server's page tokens; store.sql.keyset)."""
        from store.sql.search import search_run_page

        self.reap_dead_runs()
        eids = None if experiment_ids is None else [int(e) for e in experiment_ids]
        query = (eids, filter_string, order_by, max_results, offset, lifecycle_stage)
        read = lambda sql, args: self.conn.execute(sql, args).fetchall()  # noqa: E731
        ids, keys = search_run_page(read, *query, self.dialect, after)
        return self.get_runs(ids), keys

    def count_runs(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str = "",
        lifecycle_stage: str | None = "active",
    ) -> int:
        from store.sql.search import count_run_ids

        eids = None if experiment_ids is None else [int(e) for e in experiment_ids]
        return count_run_ids(
            lambda sql, args: self.conn.execute(sql, args).fetchall(),
            eids,
            filter_string,
            lifecycle_stage,
            self.dialect,
        )

    def child_run_ids(self, run_id: str) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT run_id FROM runs WHERE parent_run_id = ? ORDER BY start_time, run_id",
                [run_id],
            )
        ]

    def run_artifact_base(self, run_id: str) -> Path:
        """A run's artifact folder; given a logged model's id (``m-...``), that model's own
        folder, so the artifact methods serve MLflow 3's ``models/<model_id>/artifacts``."""
        # A run's artifact folder is fixed when the run is created: looked up once per run.
        base = self._artifact_bases.get(run_id)
        if base is not None:
            return base
        if run_id.startswith("m-"):
            base = self.logged_model_artifact_base(run_id)
        else:
            row = self.conn.execute(
                "SELECT artifact_uri FROM runs WHERE run_id = ?", [run_id]
            ).fetchone()
            if row is None:
                raise self._no_run(run_id)
            base = self.artifacts.root / row[0]
        if len(self._artifact_bases) >= 1024:
            self._artifact_bases.clear()
        self._artifact_bases[run_id] = base
        return base


def _require_experiment(c: sqlite3.Connection, eid: int, given: str | int) -> None:
    if not c.execute("SELECT 1 FROM experiments WHERE experiment_id = ?", [eid]).fetchone():
        raise ExperimentNotFoundError(
            f"No experiment with id {given!r}; create it with set_experiment(name)."
        )


def _run_artifact_rel(eid: int, run_id: str) -> str:
    """A run's artifact folder, relative to the artifact root (fixed when the run is created)."""
    return f"{eid}/{run_id}/artifacts"


def store_for_uri(uri: str) -> Store:
    """A Store for a tracking URI: a folder path, file:// folder, sqlite:///path/to/file.db, or
    the path of an existing database file."""
    db = db_path_for_uri(uri)
    query = uri.partition("?")[2] if uri.startswith("sqlite:///") else ""
    root = dict(parse_qsl(query)).get("artifact_root") or os.environ.get("AUTOLOG_ARTIFACT_ROOT")
    if root and root.startswith("s3://"):  # artifacts in object storage
        from store.artifacts.s3 import with_s3_artifacts

        return with_s3_artifacts(Store, root)(db, db.parent / "artifacts")  # type: ignore[no-any-return]
    return Store(db, Path(root) if root else db.parent / "artifacts")


def open_store(uri: str) -> Any:
    """The store for a tracking URI (see :func:`store.base.open_store`, which this calls)."""
    from store.base import open_store as open_any

    return open_any(uri)


if TYPE_CHECKING:  # mypy checks here that Store implements the interfaces

    def _implements(store: Store) -> tuple[TrackingStore, RegistryStoreInterface]:
        return store, store

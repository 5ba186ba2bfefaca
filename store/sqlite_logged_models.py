"""MLflow 3's logged models in the SQLite store (mixed into the Store).

A logged model is a record with an id ``m-<32 hex>``: its name, source run, status, params,
tags and metrics (the source run's values when it was logged, each with the dataset it was
computed on). Its files stay in the source run's artifacts at ``artifact_path``. The method
names and arguments are MLflow's ``AbstractStore`` ones, so a tracking server maps MLflow's
REST endpoints onto them one to one; ``log_logged_model_metrics`` stands for the metrics that
MLflow's ``log_batch`` carries with a ``model_id``.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from store.artifacts.local import check_relative
from store.entities import LoggedModel, LoggedModelMetric
from store.errors import InvalidValueError, LoggedModelNotFoundError
from store.values import _from_db, _to_db, check_key, check_point, check_text, now_ms

if TYPE_CHECKING:
    from store.entities import Experiment, Run

T = TypeVar("T")

STATUSES = ("PENDING", "READY", "FAILED")
_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
_COLS = (
    "model_id, experiment_id, name, artifact_location, creation_timestamp, "
    "last_updated_timestamp, status, status_message, model_type, source_run_id, artifact_path, "
    "lifecycle_stage"
)


def check_model_id(model_id: Any) -> str:
    if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
        raise InvalidValueError(
            f"Invalid logged model id {model_id!r}: ids are 'm-' and 32 hex digits, as in "
            "models:/m-0123456789abcdef0123456789abcdef (see Client().search_logged_models())."
        )
    return model_id


def check_status(status: Any) -> str:
    text = str(getattr(status, "value", status)).upper()
    if text not in STATUSES:
        raise InvalidValueError(
            f"Invalid logged model status {status!r}; use one of {', '.join(STATUSES)}."
        )
    return text


def _texts(values: Mapping[str, Any] | None, what: str) -> list[tuple[str, str]]:
    return [(check_key(k, what), check_text(k, v, what)) for k, v in (values or {}).items()]


class LoggedModels:
    """create / get / search / finalize logged models; their params, tags and metrics."""

    if TYPE_CHECKING:

        @property
        def conn(self) -> sqlite3.Connection: ...

        def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
        def get_run(self, run_id: str) -> Run: ...
        def get_experiment(self, experiment_id: str | int) -> Experiment: ...
        def run_artifact_base(self, run_id: str) -> Any: ...

        artifacts: Any

    def create_logged_model(
        self,
        experiment_id: str | int,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        model_type: str | None = None,
        *,
        artifact_path: str | None = None,
        model_id: str | None = None,
    ) -> LoggedModel:
        """A new PENDING logged model; ``artifact_path``: where its files lie in the source
        run's artifacts (else in the experiment's, under ``models/<model_id>/artifacts``);
        ``model_id``: the id a client chose (``m-`` and 32 hex digits), else a new one."""
        experiment = self.get_experiment(experiment_id)
        model_id = check_model_id(model_id) if model_id is not None else "m-" + uuid.uuid4().hex
        if source_run_id is not None and artifact_path:
            base = self.get_run(source_run_id).info.artifact_uri
            location = f"{base.rstrip('/')}/{artifact_path.strip('/')}"
        else:
            location = f"{experiment.artifact_location.rstrip('/')}/models/{model_id}/artifacts"
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidValueError(f"Invalid logged model name {name!r}: give a non-empty name.")
        tag_rows, param_rows = _texts(tags, "logged model tag"), _texts(params, "model param")
        created = now_ms()

        def write(c: sqlite3.Connection) -> None:
            c.execute(
                f"INSERT INTO logged_models ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    model_id,
                    int(experiment.experiment_id),
                    name or artifact_path or model_id,
                    location,
                    created,
                    created,
                    "PENDING",
                    None,
                    model_type,
                    source_run_id,
                    artifact_path,
                    "active",
                ],
            )
            c.executemany(
                "INSERT INTO logged_model_tags VALUES (?, ?, ?)",
                [(model_id, k, v) for k, v in tag_rows],
            )
            c.executemany(
                "INSERT INTO logged_model_params VALUES (?, ?, ?)",
                [(model_id, k, v) for k, v in param_rows],
            )

        self._transaction(write)
        return self.get_logged_model(model_id)

    def _require_logged_model(self, c: sqlite3.Connection, model_id: str) -> None:
        check_model_id(model_id)
        if c.execute("SELECT 1 FROM logged_models WHERE model_id = ?", [model_id]).fetchone():
            return
        raise LoggedModelNotFoundError(
            f"No logged model {model_id!r} in this store ({getattr(self, 'location', '')}); "
            "list them with Client().search_logged_models()."
        )

    def _upsert(self, table: str, model_id: str, rows: list[tuple[str, str]]) -> None:
        def write(c: sqlite3.Connection) -> None:
            self._require_logged_model(c, model_id)
            c.executemany(
                f"INSERT INTO {table} (model_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                [(model_id, k, v) for k, v in rows],
            )
            c.execute(
                "UPDATE logged_models SET last_updated_timestamp = ? WHERE model_id = ?",
                [now_ms(), model_id],
            )

        self._transaction(write)

    def logged_model_artifact_base(self, model_id: str) -> Any:
        """The folder of a model's files: its source run's ``artifact_path`` when autolog logged
        it there, else ``<experiment>/models/<model_id>/artifacts`` (where MLflow 3's client
        uploads a model it creates)."""
        row = self.conn.execute(
            "SELECT m.source_run_id, m.artifact_path, e.artifact_location FROM logged_models m "
            "JOIN experiments e ON e.experiment_id = m.experiment_id WHERE m.model_id = ?",
            [check_model_id(model_id)],
        ).fetchone()
        if row is None:
            raise LoggedModelNotFoundError(
                f"No logged model {model_id!r} in this store; list them with "
                "Client().search_logged_models()."
            )
        run_id, artifact_path, location = row
        if run_id and artifact_path:
            return self.run_artifact_base(run_id) / check_relative(artifact_path)
        return self.artifacts.root / str(location) / "models" / model_id / "artifacts"

    def log_logged_model_params(self, model_id: str, params: Mapping[str, Any]) -> None:
        self._upsert("logged_model_params", model_id, _texts(params, "model param"))

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, Any]) -> None:
        self._upsert("logged_model_tags", model_id, _texts(tags, "logged model tag"))

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        def write(c: sqlite3.Connection) -> None:
            self._require_logged_model(c, model_id)
            gone = c.execute(
                "DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?", [model_id, key]
            ).rowcount
            if not gone:
                raise InvalidValueError(f"Logged model {model_id} has no tag {key!r} to delete.")

        self._transaction(write)

    def log_logged_model_metrics(
        self, model_id: str, metrics: Iterable[LoggedModelMetric | tuple]
    ) -> None:
        """Record metrics of the model: LoggedModelMetric or (key, value, timestamp, step,
        run_id, dataset_name, dataset_digest) tuples; a later value of the same key and
        dataset replaces the earlier one."""
        rows = []
        for m in metrics:
            if isinstance(m, LoggedModelMetric):
                m = (
                    m.key,
                    m.value,
                    m.timestamp,
                    m.step,
                    m.run_id,
                    m.dataset_name,
                    m.dataset_digest,
                )
            key, value, ts, step = check_point(*m[:4])
            rest = tuple(m[4:]) + (None,) * (7 - len(m))
            rows.append((model_id, key, _to_db(value), ts, step, *rest))

        def write(c: sqlite3.Connection) -> None:
            self._require_logged_model(c, model_id)
            for row in rows:
                c.execute(
                    "DELETE FROM logged_model_metrics WHERE model_id = ? AND key = ? AND "
                    "COALESCE(dataset_name, '') = COALESCE(?, '') AND "
                    "COALESCE(dataset_digest, '') = COALESCE(?, '')",
                    [model_id, row[1], row[6], row[7]],
                )
                c.execute("INSERT INTO logged_model_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

        self._transaction(write)

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel:
        """Set the final status (READY or FAILED) of a logged model."""
        text = check_status(status)

        def write(c: sqlite3.Connection) -> None:
            self._require_logged_model(c, model_id)
            c.execute(
                "UPDATE logged_models SET status = ?, last_updated_timestamp = ? "
                "WHERE model_id = ?",
                [text, now_ms(), model_id],
            )

        self._transaction(write)
        return self.get_logged_model(model_id)

    def delete_logged_model(self, model_id: str) -> None:
        """Mark the model deleted (its files stay with its run)."""

        def write(c: sqlite3.Connection) -> None:
            self._require_logged_model(c, model_id)
            c.execute(
                "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp = ? "
                "WHERE model_id = ?",
                [now_ms(), model_id],
            )

        self._transaction(write)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        found = self._logged_models([check_model_id(model_id)])
        if not found or (found[0].lifecycle_stage != "active" and not allow_deleted):
            self._require_logged_model(self.conn, model_id)  # raises when absent
            raise LoggedModelNotFoundError(
                f"Logged model {model_id!r} is deleted; pass allow_deleted=True to read it."
            )
        return found[0]

    def search_logged_models(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[str | Mapping[str, Any]] | str | None = None,
    ) -> list[LoggedModel]:
        """Active logged models matching the filter (grammar: :mod:`store.logged_model_search`),
        newest first unless ordered; ``datasets`` [{name, digest?}] limits metric comparisons to
        metrics computed on those datasets."""
        from store.logged_model_search import search_sql

        sql, params = search_sql(experiment_ids, filter_string, datasets, max_results, order_by)
        return self._logged_models([r[0] for r in self.conn.execute(sql, params)])

    def _logged_models(self, ids: list[str]) -> list[LoggedModel]:
        """The models of ids, in that order, with tags, params and metrics (500 ids a query)."""
        out: dict[str, LoggedModel] = {}
        c = self.conn
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in c.execute(
                f"SELECT {_COLS} FROM logged_models WHERE model_id IN ({marks})", chunk
            ):
                out[row[0]] = LoggedModel(row[0], str(row[1]), *row[2:])
            for table, attr in (("logged_model_tags", "tags"), ("logged_model_params", "params")):
                for mid, k, v in c.execute(
                    f"SELECT model_id, key, value FROM {table} WHERE model_id IN ({marks})", chunk
                ):
                    getattr(out[mid], attr)[k] = v
            for mid, k, v, ts, step, rid, dname, ddigest in c.execute(
                "SELECT model_id, key, value, timestamp, step, run_id, dataset_name, "
                f"dataset_digest FROM logged_model_metrics WHERE model_id IN ({marks}) "
                "ORDER BY key, dataset_name",
                chunk,
            ):
                out[mid].metrics.append(
                    LoggedModelMetric(k, _from_db(v), ts, step, rid, dname, ddigest, mid)
                )
        return [out[i] for i in ids if i in out]

"""Datasets as run inputs in the SQLite store (mixed into the Store).

MLflow's tables: ``datasets`` (one row per experiment, name and digest), ``inputs`` (dataset
-> run, once per run) and ``input_tags`` (the link's tags). The statements are portable SQL
(``INSERT ... ON CONFLICT DO NOTHING``), the same a PostgreSQL backend runs with its marks.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from store.entities import Dataset, DatasetInput, DatasetRecord, InputTag, LoggedModelOutput
from store.errors import InvalidValueError, LoggedModelNotFoundError, RunNotFoundError
from store.values import check_dataset_inputs

T = TypeVar("T")

SOURCE_DATASET = "DATASET"
DESTINATION_RUN = "RUN"

INSERT_DATASET = (
    "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, "
    "dataset_source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (experiment_id, name, digest) DO NOTHING"
)
SELECT_DATASET_UUID = (
    "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?"
)
INSERT_INPUT = (
    "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id) "
    "VALUES (?, 'DATASET', ?, 'RUN', ?) "
    "ON CONFLICT (source_type, source_id, destination_type, destination_id) DO NOTHING"
)
INSERT_OUTPUT = (
    "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, "
    "step) VALUES (?, 'RUN_OUTPUT', ?, 'MODEL_OUTPUT', ?, ?) "
    "ON CONFLICT (source_type, source_id, destination_type, destination_id) DO NOTHING"
)
INSERT_INPUT_TAG = (
    "INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?) "
    "ON CONFLICT (input_uuid, name) DO NOTHING"
)
_DATASET_COLS = (
    "d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile"
)


class RunInputs:
    """log_inputs, the inputs of runs read with them, search_datasets."""

    if TYPE_CHECKING:

        @property
        def conn(self) -> sqlite3.Connection: ...

        def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None) -> None:
        """Record datasets a run used. A dataset already stored in the run's experiment (same
        name and digest) is reused, and one already linked to the run is linked once: its
        first tags stay."""
        items = check_dataset_inputs(datasets)
        if not items:
            return

        def write(c: sqlite3.Connection) -> None:
            row = c.execute("SELECT experiment_id FROM runs WHERE run_id = ?", [run_id]).fetchone()
            if row is None:
                raise RunNotFoundError(
                    f"No run with id {run_id!r}; list runs with `autolog runs list`."
                )
            eid = row[0]
            for item in items:
                ds = item.dataset
                key = [eid, ds.name, ds.digest]
                c.execute(
                    INSERT_DATASET,
                    [uuid.uuid4().hex, *key, ds.source_type, ds.source, ds.schema, ds.profile],
                )
                dataset_uuid = c.execute(SELECT_DATASET_UUID, key).fetchone()[0]
                input_uuid = uuid.uuid4().hex
                if c.execute(INSERT_INPUT, [input_uuid, dataset_uuid, run_id]).rowcount:
                    c.executemany(
                        INSERT_INPUT_TAG, [(input_uuid, t.key, t.value) for t in item.tags]
                    )

        self._transaction(write)

    def log_outputs(self, run_id: str, models: Sequence[Any]) -> None:
        """Record logged models a run produced (MLflow 3's ``log_outputs``): each a
        :class:`LoggedModelOutput`, an object with ``model_id`` and ``step``, or a model id. A
        model already recorded as an output of the run keeps its first step."""
        rows = [check_model_output(m) for m in models]

        def write(c: sqlite3.Connection) -> None:
            if not c.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone():
                raise RunNotFoundError(
                    f"No run with id {run_id!r}; list runs with `autolog runs list`."
                )
            for out in rows:
                if not c.execute(
                    "SELECT 1 FROM logged_models WHERE model_id = ?", [out.model_id]
                ).fetchone():
                    raise LoggedModelNotFoundError(
                        f"No logged model {out.model_id!r} to record as an output of run "
                        f"{run_id}; create it first (create_logged_model)."
                    )
                c.execute(INSERT_OUTPUT, [uuid.uuid4().hex, run_id, out.model_id, out.step])

        if rows:
            self._transaction(write)

    def _model_outputs(self, run_ids: Sequence[str]) -> dict[str, list[LoggedModelOutput]]:
        """run id -> the logged models it produced, in the order recorded (runs without: absent)."""
        if not run_ids:
            return {}
        out: dict[str, list[LoggedModelOutput]] = {}
        for run_id, model_id, step in self.conn.execute(
            "SELECT source_id, destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' "
            f"AND source_id IN ({','.join('?' * len(run_ids))}) "
            "AND destination_type = 'MODEL_OUTPUT' ORDER BY rowid",
            list(run_ids),
        ):
            out.setdefault(run_id, []).append(LoggedModelOutput(model_id, int(step)))
        return out

    def _dataset_inputs(self, run_ids: Sequence[str]) -> dict[str, list[DatasetInput]]:
        """run id -> its dataset inputs in the order they were logged (runs without: absent)."""
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        rows = self.conn.execute(
            f"SELECT i.destination_id, i.input_uuid, {_DATASET_COLS} FROM inputs i "
            "JOIN datasets d ON d.dataset_uuid = i.source_id "
            f"WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' "
            f"AND i.destination_id IN ({marks}) ORDER BY i.rowid",
            list(run_ids),
        ).fetchall()
        if not rows:
            return {}
        tags: dict[str, list[InputTag]] = {}
        uuids = [r[1] for r in rows]
        for start in range(0, len(uuids), 500):
            chunk = uuids[start : start + 500]
            for input_uuid, name, value in self.conn.execute(
                "SELECT input_uuid, name, value FROM input_tags "
                f"WHERE input_uuid IN ({','.join('?' * len(chunk))}) ORDER BY name",
                chunk,
            ):
                tags.setdefault(input_uuid, []).append(InputTag(name, value))
        out: dict[str, list[DatasetInput]] = {}
        for run_id, input_uuid, *fields in rows:
            out.setdefault(run_id, []).append(
                DatasetInput(Dataset(*fields), tags.get(input_uuid, []))
            )
        return out

    def search_datasets(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        digest: str | None = None,
        name: str | None = None,
        max_results: int = 1000,
    ) -> list[DatasetRecord]:
        """Datasets stored in the experiments (all: None) with how many active runs used
        each, optionally only those of one digest or name; by name, then digest."""
        conditions: list[str] = []
        args: list[Any] = []
        if experiment_ids is not None:
            ids = [int(e) for e in experiment_ids]
            conditions.append(f"d.experiment_id IN ({','.join('?' * len(ids)) or 'NULL'})")
            args += ids
        for column, value in (("digest", digest), ("name", name)):
            if value is not None:
                conditions.append(f"d.{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self.conn.execute(
            f"SELECT d.experiment_id, {_DATASET_COLS}, "
            "(SELECT COUNT(*) FROM inputs i JOIN runs r ON r.run_id = i.destination_id "
            "WHERE i.source_type = 'DATASET' AND i.source_id = d.dataset_uuid "
            "AND i.destination_type = 'RUN' AND r.lifecycle_stage = 'active') "
            f"FROM datasets d{where} ORDER BY d.name, d.digest, d.experiment_id LIMIT ?",
            [*args, int(max_results)],
        ).fetchall()
        return [DatasetRecord(str(r[0]), Dataset(*r[1:7]), int(r[7])) for r in rows]


def check_model_output(m: Any) -> LoggedModelOutput:
    model_id = m if isinstance(m, str) else getattr(m, "model_id", None)
    step = 0 if isinstance(m, str) else getattr(m, "step", 0)
    if not isinstance(model_id, str) or isinstance(step, bool) or not isinstance(step, int):
        raise InvalidValueError(
            f"Invalid model output {m!r}: give LoggedModelOutput(model_id, step) with a model id "
            "string and an integer step."
        )
    return LoggedModelOutput(model_id, step)

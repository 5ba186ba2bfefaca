"""The models table of the SQLite store: which run logged which model (mixed into the Store)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")


class ModelLineage:
    """record_model / list_models (run <-> model lineage)."""

    if TYPE_CHECKING:

        @property
        def conn(self) -> sqlite3.Connection: ...

        def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    def record_model(
        self,
        model_uuid: str,
        run_id: str,
        artifact_path: str,
        flavors: list[str],
        created_time: int,
        signature: dict[str, Any] | None,
    ) -> None:
        import json

        self._transaction(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?)",
                [
                    model_uuid,
                    run_id,
                    artifact_path,
                    json.dumps(flavors),
                    int(created_time),
                    None if signature is None else json.dumps(signature),
                ],
            )
        )

    def list_models(self, run_id: str) -> list[dict[str, Any]]:
        import json

        out = []
        for uid, rid, path, flavors, ctime, sig in self.conn.execute(
            "SELECT model_uuid, run_id, artifact_path, flavors, created_time, signature FROM models "
            "WHERE run_id = ? ORDER BY created_time",
            [run_id],
        ):
            out.append(
                {
                    "model_uuid": uid,
                    "run_id": rid,
                    "artifact_path": path,
                    "flavors": json.loads(flavors),
                    "created_time": ctime,
                    "signature": None if sig is None else json.loads(sig),
                }
            )
        return out

    def models_of_runs(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """run_id -> artifact paths of its logged models, oldest first (one query per 500)."""
        out: dict[str, list[str]] = {}
        ids = list(run_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for rid, path in self.conn.execute(
                f"SELECT run_id, artifact_path FROM models WHERE run_id IN ({marks}) "
                "ORDER BY created_time",
                chunk,
            ):
                out.setdefault(rid, []).append(path)
        return out

    def logged_models(self, limit: int = 500) -> list[dict[str, Any]]:
        """Every model logged in an active run, newest first, with its run's name and experiment."""
        import json

        rows = self.conn.execute(
            "SELECT m.run_id, m.artifact_path, m.flavors, m.created_time, r.run_name, "
            "r.experiment_id FROM models m JOIN runs r ON r.run_id = m.run_id "
            "WHERE r.lifecycle_stage = 'active' ORDER BY m.created_time DESC LIMIT ?",
            [int(limit)],
        ).fetchall()
        return [
            {
                "run_id": rid,
                "artifact_path": path,
                "flavors": json.loads(flavors or "[]"),
                "created_time": ctime,
                "run_name": name,
                "experiment_id": str(eid),
            }
            for rid, path, flavors, ctime, name, eid in rows
        ]

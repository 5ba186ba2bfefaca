"""The models table of the SQLite store: which run logged which model (mixed into the Store)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
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

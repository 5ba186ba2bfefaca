"""The models tables of the SQLite store: which run logged which model, and the digests of its
files (mixed into the Store)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from store.artifacts import check_relative

T = TypeVar("T")


class ModelLineage:
    """record_model / list_models (run <-> model lineage), model_file_digests."""

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
        files: dict[str, str] | None = None,
        model_id: str | None = None,
    ) -> None:
        """Record a logged model; ``files`` maps each file's relative path to its SHA-256
        (they replace whatever was recorded at that run and artifact path before);
        ``model_id`` links the logged model record (``m-<hex>``) of these files."""
        import json

        rel = check_relative(artifact_path)

        def write(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO models (model_uuid, run_id, artifact_path, flavors, created_time, "
                "signature, model_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_uuid) DO "
                "UPDATE SET run_id = excluded.run_id, artifact_path = excluded.artifact_path, "
                "flavors = excluded.flavors, created_time = excluded.created_time, "
                "signature = excluded.signature, model_id = excluded.model_id",
                [
                    model_uuid,
                    run_id,
                    artifact_path,
                    json.dumps(flavors),
                    int(created_time),
                    None if signature is None else json.dumps(signature),
                    model_id,
                ],
            )
            if files is not None:
                c.execute(
                    "DELETE FROM model_files WHERE run_id = ? AND artifact_path = ?", [run_id, rel]
                )
                c.executemany(
                    "INSERT INTO model_files VALUES (?, ?, ?, ?, ?)",
                    [(run_id, rel, f, digest, model_uuid) for f, digest in files.items()],
                )

        self._transaction(write)

    def model_file_digests(self, run_id: str, artifact_path: str) -> dict[str, str] | None:
        """The SHA-256 of each file of the model logged at ``runs:/<run_id>/<artifact_path>``
        (relative path -> hex digest), or None when none was recorded there."""
        rows = self.conn.execute(
            "SELECT file, sha256 FROM model_files WHERE run_id = ? AND artifact_path = ?",
            [run_id, check_relative(artifact_path)],
        ).fetchall()
        return dict(rows) if rows else None

    def list_models(self, run_id: str) -> list[dict[str, Any]]:
        import json

        out = []
        for uid, rid, path, flavors, ctime, sig, mid in self.conn.execute(
            "SELECT model_uuid, run_id, artifact_path, flavors, created_time, signature, model_id "
            "FROM models WHERE run_id = ? ORDER BY created_time",
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
                    "model_id": mid,
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

"""`autolog db copy SRC DST`: a SQLite store into PostgreSQL with S3 artifacts, and back."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from autolog.cli import main
from store.base import open_store


def _fill(store: Any, tmp_path: Path) -> dict[str, Any]:
    store.create_experiment("spare")
    eid = store.create_experiment("team", tags={"owner": "ann"})
    rid = store.create_run(eid, run_name="first", tags={"t": "1"}, start_time=1000).info.run_id
    points = [("loss", v, 10 + i, i) for i, v in enumerate([1.0, math.nan, math.inf, 0.25])]
    store.log_batch(rid, metrics=points, params={"lr": 0.1})
    store.set_terminated(rid, "FINISHED", 2000)
    gone = store.create_run(eid, run_name="gone").info.run_id
    store.delete_run(gone)
    store.write_artifact_bytes(rid, "notes/n.txt", b"note")
    with store.staged_artifact_dir(rid, "model") as folder:
        (folder / "MLmodel").write_text("flavors: {}\n")
        (folder / "model.pkl").write_bytes(b"pickle")
    store.record_model("u1", rid, "model", ["sklearn"], 5, None, {"model.pkl": "ab" * 32})
    store.create_registered_model("clf", tags={"team": "vision"})
    store.create_model_version("clf", f"runs:/{rid}/model", run_id=rid)
    store.create_model_version("clf", f"runs:/{rid}/model", run_id=rid)
    store.set_registered_model_alias("clf", "champion", 2)
    return {"eid": eid, "rid": rid, "gone": gone}


def _same(a: Any, b: Any, ids: dict[str, Any], tmp_path: Path) -> None:
    rid = ids["rid"]
    ra, rb = a.get_run(rid), b.get_run(rid)
    assert (rb.data.params, rb.data.tags, rb.info.experiment_id) == (
        ra.data.params,
        ra.data.tags,
        ids["eid"],
    )
    assert (rb.info.start_time, rb.info.end_time, rb.info.status) == (1000, 2000, "FINISHED")
    history = [(m.value, m.timestamp, m.step) for m in b.get_metric_history(rid, "loss")]
    assert history[0] == (1.0, 10, 0) and math.isnan(history[1][0])
    assert history[2:] == [(math.inf, 12, 2), (0.25, 13, 3)]
    assert b.get_run(ids["gone"]).info.lifecycle_stage == "deleted"
    assert b.get_experiment(ids["eid"]).tags == {"owner": "ann"}
    assert b.model_file_digests(rid, "model") == {"model.pkl": "ab" * 32}
    assert [m["model_uuid"] for m in b.list_models(rid)] == ["u1"]
    assert b.get_model_version_by_alias("clf", "champion").version == "2"
    assert b.get_registered_model("clf").tags == {"team": "vision"}
    assert b.artifact_local_path(rid, "notes/n.txt").read_bytes() == b"note"
    assert b.artifact_local_path(rid, "model/model.pkl").read_bytes() == b"pickle"
    assert [f.path for f in b.list_artifacts(rid)] == ["model", "notes"]


def test_db_copy_sqlite_into_postgres_with_s3_and_back(
    postgres_server: Any, s3_env: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("AUTOLOG_ARTIFACT_CACHE", str(tmp_path / "cache"))
    src_uri = str(tmp_path / "local-runs")
    src = open_store(src_uri)
    ids = _fill(src, tmp_path)
    dst_uri = f"{postgres_server.new_database()}?artifact_root={s3_env.new_prefix()}"

    result = CliRunner().invoke(main, ["db", "copy", src_uri, dst_uri])
    assert result.exit_code == 0, result.output
    assert "metrics: 4 rows" in result.output and "runs: 2 rows" in result.output
    assert "artifacts: 3 files of 2 runs" in result.output
    dst = open_store(dst_uri)
    _same(src, dst, ids, tmp_path)
    assert dst.create_experiment("after") == str(int(ids["eid"]) + 1)  # ids continue

    again = CliRunner().invoke(main, ["db", "copy", src_uri, dst_uri])
    assert again.exit_code == 2
    assert "already holds 2 runs; copy into a fresh, empty database" in again.output

    back_uri = f"sqlite:///{tmp_path}/back/autolog.db"
    result = CliRunner().invoke(main, ["db", "copy", dst_uri, back_uri])
    assert result.exit_code == 0, result.output
    back = open_store(back_uri)
    _same(src, back, ids, tmp_path)
    for store in (src, dst, back):
        store.close()

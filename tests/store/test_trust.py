"""Trust (issue 16): links never lead out of a run, bad values get clear errors, killed runs."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import autolog
from autolog import batching
from autolog.errors import ArtifactPathError, InvalidValueError
from autolog.ui import data as ui_data
from store.artifacts import TEMP_PREFIX
from store.entities import Metric
from store.sqlite import Store

ROOT = str(Path(__file__).resolve().parents[2])
RANGE = "from -9223372036854775808 to 9223372036854775807"

# -- links ---------------------------------------------------------------------------------


@pytest.fixture
def linked(store: Store, tmp_path: Path) -> dict[str, object]:
    """A run whose artifact folder holds its own file plus links out of it of every kind."""
    client = autolog.Client()
    rid = store.create_run(run_name="linked").info.run_id
    other = store.create_run(run_name="other").info.run_id
    client.log_text(rid, "mine", "own/mine.txt")
    client.log_text(other, "another run's file", "theirs.txt")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    base = store.run_artifact_base(rid)
    os.symlink(outside, base / "folder-out")
    os.symlink(outside / "secret.txt", base / "file-out.txt")
    os.symlink(store.run_artifact_base(other), base / "other-run")
    os.symlink("/etc", base / "etc")
    os.symlink(base / "own", base / "own-alias")  # stays inside the run: usable by its path
    return {"client": client, "rid": rid, "base": base, "outside": outside}


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def test_downloading_a_run_copies_no_link(linked: dict, tmp_path: Path) -> None:
    client, rid = linked["client"], linked["rid"]
    out = Path(client.download_artifacts(rid, "", str(tmp_path / "dl")))
    assert _files(out) == {"own/mine.txt": "mine"}
    assert [(f.path, f.is_dir) for f in client.list_artifacts(rid)] == [("own", True)]


@pytest.mark.parametrize(
    "path",
    ["folder-out", "folder-out/secret.txt", "file-out.txt", "other-run", "other-run/theirs.txt"]
    + ["etc", "etc/passwd"],
)
def test_a_path_through_a_link_out_of_the_run_is_refused(
    linked: dict, store: Store, tmp_path: Path, path: str
) -> None:
    client, rid = linked["client"], linked["rid"]
    with pytest.raises(ArtifactPathError, match="outside this run's artifact folder"):
        client.download_artifacts(rid, path, str(tmp_path / "dl"))
    with pytest.raises(ArtifactPathError, match="outside this run's artifact folder"):
        client.list_artifacts(rid, path)
    assert not (tmp_path / "dl").exists() or list((tmp_path / "dl").iterdir()) == []
    with pytest.raises(ArtifactPathError):  # the UI refuses it as before
        ui_data.artifact_file(store, rid, path)
    with pytest.raises(ArtifactPathError):  # and no write goes through it
        store.write_artifact_bytes(rid, f"{path}/x.txt", b"x")
    assert sorted(p.name for p in linked["outside"].iterdir()) == ["secret.txt"]


def test_a_link_inside_the_run_is_followed_by_path_only(
    linked: dict, store: Store, tmp_path: Path
) -> None:
    client, rid = linked["client"], linked["rid"]
    got = Path(client.download_artifacts(rid, "own-alias/mine.txt", str(tmp_path / "dl")))
    assert got.read_text() == "mine"
    assert [f.path for f in client.list_artifacts(rid, "own-alias")] == ["own-alias/mine.txt"]
    assert ui_data.artifact_file(store, rid, "own-alias/mine.txt").read_text() == "mine"
    # the UI's tree lists neither links nor partial writes
    (linked["base"] / "own" / f"{TEMP_PREFIX}0123.txt").write_text("half")
    assert ui_data.artifact_tree(store, rid) == [
        {
            "name": "own",
            "path": "own",
            "is_dir": True,
            "children": [
                {"name": "mine.txt", "path": "own/mine.txt", "is_dir": False, "file_size": 4}
            ],
        }
    ]
    assert [f.path for f in client.list_artifacts(rid, "own")] == ["own/mine.txt"]


def test_log_artifacts_writes_no_file_through_a_link(store: Store, tmp_path: Path) -> None:
    rid = store.create_run().info.run_id
    outside = tmp_path / "outside"
    outside.mkdir()
    base = store.run_artifact_base(rid)
    base.mkdir(parents=True)
    os.symlink(outside, base / "sub")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "top.txt").write_text("t")
    (src / "sub" / "deep.txt").write_text("d")
    with pytest.raises(ArtifactPathError, match="outside this run's artifact folder"):
        autolog.Client().log_artifacts(rid, src)
    assert list(outside.iterdir()) == []
    os.unlink(base / "sub")
    autolog.Client().log_artifacts(rid, src, "copy")
    assert _files(base / "copy") == {"sub/deep.txt": "d", "top.txt": "t"}


# -- values SQLite cannot store --------------------------------------------------------------


def test_out_of_range_and_non_integer_steps_and_timestamps_are_named() -> None:
    with autolog.start_run() as run:
        for kwargs, shown in [
            ({"step": 2**63}, "step 9223372036854775808"),
            ({"step": -(2**63) - 1}, "step -9223372036854775809"),
            ({"timestamp": 2**63}, "timestamp 9223372036854775808"),
            ({"timestamp": "x"}, "timestamp 'x'"),
            ({"step": float("nan")}, "step nan"),
        ]:
            with pytest.raises(InvalidValueError, match=f"'m' got {shown}.*integer {RANGE}"):
                autolog.log_metric("m", 1.0, **kwargs)
            with pytest.raises(InvalidValueError, match=f"got {shown}"):
                autolog.log_metrics({"ok": 1.0, "m": 2.0}, **kwargs)
        autolog.log_metric("m", 1.0, step=2**63 - 1, timestamp=-(2**63))
        with pytest.raises(InvalidValueError, match=r"value 1000.*\(401 characters\), beyond"):
            autolog.log_metric("m", 10**400)
    rid = run.info.run_id
    assert autolog.get_metric_history(rid, "m") == [Metric("m", 1.0, -(2**63), 2**63 - 1)]
    assert autolog.get_run(rid).data.metrics == {"m": 1.0}  # "ok" of the failed calls: none


def test_a_fast_path_batch_out_of_range_writes_nothing_and_names_the_point(store: Store) -> None:
    rid = store.create_run().info.run_id
    points = [("a", 1.0, 5, 0), ("b", 2.0, 5, 2**63)]
    with pytest.raises(InvalidValueError, match="'b' got step 9223372036854775808"):
        autolog.Client().log_batch(rid, metrics=points)  # type: ignore[arg-type]
    assert store.get_run(rid).data.metrics == {}


@pytest.mark.parametrize(
    "call, named, pos",
    [
        (lambda: autolog.log_metric("lo\ud800ss", 1.0), "metric key 'lo\\ud800ss'", 2),
        (lambda: autolog.log_param("p\udc80", 1), "param key 'p\\udc80'", 1),
        (lambda: autolog.log_param("p", "v\udc80"), "value 'v\\udc80' of param 'p'", 1),
        (lambda: autolog.set_tag("t\ud800", "v"), "tag key 't\\ud800'", 1),
        (lambda: autolog.set_tag("t", "\ud800"), "value '\\ud800' of tag 't'", 0),
        (lambda: autolog.log_params({"ok": 1, "p": "\ud800"}), "value '\\ud800' of param 'p'", 0),
        (lambda: autolog.set_tags({"ok": 1, "t": "x\ud800"}), "value 'x\\ud800' of tag 't'", 1),
    ],
)
def test_lone_surrogates_are_named_and_nothing_of_the_call_is_written(
    call, named: str, pos: int
) -> None:
    with autolog.start_run() as run:
        message = re.escape(f"The {named} holds a lone surrogate ") + r"'\\ud[89a-f][0-9a-f]{2}'"
        with pytest.raises(InvalidValueError, match=message + f" at position {pos}, which"):
            call()
    data = autolog.get_run(run.info.run_id).data
    assert (data.metrics, data.params) == ({}, {})
    assert [k for k in data.tags if not k.startswith(("autolog.", "mlflow."))] == []


def test_a_run_name_with_a_lone_surrogate_gets_a_clear_error(store: Store) -> None:
    with pytest.raises(InvalidValueError, match="cannot be stored.*surrogates"):
        store.create_run(run_name="r\ud800")
    assert store.search_runs() == []


def test_the_batcher_refuses_bad_points_on_the_callers_thread_and_keeps_the_good() -> None:
    with autolog.start_run() as run:
        b = batching.MetricBatcher(run.info.run_id, max_points=10**6, max_delay_s=10**6)
        b.record("m", 0.5, step=0)
        with pytest.raises(InvalidValueError, match="'m' got step 9223372036854775808"):
            b.record("m", 0.5, step=2**63)
        with pytest.raises(InvalidValueError, match="'m' got value 'x'"):
            b.record("m", "x", step=1)  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="timestamp 'soon'"):
            b.record("m", 0.5, step=1, timestamp="soon")  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="metric key 'b\\\\ud800'"):
            b.record_many({"a": 1.0, "b\ud800": 2.0, "c": 3}, step=1)
        with pytest.raises(InvalidValueError, match="'s' got step -9223372036854775809"):
            b.record_series("s", [0, -(2**63) - 1, 2], [1.0, 2.0, 3.0])
        b.record("m", 0.75, step=3)
        b.flush()  # the writer had nothing to fail on
    rid = run.info.run_id
    hist = {k: [(p.step, p.value) for p in autolog.get_metric_history(rid, k)] for k in "amcs"}
    assert hist == {
        "a": [(1, 1.0)],
        "m": [(0, 0.5), (3, 0.75)],
        "c": [(1, 3.0)],
        "s": [(0, 1.0), (2, 3.0)],
    }


# -- killed runs ---------------------------------------------------------------------------

_SLEEPER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    import autolog
    autolog.set_tracking_uri({uri!r})
    print(autolog.start_run().info.run_id, flush=True)
    time.sleep(60)
    """
)


def test_a_killed_run_reads_killed_at_once(store: Store, tracking_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLEEPER.format(root=ROOT, uri=str(tracking_dir))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    rid = proc.stdout.readline().strip()
    with autolog.start_run() as mine:
        assert store.get_run(rid).info.status == "RUNNING"
        store.reap_dead_runs(force=True)  # the every-2-s sweep has just run: it will not again
        proc.kill()
        proc.wait()
        info = store.get_run(rid).info
        assert (info.status, info.end_time is not None) == ("KILLED", True)
        assert store.get_run(mine.info.run_id).info.status == "RUNNING"  # this process lives
    assert store.conn.execute("SELECT status FROM runs WHERE run_id = ?", [rid]).fetchone() == (
        "KILLED",
    )


# -- 20 random SIGKILLs during logging -------------------------------------------------------

SLOTS = 8  # artifacts are rewritten in 8 slots: a kill lands in a rewrite, disk use stays small

_VICTIM = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    import autolog
    from autolog.batching import batcher_for

    def said(line):  # unbuffered: a line written before the kill reaches the parent
        os.write(1, (line + "\\n").encode())

    autolog.set_tracking_uri({uri!r})
    rid = autolog.start_run(run_name="victim").info.run_id
    batcher = batcher_for(rid)
    said("run " + rid)
    i = 0
    while True:
        autolog.log_metric("m", float(i), step=i)
        said(f"m {{i}}")
        autolog.log_param(f"p{{i}}", i)
        said(f"p {{i}}")
        batcher.record("b", float(i), step=i)
        batcher.record_many({{"c": i / 2, "d": -i}}, step=i)
        batcher.flush()
        said(f"b {{i}}")
        autolog.log_text(f"{{i:07d}}\\n" * 20_000, f"texts/t{{i % {slots}}}.txt")
        said(f"t {{i}}")
        autolog.log_artifact({blob!r}, f"blobs/{{i % {slots}}}")
        said(f"a {{i}}")
        i += 1
    """
)


def _said(lines: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {k: [] for k in "mpbta"}
    for line in lines:
        kind, _, number = line.partition(" ")
        if kind in out:
            out[kind].append(int(number))
    return out


def _listed(store: Store, rid: str, path: str = "") -> list[str]:
    out = []
    for f in store.list_artifacts(rid, path):
        out += _listed(store, rid, f.path) if f.is_dir else [f.path]
    return out


def _check_victim(store: Store, rid: str, said: dict[str, list[int]], blob: bytes, tmp: Path):
    """Everything the victim said was committed is there, and no file is half-written."""
    run = store.get_run(rid)  # the first read of this run since the kill
    assert run.info.status == "KILLED"
    steps = {k: [p.step for p in store.get_metric_history(rid, k)] for k in "mbcd"}
    for key, said_key in (("m", "m"), ("b", "b"), ("c", "b"), ("d", "b")):
        assert steps[key] == list(range(len(steps[key])))  # every point once, in order
        assert set(said[said_key]) <= set(steps[key]), key
    params = {int(k[1:]) for k in run.data.params}
    assert set(said["p"]) <= params == set(range(len(params)))
    out = store.download_artifacts(rid, "", tmp / rid)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == sorted(_listed(store, rid))
    assert {f"texts/t{i % SLOTS}.txt" for i in said["t"]} <= set(files)
    assert {f"blobs/{i % SLOTS}/blob.bin" for i in said["a"]} <= set(files)
    for f in files:
        data = (out / f).read_bytes()
        if f.startswith("blobs/"):
            assert f in [f"blobs/{j}/blob.bin" for j in range(SLOTS)] and data == blob, f
            continue
        slot = int(f[len("texts/t") : -len(".txt")])
        i = int(data[:7])  # the whole file is the last complete write of this slot
        assert f == f"texts/t{slot}.txt" and i % SLOTS == slot, f
        assert data == f"{i:07d}\n".encode() * 20_000, f
        assert i >= max([j for j in said["t"] if j % SLOTS == slot], default=-1), f


def test_twenty_random_sigkills_lose_nothing_committed(
    store: Store, tracking_dir: Path, tmp_path: Path
) -> None:
    blob = os.urandom(1 << 18)
    (tmp_path / "blob.bin").write_bytes(blob)
    script = _VICTIM.format(
        root=ROOT, uri=str(tracking_dir), blob=str(tmp_path / "blob.bin"), slots=SLOTS
    )
    rng = random.Random(16)
    started = time.monotonic()
    for _ in range(10):  # two victims at a time, each killed at its own random moment
        procs = [
            subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
            for _ in range(2)
        ]
        rids, heard = [], []
        for proc in procs:
            assert proc.stdout is not None
            rids.append(proc.stdout.readline().decode().split()[1])
        for proc in procs:
            assert proc.stdout is not None
            # a loaded machine may start a victim slowly: the kill comes at a random moment
            # after its first whole round, not at a random moment after it started
            lines = [proc.stdout.readline().decode().strip()]
            while lines[-1] not in ("a 0", ""):
                lines.append(proc.stdout.readline().decode().strip())
            heard.append(lines)
            time.sleep(rng.uniform(0.02, 0.4))
            store.reap_dead_runs(force=True)  # the periodic sweep is not what marks it KILLED
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        for proc, rid, lines in zip(procs, rids, heard):
            assert proc.stdout is not None
            said = _said(lines + proc.stdout.read().decode().splitlines())
            assert said["a"], "the victim was killed before it logged a whole round"
            _check_victim(store, rid, said, blob, tmp_path / "out")
    assert store.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert time.monotonic() - started < 60

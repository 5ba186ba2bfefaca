"""Worker processes started inside a fit create no runs; a user's own child process logs its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from core import fakes

TESTS = str(Path(__file__).resolve().parents[1])


def _run(tmp_path: Path, body: str) -> list[dict]:
    code = fakes.PRELUDE.format(tests=TESTS, folder=str(tmp_path), store=str(tmp_path / "s"))
    code += textwrap.dedent(body)
    code += textwrap.dedent(
        """
        import json
        runs = autolog.search_runs(output_format="list", order_by=["start_time"])
        print(json.dumps([{"n": r.data.params.get("n"), "pid": r.info.pid} for r in runs]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["loky", "multiprocessing", "threading"])
def test_joblib_workers_inside_a_fit_create_no_runs(tmp_path: Path, backend: str) -> None:
    runs = _run(
        tmp_path,
        f"""
        import fakelib, joblib
        autolog.autolog()

        def work(i):
            import fakelib
            return fakelib.Model().fit([0] * i).fitted_

        class Parallel(fakelib.Model):
            def fit(self, X, y=None, **kwargs):
                out = joblib.Parallel(n_jobs=2, backend={backend!r})(
                    joblib.delayed(work)(i) for i in range(1, 5)
                )
                assert out == [1, 2, 3, 4]
                return super().fit(X, y, **kwargs)

        import autolog_fakelib as integ
        from autolog import patching
        patching.safe_patch("fakelib", Parallel, "fit", integ._patched_fit)
        if __name__ == "__main__":
            Parallel().fit([1, 2, 3])
        """,
    )
    assert [r["n"] for r in runs] == ["3"]


def test_fork_pool_inside_a_fit_creates_no_runs(tmp_path: Path) -> None:
    runs = _run(
        tmp_path,
        """
        import fakelib, multiprocessing as mp
        autolog.autolog()

        def work(i):
            return fakelib.Model().fit([0] * i).fitted_

        class Forking(fakelib.Model):
            def fit(self, X, y=None, **kwargs):
                with mp.get_context("fork").Pool(2) as pool:
                    assert pool.map(work, [1, 2, 3]) == [1, 2, 3]
                return super().fit(X, y, **kwargs)

        import autolog_fakelib as integ
        from autolog import patching
        patching.safe_patch("fakelib", Forking, "fit", integ._patched_fit)
        Forking().fit([1, 2])
        """,
    )
    assert [r["n"] for r in runs] == ["2"]


def test_a_child_process_started_by_the_user_logs_its_own_run(tmp_path: Path) -> None:
    runs = _run(
        tmp_path,
        """
        import fakelib, multiprocessing as mp, os
        autolog.autolog()

        def child():
            fakelib.Model().fit([0] * 5)

        fakelib.Model().fit([1])
        p = mp.get_context("fork").Process(target=child)
        p.start(); p.join()
        assert p.exitcode == 0
        """,
    )
    assert sorted(r["n"] for r in runs) == ["1", "5"]
    assert runs[0]["pid"] != runs[1]["pid"]

"""autolog() and the library may come in any order; each fit logs exactly once (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from core import fakes

TESTS = str(Path(__file__).resolve().parents[1])

SCENARIOS = {
    "autolog_before_import": """
        autolog.autolog()
        import fakelib
        fakelib.Model().fit([1])
    """,
    "autolog_after_import": """
        import fakelib
        autolog.autolog()
        fakelib.Model().fit([1])
    """,
    "from_import": """
        autolog.autolog()
        from fakelib import Model
        Model().fit([1])
    """,
    "importlib_import_module": """
        autolog.autolog()
        import importlib
        importlib.import_module("fakelib").Model().fit([1])
    """,
    "per_library_before_universal": """
        import autolog_fakelib as integ
        integ.autolog(own_flag="lib")
        autolog.autolog()
        import fakelib
        fakelib.Model().fit([1])
    """,
    "per_library_after_universal": """
        autolog.autolog()
        import fakelib
        import autolog_fakelib as integ
        integ.autolog(own_flag="lib")
        fakelib.Model().fit([1])
    """,
    "enable_disable_enable": """
        autolog.autolog()
        import fakelib
        fakelib.Model().fit([1])
        autolog.autolog(disable=True)
        fakelib.Model().fit([1])
        autolog.autolog()
        fakelib.Model().fit([1])
    """,
    "twice": """
        autolog.autolog()
        autolog.autolog()
        import fakelib
        fakelib.Sub().fit([1])
    """,
}
EXPECTED = {
    "per_library_before_universal": ["lib"],
    "per_library_after_universal": ["lib"],
    "enable_disable_enable": ["default", "default"],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_import_order_matrix(name: str, tmp_path: Path) -> None:
    code = fakes.PRELUDE.format(tests=TESTS, folder=str(tmp_path), store=str(tmp_path / "s"))
    code += textwrap.dedent(SCENARIOS[name])
    code += textwrap.dedent(
        """
        import json
        runs = autolog.search_runs(output_format="list", order_by=["start_time"])
        print(json.dumps([r.data.params["own_flag"] for r in runs]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == EXPECTED.get(name, ["default"])


def test_import_autolog_and_autolog_import_no_ml_library() -> None:
    code = textwrap.dedent(
        """
        import sys
        import autolog
        after_import = sorted(sys.modules)
        autolog.autolog()
        import autolog.pyfunc
        heavy = ["numpy", "pandas", "sklearn", "xgboost", "lightgbm", "statsmodels", "torch",
                 "scipy", "sqlite_utils", "matplotlib", "pyspark", "pyarrow"]
        print([m for m in heavy if m in sys.modules])
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_local_store_opens_without_the_optional_postgresql_driver(tmp_path: Path) -> None:
    """psycopg is optional (the PostgreSQL backend's extra): a project's or a served model's
    virtualenv without it opened no store at all once a module-level import of it crept in."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["psycopg"] = None  # as if not installed: importing it raises
        import autolog
        autolog.set_tracking_uri({str(tmp_path / "runs")!r})
        autolog.log_metric("ok", 1.0)
        print(autolog.last_active_run().data.metrics)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'ok': 1.0}"

"""Every integration's contract (autolog.testing.check_contract, in tests/integrations) once more,
with the tracking URI a real ``autolog server`` on a loopback port.

The contract tests run in one pytest subprocess with ``AUTOLOG_TEST_BACKEND=rest``, which makes
tests/conftest.py point each test at the shared server of the store contract suite
(autolog.server.testing.shared_server: one server, a fresh store behind it per test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = {  # integration (its entry point's name) -> its contract test
    "sklearn": "tests/integrations/test_sklearn_contract.py::test_contract[sqlite]",
    "xgboost": "tests/integrations/test_xgboost.py::test_contract[sqlite]",
    "lightgbm": "tests/integrations/test_lightgbm.py::test_contract[sqlite]",
    "statsmodels": "tests/integrations/test_statsmodels.py::test_contract[sqlite]",
    "torch": "tests/integrations/test_torch.py::test_contract[sqlite]",
    "lightning": "tests/integrations/test_lightning.py::test_contract[sqlite]",
    "keras": "tests/integrations/test_keras.py::test_contract[sqlite]",
    "fastai": "tests/integrations/test_fastai.py::test_contract[sqlite]",
    "pyspark": "tests/integrations/test_spark.py::test_contract[sqlite]",
}


def test_every_registered_integration_has_a_contract_run_here() -> None:
    from importlib.metadata import entry_points

    registered = {ep.name for ep in entry_points(group="autolog.integrations")}
    assert registered <= set(CONTRACTS), registered - set(CONTRACTS)


def test_every_integration_contract_passes_against_a_server() -> None:
    env = {**os.environ, "AUTOLOG_TEST_BACKEND": "rest", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *CONTRACTS.values()],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{len(CONTRACTS)} passed"), summary

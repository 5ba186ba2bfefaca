"""Benchmark scenarios, one module per library (``sklearn.py``, ``xgboost.py``, ...).

Each module defines ``SCENARIOS: dict[str, Callable[[bool], Callable[[], object]]]``: a name
mapped to a factory. ``factory(small)`` prepares data (``small=True``: tiny sizes for the CI
smoke test) and returns a zero-argument ``run()`` that performs ONE training. The module imports
only its ML library, never autolog: the same file also runs under ``mlflow.autolog()`` in the
MLflow virtual environment.

Optional: ``BUDGETS: dict[str, dict]`` per scenario name, ``{"max_ratio": 1.05}`` or
``{"max_added_ms": 30}``, overriding the default budget of DESIGN.md section 6.
"""

# Every target installs what it needs into .venv first; a fresh machine needs only `make demo` or `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench bench-smoke ui clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q --config-settings editable_mode=compat -e ".[dev]"
	# fastai pulls torchvision, whose wheel for torch 2.13 is built for CUDA torch and fails to
	# import on the CPU build (`operator torchvision::nms does not exist`), breaking Lightning's
	# import too; nothing here needs torchvision (fastai tabular does not), so it goes.
	$(BIN)/python -c "import torchvision" 2>/dev/null || $(BIN)/pip uninstall -q -y torchvision
	touch $(STAMP)

# MLflow in a venv of its own, only for tests/interop (MLflow is never a dependency of autolog),
# with the same versions as .venv of the libraries whose files cross between the two. Full mlflow
# (not mlflow-skinny): tests/interop/test_server_interop.py runs `mlflow server`.
MLFLOW_VENV := .mlflow-venv
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed
MLFLOW_VERSION := 3.17.2
SHARED_PINS = $(BIN)/python -c "from importlib.metadata import version as v; print(' '.join(d + '==' + v(d) for d in ('scikit-learn', 'numpy', 'pandas', 'scipy', 'cloudpickle', 'skops')))"

# psycopg2-binary and boto3: `mlflow server` over PostgreSQL + S3 (benchmarks/server_load_pg.py).
$(MLFLOW_STAMP): $(STAMP)
	rm -rf $(MLFLOW_VENV)
	$(PY) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install -q mlflow==$(MLFLOW_VERSION) psycopg2-binary boto3 $$($(SHARED_PINS))
	touch $(MLFLOW_STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check autolog integrations store tests benchmarks examples
	$(BIN)/ruff format --check autolog integrations store tests benchmarks examples
	$(BIN)/mypy

test: $(STAMP) lint $(MLFLOW_STAMP)
	AUTOLOG_TESTING=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile tests

# The full report (benchmarks/REPORT.md, results.json, overhead.png; ~20 min). The harness adds
# full mlflow 3.17.x and the ML libraries at .venv's versions to .mlflow-venv for its MLflow side.
bench: $(STAMP) $(MLFLOW_STAMP)
	$(BIN)/python -m benchmarks

# One repeat, small sizes, no MLflow, report written to a scratch folder (what CI's test runs).
bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --smoke --out $${TMPDIR:-/tmp}/autolog-bench-smoke

ui: $(STAMP)
	$(BIN)/autolog ui

clean:
	rm -rf $(VENV) .mlflow-venv autolog-runs

"""One fresh store per test (in tmp_path); autolog fully disabled again after each test."""

from __future__ import annotations

import os

os.environ["AUTOLOG_TESTING"] = "1"
# Runs started by tests do not read the repository's git state (tests/test_tracking.py checks it).
os.environ["AUTOLOG_DISABLE_GIT"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

pytest_plugins = ["services"]  # real PostgreSQL and S3 servers, started when a test asks

import autolog  # noqa: E402
from autolog import patching, tracking  # noqa: E402


@pytest.fixture(autouse=True)
def tracking_dir(tmp_path, monkeypatch, store_backend):
    """A fresh tracking folder for the test; the store is tracking._store() (a folder store, or
    PostgreSQL + S3 for contract-kit tests: store_backend in tests/services.py)."""
    monkeypatch.delenv("AUTOLOG_TRACKING_URI", raising=False)
    monkeypatch.delenv("AUTOLOG_EXPERIMENT_NAME", raising=False)
    # CLI tables fit $COLUMNS when set; a library imported by an earlier test may have set it
    monkeypatch.delenv("COLUMNS", raising=False)
    # each test sees its own first warning: an earlier test's failure must not rate-limit it
    monkeypatch.setattr(patching, "_last_warning", {})
    monkeypatch.setattr(patching, "_suppressed", {})
    folder = tmp_path / "autolog-runs"
    # tests/server/test_integrations_over_rest.py: the same tests against a real server
    if os.environ.get("AUTOLOG_TEST_BACKEND") == "rest":
        from autolog.server.testing import shared_server

        autolog.set_tracking_uri(shared_server(tmp_path))
    else:
        autolog.set_tracking_uri(store_backend(folder))
    yield folder
    while tracking.active_run() is not None:
        tracking.end_run()
    import sys

    if "autolog.batching" in sys.modules:  # work deferred by this test lands (or fails) here
        sys.modules["autolog.batching"].flush_deferred()

    if "autolog.integration" in sys.modules:
        sys.modules["autolog.integration"].autolog(disable=True)
    tracking._tracking_uri = None
    tracking._experiment_id = None
    tracking._last_active_run_id = None


@pytest.fixture
def sent_requests():
    """Every request the REST client sends from now on: (thread name, method, path)."""
    from autolog.server.testing import watch_requests

    sent = []
    stop = watch_requests(sent)
    yield sent
    stop()


@pytest.fixture
def store(tracking_dir):
    """The Store behind the fluent API for this test."""
    return tracking._store()

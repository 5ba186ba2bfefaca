"""Fixtures of the UI tests: the demo store (ui/demo.py) and a TestClient on the app."""

from __future__ import annotations

import copy
import shutil

import pytest
from ui.demo import BASE_URL, HOST, PORT, Demo, populate

from autolog.ui import create_app


def pytest_configure(config):
    # Starlette's TestClient announces its move from httpx to httpx2; nothing to act on here.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory):
    """The demo store built once (models, figures and the registry take seconds) and copied."""
    from autolog import tracking

    folder = tmp_path_factory.mktemp("ui-demo") / "autolog-runs"
    saved = tracking._tracking_uri, tracking._experiment_id
    tracking.set_tracking_uri(str(folder))
    try:
        store = tracking._store()
        made = populate(store)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
    finally:
        tracking._stores.pop(tracking.get_tracking_uri(), None)
        tracking._tracking_uri, tracking._experiment_id = saved
    return folder, made


@pytest.fixture
def demo(demo_template, store) -> Demo:
    """This test's store holds a fresh copy of the demo store."""
    folder, made = demo_template
    shutil.copytree(folder, store.db_path.parent, dirs_exist_ok=True)
    return copy.deepcopy(made)


@pytest.fixture
def client(store):
    from starlette.testclient import TestClient

    app = create_app(store, host=HOST, port=PORT)
    with TestClient(app, base_url=BASE_URL) as c:
        yield c

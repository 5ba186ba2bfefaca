"""Fixtures shared by the server tests."""

from __future__ import annotations

import threading
from typing import Any

import pytest


@pytest.fixture
def sent_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Every request the REST client sends from now on: (thread name, method, path)."""
    from store import rest_http

    sent: list[tuple[str, str, str]] = []
    request = rest_http.Http.request

    def counted(self: Any, method: str, path: str, *args: Any, **kw: Any) -> Any:
        sent.append((threading.current_thread().name.split()[0], method, path))
        return request(self, method, path, *args, **kw)

    monkeypatch.setattr(rest_http.Http, "request", counted)
    return sent

"""HTTP for the REST store: one httpx client, credentials, timeouts, retries with backoff.

Retried: connection failures (the request never reached the server) always; 429 and 502/503/504
answers and broken connections after sending only for calls that are safe to repeat (reads,
and writes the server deduplicates, such as log-batch with its idempotency key). After a call
gives up on an unreachable server, calls for the next ``DOWN_FOR_S`` seconds try once without
waiting, so a training loop with the server gone is not slowed down by every call's retries.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from store import rest_json
from store.errors import StoreError

DOWN_FOR_S = 30.0
_RETRY_STATUS = {429, 502, 503, 504}


class ServerUnreachableError(StoreError):
    """The tracking server did not answer; the message names its URL."""


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise StoreError(f"{name}={raw!r} is not a number; give seconds, e.g. {default}.")


def credentials(url: str) -> tuple[str, dict[str, str], tuple[str, str] | None]:
    """(URL without userinfo, headers, basic auth) from the URL and the environment."""
    parts = urlsplit(url)
    basic = None
    if parts.username:
        basic = (parts.username, parts.password or "")
        host = parts.hostname or ""
        parts = parts._replace(netloc=host + (f":{parts.port}" if parts.port else ""))
    token = os.environ.get("AUTOLOG_TRACKING_TOKEN") or os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = os.environ.get("AUTOLOG_TRACKING_USERNAME") or os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("AUTOLOG_TRACKING_PASSWORD") or os.environ.get(
        "MLFLOW_TRACKING_PASSWORD"
    )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if basic is None and user:
        basic = (user, password or "")
    return urlunsplit(parts).rstrip("/"), headers, basic


class Http:
    """Calls to one server; thread-safe (httpx's client is)."""

    def __init__(self, url: str):
        self.url, headers, basic = credentials(url)
        self.timeout = _env_float("AUTOLOG_HTTP_REQUEST_TIMEOUT", 30.0)
        self.retries = int(_env_float("AUTOLOG_HTTP_REQUEST_MAX_RETRIES", 7))
        self.backoff = _env_float("AUTOLOG_HTTP_REQUEST_BACKOFF_FACTOR", 0.2)
        self._client = httpx.Client(
            base_url=self.url,
            headers={"User-Agent": "autolog", **headers},
            auth=basic,
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.before: Callable[[str], None] | None = None  # called with the path of each request

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Any = None,
        content: Any = None,
        safe: bool = True,
        stream: bool = False,
        finite: bool = False,
    ) -> httpx.Response:
        """The response of a call (any status); raises ServerUnreachableError after retries.

        :param finite: every float in body is finite, so the fast encoder may write it.
        """
        if self.before is not None:
            self.before(path)
        if body is None:
            data = content
        elif finite:
            data = rest_json.dumps_finite(body)
        else:
            data = json.dumps(body, default=str, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"} if body is not None else None
        tries = 1 if time.monotonic() < self._down_until else self.retries + 1
        last: Any = None
        for attempt in range(tries):
            if attempt:
                time.sleep(min(4.0, self.backoff * 2 ** (attempt - 1)))
            if hasattr(data, "seek"):
                data.seek(0)
            try:
                req = self._client.build_request(
                    method, path, content=data, params=params, headers=headers
                )
                resp = self._client.send(req, stream=stream)
            except httpx.TransportError as exc:
                last = exc
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if sent and not safe:
                    break
                continue
            if resp.status_code in _RETRY_STATUS and (safe or resp.status_code == 429):
                last = resp
                resp.close()
                continue
            self._down_until = 0.0
            return resp
        if isinstance(last, httpx.Response):
            return last
        self._down_until = time.monotonic() + DOWN_FOR_S
        raise ServerUnreachableError(
            f"The tracking server at {self.url} is unreachable ({type(last).__name__}: {last}) "
            f"after {tries} attempt(s); start it (`autolog server`) or point AUTOLOG_TRACKING_URI "
            "at a running one."
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Any = None,
        safe: bool = True,
        finite: bool = False,
    ) -> dict[str, Any]:
        """The JSON answer of an API call; an error answer raises the store exception it names."""
        resp = self.request(method, path, body=body, params=params, safe=safe, finite=finite)
        return answer(resp, self.url)


def answer(resp: httpx.Response, url: str) -> dict[str, Any]:
    try:
        payload = resp.json() if resp.content else {}
    except ValueError:
        payload = None
    if resp.status_code >= 400:
        if not isinstance(payload, dict):
            payload = {
                "message": f"HTTP {resp.status_code} from {url}{resp.request.url.path}: "
                f"{resp.text[:200]!r}"
            }
        raise rest_json.exception_for(payload, resp.status_code)
    if not isinstance(payload, dict):
        raise StoreError(f"The tracking server at {url} answered {resp.text[:200]!r}, not JSON.")
    return payload

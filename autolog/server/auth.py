"""Credentials for a shared server: HTTP Basic (users with scrypt-hashed passwords) and Bearer
tokens (random, stored as SHA-256), each user with a role: read, write or admin.

Every request but ``/health`` needs credentials (401 without, with a Basic challenge so
browsers ask); a read-only user's write gets 403. A verified credential is remembered for
``CACHE_S`` seconds, so scrypt runs once per client and not once per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

from starlette.concurrency import run_in_threadpool

CACHE_S = 30.0
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_RANK = {"read": 0, "write": 1, "admin": 2}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    try:
        kind, n, r, p, salt, digest = (stored or "").split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got.hex(), digest)


def new_token() -> str:
    return "alt_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Authenticator:
    """Checks an Authorization header against the users and tokens in the store."""

    def __init__(self, store: Any):
        self.store = store
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def role(self, header: str) -> str | None:
        """The role the header's credentials carry, or None when they are not valid."""
        key = hashlib.sha256(header.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        role = self._verify(header)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + CACHE_S, role)
        return role

    def _verify(self, header: str) -> str | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            user = self.store.user_for_token(hash_token(value.strip()))
            return None if user is None else user["role"]
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            user = self.store.get_user(name)
            if user is not None and check_password(password, user["password_hash"]):
                return str(user["role"])
        return None


class AuthMiddleware:
    """ASGI middleware: credentials on every request, write access for writes."""

    def __init__(self, app: Any, authenticator: Authenticator, writes: dict[tuple[str, str], bool]):
        self.app = app
        self.auth = authenticator
        self.writes = writes

    def _needs(self, method: str, path: str) -> str:
        known = self.writes.get((method, path))
        if known is not None:
            return "write" if known else "read"
        if path.startswith("/api/2.0/autolog/testing/"):
            return "admin"
        return "read" if method in ("GET", "HEAD", "OPTIONS") else "write"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        header = headers.get(b"authorization", b"").decode("latin-1")
        role = await run_in_threadpool(self.auth.role, header) if header else None
        if role is None:
            await _deny(send, 401, "UNAUTHENTICATED",
                        "Credentials are missing or invalid: send a Bearer token "
                        "(AUTOLOG_TRACKING_TOKEN / MLFLOW_TRACKING_TOKEN) or HTTP Basic "
                        "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD).")  # fmt: skip
            return
        need = self._needs(scope["method"], scope["path"])
        if _RANK[role] < _RANK[need]:
            await _deny(send, 403, "PERMISSION_DENIED",
                        f"This user's role is {role!r}; {scope['method']} {scope['path']} needs "
                        f"{need!r} (an admin changes roles with `autolog server users`).")  # fmt: skip
            return
        await self.app(scope, receive, send)


async def _deny(send: Any, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Basic realm="autolog"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

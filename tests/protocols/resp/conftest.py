# Servers for the RESP tests: netsvc's RESP plugin through the CLI and, where
# a test compares behaviour, a real redis-server from Debian; both on loopback
# ports, both stopped after the module.
from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serveprocess import ServeProcess, host_port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def netsvc_port() -> Iterator[int]:
    with ServeProcess(["--protocol", "resp", "--port", "0"]) as server:
        yield host_port(server.urls[0])[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: ./dev test installs it (Debian package redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(
        [binary, "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.02)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def redis_server(workdir: Path, *options: str) -> Iterator[int]:
    """A real redis-server on a free loopback port with extra `options` (such as
    "--requirepass", "pw"); yields its port, stops it on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: ./dev test installs it (Debian package redis-server)")
    port = free_port()
    base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(
        [binary, "--port", str(port), *base, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)

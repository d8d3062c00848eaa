# `netsvc serve` behaviours found unchecked by mutation testing (netsvc/_cli.py).
from __future__ import annotations

import os
import subprocess
import time

import pytest
import trio

from netsvc import Connection, ConnectionLimits, Protocol, Runtime, Service, SettingError
from tests.serveprocess import NETSVC, PROBE, ROOT, ServeProcess, SyncLineClient, host_port

MESSAGE = "the backing store at 127.0.0.1:1 refused the connection"


class StartFails(Service):
    """A service that finds its settings unusable only as it starts (a plugin
    that connects to a backing service in start(), say)."""

    async def start(self, nursery: trio.Nursery) -> None:
        raise SettingError(MESSAGE)

    async def handle(self, conn: Connection) -> None:
        raise AssertionError("never served")


class StartFailsProtocol(Protocol[None, None]):
    name = "startfails"
    schemes = ("startfails",)
    default_port = 7071
    description = "a plugin whose service fails to start"

    def create_service(self, app: None, settings: None, runtime: Runtime) -> Service:
        return StartFails()


protocol = StartFailsProtocol()


class StartFailsInWorkersProtocol(StartFailsProtocol):
    name = "startfailsworkers"
    schemes = ("startfailsworkers",)
    multiprocess_safe = True


in_workers = StartFailsInWorkersProtocol()


@pytest.mark.server_errors(MESSAGE)
def test_a_setting_error_from_a_service_starting_is_a_clean_exit_1() -> None:
    # start() runs in a nursery, so trio hands the error up in an exception
    # group: it is still reported as one line, like any other startup error
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETSVC_", "PORT"))}
    result = subprocess.run(
        [NETSVC, "serve", "--protocol", f"{__name__}:protocol", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert MESSAGE in result.stderr
    assert "Traceback" not in result.stderr
    assert "ExceptionGroup" not in result.stderr


def test_an_idle_timeout_of_zero_is_no_limit() -> None:
    # as --help says: 0 (or 0.0, from NETSVC_REQUEST_TIMEOUT too) lifts the limit
    assert ConnectionLimits(idle_timeout=0, request_timeout=0.0, send_timeout=0) == (
        ConnectionLimits(idle_timeout=None, request_timeout=None, send_timeout=None)
    )
    args = ["--protocol", PROBE, "--port", "0", "--idle-timeout", "0"]
    env = {"NETSVC_REQUEST_TIMEOUT": "0.0"}
    with ServeProcess(args, listeners=0, env=env) as server:
        (url,) = server.wait_for_urls(1, timeout=30)
        with SyncLineClient(host_port(url), timeout=30) as client:
            assert client.line() == b"HELLO"
            time.sleep(2)  # were 0 taken for 0 seconds, the server would have closed it
            assert client.ask("ECHO still open") == b"still open"


def test_an_idle_timeout_of_one_second_is_one_second() -> None:
    # 0 means no limit; 1 (a whole number, as 0 is) is a limit like any other.
    # The probe's own idle timeout is 60 s.
    args = ["--protocol", PROBE, "--port", "0", "--idle-timeout", "1"]
    with ServeProcess(args, listeners=0) as server:
        (url,) = server.wait_for_urls(1, timeout=30)  # a busy machine starts it slowly
        with SyncLineClient(host_port(url), timeout=30) as client:
            assert client.line() == b"HELLO"
            started = time.monotonic()
            assert client.sock.recv(100) == b""  # closed by the server (or times out)
            assert time.monotonic() - started < 25


@pytest.mark.parametrize("value", ["70000", "http", "-1"])
def test_a_dollar_port_that_is_not_a_port_number_is_a_usage_error(value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETSVC_", "PORT"))}
    env["PORT"] = value
    result = subprocess.run(
        [NETSVC, "serve", "--protocol", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr  # click's usage error, not a crash
    assert f"$PORT is {value!r}; expected a port number (0-65535)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.server_errors(MESSAGE, "workers failed to start")
def test_a_setting_error_from_a_service_starting_in_workers_is_one_line_each() -> None:
    args = ["--protocol", f"{__name__}:in_workers", "--port", "0", "--workers", "2"]
    with ServeProcess(args, listeners=0) as server:
        assert server.wait(30) == 1
    assert MESSAGE in server.log
    assert "Traceback" not in server.log

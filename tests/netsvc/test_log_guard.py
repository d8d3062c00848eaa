# The server-log guard (netsvc.testing: the netsvc_log_guard fixture and the
# server_errors marker): how it reads a server's stderr, and whole test suites
# of its own run with pytester in a fresh pytest process, with real servers in
# process and as `netsvc serve` subprocesses, to see which tests it fails.
from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import pytest

from netsvc.testing import RunningServer, scan_log_lines, serve
from tests.serveprocess import ROOT

pytest_plugins = ["pytester"]

# A plugin for the inner suites: greets, then its handler raises on a CRASH
# line, or when the connection ends (the server stopping ends it); `broken`
# cannot start.
CRASHY = """
from netsvc import Connection, Protocol, Runtime, Service


class CrashyService(Service):
    async def handle(self, conn: Connection) -> None:
        await conn.send(b"HELLO\\n")
        data = await conn.receive()
        if data.startswith(b"CRASH"):
            raise ValueError("crashed on request")
        if not data:
            raise ValueError("crashed at the end")


class Crashy(Protocol[None, None]):
    name = "crashy"
    schemes = ("crashy",)
    default_port = 7999
    description = "raises on CRASH and at shutdown"

    def default_app(self) -> None:
        return None

    def check_app(self, app: object) -> None:
        return None

    def create_service(self, app: None, settings: None, runtime: Runtime) -> Service:
        return CrashyService()


class Broken(Crashy):
    name = "broken"
    schemes = ("broken",)

    def create_service(self, app: None, settings: None, runtime: Runtime) -> Service:
        raise RuntimeError("the broken plugin cannot start")


protocol = Crashy()
broken = Broken()


async def crash(running) -> None:
    import trio

    stream = await running.connect()
    with trio.fail_after(5):
        assert await stream.receive_some() == b"HELLO\\n"
        await stream.send_all(b"CRASH\\n")
        while await stream.receive_some():  # the handler raised: its connection closes
            pass
"""

GUARDED = """
import pytest

from netsvc.testing import ServerLogGuard


@pytest.fixture(autouse=True)
def _server_log_guard(netsvc_log_guard: ServerLogGuard) -> None:
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An inner test directory with the crashy plugin and the guard autouse."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # tests.serveprocess, for subprocess servers
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(crashy=CRASHY)
    pytester.makeconftest(GUARDED)
    return pytester


def run(pytester: pytest.Pytester, test: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=test)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)


IN_PROCESS_CRASH = """
import pytest
from crashy import crash, protocol

{marker}
async def test_crash(netsvc_server) -> None:
    await crash(await netsvc_server(protocol))
"""


def test_an_undeclared_error_fails_the_test(suite: pytest.Pytester) -> None:
    result = run(suite, IN_PROCESS_CRASH.format(marker=""))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_crash*",
            "the server logged 1 error(s) this test does not declare*",
            "[[]in-process[]] ERROR netsvc.connection: handler failed*",
            "*ValueError: crashed on request",
        ]
    )


@pytest.mark.parametrize(
    "marker",
    [
        '@pytest.mark.server_errors(r"handler failed")',  # the message
        '@pytest.mark.server_errors(r"ValueError: crashed on request")',  # its traceback
        '@pytest.mark.server_errors(r"handler failed", r"never logged", required=False)',
    ],
)
def test_a_declared_error_passes(suite: pytest.Pytester, marker: str) -> None:
    run(suite, IN_PROCESS_CRASH.format(marker=marker)).assert_outcomes(passed=1)


def test_a_declared_error_that_is_not_logged_fails_the_test(suite: pytest.Pytester) -> None:
    result = run(
        suite,
        """
import pytest
from crashy import crash, protocol


@pytest.mark.server_errors(r"handler failed", r"crashed on Tuesdays")
async def test_crash(netsvc_server) -> None:
    await crash(await netsvc_server(protocol))
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*declared with @pytest.mark.server_errors but never logged: 'crashed on Tuesdays'*",
        ]
    )
    result.stdout.no_fnmatch_line("*does not declare*")


def test_a_test_that_does_not_pass_is_not_also_told_its_declared_error_is_missing(
    suite: pytest.Pytester,
) -> None:
    result = run(
        suite,
        """
import pytest


@pytest.mark.server_errors(r"handler failed")
def test_fails_first() -> None:
    assert False


@pytest.mark.server_errors(r"handler failed")
def test_skips() -> None:
    pytest.skip("not today")
""",
    )
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.no_fnmatch_line("*never logged*")


def test_errors_logged_while_a_fixture_stops_its_server_count(suite: pytest.Pytester) -> None:
    result = run(
        suite,
        """
import pytest
import trio
from crashy import protocol
from netsvc.testing import serve


@pytest.fixture
async def running():
    async with serve(protocol) as running:
        yield running  # then shuts the server down gracefully


async def test_leaves_a_client_waiting(running) -> None:
    stream = await running.connect()
    with trio.fail_after(5):
        assert await stream.receive_some() == b"HELLO\\n"
    # the handler waits for a line; it raises when the fixture's server stops
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ValueError: crashed at the end"])


def test_a_traceback_from_a_server_subprocess_fails_the_test(suite: pytest.Pytester) -> None:
    result = run(
        suite,
        """
from pathlib import Path

import pytest
from tests.serveprocess import ServeProcess


def start_broken() -> None:
    args = ["--protocol", "crashy:broken", "--port", "0"]
    with ServeProcess(args, cwd=Path.cwd(), listeners=0) as server:
        assert server.wait(20) != 0


def test_undeclared() -> None:
    start_broken()


@pytest.mark.server_errors(r"RuntimeError: the broken plugin cannot start")
def test_declared() -> None:
    start_broken()
""",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_undeclared*",
            "[[]netsvc serve --protocol crashy:broken --port 0 (pid *)[]] TRACEBACK: "
            "*RuntimeError: the broken plugin cannot start",
        ]
    )


def test_an_error_a_module_scoped_server_logs_as_it_stops_fails_the_last_test(
    suite: pytest.Pytester,
) -> None:
    result = run(
        suite,
        """
import socket
from pathlib import Path

import pytest
from tests.serveprocess import ServeProcess, host_port


@pytest.fixture(scope="module")
def server():
    with ServeProcess(["--protocol", "crashy:protocol", "--port", "0"], cwd=Path.cwd()) as server:
        yield server


def test_one(server) -> None:
    pass


def test_two(server) -> None:
    client = socket.create_connection(host_port(server.urls[0]), timeout=5)
    assert client.recv(100) == b"HELLO\\n"
    server.client = client  # waiting when the module's server stops
""",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_two*", "*handler failed*", "*ValueError: crashed at the end"]
    )


def test_the_guard_is_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(crashy=CRASHY)
    result = run(
        pytester,
        """
import pytest
from crashy import crash, protocol


async def test_unguarded(netsvc_server) -> None:
    await crash(await netsvc_server(protocol))


@pytest.mark.server_errors(r"handler failed")
async def test_marked_but_unguarded(netsvc_server) -> None:
    await crash(await netsvc_server(protocol))


@pytest.mark.skip(reason="not today")
@pytest.mark.server_errors(r"handler failed")
def test_marked_and_skipped() -> None:
    pass
""",
    )
    result.assert_outcomes(passed=2, skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_marked_but_unguarded*", "*the server_errors marker needs the netsvc_log_guard*"]
    )


# How a server's stderr is read: netsvc's text and JSON log formats.

TEXT_ERROR = [
    "2025-01-02 03:04:05,678 INFO netsvc: netsvc 0.1.0 starting (pid 7)",
    "2025-01-02 03:04:05,679 ERROR netsvc.connection: handler failed [peer=127.0.0.1:5 conn=1]",
    "Traceback (most recent call last):",
    '  File "x.py", line 1, in handle',
    "ValueError: boom",
    "2025-01-02 03:04:05,680 WARNING netsvc.server: grace period over",
]


def test_a_text_error_record_keeps_its_traceback() -> None:
    (error,) = scan_log_lines(TEXT_ERROR, "web")
    assert (error.source, error.level, error.logger) == ("web", "ERROR", "netsvc.connection")
    assert error.message == "handler failed [peer=127.0.0.1:5 conn=1]"
    assert error.exc_text.splitlines()[0] == "Traceback (most recent call last):"
    assert error.text.endswith("ValueError: boom")


def test_json_records_at_error_or_with_a_traceback() -> None:
    lines = [
        json.dumps({"time": "t", "level": "info", "logger": "netsvc", "message": "hi"}),
        json.dumps({"level": "critical", "logger": "netsvc", "message": "down"}),
        json.dumps({"level": "warning", "logger": "x", "message": "odd", "exc": "Traceback..."}),
    ]
    errors = scan_log_lines(lines, "api")
    assert [(e.level, e.message, e.exc_text) for e in errors] == [
        ("CRITICAL", "down", ""),
        ("WARNING", "odd", "Traceback..."),
    ]


def test_a_traceback_printed_on_its_own_is_an_error() -> None:
    lines = [
        TEXT_ERROR[0],
        "Exception in the supervisor:",
        "  + Exception Group Traceback (most recent call last):",
        "  |   File ...",
        "  | RuntimeError: no",
        "  +------------------------------------",
    ]
    (error,) = scan_log_lines(lines, "cli")
    assert (error.level, error.logger, error.message) == ("TRACEBACK", "", "RuntimeError: no")
    assert error.exc_text.startswith("  + Exception Group Traceback")


def test_info_and_warning_lines_are_not_errors() -> None:
    assert scan_log_lines([TEXT_ERROR[0], TEXT_ERROR[-1], "Usage: netsvc serve"], "cli") == []


async def test_running_server_host_and_port(tmp_path: Path) -> None:
    async with serve("echo") as running:
        assert running.host == "127.0.0.1"
        assert running.port is not None and running.url.endswith(f":{running.port}")
    unix = RunningServer(f"echo+unix://{tmp_path}/s.sock", running.server)
    assert unix.host is None and unix.port is None


def test_the_netsvc_server_fixture_shuts_its_servers_down_gracefully(
    suite: pytest.Pytester,
) -> None:
    # a client connected at the end of the test gets the plugin's shutdown
    # goodbye (the probe's BYE) and a clean EOF, not a cancelled connection
    result = run(
        suite,
        """
import socket
import threading

import trio

from tests.netsvc.probe import protocol

received = []
readers = []


def read_until_eof(host, port):
    with socket.create_connection((host, port), timeout=10) as sock:
        data = b""
        while chunk := sock.recv(1024):
            data += chunk
        received.append(data)


async def test_serve(netsvc_server) -> None:
    running = await netsvc_server(protocol)
    reader = threading.Thread(target=read_until_eof, args=(running.host, running.port))
    reader.start()
    readers.append(reader)
    while running.server.runtime.counters.connections_open == 0:
        await trio.sleep(0.01)


def test_the_client_got_the_goodbye() -> None:
    readers[0].join(10)
    assert received == [b"HELLO\\nBYE\\n"]
""",
    )
    result.assert_outcomes(passed=2)


def test_the_testing_extra_brings_pytest_and_pytest_trio() -> None:
    # `pip install 'netsvc[testing]'`, as the installed metadata declares it,
    # and the pytest plugin entry point that loads netsvc.testing
    requires = importlib.metadata.requires("netsvc") or []
    testing = {
        re.split(r"[ ><=;\[]", requirement, maxsplit=1)[0]
        for requirement in requires
        if re.search(r"""extra == ["']testing["']""", requirement)
    }
    assert testing == {"pytest", "pytest-trio"}
    (plugin,) = importlib.metadata.entry_points(group="pytest11", name="netsvc")
    assert plugin.value == "netsvc.testing"

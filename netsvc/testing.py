# Test helpers for plugin authors: run any plugin on an ephemeral loopback
# port inside a trio test (`serve`, or the `netsvc_server` pytest fixture),
# connect to it (`open_connection`), and fail a test whose servers log an
# error it did not declare (the server-log guard: the `netsvc_log_guard`
# fixture, the `server_errors` marker, `ProcessLog` for server subprocesses).
# Installed as a pytest plugin, so the fixtures are there in any project that
# has netsvc installed; the guard is opt-in.
from __future__ import annotations

import contextlib
import dataclasses
import re
import ssl
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from typing import Any

import trio

from ._address import ListenAddress, parse_listen_url
from ._connection import ConnectionLimits
from ._logguard import (
    ExpectedError,
    ProcessLog,
    ServerError,
    ServerLogGuard,
    guard_process_output,
    scan_log_lines,
    take_process_logs,
)
from ._plugin import Protocol
from ._proxy import TrustedProxies
from ._registry import load_protocol
from ._server import Listen, Server
from ._settings import build_settings

__all__ = [
    "ExpectedError",
    "ProcessLog",
    "RunningServer",
    "ServerError",
    "ServerLogGuard",
    "guard_process_output",
    "netsvc_log_guard",
    "netsvc_server",
    "open_connection",
    "scan_log_lines",
    "serve",
]


@dataclasses.dataclass(frozen=True)
class RunningServer:
    """A server started by `serve`: its URL and the Server object itself."""

    url: str
    server: Server
    client_ssl_context: ssl.SSLContext | None = None
    clients: list[trio.abc.Stream] = dataclasses.field(default_factory=list)

    async def connect(self) -> trio.abc.Stream:
        """A new client connection to `url` (TLS when the server has it),
        closed for you when the server stops."""
        stream = await open_connection(self.url, ssl_context=self.client_ssl_context)
        self.clients.append(stream)
        return stream

    @property
    def host(self) -> str | None:
        """The host of `url` (`127.0.0.1`, `::1`); None for a Unix socket."""
        return parse_listen_url(self.url)[1].host

    @property
    def port(self) -> int | None:
        """The port of `url`; None for a Unix socket."""
        return parse_listen_url(self.url)[1].port


async def open_connection(
    url: str, *, ssl_context: ssl.SSLContext | None = None
) -> trio.abc.Stream:
    """Connect to a listener URL as reported by netsvc (TCP or +unix)."""
    _, address = parse_listen_url(url)
    stream: trio.abc.Stream
    if address.transport == "unix":
        assert address.path is not None
        stream = await trio.open_unix_socket(address.path)
    else:
        assert address.host is not None and address.port is not None
        stream = await trio.open_tcp_stream(address.host, address.port)
    if ssl_context is not None:
        tls = trio.SSLStream(stream, ssl_context, server_hostname=address.host or "localhost")
        await tls.do_handshake()
        stream = tls
    return stream


@contextlib.asynccontextmanager
async def serve(
    protocol: str | Protocol[Any, Any],
    *,
    app: object = None,
    settings: Mapping[str, Any] | None = None,
    limits: ConnectionLimits | None = None,
    address: ListenAddress | None = None,
    ssl_context: ssl.SSLContext | None = None,
    client_ssl_context: ssl.SSLContext | None = None,
    graceful_timeout: float = 5.0,
    trusted_proxies: TrustedProxies | None = None,
    starttls: bool = False,
) -> AsyncIterator[RunningServer]:
    """Serve `protocol` (a plugin or its name) on 127.0.0.1 with a free port.

    `settings` are the plugin's settings by field name (the environment is not
    read, so tests do not depend on it). With `ssl_context` the listener is TLS;
    with `starttls=True` too, it is plain and its connections can switch to TLS
    with that certificate (`Connection.start_tls()`).
    An `address` with `proxy=True` expects PROXY protocol headers from
    `trusted_proxies` (default: loopback). Leaving the block shuts the server
    down gracefully.
    """
    plugin = load_protocol(protocol) if isinstance(protocol, str) else protocol
    listen = Listen(
        plugin,
        address or ListenAddress("tcp", host="127.0.0.1", port=0),
        tls=ssl_context is not None and not starttls,
        limits=limits,
    )
    server = Server(
        [listen],
        apps={plugin.name: app} if app is not None else {},
        settings={
            plugin.name: build_settings(plugin.name, plugin.settings_class, settings or {}, {})
        },
        ssl_context=ssl_context,
        graceful_timeout=graceful_timeout,
        trusted_proxies=trusted_proxies,
    )
    await server.bind()  # errors such as AddressError surface here, unwrapped
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(_serve, server)
        running = RunningServer(urls[0], server, client_ssl_context)
        try:
            yield running
        finally:
            server.shutdown()
            with trio.CancelScope(shield=True):  # close them all, even when cancelled
                for stream in running.clients:
                    await trio.aclose_forcefully(stream)


async def _serve(server: Server, *, task_status: trio.TaskStatus[list[str]]) -> None:
    await server.serve(task_status=task_status)


ServerFactory = Callable[..., Awaitable[RunningServer]]


try:
    import pytest
except ImportError:  # pragma: no cover - only without pytest installed
    pass
else:

    @pytest.fixture
    async def netsvc_server() -> AsyncIterator[ServerFactory]:
        """A factory: `running = await netsvc_server("echo", settings={...})`
        takes `serve`'s arguments; every server it starts shuts down
        gracefully after the test."""
        stop = trio.Event()
        async with trio.open_nursery() as nursery:

            async def start(protocol: str | Protocol[Any, Any], **kwargs: Any) -> RunningServer:
                running: RunningServer = await nursery.start(_serve_until, stop, protocol, kwargs)
                return running

            yield start
            stop.set()  # each server shuts down gracefully, as at SIGTERM

    MARKER = "server_errors"
    _GUARD = pytest.StashKey[ServerLogGuard]()
    _CALL_OUTCOME = pytest.StashKey[str]()

    def pytest_addoption(parser: pytest.Parser) -> None:
        parser.addini(
            "netsvc_log_guard_loggers",
            type="linelist",
            default=[],
            help="netsvc_log_guard: loggers to watch besides 'netsvc' (and its children)",
        )

    def pytest_configure(config: pytest.Config) -> None:
        config.addinivalue_line(
            "markers",
            f"{MARKER}(*patterns, required=True): the errors this test's servers are expected "
            "to log, as regexes searched in each error's message and traceback; with the "
            "netsvc_log_guard fixture, each pattern must match an error (unless required=False) "
            "and every error must match a pattern",
        )

    @pytest.fixture
    def netsvc_log_guard(request: pytest.FixtureRequest) -> Iterator[ServerLogGuard]:
        """Fail the test if a server logs an error the test does not declare.

        Errors are records at ERROR or above (or carrying a traceback) from the
        "netsvc" loggers and their children (all of netsvc's and the built-in
        plugins'; more with the `netsvc_log_guard_loggers` ini option or
        `guard.watch_logger(name)`) in this process, so servers run with
        `serve`, `netsvc_server` or a `Server` directly, and the error lines
        and tracebacks in the stderr of server subprocesses fed to a
        `ProcessLog` (or `guard_process_output`).

        A test declares the errors it expects with the marker:

            @pytest.mark.server_errors(r"handler failed", r"ValueError: boom")

        Each pattern is searched (`re.search`) in an error's message followed,
        on the next lines, by its traceback; an error matching any pattern is
        declared. Each pattern must also match at least one error, so a stale
        declaration fails too; `required=False` on the marker waives that for
        its patterns (an error that only sometimes happens). That check is
        skipped when the test itself did not pass.

        The verdict comes after the test's whole teardown, so errors logged
        while fixtures stop their servers count, and it is reported as an
        error in teardown. The guard is opt-in: request the fixture, or make
        it autouse for a whole suite from a conftest.py:

            @pytest.fixture(autouse=True)
            def _server_log_guard(netsvc_log_guard: ServerLogGuard) -> None:
                pass
        """
        loggers = [
            *ServerLogGuard.DEFAULT_LOGGERS,
            *request.config.getini("netsvc_log_guard_loggers"),
        ]
        guard = ServerLogGuard(_expected_errors(request.node), loggers)
        guard.start()
        request.node.stash[_GUARD] = guard
        yield guard  # checked by pytest_runtest_teardown below, after every fixture stopped

    def _expected_errors(node: pytest.Item | pytest.Collector) -> list[ExpectedError]:
        expected = []
        for mark in node.iter_markers(MARKER):
            unknown = set(mark.kwargs) - {"required"}
            if unknown:
                raise TypeError(
                    f"{MARKER} marker: unknown argument(s) {', '.join(sorted(unknown))}"
                )
            required = bool(mark.kwargs.get("required", True))
            for pattern in mark.args:
                if not isinstance(pattern, str | re.Pattern):
                    raise TypeError(f"{MARKER} marker: expected regexes, got {pattern!r}")
                expected.append(ExpectedError(re.compile(pattern), required))
        return expected

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "call":
            item.stash[_CALL_OUTCOME] = report.outcome
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(
        item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, None, None]:
        try:
            yield
        except BaseException:
            _finish_guard(item)  # the teardown's own failure is the one to report
            raise
        failure = _finish_guard(item)
        if failure is not None:
            pytest.fail(failure, pytrace=False)

    def _finish_guard(item: pytest.Item) -> str | None:
        """The guard's verdict on the test that just ended (all its fixtures,
        wider-scoped ones that ended with it included, are torn down)."""
        guard = item.stash.get(_GUARD, None)
        if guard is None:
            take_process_logs()  # nobody checks them
            ran = _CALL_OUTCOME in item.stash  # not skipped, nor failed in setup
            if ran and item.get_closest_marker(MARKER) is not None:
                return f"the {MARKER} marker needs the netsvc_log_guard fixture"
            return None
        del item.stash[_GUARD]
        guard.stop()
        return guard.check(require_expected=item.stash.get(_CALL_OUTCOME, "") == "passed")


async def _serve_until(
    stop: trio.Event,
    protocol: str | Protocol[Any, Any],
    kwargs: dict[str, Any],
    *,
    task_status: trio.TaskStatus[RunningServer],
) -> None:
    async with serve(protocol, **kwargs) as running:
        task_status.started(running)
        await stop.wait()

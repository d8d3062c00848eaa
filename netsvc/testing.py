# Test helpers for plugin authors: run any plugin on an ephemeral loopback
# port inside a trio test (`serve`, or the `netsvc_server` pytest fixture) and
# connect to it (`open_connection`). Installed as a pytest plugin, so the
# fixture is there in any project that has netsvc installed.
from __future__ import annotations

import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import trio

from ._address import ListenAddress, parse_listen_url
from ._connection import ConnectionLimits
from ._plugin import Protocol
from ._registry import load_protocol
from ._server import Listen, Server
from ._settings import build_settings

__all__ = ["RunningServer", "netsvc_server", "open_connection", "serve"]


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
) -> AsyncIterator[RunningServer]:
    """Serve `protocol` (a plugin or its name) on 127.0.0.1 with a free port.

    `settings` are the plugin's settings by field name (the environment is not
    read, so tests do not depend on it). With `ssl_context` the listener is TLS.
    Leaving the block shuts the server down gracefully.
    """
    plugin = load_protocol(protocol) if isinstance(protocol, str) else protocol
    listen = Listen(
        plugin,
        address or ListenAddress("tcp", host="127.0.0.1", port=0),
        tls=ssl_context is not None,
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
        takes `serve`'s arguments; every server it starts stops after the test."""
        async with trio.open_nursery() as nursery:

            async def start(protocol: str | Protocol[Any, Any], **kwargs: Any) -> RunningServer:
                running: RunningServer = await nursery.start(
                    _serve_until_cancelled, protocol, kwargs
                )
                return running

            yield start
            nursery.cancel_scope.cancel()


async def _serve_until_cancelled(
    protocol: str | Protocol[Any, Any],
    kwargs: dict[str, Any],
    *,
    task_status: trio.TaskStatus[RunningServer],
) -> None:
    async with serve(protocol, **kwargs) as running:
        task_status.started(running)
        await trio.sleep_forever()

# The server: binds every listener, runs one task per connection under the
# listener's limits, keeps a failing connection from touching the others, and
# shuts down gracefully (stop accepting, let connections finish, cancel what is
# left after the grace period). Signal handling lives in the CLI, not here, so
# a Server can be embedded and tested.
from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import logging
import math
import os
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import trio

from ._address import ListenAddress, client_url, open_sockets, systemd_fds
from ._connection import (
    Connection,
    ConnectionLimits,
    ConnectionLost,
    ReceiveTimeout,
    SendTimeout,
)
from ._plugin import ListenerInfo, Protocol, Runtime, Service
from ._stats import Counters

__all__ = ["Listen", "Server"]

log = logging.getLogger("netsvc.server")

ACCEPT_RETRY_DELAY = 0.1  # seconds to wait after accept() fails (EMFILE and friends)
REFUSAL_TIMEOUT = 2.0  # seconds a refused connection may take to receive its message
MAX_PENDING_REFUSALS = 64  # past this, over-limit connections are closed without a word
REFUSAL_LOG_INTERVAL = 10.0  # seconds between two "refusing connections" warnings
CLOSE_LINGER = 1.0  # seconds to drain a client's unread bytes so it gets our last reply
CLOSE_LINGER_BYTES = 256 * 1024
DEFAULT_BACKLOG = 1024


@dataclasses.dataclass(frozen=True)
class Listen:
    """One listener to open: which protocol, where, with TLS or not."""

    protocol: Protocol[Any, Any]
    address: ListenAddress
    tls: bool = False
    limits: ConnectionLimits | None = None  # None: the protocol's own defaults


@dataclasses.dataclass
class _Listener:
    info: ListenerInfo
    socket_listener: trio.SocketListener
    service: Service
    limits: ConnectionLimits
    tls: bool
    unix_path: str | None
    last_refusal_log: float = -math.inf


class Server:
    """Serves a set of listeners until `shutdown()` is called.

    `apps` and `settings` are keyed by protocol name; a protocol without an
    entry gets its default application and default settings.
    """

    def __init__(
        self,
        listens: list[Listen],
        *,
        apps: Mapping[str, object] | None = None,
        settings: Mapping[str, Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        graceful_timeout: float = 30.0,
        backlog: int = DEFAULT_BACKLOG,
    ) -> None:
        if not listens:
            raise ValueError("a server needs at least one listener")
        if any(listen.tls for listen in listens) and ssl_context is None:
            raise ValueError("a TLS listener needs a certificate: give --certfile and --keyfile")
        self.runtime = Runtime()
        self._listens = listens
        self._apps = dict(apps or {})
        self._settings = dict(settings or {})
        self._ssl_context = ssl_context
        self._graceful_timeout = graceful_timeout
        self._backlog = backlog
        self._listeners: list[_Listener] = []
        self._connections: set[Connection] = set()
        self._ids = itertools.count(1)
        self._shutdown = trio.Event()
        self._pending_refusals = 0

    @property
    def urls(self) -> list[str]:
        """The URLs clients use, one per bound listener."""
        return [listener.info.url for listener in self._listeners]

    @property
    def shutting_down(self) -> bool:
        return self._shutdown.is_set()

    def shutdown(self) -> None:
        """Start a graceful shutdown; serve() returns once it is done."""
        self._shutdown.set()

    async def serve(
        self, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, report the URLs through `task_status`, serve until shutdown()."""
        services = self._create_services()
        try:
            await self._bind(services)
            async with trio.open_nursery() as service_nursery:
                for service in services.values():
                    await service.start(service_nursery)
                await self._serve_connections(task_status)
                for service in services.values():
                    await service.stop()
                service_nursery.cancel_scope.cancel()
        finally:
            self._close_listeners()
        log.info("stopped")

    def _create_services(self) -> dict[str, Service]:
        services: dict[str, Service] = {}
        for listen in self._listens:
            protocol = listen.protocol
            if protocol.name in services:
                continue
            app = self._apps.get(protocol.name)
            app = protocol.default_app() if app is None else protocol.check_app(app)
            settings = self._settings.get(protocol.name)
            if settings is None and protocol.settings_class is not None:
                settings = protocol.settings_class()
            services[protocol.name] = protocol.create_service(app, settings, self.runtime)
        return services

    async def _bind(self, services: dict[str, Service]) -> None:
        systemd: dict[str, list[int]] = {}
        if any(listen.address.transport == "systemd" for listen in self._listens):
            for fd, name in systemd_fds(os.environ):
                systemd.setdefault(name, []).append(fd)
        for listen in self._listens:
            protocol = listen.protocol
            sockets = await open_sockets(
                listen.address,
                default_port=protocol.default_port,
                backlog=self._backlog,
                systemd=systemd,
            )
            scheme = (protocol.tls_schemes if listen.tls else protocol.schemes)[0]
            for sock in sockets:
                sock.setblocking(False)
                url = client_url(scheme, sock)
                counters = Counters(parent=self.runtime.counters)
                info = ListenerInfo(url=url, protocol=protocol.name, counters=counters)
                created_path = listen.address.path if listen.address.transport == "unix" else None
                self._listeners.append(
                    _Listener(
                        info=info,
                        socket_listener=trio.SocketListener(trio.socket.from_stdlib_socket(sock)),
                        service=services[protocol.name],
                        limits=listen.limits or protocol.limits,
                        tls=listen.tls,
                        unix_path=created_path,
                    )
                )
                self.runtime.listeners.append(info)

    async def _serve_connections(self, task_status: trio.TaskStatus[list[str]]) -> None:
        async with trio.open_nursery() as connection_nursery:
            async with trio.open_nursery() as accept_nursery:
                for listener in self._listeners:
                    accept_nursery.start_soon(self._accept_loop, listener, connection_nursery)
                for listener in self._listeners:
                    log.info(
                        "%s listening on %s",
                        listener.info.protocol,
                        listener.info.url,
                        extra={"url": listener.info.url, "protocol": listener.info.protocol},
                    )
                task_status.started(self.urls)
                await self._shutdown.wait()
                accept_nursery.cancel_scope.cancel()
            self._close_listeners()
            open_count = len(self._connections)
            log.info(
                "shutting down: waiting up to %gs for %d connection(s)",
                self._graceful_timeout,
                open_count,
                extra={"connections": open_count},
            )
            for conn in list(self._connections):
                conn.begin_closing()
            connection_nursery.cancel_scope.deadline = trio.current_time() + self._graceful_timeout
        if connection_nursery.cancel_scope.cancelled_caught:
            log.warning("grace period over: cancelled the connections still open")

    def _close_listeners(self) -> None:
        for listener in self._listeners:
            listener.socket_listener.socket.close()
            if listener.unix_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(listener.unix_path)
                listener.unix_path = None

    async def _accept_loop(self, listener: _Listener, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.socket_listener.accept()
            except OSError as exc:
                name = errno.errorcode.get(exc.errno or 0, "error")
                log.error(
                    "accept on %s failed: %s (%s); retrying in %gs",
                    listener.info.url,
                    name,
                    exc.strerror,
                    ACCEPT_RETRY_DELAY,
                )
                await trio.sleep(ACCEPT_RETRY_DELAY)
                continue
            counters = listener.info.counters
            if counters.connections_open >= listener.limits.max_connections:
                counters.refused()
                self._log_refusal(listener)
                if self._pending_refusals < MAX_PENDING_REFUSALS:
                    self._pending_refusals += 1
                    nursery.start_soon(self._refuse, stream, listener)
                else:
                    await trio.aclose_forcefully(stream)
                continue
            counters.opened()
            nursery.start_soon(self._run_connection, stream, listener)

    def _log_refusal(self, listener: _Listener) -> None:
        now = trio.current_time()
        if now - listener.last_refusal_log >= REFUSAL_LOG_INTERVAL:
            listener.last_refusal_log = now
            log.warning(
                "%s: connection limit of %d reached; refusing new connections (%d refused so far)",
                listener.info.url,
                listener.limits.max_connections,
                listener.info.counters.connections_refused,
            )

    async def _refuse(self, raw: trio.SocketStream, listener: _Listener) -> None:
        try:
            with trio.move_on_after(REFUSAL_TIMEOUT):
                stream = await self._secure(raw, listener)
                message = listener.service.refusal()
                if message:
                    await stream.send_all(message)
                await _close_gracefully(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._pending_refusals -= 1
            await trio.aclose_forcefully(raw)

    async def _secure(self, raw: trio.SocketStream, listener: _Listener) -> trio.abc.Stream:
        if not listener.tls:
            return raw
        assert self._ssl_context is not None
        stream = trio.SSLStream(raw, self._ssl_context, server_side=True)
        with trio.fail_after(listener.limits.handshake_timeout):
            await stream.do_handshake()
        return stream

    async def _run_connection(self, raw: trio.SocketStream, listener: _Listener) -> None:
        peer = _peer_name(raw.socket)
        conn_id = next(self._ids)
        counters = listener.info.counters
        conn: Connection | None = None
        try:
            try:
                stream = await self._secure(raw, listener)
            except (trio.BrokenResourceError, trio.TooSlowError) as exc:
                log.info("TLS handshake with %s failed: %s", peer, exc or "timed out")
                return
            conn = Connection(
                stream,
                id=conn_id,
                peer=peer,
                listener_url=listener.info.url,
                tls=listener.tls,
                limits=listener.limits,
                counters=counters,
            )
            self._connections.add(conn)
            if self._shutdown.is_set():
                conn.begin_closing()
            conn.log.debug("connection opened on %s", listener.info.url)
            try:
                await listener.service.handle(conn)
            except ReceiveTimeout as exc:
                conn.log.info("closing: %s timeout, %s", exc.phase, exc)
            except SendTimeout as exc:
                conn.log.info("closing: %s", exc)
            except ConnectionLost:
                conn.log.debug("client went away")
            except Exception:
                counters.error()
                conn.log.exception("handler failed; closing this connection (peer %s)", peer)
            else:
                await _close_gracefully(stream)
        finally:
            if conn is not None:
                self._connections.discard(conn)
                conn.log.debug("connection closed")
            counters.closed()
            await trio.aclose_forcefully(raw)


async def _close_gracefully(stream: trio.abc.Stream) -> None:
    """Close our side, then drain what the client still sends for a moment, so
    the kernel does not answer it with a reset that could destroy our last reply."""
    with trio.move_on_after(CLOSE_LINGER):
        try:
            if isinstance(stream, trio.SocketStream):
                await stream.send_eof()
                drained = 0
                while drained < CLOSE_LINGER_BYTES:
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    drained += len(data)
            await stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def _peer_name(sock: trio.socket.SocketType) -> str:
    try:
        address = sock.getpeername()
    except OSError:
        return "unknown"
    if sock.family == socket.AF_UNIX:
        return "unix"
    host, port = address[:2]
    return f"[{host}]:{port}" if sock.family == socket.AF_INET6 else f"{host}:{port}"

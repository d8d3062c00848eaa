# --workers N: N processes serving the same listeners. TCP ports are shared
# through SO_REUSEPORT (the kernel spreads connections over the workers);
# Unix sockets, inherited fds and systemd sockets are opened once here and
# inherited. The supervisor forwards SIGTERM/SIGINT to the workers (each
# shuts down gracefully; a second SIGINT stops them at once) and SIGHUP (each
# reloads its TLS certificate), starts a new
# worker when one dies, and exits when all have stopped.
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import time
import traceback
from collections.abc import Callable
from types import FrameType

from ._address import ListenAddress, bind_tcp, client_url, open_sockets
from ._server import DEFAULT_BACKLOG, Listen, Server, claim_systemd_fds

__all__ = ["run_workers"]

log = logging.getLogger("netsvc.workers")

RESTART_BACKOFF = 1.0  # seconds to wait before replacing a worker that died young
MAX_QUICK_DEATHS = 5  # young deaths in a row after which the supervisor gives up
REAP_INTERVAL = 0.05  # seconds between two looks for workers that exited
EXIT_INTERRUPTED = 130


@dataclasses.dataclass
class _Prepared:
    listens: list[Listen]  # as each worker opens them
    held: list[socket.socket]  # kept open by the supervisor (reserved ports, shared sockets)
    urls: list[str]
    unix_paths: list[str]


def _prepare(listens: list[Listen]) -> _Prepared:
    prepared = _Prepared([], [], [], [])
    systemd = claim_systemd_fds(listens)
    for index, listen in enumerate(listens):
        address, protocol = listen.address, listen.protocol
        scheme = (protocol.tls_schemes if listen.tls else protocol.schemes)[0]
        if address.transport == "tcp":
            assert address.host is not None
            port = protocol.default_port if address.port is None else address.port
            # bound, not listening: it reserves the port (port 0 picks it) and
            # takes no connections; the workers bind it again and listen
            for sock in bind_tcp(
                address.host, port, DEFAULT_BACKLOG, reuse_port=True, listen=False
            ):
                host, real_port = sock.getsockname()[:2]
                prepared.held.append(sock)
                prepared.urls.append(client_url(scheme, sock, proxy=address.proxy))
                shared = ListenAddress(
                    "tcp", host=host, port=real_port, reuse_port=True, proxy=address.proxy
                )
                prepared.listens.append(dataclasses.replace(listen, address=shared))
            continue
        sockets = open_sockets(
            address,
            default_port=protocol.default_port,
            backlog=DEFAULT_BACKLOG,
            systemd=systemd.get(index, ()),
        )
        if address.transport == "unix" and address.path is not None:
            prepared.unix_paths.append(address.path)
        for sock in sockets:
            sock.set_inheritable(True)
            prepared.held.append(sock)
            prepared.urls.append(client_url(scheme, sock, proxy=address.proxy))
            inherited = ListenAddress("fd", fd=sock.fileno(), proxy=address.proxy)
            prepared.listens.append(dataclasses.replace(listen, address=inherited))
    return prepared


def run_workers(
    make_server: Callable[[list[Listen]], Server],
    serve: Callable[[Server, Callable[[], None], int], int],
    listens: list[Listen],
    count: int,
) -> int:
    """Run `count` workers until they stop; returns the exit status. `serve`
    runs a worker's server, calls its second argument once the worker accepts
    connections, and stops if the process with the third (pid) goes away."""
    prepared = _prepare(listens)
    supervisor = os.getpid()
    ready_read, ready_write = os.pipe()  # each first worker writes a byte once it accepts
    children: dict[int, tuple[int, float]] = {}  # pid -> (worker index, start time)
    stopping = 0  # signals received
    quick_deaths = 0

    def spawn(index: int) -> None:
        # signals wait until the new worker is registered (and has its own handlers)
        blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                os.setpgid(0, 0)  # the terminal's Ctrl-C reaches the supervisor only
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until serve() reloads on it
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                for sock in prepared.held:
                    if sock.type == socket.SOCK_STREAM and not _listening(sock):
                        sock.close()  # the port placeholders; workers bind their own
                os.close(ready_read)
                log.debug("worker %d started (pid %d)", index, os.getpid())
                server = make_server(prepared.listens)
                status = serve(server, lambda: _say_ready(ready_write), supervisor)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        children[pid] = (index, time.monotonic())
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping += 1
        name = signal.Signals(signum).name
        log.info("%s: passing it to %d worker(s)", name, len(children))
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def forward_reload(signum: int, frame: FrameType | None) -> None:
        log.info("SIGHUP: passing it to %d worker(s)", len(children))
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def stop_all(reason: str) -> None:
        nonlocal stopping
        log.error("%s: stopping all workers", reason)
        stopping += 1
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, forward_reload)
    try:
        for index in range(count):
            spawn(index)
        os.close(ready_write)
        ready_write = -1
        started = _wait_until_ready(ready_read, count)
        if started < count and not stopping:
            stop_all(f"{count - started} of {count} workers failed to start")
            failed = True
        else:
            failed = False
            for url in prepared.urls:
                log.info("listening on %s (%d workers)", url, count, extra={"url": url})
        status = 1 if failed else 0
        # Workers that died young are replaced RESTART_BACKOFF later; the wait
        # for that must not hold up reaping the others, or their age at death
        # would be taken long after it and a crash loop would go unnoticed.
        respawns: list[tuple[float, int]] = []  # (when, worker index)
        while children or (respawns and not stopping):
            pid, wait_status = os.waitpid(-1, os.WNOHANG) if children else (0, 0)
            if pid == 0:  # nobody died: start the replacements that are due
                now = time.monotonic()
                for when, index in [r for r in respawns if r[0] <= now]:
                    respawns.remove((when, index))
                    if not stopping:
                        spawn(index)
                time.sleep(REAP_INTERVAL)
                continue
            index, born = children.pop(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if stopping:
                status = max(status, EXIT_INTERRUPTED if code == EXIT_INTERRUPTED else abs(code))
                continue
            log.warning(
                "worker %d (pid %d) exited with status %d; starting a new one", index, pid, code
            )
            now = time.monotonic()
            if now - born < RESTART_BACKOFF:
                quick_deaths += 1
                if quick_deaths > MAX_QUICK_DEATHS:
                    stop_all(f"workers keep dying at once ({quick_deaths} in a row)")
                    status = 1
                    continue
                respawns.append((now + RESTART_BACKOFF, index))
            else:
                quick_deaths = 0
                spawn(index)
        return status
    finally:
        for fd in (ready_read, ready_write):
            if fd >= 0:
                os.close(fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for sock in prepared.held:
            sock.close()
        for path in prepared.unix_paths:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _say_ready(fd: int) -> None:
    if fd >= 0:  # replacement workers have no one waiting for them
        with contextlib.suppress(OSError):
            os.write(fd, b".")
            os.close(fd)


def _wait_until_ready(fd: int, count: int) -> int:
    """How many workers said they accept connections (all, or fewer if the
    others died before they could)."""
    received = 0
    while received < count:
        try:
            data = os.read(fd, count - received)
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
        if not data:  # every write end is closed: the rest died before starting
            break
        received += len(data)
    return received


def _listening(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))

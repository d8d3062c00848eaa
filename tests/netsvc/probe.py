# A line-based plugin made to test the core: each line is a command whose
# handler can reply, fail, sleep or flood, so tests can drive every part of a
# connection's lifecycle. Loaded by import path (tests.netsvc.probe:protocol).
from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable

import trio
import trio.lowlevel

from netsvc import AppError, Connection, ConnectionLimits, Protocol, Runtime, Service, setting

Handler = Callable[[Connection, str], Awaitable[bytes]]


class ProbeApp:
    """Commands by name; `@app.command("NAME")` registers one."""

    def __init__(self) -> None:
        self.commands: dict[str, Handler] = {}

    def command(self, name: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.commands[name.upper()] = handler
            return handler

        return register


default_app = ProbeApp()


@default_app.command("ECHO")
async def echo(conn: Connection, arg: str) -> bytes:
    return arg.encode()


@default_app.command("CRASH")
async def crash(conn: Connection, arg: str) -> bytes:
    raise RuntimeError("the handler crashed on purpose")


@default_app.command("SLEEP")
async def sleep(conn: Connection, arg: str) -> bytes:
    await trio.sleep(float(arg))
    return b"SLEPT"


@default_app.command("FLOOD")
async def flood(conn: Connection, arg: str) -> bytes:
    return b"x" * int(arg)


@default_app.command("PEER")
async def peer(conn: Connection, arg: str) -> bytes:
    return str(conn.peer).encode()


@default_app.command("STATS")
async def stats(conn: Connection, arg: str) -> bytes:
    return repr(conn.counters.snapshot()).encode()


NOTES: list[str] = []  # NOTE and INOTE (--probe-inline) write here, in the order they run


@default_app.command("NOTE")
async def note(conn: Connection, arg: str) -> bytes:
    NOTES.append(arg)  # before the first checkpoint: in arrival order
    await trio.lowlevel.checkpoint()
    return b"NOTED"


@default_app.command("CERT")
async def cert(conn: Connection, arg: str) -> bytes:
    """The client certificate's subject (RFC 4514), or "none"."""
    certificate = conn.peer_certificate
    return certificate.rfc4514_name().encode() if certificate else b"none"


@dataclasses.dataclass(frozen=True)
class ProbeSettings:
    greeting: str = setting("HELLO", help="first line sent to each client")
    max_line: int = setting(1024, help="longest line accepted, in bytes")
    polite: bool = setting(True, help="say BYE when the server shuts down")
    inline: bool = setting(False, help="answer synchronous commands inline (serve_inline)")


class ProbeService(Service):
    def __init__(self, app: ProbeApp, settings: ProbeSettings, runtime: Runtime) -> None:
        self.app = app
        self.settings = settings
        self.runtime = runtime

    def refusal(self) -> bytes:
        return b"BUSY too many connections\n"

    def internal_error(self, conn: Connection) -> bytes:
        return b"ERR internal error\n"

    async def handle(self, conn: Connection) -> None:
        await conn.send(self.settings.greeting.encode() + b"\n")
        state = _LineState(self.settings.max_line)
        inline = functools.partial(self._inline, conn, state)
        while True:
            if self.settings.inline and await conn.serve_inline(inline):
                if state.out:
                    await conn.send(state.out)
                    state.out = b""
                lines, state.handed_over = state.handed_over, []
                if not await self._run(conn, lines):
                    return
                continue
            data = await conn.receive()
            if not data:
                break
            lines = state.take(data)
            if lines is None or not await self._run(conn, lines, state, parsed=True):
                if lines is None:
                    await conn.send(b"ERR line too long\n")
                return
        if conn.closing and self.settings.polite:
            await conn.send(b"BYE\n")

    def _inline(self, conn: Connection, state: _LineState, data: bytes) -> bytes | None:
        """--probe-inline: the lines of a read answered in the core's task
        (Connection.serve_inline) as far as their commands are synchronous
        (SYNC_COMMANDS); the rest is handed to the connection's task."""
        lines = state.take(data)
        if lines is None:
            state.handed_over = [b"TOO-LONG"]
            return None
        conn.parsed(len(lines), partial=bool(state.buffer))
        out = []
        for index, line in enumerate(lines):
            name, _, arg = line.decode().strip().partition(" ")
            sync = SYNC_COMMANDS.get(name.upper())
            if sync is None:
                state.out = b"".join(out)
                state.handed_over = lines[index:]
                return None
            out.append(sync(conn, arg) + b"\n")
        return b"".join(out)

    async def _run(
        self,
        conn: Connection,
        lines: list[bytes],
        state: _LineState | None = None,
        *,
        parsed: bool = False,
    ) -> bool:
        """Run `lines` in this task; False when the connection must end."""
        if parsed and state is not None:
            conn.parsed(len(lines), partial=bool(state.buffer))
        for line in lines:
            if line == b"TOO-LONG":
                await conn.send(b"ERR line too long\n")
                return False
            name, _, arg = line.decode().strip().partition(" ")
            if name.upper() == "SHUTDOWN":  # the server's graceful shutdown, as SIGTERM
                self.runtime.request_shutdown()
                await conn.send(b"OK\n")
                continue
            handler = self.app.commands.get(name.upper())
            reply = await handler(conn, arg) if handler else b"ERR unknown command"
            await conn.send(reply + b"\n")
        return True


class _LineState:
    """A connection's unfinished line, and what inline serving handed over."""

    def __init__(self, max_line: int = 1024) -> None:
        self.buffer = b""
        self.max_line = max_line
        self.handed_over: list[bytes] = []  # lines for the task to run
        self.out = b""  # replies inline serving made before it handed over

    def take(self, data: bytes) -> list[bytes] | None:
        """The complete lines `data` ends; None if a line is too long."""
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        if any(len(line) > self.max_line for line in (*lines, self.buffer)):
            return None
        return lines


# --probe-inline: the commands answered in the core's task (no await), as the
# async ones in the app would answer them
SYNC_COMMANDS: dict[str, Callable[[Connection, str], bytes]] = {
    "ECHO": lambda conn, arg: arg.encode(),
    "SPIN": lambda conn, arg: time.sleep(float(arg)) or b"SPUN",  # slow, as KEYS on a big keyspace
    "FLOOD": lambda conn, arg: b"x" * int(arg),
    "PEER": lambda conn, arg: str(conn.peer).encode(),
    "STATS": lambda conn, arg: repr(conn.counters.snapshot()).encode(),
    "INLINE-CRASH": lambda conn, arg: _crash(),
    "INOTE": lambda conn, arg: NOTES.append(arg) or b"NOTED",
    "NOTES": lambda conn, arg: ",".join(NOTES).encode(),
}


def _crash() -> bytes:
    raise RuntimeError("the inline handler crashed on purpose")


class ProbeProtocol(Protocol[ProbeApp, ProbeSettings]):
    name = "probe"
    schemes = ("probe",)
    tls_schemes = ("probes",)
    default_port = 7070
    description = "line commands for testing the core"
    settings_class = ProbeSettings
    limits = ConnectionLimits(idle_timeout=60, request_timeout=10, send_timeout=10)

    def default_app(self) -> ProbeApp:
        return default_app

    def check_app(self, app: object) -> ProbeApp:
        if not isinstance(app, ProbeApp):
            raise AppError(f"expected a ProbeApp, got {type(app).__name__}")
        return app

    def create_service(self, app: ProbeApp, settings: ProbeSettings, runtime: Runtime) -> Service:
        return ProbeService(app, settings, runtime)


protocol = ProbeProtocol()


class PlainProbeProtocol(ProbeProtocol):
    """The probe without a TLS scheme: a protocol that cannot serve TLS."""

    name = "plainprobe"
    schemes = ("plainprobe",)
    tls_schemes = ()


plain_protocol = PlainProbeProtocol()

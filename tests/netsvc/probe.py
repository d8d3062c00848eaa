# A line-based plugin made to test the core: each line is a command whose
# handler can reply, fail, sleep or flood, so tests can drive every part of a
# connection's lifecycle. Loaded by import path (tests.netsvc.probe:protocol).
from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import trio

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
        buffer = b""
        while True:
            data = await conn.receive()
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            if any(len(line) > self.settings.max_line for line in (*lines, buffer)):
                await conn.send(b"ERR line too long\n")
                return
            conn.parsed(len(lines), partial=bool(buffer))
            for line in lines:
                name, _, arg = line.decode().strip().partition(" ")
                if name.upper() == "SHUTDOWN":  # the server's graceful shutdown, as SIGTERM
                    self.runtime.request_shutdown()
                    await conn.send(b"OK\n")
                    continue
                handler = self.app.commands.get(name.upper())
                reply = await handler(conn, arg) if handler else b"ERR unknown command"
                await conn.send(reply + b"\n")
        if conn.closing and self.settings.polite:
            await conn.send(b"BYE\n")


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

# The kvline plugin: what it declares to netsvc (name, scheme, port,
# settings) and the Service that drives a connection: receive bytes, feed the
# parser, run each command, send the replies of one read in one write.
from __future__ import annotations

import dataclasses

from netsvc import AppError, Connection, ConnectionLimits, Protocol, Runtime, Service, setting

from ._app import KVApp, Store, default_app
from ._wire import LineTooLong, Parser, encode_reply


@dataclasses.dataclass(frozen=True)
class KVSettings:
    max_line: int = setting(4096, help="longest request line, in bytes")
    max_keys: int = setting(10_000, help="keys the store may hold; SET of a new key fails past it")


class KVService(Service):
    """One per process: the store is shared by every connection."""

    def __init__(self, app: KVApp, settings: KVSettings) -> None:
        self.app = app
        self.settings = settings
        self.store: Store = {}

    def refusal(self) -> bytes:
        return encode_reply("ERR", "too many connections, try again later")

    def internal_error(self, conn: Connection) -> bytes:
        # sent if handle() raises: every reply is one whole send, so the line is clean
        return encode_reply("ERR", "internal error, see the server log")

    async def handle(self, conn: Connection) -> None:
        parser = Parser(self.settings.max_line)
        while data := await conn.receive():
            parser.feed(data)
            commands = 0
            replies: list[bytes] = []
            try:
                while (command := parser.next_command()) is not None:
                    commands += 1
                    if command.name == "QUIT":
                        await conn.send(b"".join(replies) + encode_reply("BYE"))
                        return
                    replies.append(self.run(command.name, command.rest))
            except LineTooLong as exc:
                await conn.send(b"".join(replies) + encode_reply("ERR", str(exc)))
                return
            conn.parsed(commands, partial=parser.has_partial)
            if replies:
                await conn.send(b"".join(replies))
        if conn.closing:
            await conn.send(encode_reply("BYE", "server shutting down"))

    def run(self, name: str, rest: str) -> bytes:
        if name == "SET" and len(self.store) >= self.settings.max_keys:
            key = rest.partition(" ")[0]
            if key not in self.store:
                return encode_reply("ERR", f"store full ({self.settings.max_keys} keys)")
        return self.app.call(self.store, name, rest)


class KVLineProtocol(Protocol[KVApp, KVSettings]):
    name = "kvline"
    schemes = ("kvline",)
    tls_schemes = ("kvlines",)
    default_port = 7379
    description = "example: a key-value store you can talk to with netcat"
    settings_class = KVSettings
    limits = ConnectionLimits(idle_timeout=600, request_timeout=30)

    def default_app(self) -> KVApp:
        return default_app

    def check_app(self, app: object) -> KVApp:
        if not isinstance(app, KVApp):
            raise AppError(f"expected a netsvc_kvline.KVApp, got {type(app).__name__}")
        return app

    def create_service(self, app: KVApp, settings: KVSettings, runtime: Runtime) -> Service:
        return KVService(app, settings)


protocol = KVLineProtocol()

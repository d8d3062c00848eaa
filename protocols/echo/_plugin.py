# The echo plugin: declaration, settings and the service that echoes bytes.
# Echo has no requests, so each chunk received counts as one.
from __future__ import annotations

import dataclasses

from netsvc import Connection, ConnectionLimits, Protocol, Runtime, Service, setting


@dataclasses.dataclass(frozen=True)
class EchoSettings:
    greeting: str = setting("", help="text sent to each client when it connects (none if empty)")


class EchoService(Service):
    def __init__(self, settings: EchoSettings) -> None:
        self.greeting = settings.greeting.encode()

    async def handle(self, conn: Connection) -> None:
        if self.greeting:
            await conn.send(self.greeting + b"\r\n")
        while data := await conn.receive():
            conn.parsed(1, partial=False)
            await conn.send(data)


class EchoProtocol(Protocol[None, EchoSettings]):
    name = "echo"
    schemes = ("echo",)
    tls_schemes = ("echos",)
    default_port = 7007  # RFC 862's port 7 needs root; 7007 is what we default to
    description = "RFC 862 echo: sends back every byte it receives"
    settings_class = EchoSettings
    multiprocess_safe = True
    limits = ConnectionLimits(idle_timeout=60.0)

    def create_service(self, app: None, settings: EchoSettings, runtime: Runtime) -> Service:
        return EchoService(settings)


protocol = EchoProtocol()

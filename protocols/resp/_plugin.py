# The RESP plugin's declaration: name, schemes, port, settings and limits.
from __future__ import annotations

import dataclasses

from netsvc import AppError, ConnectionLimits, Protocol, Runtime, Service, setting

from ._app import RespApp

__all__ = ["RespProtocol", "RespSettings", "protocol"]

MiB = 1024 * 1024
TLS_AUTH_USER = ("cn", "off")  # --resp-tls-auth-user: log in by certificate CN, or not


@dataclasses.dataclass
class RespSettings:
    requirepass: str | None = setting(
        None,
        help="the default user's password, which clients AUTH with (none: no AUTH needed; "
        "CONFIG requirepass)",
        secret=True,
    )
    aclfile: str | None = setting(
        None,
        help="ACL users file (Redis's aclfile: `user NAME RULES...` lines), loaded at start, "
        "by ACL LOAD, written by ACL SAVE; it defines the default user too",
    )
    tls_auth_user: str = setting(
        "off",
        help="cn: a TLS client whose certificate was verified starts logged in as the ACL user "
        "its certificate's CN names (if that user exists and is on); off: as default",
    )
    protected_mode: bool = setting(
        True,
        help="with no password set, refuse clients from other machines, as Redis's "
        "protected mode (CONFIG protected-mode)",
    )
    databases: int = setting(16, help="number of databases (SELECT 0..N-1)")
    max_bulk: int = setting(
        512 * MiB, help="largest bulk string a client may send (proto-max-bulk-len)"
    )
    max_query_buffer: int = setting(
        1024 * MiB, help="most bytes buffered for one client's unfinished request"
    )
    lua_memory_limit: int = setting(
        64 * MiB,
        help="most memory the Lua interpreter of EVAL scripts may use, 0: no cap "
        "(CONFIG lua-memory-limit)",
    )


class RespProtocol(Protocol[RespApp, RespSettings]):
    name = "resp"
    schemes = ("redis",)
    tls_schemes = ("rediss",)
    default_port = 6379
    description = (
        "Redis protocol (RESP2/RESP3): an in-memory Redis subset for redis-cli and redis-py"
    )
    settings_class = RespSettings
    # Redis's own defaults: idle clients are never timed out (timeout 0).
    limits = ConnectionLimits(
        max_connections=10000, idle_timeout=None, request_timeout=60, send_timeout=60
    )

    def default_app(self) -> RespApp:
        return RespApp()

    def check_app(self, app: object) -> RespApp:
        if not isinstance(app, RespApp):
            raise AppError(
                f"expected a protocols.resp.RespApp, got {type(app).__name__}; "
                "make one with `app = RespApp()` and register commands with @app.command"
            )
        return app

    def create_service(self, app: RespApp, settings: RespSettings, runtime: Runtime) -> Service:
        if settings.databases < 1:
            raise AppError(f"databases must be at least 1, got {settings.databases}")
        if settings.tls_auth_user.lower() not in TLS_AUTH_USER:
            raise AppError(
                f"--resp-tls-auth-user: choose cn or off, got {settings.tls_auth_user!r}"
            )
        from ._driver import RespService

        return RespService(app, settings, runtime)


protocol = RespProtocol()

# Running a command, as Redis's processCommand() and call() do: the checks
# (unknown command, arity, AUTH, a subscribed RESP2 client), MULTI queueing,
# running the handler (its errors counted, its crashes logged and answered),
# then serving the clients blocked on keys it changed. The one way anything
# runs a command: a connection (the driver), EXEC and scripts alike.
from __future__ import annotations

import logging

from netsvc import ConnectionLost, ReceiveTimeout, SendTimeout

from ._app import CommandSpec, unknown_command, wrong_arity
from ._client import Client
from ._reply import QUEUED, ErrorReply, Reply

__all__ = ["NOAUTH", "Call", "call", "dispatch", "execute"]

log = logging.getLogger("netsvc.resp")

SUBSCRIBED_ALLOWED = frozenset(
    {b"ping", b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"quit", b"reset"}
)
MULTI_IMMEDIATE = frozenset({b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"})
NOAUTH = ErrorReply("NOAUTH Authentication required.")


class Call:
    """dispatch()'s answer for an async command: await call() with it."""

    __slots__ = ("spec",)

    def __init__(self, spec: CommandSpec) -> None:
        self.spec = spec


def dispatch(client: Client, argv: list[bytes]) -> Reply | Call:
    """Check a command as Redis's processCommand does, then run it if it is
    synchronous (and serve the clients blocked on what it changed); an async
    command comes back as a Call to await with call()."""
    server = client.server
    spec = server.app.lookup_cached(argv[0]) or server.app.lookup(argv[0])
    if spec is None:
        return _refuse_in_multi(client, unknown_command(argv))
    arity = spec.arity
    if len(argv) != arity if arity > 0 else len(argv) < -arity:
        return _refuse_in_multi(client, wrong_arity(spec.name))
    if not client.authenticated and "no_auth" not in spec.flags:
        return server.count_error(NOAUTH)
    name = spec.name_bytes
    if (
        (client.channels or client.patterns)
        and client.protocol == 2
        and name not in SUBSCRIBED_ALLOWED
    ):
        return server.count_error(
            ErrorReply(
                f"ERR Can't execute '{spec.name}': only (P|S)SUBSCRIBE / "
                "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )
        )
    if client.multi is not None and name not in MULTI_IMMEDIATE:
        client.multi.append((spec, argv))
        return QUEUED
    if spec.is_async:
        return Call(spec)
    reply = _run(client, spec, argv)
    if server.keyspace.ready:
        server.blocking.serve_ready()
    return reply


async def call(client: Client, spec: CommandSpec, argv: list[bytes]) -> Reply:
    """Run a command dispatch() answered with a Call, then serve the clients
    blocked on what it changed."""
    reply = await execute(client, spec, argv)
    server = client.server
    if server.keyspace.ready:
        server.blocking.serve_ready()
    return reply


async def execute(client: Client, spec: CommandSpec, argv: list[bytes]) -> Reply:
    """Run any command (sync or async) whose checks have passed, serving no
    blocked client: EXEC runs its queue with it, and serving comes after."""
    if not spec.is_async:
        return _run(client, spec, argv)
    client.last_command = argv[0]
    client.server.count_call(spec.name)
    try:
        reply = await spec.handler(client, argv)
    except ErrorReply as exc:
        return client.server.count_error(exc)
    except (ReceiveTimeout, SendTimeout, ConnectionLost):
        raise  # the connection's end, not the command's failure
    except Exception:
        return _crashed(client, spec)
    if type(reply) is ErrorReply:
        return client.server.count_error(reply)
    return reply


def _run(client: Client, spec: CommandSpec, argv: list[bytes]) -> Reply:
    client.last_command = argv[0]
    client.server.count_call(spec.name)
    try:
        reply = spec.handler(client, argv)
    except ErrorReply as exc:
        return client.server.count_error(exc)
    except Exception:
        return _crashed(client, spec)
    if type(reply) is ErrorReply:
        return client.server.count_error(reply)
    return reply


def _crashed(client: Client, spec: CommandSpec) -> ErrorReply:
    if client.link is not None:
        client.link.count_error()
        client.link.log.exception("command %r failed", spec.name)
    else:
        log.exception("command %r failed", spec.name)
    error = ErrorReply(f"ERR internal error in '{spec.name}'; see the server log")
    return client.server.count_error(error)


def _refuse_in_multi(client: Client, error: ErrorReply) -> ErrorReply:
    if client.multi is not None:
        client.multi_failed = True
    return client.server.count_error(error)

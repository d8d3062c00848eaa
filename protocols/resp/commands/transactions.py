# Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, with Redis's semantics:
# commands refused while queueing abort EXEC (EXECABORT), and a change to any
# WATCHed key since WATCH (expiry included) makes EXEC return a null array.
# EXEC runs its queue through _dispatch.execute(), the one layer above the
# commands they import: a transaction is a command that runs commands.
from __future__ import annotations

from .._app import RespApp
from .._client import Client
from .._dispatch import execute
from .._reply import NULL_ARRAY, OK, ErrorReply, Reply

commands = RespApp(builtins=False)


@commands.command("multi", arity=1, flags=["no_multi", "fast", "allow_busy"], group="transactions")
def multi(client: Client, argv: list[bytes]) -> Reply:
    """Mark the start of a transaction block."""
    if client.multi is not None:
        raise ErrorReply("ERR MULTI calls can not be nested")
    client.multi = []
    client.multi_failed = False
    return OK


@commands.command(
    "discard", arity=1, flags=["no_multi", "fast", "allow_busy"], group="transactions"
)
def discard(client: Client, argv: list[bytes]) -> Reply:
    """Discard all commands issued after MULTI."""
    if client.multi is None:
        raise ErrorReply("ERR DISCARD without MULTI")
    client.multi = None
    client.unwatch_all()
    return OK


@commands.command("exec", arity=1, flags=["no_multi", "skip_monitor"], group="transactions")
async def exec_(client: Client, argv: list[bytes]) -> Reply:
    """Execute all commands issued after MULTI."""
    if client.multi is None:
        raise ErrorReply("ERR EXEC without MULTI")
    queued, failed = client.multi, client.multi_failed
    client.multi = None
    changed = client.watched_changed()
    client.unwatch_all()
    if failed:
        raise ErrorReply("EXECABORT Transaction discarded because of previous errors.")
    if changed:
        return NULL_ARRAY
    # Async (blocking) handlers see client.in_exec and answer without waiting,
    # so nothing here yields to another task: the transaction is atomic.
    client.in_exec = True
    try:
        return [await execute(client, spec, queued_argv) for spec, queued_argv in queued]
    finally:
        client.in_exec = False


@commands.command(
    "watch",
    arity=-2,
    flags=["no_multi", "fast", "allow_busy"],
    keys=(1, -1, 1),
    group="transactions",
)
def watch(client: Client, argv: list[bytes]) -> Reply:
    """Watch the given keys to determine execution of the MULTI/EXEC block."""
    if client.multi is not None:
        raise ErrorReply("ERR WATCH inside MULTI is not allowed")
    for key in argv[1:]:
        client.watch(key)
    return OK


@commands.command(
    "unwatch", arity=1, flags=["no_multi", "fast", "allow_busy"], group="transactions"
)
def unwatch(client: Client, argv: list[bytes]) -> Reply:
    """Forget about all watched keys."""
    client.unwatch_all()
    return OK

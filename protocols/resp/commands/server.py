# Server commands: INFO, CONFIG, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, TIME,
# WAIT and WAITAOF (a master without replicas or append-only file), SHUTDOWN
# (the server's graceful shutdown, through the Runtime) and COMMAND (answered
# from the application's command table).
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from .._app import CommandSpec, OrderedSet, Subcommand, describe, key_flag_names
from .._app import RespApp as _RespApp
from .._args import parse_int, parse_milliseconds
from .._client import REPLIES_SKIP, Client
from .._info import render_info
from .._keyspace import Database
from .._redisdocs import redis_docs
from .._reply import NULL_ARRAY, OK, ErrorReply, Reply, Status
from .._replytypes import PairsMap
from .connection import SERVER_VERSION

commands = _RespApp(builtins=False)
log = logging.getLogger("netsvc.resp")


def _flush_mode(argv: list[bytes]) -> None:
    if len(argv) == 2 and argv[1].lower() not in (b"async", b"sync"):
        raise ErrorReply("ERR syntax error")
    if len(argv) > 2:
        raise ErrorReply("ERR syntax error")


@commands.command(
    "dbsize", arity=1, flags=["readonly", "fast"], group="server", categories=["keyspace"]
)
def dbsize(client: Client, argv: list[bytes]) -> Reply:
    """Return the number of keys in the selected database."""
    return len(client.db)


@commands.command(
    "flushdb", arity=-1, flags=["write"], group="server", categories=["keyspace", "dangerous"]
)
def flushdb(client: Client, argv: list[bytes]) -> Reply:
    """Remove all keys from the current database."""
    _flush_mode(argv)
    client.db.flush()
    return OK


@commands.command(
    "flushall", arity=-1, flags=["write"], group="server", categories=["keyspace", "dangerous"]
)
def flushall(client: Client, argv: list[bytes]) -> Reply:
    """Remove all keys from all databases."""
    _flush_mode(argv)
    for db in client.server.keyspace.databases:
        db.flush()
    return OK


@commands.command(
    "swapdb",
    arity=3,
    flags=["write", "fast"],
    group="server",
    categories=["keyspace", "dangerous"],
)
def swapdb(client: Client, argv: list[bytes]) -> Reply:
    """Swap two Redis databases."""
    count = len(client.server.keyspace.databases)
    indexes = []
    for arg, which in ((argv[1], "first"), (argv[2], "second")):
        index = parse_int(arg, f"ERR invalid {which} DB index")
        if not 0 <= index < count:
            raise ErrorReply("ERR DB index is out of range")
        indexes.append(index)
    client.server.keyspace.swap(*indexes)
    return OK


@commands.command("time", arity=1, flags=["fast", "loading", "stale"], group="server")
def time_(client: Client, argv: list[bytes]) -> Reply:
    """Return the current server time."""
    now = time.time_ns() // 1000
    return [str(now // 1_000_000).encode(), str(now % 1_000_000).encode()]


def _no_acknowledgement(db: Database) -> None:
    return None  # no replica or append-only file ever acknowledges a write here


async def _wait_for_nothing(client: Client, milliseconds: int) -> Reply:
    """Block as WAIT does when it wants more than it has: until the timeout
    (0: forever), CLIENT UNBLOCK or the client's end. None at the timeout,
    else the UNBLOCKED error."""
    seconds = milliseconds / 1000 if milliseconds else None
    reply = await client.server.blocking.wait(client, [], _no_acknowledgement, seconds)
    return None if reply is NULL_ARRAY else reply


@commands.command("wait", arity=3, flags=["noscript"], categories=["slow", "connection"])
async def wait(client: Client, argv: list[bytes]) -> Reply:
    """Wait for the synchronous replication of all the write commands sent in the context
    of the current connection."""
    wanted = parse_int(argv[1])
    milliseconds = parse_milliseconds(argv[2])
    if wanted <= 0 or client.in_exec:  # no replicas: 0 is all there is; MULTI: no waiting
        return 0
    reply = await _wait_for_nothing(client, milliseconds)
    return 0 if reply is None else reply


@commands.command("waitaof", arity=4, flags=["noscript"], categories=["slow", "connection"])
async def waitaof(client: Client, argv: list[bytes]) -> Reply:
    """Blocks until all of the preceding write commands sent by the connection are written to
    the append-only file of the master and/or replicas."""
    local = parse_int(argv[1])
    if not 0 <= local <= 1:
        raise ErrorReply("ERR value is out of range, value must between 0 and 1")
    replicas = parse_int(argv[2], "ERR value is out of range, must be positive")
    if replicas < 0:
        raise ErrorReply("ERR value is out of range, must be positive")
    milliseconds = parse_milliseconds(argv[3])
    if local:
        raise ErrorReply(
            "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
        )
    if replicas and not client.in_exec:
        reply = await _wait_for_nothing(client, milliseconds)
        if reply is not None:
            return reply
    return [0, 0]  # no local fsync (no append-only file), no replica


SHUTDOWN_MODIFIERS: Final = (b"nosave", b"save", b"now", b"force", b"abort")
# Redis's words when it cannot save; why goes to the log (as Redis logs it)
SHUTDOWN_CANNOT_SAVE: Final = ErrorReply("ERR Errors trying to SHUTDOWN. Check logs.")


@commands.command(
    "shutdown",
    arity=-1,
    flags=["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"],
    group="server",
)
def shutdown(client: Client, argv: list[bytes]) -> Reply:
    """Synchronously save the dataset to disk and then shut down the server."""
    given = {arg.lower() for arg in argv[1:]}
    if not given <= set(SHUTDOWN_MODIFIERS):
        raise ErrorReply("ERR syntax error")
    if {b"save", b"nosave"} <= given or (b"abort" in given and len(given) > 1):
        raise ErrorReply("ERR syntax error")
    if b"abort" in given:
        # Redis aborts a shutdown that waits for lagging replicas; netsvc's
        # never waits for any, and once begun it cannot be called off
        raise ErrorReply("ERR No shutdown in progress.")
    server = client.server
    if b"nosave" not in given:
        busy = server.scripting.busy_error()
        if busy is not None:
            raise busy  # only SHUTDOWN NOSAVE stops a server under a busy script
    if b"save" in given and b"force" not in given:
        # Redis refuses to stop when SAVE cannot write its RDB file (unless
        # FORCE): netsvc can never write one, so it says so rather than stop
        # as though the data were safe
        _log(client).warning(
            "SHUTDOWN SAVE refused: SAVE asks for the data to be written to disk, and netsvc "
            "keeps none on disk; SHUTDOWN NOSAVE (or SHUTDOWN SAVE FORCE) stops the server "
            "without saving"
        )
        raise SHUTDOWN_CANNOT_SAVE
    server.scripting.kill_for_shutdown()  # NOSAVE: a busy script dies with the server
    _log(client).warning(
        "SHUTDOWN asked by client id=%d addr=%s user=%s%s: the server shuts down%s",
        client.id,
        client.link.peer if client.link is not None else "?",
        client.user.name.decode(errors="replace"),
        f" name={client.name.decode(errors='replace')}" if client.name else "",
        " (SAVE FORCE: nothing saved, netsvc keeps no data on disk)" if b"save" in given else "",
    )
    server.stopping = True  # nothing more runs, for anyone (see _driver's _serve)
    server.runtime.request_shutdown()
    # as with Redis, which exits: no reply, the connection closes (what was
    # answered before it in the same read is still sent)
    client.replies = REPLIES_SKIP
    client.close_after_reply = True
    return None


def _log(client: Client) -> logging.LoggerAdapter[logging.Logger] | logging.Logger:
    return client.link.log if client.link is not None else log


ADMIN: Final = ("admin", "noscript", "loading", "stale")
CONFIG_SUBCOMMANDS: Final = (
    Subcommand("get", -3, ADMIN),
    Subcommand("help", 2, ("loading", "stale")),
    Subcommand("resetstat", 2, ADMIN),
    Subcommand("rewrite", 2, ADMIN),
    Subcommand("set", -4, ADMIN),
)


@commands.command("config", arity=-2, group="server", subcommands=CONFIG_SUBCOMMANDS)
def config(client: Client, argv: list[bytes]) -> Reply:
    """A container for server configuration commands."""
    sub = argv[1].lower()
    server = client.server
    if sub == b"get" and len(argv) >= 3:
        return server.config.get(argv[2:])
    if sub == b"set" and len(argv) >= 4 and len(argv) % 2 == 0:
        server.config.set(dict(zip(argv[2::2], argv[3::2], strict=True)))
        return OK
    if sub == b"resetstat" and len(argv) == 2:
        server.stats.clear()
        server.command_calls.clear()  # INFO commandstats, total_commands_processed
        server.error_codes.clear()  # INFO errorstats
        server.keyspace.reset_expired()
        return OK
    if sub in (b"get", b"set", b"resetstat"):
        raise ErrorReply(f"ERR wrong number of arguments for 'config|{sub.decode()}' command")
    return server.unknown_subcommand(argv)


@commands.command(
    "info", arity=-1, flags=["loading", "stale"], group="server", categories=["dangerous"]
)
def info(client: Client, argv: list[bytes]) -> Reply:
    """Get information and statistics about the server."""
    wanted = {arg.lower().decode(errors="replace") for arg in argv[1:]} or {"default"}
    return render_info(client.server, wanted, SERVER_VERSION.decode())


COMMAND_SUBCOMMANDS: Final = tuple(
    Subcommand(name, arity, ("loading", "stale"), categories=frozenset({"connection"}))
    for name, arity in (
        ("count", 2),
        ("docs", -2),
        ("getkeys", -4),
        ("getkeysandflags", -4),
        ("help", 2),
        ("info", -2),
        ("list", -2),
    )
)


@commands.command(
    "command",
    arity=-1,
    flags=["loading", "stale"],
    group="server",
    categories=["connection"],
    subcommands=COMMAND_SUBCOMMANDS,
)
def command(client: Client, argv: list[bytes]) -> Reply:
    """Get array of Redis command details."""
    table = client.server.app.commands
    if len(argv) == 1:
        return [describe(spec) for spec in table.values()]
    sub = argv[1].lower()
    if sub == b"count" and len(argv) == 2:
        return len(table)
    if sub == b"list" and len(argv) == 2:
        return [name for name in table]
    if sub == b"info":
        names = argv[2:] or list(table)
        return [describe(table[n.lower()]) if n.lower() in table else None for n in names]
    if sub == b"docs":
        names = [n.lower() for n in argv[2:]] or list(table)
        # as Redis, a name asked for twice is answered twice, an unknown one not at all
        documented = [
            (name, docs) for name in names if (docs := _docs_named(table, name)) is not None
        ]
        return PairsMap(documented)
    if sub in (b"getkeys", b"getkeysandflags") and len(argv) >= 4:
        found = _call_keys(client, argv[2:])
        if sub == b"getkeys":
            return [key for key, _ in found]
        return [
            [key, OrderedSet(Status(name) for name in key_flag_names(flags))]
            for key, flags in found
        ]
    if sub in (b"count", b"list", b"getkeys", b"getkeysandflags"):
        raise ErrorReply(f"ERR wrong number of arguments for 'command|{sub.decode()}' command")
    return client.server.unknown_subcommand(argv)


def _call_keys(client: Client, call: list[bytes]) -> list[tuple[bytes, int]]:
    """COMMAND GETKEYS and GETKEYSANDFLAGS: the keys of a call and what it
    does with each (Redis's key-spec flags), with Redis's errors in its
    order. A container's subcommand (OBJECT FREQ) has its own keys."""
    spec = client.server.app.lookup(call[0])
    sub = None
    if spec is not None and spec.subcommands and len(call) > 1:
        sub = spec.subcommands.get(call[1].lower())
        if sub is None:
            spec = None
    if spec is None:
        raise ErrorReply("ERR Invalid command specified")
    if sub is not None:
        arity, has_keys = sub.arity, sub.keys[0] > 0
    else:
        arity = spec.arity
        has_keys = not spec.subcommands and (spec.first_key > 0 or spec.key_finder is not None)
    if not has_keys:
        raise ErrorReply("ERR The command has no key arguments")
    if len(call) != arity if arity > 0 else len(call) < -arity:
        raise ErrorReply("ERR Invalid number of arguments specified for command")
    keys = sub.keys_of(call) if sub is not None else spec.keys(call)
    if not keys:
        if "no_mandatory_keys" in spec.flags:
            return []  # EVAL with no keys: no keys, not an error (as Redis)
        raise ErrorReply("ERR Invalid arguments specified for command")
    given = sub.key_flags if sub is not None else spec.key_flags
    assert given is not None, "a command's key flags are set when it is registered"
    flags = given(call) if callable(given) else given
    last = len(flags) - 1
    return [(key, flags[min(index, last)]) for index, key in enumerate(keys)]


def _docs_named(table: Mapping[bytes, CommandSpec], name: bytes) -> dict[bytes, Any] | None:
    """COMMAND DOCS of a command, or of a built-in container's subcommand
    named as Redis names it (`client|list`); None for an unknown name."""
    spec = table.get(name)
    if spec is not None:
        return _docs(spec)
    container, bar, _ = name.partition(b"|")
    spec = table.get(container) if bar else None
    if spec is None or not spec.redis_docs:
        return None
    docs = redis_docs(spec.name_bytes) or {}
    subcommands: dict[bytes, Any] = docs.get(b"subcommands", {})
    return subcommands.get(name)


def _docs(spec: CommandSpec) -> dict[bytes, Any]:
    """COMMAND DOCS of one command: a built-in's are Redis's own; another's
    (an app's) say what Redis says of a module command that documents only
    a summary: the summary, if any, and the group."""
    docs = redis_docs(spec.name_bytes) if spec.redis_docs else None
    if docs is not None:
        return docs
    if spec.summary:
        return {b"summary": spec.summary.encode(), b"group": spec.group.encode()}
    return {b"group": spec.group.encode()}

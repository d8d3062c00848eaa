# Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (LOAD, EXISTS,
# FLUSH, KILL, HELP), and Redis 7's functions: FCALL, FCALL_RO and FUNCTION
# (LOAD, DELETE, LIST, STATS, KILL, FLUSH, DUMP, RESTORE, HELP), with Redis
# 7's replies and errors. The interpreters, the sandbox and running a script
# or function atomically are _scripting.py's; the libraries and FUNCTION
# DUMP's payload are _functions.py's.
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import trio

from .._app import RespApp, keys_counted
from .._args import parse_int
from .._client import Client
from .._functions import (
    FUNCTION_FLAGS,
    Libraries,
    Library,
    dump_payload,
    read_all,
)
from .._reply import OK, ErrorReply, Reply, Status
from .._scripting import NOSCRIPT, parse_shebang

commands = RespApp(builtins=False)

SCRIPT_HELP = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
]

EVAL_FLAGS = ["noscript", "stale", "skip_monitor", "no_mandatory_keys"]  # Redis's order


# The keys of EVAL/FCALL <script or function> numkeys key... arg...: none
# is fine, as Redis's no_mandatory_keys says.
script_keys = keys_counted(2, at_least=0)


async def _eval(client: Client, argv: list[bytes], *, by_sha: bool, read_only: bool) -> Reply:
    numkeys = parse_int(argv[2])
    if numkeys > len(argv) - 3:
        raise ErrorReply("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise ErrorReply("ERR Number of keys can't be negative")
    scripting = client.server.scripting
    if by_sha:
        sha = argv[1].decode("latin-1").lower()
        function = scripting.scripts.get(sha) if len(sha) == 40 else None
        if function is None:
            raise NOSCRIPT
        flags = scripting.flags.get(sha)
    else:
        parsed = parse_shebang(argv[1])
        if isinstance(parsed, ErrorReply):
            raise parsed
        flags = parsed
        sha, function = scripting.load(argv[1])
        if isinstance(function, ErrorReply):
            raise function
        scripting.flags[sha] = flags
    if flags is not None:  # a script with a shebang declares what it does
        if b"no-writes" not in flags:
            if read_only:
                raise ErrorReply("ERR Can not execute a script with write flag using *_ro command.")
        else:
            read_only = True
    keys = argv[3 : 3 + numkeys]
    args = argv[3 + numkeys :]
    return await scripting.run(client, sha, function, keys, args, read_only)


@commands.command("eval", arity=-3, flags=EVAL_FLAGS, find_keys=script_keys, group="scripting")
async def eval_(client: Client, argv: list[bytes]) -> Reply:
    """Execute a Lua script server side."""
    return await _eval(client, argv, by_sha=False, read_only=False)


@commands.command("evalsha", arity=-3, flags=EVAL_FLAGS, find_keys=script_keys, group="scripting")
async def evalsha(client: Client, argv: list[bytes]) -> Reply:
    """Execute a Lua script server side, by its SHA1 digest."""
    return await _eval(client, argv, by_sha=True, read_only=False)


@commands.command(
    "eval_ro", arity=-3, flags=["readonly", *EVAL_FLAGS], find_keys=script_keys, group="scripting"
)
async def eval_ro(client: Client, argv: list[bytes]) -> Reply:
    """Execute a read-only Lua script server side."""
    return await _eval(client, argv, by_sha=False, read_only=True)


@commands.command(
    "evalsha_ro",
    arity=-3,
    flags=["readonly", *EVAL_FLAGS],
    find_keys=script_keys,
    group="scripting",
)
async def evalsha_ro(client: Client, argv: list[bytes]) -> Reply:
    """Execute a read-only Lua script server side, by its SHA1 digest."""
    return await _eval(client, argv, by_sha=True, read_only=True)


# SCRIPT's subcommands: arity as Redis declares them (counting "script" and the name)
_ARITY = {b"load": 3, b"exists": -3, b"flush": -2, b"kill": 2, b"help": 2, b"debug": 3}


@commands.command("script", arity=-2, flags=["noscript"], group="scripting")
def script(client: Client, argv: list[bytes]) -> Reply:
    """A container for Lua scripts management commands."""
    sub = argv[1].lower()
    server = client.server
    scripting = server.scripting
    arity = _ARITY.get(sub)
    if arity is None:
        return server.unknown_subcommand(argv)
    if len(argv) != arity if arity > 0 else len(argv) < -arity:
        name = sub.decode(errors="replace")
        raise ErrorReply(f"ERR wrong number of arguments for 'script|{name}' command")
    if sub == b"load":
        flags = parse_shebang(argv[2])
        if isinstance(flags, ErrorReply):
            raise flags
        sha, function = scripting.load(argv[2])
        if isinstance(function, ErrorReply):
            raise function
        scripting.flags[sha] = flags
        return sha.encode()
    if sub == b"exists":
        return [int(sha.decode("latin-1").lower() in scripting.scripts) for sha in argv[2:]]
    if sub == b"flush":
        if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
            raise ErrorReply("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
        scripting.flush()
        return OK
    if sub == b"kill":
        return scripting.kill()
    if sub == b"help":
        return [Status(line) for line in SCRIPT_HELP]
    raise ErrorReply("ERR SCRIPT DEBUG is not supported by this server")


# -- functions ---------------------------------------------------------------------


async def _fcall(client: Client, argv: list[bytes], *, read_only: bool) -> Reply:
    """fcallCommandGeneric, then scriptPrepareForRun's checks."""
    scripting = client.server.scripting
    function = scripting.functions.function(argv[1])
    if function is None:
        raise ErrorReply("ERR Function not found")
    numkeys = parse_int(argv[2], "ERR Bad number of keys provided")
    if numkeys > len(argv) - 3:
        raise ErrorReply("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise ErrorReply("ERR Number of keys can't be negative")
    if b"no-writes" not in function.flags:
        if read_only:
            raise ErrorReply("ERR Can not execute a script with write flag using *_ro command.")
    else:
        read_only = True  # its writes fail inside, as a read-only script's
    keys = argv[3 : 3 + numkeys]
    args = argv[3 + numkeys :]
    return await scripting.fcall(client, function, keys, args, read_only, list(argv))


@commands.command(
    "fcall", arity=-3, flags=EVAL_FLAGS, find_keys=script_keys, group="scripting"
)  # fmt: skip
async def fcall(client: Client, argv: list[bytes]) -> Reply:
    """Invoke a function."""
    return await _fcall(client, argv, read_only=False)


@commands.command(
    "fcall_ro", arity=-3, flags=["readonly", *EVAL_FLAGS], find_keys=script_keys, group="scripting"
)
async def fcall_ro(client: Client, argv: list[bytes]) -> Reply:
    """Invoke a read-only function."""
    return await _fcall(client, argv, read_only=True)


FUNCTION_HELP = [
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, "
    "can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a "
    "restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
    "replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance "
    "of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
]

# FUNCTION's subcommands: arity as Redis declares them (counting "function" and the name)
_FUNCTION_ARITY = {
    b"load": -3, b"delete": 3, b"list": -2, b"stats": 2, b"kill": 2, b"flush": -2, b"dump": 2,
    b"restore": -3, b"help": 2,
}  # fmt: skip


@commands.command("function", arity=-2, group="scripting")
async def function_command(client: Client, argv: list[bytes]) -> Reply:
    """A container for function commands."""
    sub = argv[1].lower()
    server = client.server
    scripting = server.scripting
    arity = _FUNCTION_ARITY.get(sub)
    if arity is None:
        return server.unknown_subcommand(argv)
    if len(argv) != arity if arity > 0 else len(argv) < -arity:
        name = sub.decode(errors="replace")
        raise ErrorReply(f"ERR wrong number of arguments for 'function|{name}' command")
    if client is scripting.client and sub != b"help":
        # from a script (redis.call): every subcommand but HELP is flagged noscript in Redis
        raise ErrorReply("ERR This Redis command is not allowed from script")
    if sub == b"load":
        return await _function_load(client, argv)
    if sub == b"delete":
        if not scripting.functions.delete(argv[2]):
            raise ErrorReply("ERR Library not found")
        return OK
    if sub == b"list":
        return _function_list(scripting.functions, argv)
    if sub == b"stats":
        return scripting.function_stats()
    if sub == b"kill":
        return scripting.kill(function=True)
    if sub == b"flush":
        if len(argv) > 3:
            return _subcommand_syntax(argv)
        if len(argv) == 3 and argv[2].lower() not in (b"sync", b"async"):
            raise ErrorReply("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
        scripting.flush_functions()
        return OK
    if sub == b"dump":  # LZF is pure Python: compressed in a worker thread
        codes = [library.code for library in scripting.functions.libraries.values()]
        return await trio.to_thread.run_sync(dump_payload, codes)
    if sub == b"restore":
        return await _function_restore(client, argv)
    name = argv[0].decode(errors="replace").upper()
    head = f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return [Status(line) for line in (head, *FUNCTION_HELP)]


async def _function_load(client: Client, argv: list[bytes]) -> Reply:
    """FUNCTION LOAD [REPLACE] code: the library's name."""
    replace = False
    for option in argv[2:-1]:
        if option.lower() != b"replace":
            raise ErrorReply(f"ERR Unknown option given: {_text(option)}")
        replace = True
    scripting = client.server.scripting
    return await scripting.create_library(client, argv[-1], scripting.functions, replace=replace)


async def _function_restore(client: Client, argv: list[bytes]) -> Reply:
    """FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]: every library of the
    payload, or none (each loaded as FUNCTION LOAD loads it, then all joined)."""
    if len(argv) > 4:
        return _subcommand_syntax(argv)
    policy = argv[3].lower() if len(argv) == 4 else b"append"
    if policy not in (b"append", b"replace", b"flush"):
        raise ErrorReply(
            "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
        )
    scripting = client.server.scripting
    restored = Libraries()
    # checked and expanded in a worker thread: the event loop goes on meanwhile
    codes, unreadable = await trio.to_thread.run_sync(read_all, argv[2], scripting.memory_limit())
    for code in codes:
        loaded = await scripting.create_library(client, code, restored, replace=False)
        if isinstance(loaded, ErrorReply):
            return loaded
    if unreadable is not None:
        raise ErrorReply(f"ERR {unreadable}")
    if policy == b"flush":
        scripting.functions = restored
        return OK
    error = scripting.functions.join(restored, replace=policy == b"replace")
    if error is not None:
        raise ErrorReply(f"ERR {error}")
    return OK


def _function_list(libraries: Libraries, argv: list[bytes]) -> Reply:
    """FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE], each option once, any order."""
    with_code = False
    pattern: bytes | None = None
    index = 2
    while index < len(argv):
        option = argv[index].lower()
        if not with_code and option == b"withcode":
            with_code = True
            index += 1
            continue
        if pattern is None and option == b"libraryname":
            if index >= len(argv) - 1:
                raise ErrorReply("ERR library name argument was not given")
            pattern = argv[index + 1]
            index += 2
            continue
        raise ErrorReply(f"ERR Unknown argument {_text(argv[index])}")
    return [_library_reply(library, with_code) for library in libraries.matching(pattern)]


def _library_reply(library: Library, with_code: bool) -> dict[bytes, Any]:
    reply: dict[bytes, Any] = {
        b"library_name": library.name,
        b"engine": library.engine,
        b"functions": [
            {
                b"name": function.name,
                b"description": function.description,
                b"flags": _FlagSet(Status(flag.decode()) for flag in function.flags),
            }
            for function in library.functions.values()
        ],
    }
    if with_code:
        reply[b"library_code"] = library.code
    return reply


class _FlagSet(frozenset[Status]):
    """A function's flags, a set (RESP3) that lists them in Redis's order."""

    def __iter__(self) -> Iterator[Status]:
        members = set(super().__iter__())
        return iter([flag for flag in _FLAG_NAMES if flag in members])


_FLAG_NAMES = [Status(flag.decode()) for flag in FUNCTION_FLAGS]


def _subcommand_syntax(argv: list[bytes]) -> ErrorReply:
    """addReplySubcommandSyntaxError: the subcommand as sent."""
    sub = argv[1].decode(errors="replace")[:128]
    return ErrorReply(
        f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
        f"Try {argv[0].decode(errors='replace').upper()} HELP."
    )


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "surrogateescape")

# Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (LOAD, EXISTS,
# FLUSH, KILL, HELP), with Redis 7's replies and errors. The interpreter,
# the sandbox and running a script atomically are _scripting.py's.
from __future__ import annotations

from .._app import RespApp
from .._args import parse_int
from .._client import Client
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

EVAL_FLAGS = ["noscript", "skip_monitor", "stale"]


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


@commands.command("eval", arity=-3, flags=EVAL_FLAGS, group="scripting")
async def eval_(client: Client, argv: list[bytes]) -> Reply:
    """Execute a Lua script server side."""
    return await _eval(client, argv, by_sha=False, read_only=False)


@commands.command("evalsha", arity=-3, flags=EVAL_FLAGS, group="scripting")
async def evalsha(client: Client, argv: list[bytes]) -> Reply:
    """Execute a Lua script server side, by its SHA1 digest."""
    return await _eval(client, argv, by_sha=True, read_only=False)


@commands.command("eval_ro", arity=-3, flags=["readonly", *EVAL_FLAGS], group="scripting")
async def eval_ro(client: Client, argv: list[bytes]) -> Reply:
    """Execute a read-only Lua script server side."""
    return await _eval(client, argv, by_sha=False, read_only=True)


@commands.command("evalsha_ro", arity=-3, flags=["readonly", *EVAL_FLAGS], group="scripting")
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

# Running a command, as Redis's processCommand() and call() do: the checks
# (unknown command, arity, AUTH, the user's ACL permissions, a subscribed
# RESP2 client), MULTI queueing, running the handler (its errors counted, its
# crashes logged and answered), then serving the clients blocked on keys it
# changed. The one way anything runs a command: a connection (the driver),
# EXEC and scripts alike.
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from netsvc import ConnectionLost, ReceiveTimeout, SendTimeout

from ._acl import check
from ._app import CommandSpec, RespApp, unknown_command, wrong_arity
from ._client import Client
from ._reply import QUEUED, ErrorReply, Reply

if TYPE_CHECKING:
    from ._scripting import ScriptRun as ScriptRunLike

__all__ = ["NOAUTH", "Call", "call", "dispatch", "execute", "script_call"]

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
    if not client.authenticated and "no_auth" not in spec.flags and server.acl.auth_required:
        return server.count_error(NOAUTH)
    if client.restricted:  # ACL: the one test a user who may run anything pays
        denied = server.acl_denied(client, spec, argv)
        if denied is not None:
            return _refuse_in_multi(client, denied)
    if server.scripting.running is not None:  # SCRIPTING: another client's script runs
        verdict = server.scripting.admit(spec, argv)
        if verdict is True:
            return HOLD  # call() waits for the script's end (or BUSY time)
        if verdict is not False:
            return _refuse_in_multi(client, verdict)  # BUSY
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
    if spec is _HOLD_SPEC:  # SCRIPTING: dispatched while a script ran
        await client.server.scripting.wait_turn()
        reply = dispatch(client, argv)
        if type(reply) is Call:
            reply = await call(client, reply.spec, argv)
        return reply
    reply = await execute(client, spec, argv)
    server = client.server
    if server.keyspace.ready:
        server.blocking.serve_ready()
    return reply


async def execute(client: Client, spec: CommandSpec, argv: list[bytes]) -> Reply:
    """Run any command (sync or async) whose checks have passed, serving no
    blocked client: EXEC runs its queue with it, and serving comes after.
    EXEC's commands are checked again against the user's ACL rules, which
    may have changed since they were queued (a script's client, which has
    no link, had its calls checked by script_call)."""
    if client.in_exec and client.restricted and client.link is not None:
        denied = _denied_at_exec(client, spec, argv)
        if denied is not None:
            return denied
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


# EXEC's words for a queued command the user may no longer run, per reason
EXEC_DENIALS = {
    "command": "no permission to execute the command or subcommand",
    "key": "no permission to touch the specified keys",
    "channel": "no permission to access one of the channels used as arguments",
}


def _denied_at_exec(client: Client, spec: CommandSpec, argv: list[bytes]) -> ErrorReply | None:
    denial = check(client.user, spec, argv)
    if denial is None:
        return None
    server = client.server
    server.log_denial(client, denial.reason_name, "multi", denial.object, client.user.name)
    return server.count_error(
        ErrorReply(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and "
            "the EXEC call. This command is no longer allowed for the following reason: "
            + EXEC_DENIALS[denial.reason_name]
        )
    )


def _refuse_in_multi(client: Client, error: ErrorReply) -> ErrorReply:
    if client.multi is not None:
        client.multi_failed = True
    return client.server.count_error(error)


# -- scripts (SCRIPTING) -----------------------------------------------------
# While a script runs, dispatch() answers every other client's command with
# HOLD: call() awaits the script's end, or busy-reply-threshold, then
# dispatches it again (past the threshold: BUSY unless allow_busy).


async def _never_called(client: Client, argv: list[bytes]) -> Reply:
    raise AssertionError("HOLD is handled by call()")


_HOLD_SPEC = CommandSpec(
    name="(held while a script runs)", handler=_never_called, arity=-1, flags=frozenset(),
    is_async=True,
)  # fmt: skip
HOLD = Call(_HOLD_SPEC)

# Commands Redis 7.0 flags noscript (whole commands, or some subcommands)
# that netsvc's built-in specs do not flag: refused from scripts all the same.
NOSCRIPT_COMMANDS: dict[bytes, frozenset[bytes] | None] = {
    name: None
    for name in (
        b"auth", b"blmove", b"blpop", b"brpop", b"bzpopmax", b"bzpopmin", b"discard",
        b"exec", b"hello", b"multi", b"psubscribe", b"punsubscribe", b"quit", b"reset",
        b"subscribe", b"unsubscribe", b"unwatch", b"watch",
    )
}  # fmt: skip
NOSCRIPT_COMMANDS[b"client"] = frozenset(
    {
        b"caching", b"getname", b"getredir", b"id", b"info", b"kill", b"list", b"no-evict",
        b"pause", b"reply", b"setname", b"tracking", b"trackinginfo", b"unblock", b"unpause",
        b"no-touch",
    }
)  # fmt: skip
NOSCRIPT_COMMANDS[b"config"] = frozenset({b"get", b"resetstat", b"rewrite", b"set"})


def _noscript(spec: CommandSpec, argv: list[bytes]) -> bool:
    if "noscript" in spec.flags:
        return True
    if spec.name_bytes not in NOSCRIPT_COMMANDS:
        return False
    subs = NOSCRIPT_COMMANDS[spec.name_bytes]
    return subs is None or (len(argv) > 1 and argv[1].lower() in subs)


def script_call(client: Client, argv: list[bytes], run: ScriptRunLike) -> Reply:
    """Run one redis.call from a script (on the trio thread) with Redis's
    script checks (scriptCall): unknown command, arity, noscript, writes
    from a read-only script. Blocking commands answer at once (the script's
    client has in_exec set); clients blocked on keys are served after the
    whole script, by the EVAL's own call()."""
    app: RespApp = client.server.app
    spec = app.lookup_cached(argv[0]) or app.lookup(argv[0])
    if spec is None:
        return ErrorReply("ERR Unknown Redis command called from script")
    if not spec.arity_ok(len(argv)):
        return ErrorReply("ERR Wrong number of args calling Redis command from script")
    if _noscript(spec, argv):
        return ErrorReply("ERR This Redis command is not allowed from script")
    caller = run.caller
    if caller.restricted:
        denial = check(caller.user, spec, argv)
        if denial is not None:  # Redis 7.2's scriptVerifyACL
            server = client.server
            server.log_denial(caller, denial.reason_name, "lua", denial.object, caller.user.name)
            return ErrorReply("ERR ACL failure in script: " + denial.message(caller.user))
    if "write" in spec.flags:
        if run.read_only:
            return ErrorReply("ERR Write commands are not allowed from read-only scripts.")
        run.wrote = True
    if not spec.is_async:
        return _run(client, spec, argv)
    coroutine = execute(client, spec, argv)
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()  # it wanted to wait: never from a script
    return client.server.count_error(ErrorReply(f"ERR '{spec.name}' cannot wait in a script"))

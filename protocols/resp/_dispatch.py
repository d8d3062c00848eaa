# Running a command, as Redis's processCommand() and call() do: the checks
# (unknown command, arity, AUTH, the user's ACL permissions, a subscribed
# RESP2 client), holding it while CLIENT PAUSE is in force, MULTI queueing,
# running the handler (its errors counted, its crashes logged and answered;
# a CLIENT NO-TOUCH client's leaving access times alone), then serving the
# clients blocked on keys it changed. The one way anything runs a command: a
# connection (the driver), EXEC and scripts alike.
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from netsvc import ConnectionLost, ReceiveTimeout, SendTimeout

from ._acl import check
from ._app import CommandSpec, RespApp, unknown_command, wrong_arity
from ._client import Client
from ._pause import ALL
from ._reply import QUEUED, ErrorReply, Reply

if TYPE_CHECKING:
    from ._scripting import ScriptRun as ScriptRunLike

__all__ = ["NOAUTH", "Call", "call", "dispatch", "execute", "script_call"]

log = logging.getLogger("netsvc.resp")

SUBSCRIBED_ALLOWED: Final = frozenset(
    {b"ping", b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"quit", b"reset"}
)
MULTI_IMMEDIATE: Final = frozenset({b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"})
NOAUTH: Final = ErrorReply("NOAUTH Authentication required.")
# Commands Redis 7.0 refuses inside MULTI, before the ACL check (its no_multi
# flag: SHUTDOWN; SAVE, SYNC and PSYNC netsvc lacks). The flag alone does
# not decide: netsvc's table also flags no_multi commands that MULTI runs
# at once or queues (MULTI, EXEC, AUTH, HELLO...).
REFUSED_IN_MULTI: Final = frozenset({b"shutdown"})
NOT_IN_MULTI: Final = ErrorReply("ERR Command not allowed inside a transaction")


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
        return _refuse(client, unknown_command(argv), None)
    arity = spec.arity
    if len(argv) != arity if arity > 0 else len(argv) < -arity:
        return _refuse(client, wrong_arity(spec.name), spec)
    if not client.authenticated and "no_auth" not in spec.flags and server.acl.auth_required:
        return _refuse(client, NOAUTH, spec)
    if client.multi is not None and spec.name_bytes in REFUSED_IN_MULTI:
        return _refuse(client, NOT_IN_MULTI, spec)
    if client.restricted:  # ACL: the one test a user who may run anything pays
        denied = server.acl_denied(client, spec, argv)
        if denied is not None:
            return _refuse(client, denied, spec)
    name = spec.name_bytes
    if (  # before a busy script's BUSY, as in Redis's processCommand
        (client.channels or client.patterns)
        and client.protocol == 2
        and name not in SUBSCRIBED_ALLOWED
    ):
        message = (
            f"ERR Can't execute '{spec.name}': only (P|S)SUBSCRIBE / "
            "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )
        return _refuse(client, ErrorReply(message), spec)
    busy_allowed = False
    if server.scripting.running is not None:  # SCRIPTING: another client's script runs
        verdict = server.scripting.admit(spec, argv)
        if verdict is True:
            return HOLD  # call() waits for the script's end (or BUSY time)
        if verdict is not False:
            return _refuse(client, verdict, spec)  # BUSY
        busy_allowed = True  # past busy-reply-threshold, and allowed then (SCRIPT KILL)
    if server.pause.active and held_by_pause(client, spec, argv, busy_allowed=busy_allowed):
        return PAUSED  # call() waits in the pause's line, then dispatches it again
    if client.multi is not None and name not in MULTI_IMMEDIATE:
        client.multi.append((spec, argv))
        return QUEUED
    if spec.is_async:
        return Call(spec)
    if client.no_touch:
        reply = _run_untouching(client, spec, argv)
    else:
        reply = _run_handler(client, spec, argv)
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
    if spec is _PAUSED_SPEC:
        return await _after_pause(client, argv)
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
    """Run a synchronous command whose checks have passed (dispatch() makes
    the same no_touch test inline)."""
    if client.no_touch:
        return _run_untouching(client, spec, argv)
    return _run_handler(client, spec, argv)


def _run_handler(client: Client, spec: CommandSpec, argv: list[bytes]) -> Reply:
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


def _run_untouching(
    client: Client, spec: CommandSpec, argv: list[bytes], *, by: Client | None = None
) -> Reply:
    """Run a command of a CLIENT NO-TOUCH client (or of a script `by` one):
    the keys it reads keep their access times (OBJECT IDLETIME, FREQ),
    except with TOUCH, as in Redis 7.2."""
    keyspace = client.server.keyspace
    keyspace.set_touching(spec.name_bytes == b"touch" and by is None)
    try:
        return _run_handler(client, spec, argv)
    finally:
        keyspace.set_touching(True)


def _crashed(client: Client, spec: CommandSpec) -> ErrorReply:
    if client.link is not None:
        client.link.count_error()
        client.link.log.exception("command %r failed", spec.name)
    else:
        log.exception("command %r failed", spec.name)
    error = ErrorReply(f"ERR internal error in '{spec.name}'; see the server log")
    return client.server.count_error(error)


# EXEC's words for a queued command the user may no longer run, per reason
EXEC_DENIALS: Final = {
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


def _refuse(client: Client, error: ErrorReply, spec: CommandSpec | None) -> ErrorReply:
    """A command refused before it runs, as Redis's rejectCommand: the
    transaction being queued fails, and EXEC itself (in MULTI or not) is
    refused as its transaction's abort: discarded, the reason in EXECABORT."""
    if spec is not None and spec.name_bytes == b"exec":
        client.multi = None  # discardTransaction: WATCHes go too, in MULTI or not
        client.unwatch_all()
        # the refusals Redis words itself (arity) come without their ERR code
        reason = error.message.removeprefix("ERR ")
        error = ErrorReply(f"EXECABORT Transaction discarded because of: {reason}")
    elif client.multi is not None:
        client.multi_failed = True
    return client.server.count_error(error)


# -- CLIENT PAUSE ---------------------------------------------------------------
# While a pause is in force, dispatch() answers the commands it holds with
# PAUSED: call() waits in the pause's line (_pause.py) for the pause's end
# and its turn, then dispatches the command again, then gives the turn on.

# Commands that are no writes but that Redis flags may_replicate: CLIENT PAUSE
# WRITE holds them too (EVAL, EVALSHA and FCALL: see held_by_pause).
MAY_REPLICATE: Final = frozenset({b"publish", b"spublish", b"pfcount"})
SCRIPT_CALLS: Final = frozenset({b"eval", b"evalsha", b"fcall"})
# Whatever runs a script: once held, it hands the line on as it starts
SCRIPTS: Final = SCRIPT_CALLS | {b"eval_ro", b"evalsha_ro", b"fcall_ro"}


def held_by_pause(
    client: Client, spec: CommandSpec, argv: list[bytes], *, busy_allowed: bool = False
) -> bool:
    """Whether the pause in force (if any) holds this command: with ALL
    every command, with WRITE those that may write or propagate (Redis's
    is_may_replicate_command): write commands, queued in MULTI too, PUBLISH,
    EXEC of a transaction that holds one, and scripts and functions unless
    they declare no-writes. The caller of CLIENT PAUSE is held too. Once
    the pause is over, any command joins the line until it is worked off,
    but for one that a script past busy-reply-threshold lets run
    (`busy_allowed`: SCRIPT KILL, SHUTDOWN NOSAVE): the command with the
    turn may be waiting for that script's end (_after_pause), and the line
    would wait for it forever."""
    pause = client.server.pause
    mode = pause.paused()
    if mode is None:
        return not busy_allowed and pause.waits_for_line(client)
    return mode == ALL or _may_write(client, spec, argv)


def _may_write(client: Client, spec: CommandSpec, argv: list[bytes]) -> bool:
    name = spec.name_bytes
    if name == b"exec":
        queued = client.multi or []
        return any(_may_write(client, each, args) for each, args in queued)
    if name in SCRIPT_CALLS:
        return not client.server.scripting.declares_no_writes(name, argv)
    sub = spec.subcommands.get(argv[1].lower()) if spec.subcommands and len(argv) > 1 else None
    if sub is not None:  # XGROUP CREATE, FUNCTION LOAD: the subcommand's flags
        return "write" in sub.flags
    return "write" in spec.flags or name in MAY_REPLICATE


async def _after_pause(client: Client, argv: list[bytes]) -> Reply:
    """Wait in the pause's line, then run the command (None if the client
    left meanwhile: nothing is sent). The next one in line runs once this
    one has run, or has started to block (BLPOP, WAIT, held again)."""
    pause = client.server.pause
    spec = client.server.app.lookup(argv[0])
    assert spec is not None, "dispatch() found it"
    if not await pause.hold(client, lambda: held_by_pause(client, spec, argv)):
        client.close_after_reply = client.killed = True  # it never runs: nothing is sent
        return None
    handed_on = False

    def hand_on() -> None:
        nonlocal handed_on
        if not handed_on:
            handed_on = True
            pause.release_next()

    client.when_blocked = hand_on
    scripting = client.server.scripting
    try:
        # Another client's script may run (one released from the line just
        # before): this command keeps the line's turn until it ends, or the
        # next in line would wait for the script's end beside it and run
        # first as often as not. Past busy-reply-threshold too, whatever the
        # command: Redis runs its postponed clients once the script ends
        # (not with BUSY; a held SCRIPT KILL finds it over), and drops those
        # whose client has left meanwhile, or all of them if SHUTDOWN ended it.
        while (run := scripting.running) is not None:
            if scripting.admit(spec, argv) is True:
                await scripting.wait_turn()  # until the script ends or passes the threshold
                continue
            if client.link is not None:
                await client.link.wait_blocked(run.done)  # ends early if the client leaves
            else:
                await run.done.wait()
            if not run.done.is_set() or client.server.stopping:
                client.close_after_reply = client.killed = True  # it never runs
                return None
        reply = dispatch(client, argv)  # held again if a new pause began meanwhile
        if type(reply) is Call:
            if spec.name_bytes in SCRIPTS:
                # a script holds the server itself (others wait or get BUSY),
                # and may run until SCRIPT KILL: the line must not wait on it
                hand_on()
            reply = await call(client, reply.spec, argv)
    finally:
        client.when_blocked = None
        hand_on()
    return reply


async def _never_called(client: Client, argv: list[bytes]) -> Reply:
    raise AssertionError("PAUSED and HOLD are handled by call()")


_PAUSED_SPEC: Final = CommandSpec(
    name="(held by CLIENT PAUSE)", handler=_never_called, arity=-1, flags=frozenset({"blocking"}),
    is_async=True,
)  # fmt: skip
PAUSED: Final = Call(_PAUSED_SPEC)  # "blocking": the driver sends the replies before it first


# -- scripts (SCRIPTING) -----------------------------------------------------
# While a script runs, dispatch() answers every other client's command with
# HOLD: call() awaits the script's end, or busy-reply-threshold, then
# dispatches it again (past the threshold: BUSY unless allow_busy).


_HOLD_SPEC: Final = CommandSpec(
    name="(held while a script runs)", handler=_never_called, arity=-1, flags=frozenset(),
    is_async=True,
)  # fmt: skip
HOLD: Final = Call(_HOLD_SPEC)

# Commands Redis 7.0 flags noscript (whole commands, or some subcommands)
# that netsvc's built-in specs do not flag: refused from scripts all the same.
NOSCRIPT_COMMANDS: Final[dict[bytes, frozenset[bytes] | None]] = {
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
    if spec.subcommands and len(argv) > 1:  # ACL SETUSER, CLIENT SETINFO...: their own flags
        sub = spec.subcommands.get(argv[1].lower())
        if sub is not None and "noscript" in sub.flags:
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
        if caller.no_touch:
            return _run_untouching(client, spec, argv, by=caller)
        return _run_handler(client, spec, argv)
    coroutine = execute(client, spec, argv)
    keyspace = client.server.keyspace
    keyspace.set_touching(not caller.no_touch)  # XREAD, BLMPOP: as _run_untouching
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    finally:
        keyspace.set_touching(True)
    coroutine.close()  # it wanted to wait: never from a script
    return client.server.count_error(ErrorReply(f"ERR '{spec.name}' cannot wait in a script"))

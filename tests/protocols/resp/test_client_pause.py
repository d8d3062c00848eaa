# CLIENT PAUSE and CLIENT UNPAUSE against a real redis-server: the same
# scenario on both servers, replies compared byte for byte in RESP2 and
# RESP3. WRITE holds write commands (queued in MULTI too), PUBLISH, EXEC of a
# transaction that writes and scripts that may write, everyone's and the
# caller's own; reads, read-only scripts and WAIT run at once; held commands
# run in the order they arrived once the pause ends (UNPAUSE or its time),
# replies already due are sent before; a held client that leaves never runs
# its command; ALL holds every command. CLIENT UNBLOCK does not release a
# held client (Redis 7.2; 7.0 crashes), and keys do not expire meanwhile.
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from tests.protocols.resp.respclient import RespClient, encode_command
from tests.protocols.resp.test_zset_blocking import Raw, Scenario, Transcript, both
from tests.protocols.resp.waiting import blocked_clients, until_blocked

HELD: list[tuple[str, ...]] = [
    ("RPUSH", "l", "0"),
    ("PUBLISH", "channel", "message"),
    ("EVAL", "return redis.call('RPUSH', 'l', '2')", "0"),  # no shebang: it may write
    ("EVAL", "#!lua\nreturn redis.call('RPUSH', 'l', '3')", "0"),
    ("MULTI",),  # not held; the SET queued after it is
    ("SET", "k", "held in MULTI"),
    ("RPUSH", "l", "6"),
    ("XGROUP", "CREATE", "stream", "group", "$", "MKSTREAM"),  # a subcommand that writes
    ("FUNCTION", "DELETE", "no such library"),
    ("BLPOP", "l2", "0"),  # held, then blocks once it runs
]


def held_in_order(port: int, protocol: int) -> Transcript:
    admin, reader = Raw(port, protocol), Raw(port, protocol)
    writers = [Raw(port, protocol) for _ in HELD]
    out = [admin.call("DEL", "l", "l2", "k", "stream")]
    out.append(admin.call("CLIENT", "PAUSE", "100000", "WRITE"))
    # what cannot write runs at once
    out.append(reader.call("LRANGE", "l", "0", "-1"))
    out.append(reader.call("EVAL_RO", "return 1", "0"))
    out.append(reader.call("EVAL", "#!lua flags=no-writes\nreturn 2", "0"))
    out.append(reader.call("WAIT", "0", "0"))
    out.append(reader.call("PING"))
    out.append(reader.call("XINFO", "STREAM", "nothing"))
    blocked = 0
    for writer, command in zip(writers, HELD, strict=True):
        if command == ("SET", "k", "held in MULTI"):
            writer = writers[HELD.index(("MULTI",))]  # the MULTI's client sends it
        writer.send(*command)
        if command == ("MULTI",):
            out.append(writer.reply())
            continue
        blocked += 1
        until_blocked(port, blocked)
    # a pipeline: the GET's reply is sent while the SET behind it is held
    reader.sock.sendall(encode_command("GET", "k") + encode_command("SET", "k", "late"))
    out.append(reader.reply())
    until_blocked(port, blocked + 1)
    out.append(admin.call("CLIENT", "UNPAUSE"))
    for writer, command in zip(writers, HELD, strict=True):
        if command not in (("MULTI",), ("SET", "k", "held in MULTI"), ("BLPOP", "l2", "0")):
            out.append(writer.reply())
    multi = writers[HELD.index(("MULTI",))]
    out.append(multi.reply())  # QUEUED, once the pause ended
    out.append(multi.call("EXEC"))
    out.append(reader.reply())
    out.append(admin.call("LRANGE", "l", "0", "-1"))  # in the order they arrived
    out.append(admin.call("GET", "k"))
    out.append(admin.call("XINFO", "GROUPS", "stream"))
    out.append(admin.call("DEL", "stream"))
    out.append(admin.call("RPUSH", "l2", "x"))
    out.append(writers[-1].reply())  # the BLPOP ran, blocked, and is served
    for client in (admin, reader, *writers):
        client.close()
    return out


def held_client_leaves(port: int, protocol: int) -> Transcript:
    admin, leaving, killed, staying = (Raw(port, protocol) for _ in range(4))
    out = [admin.call("DEL", "gone", "killed", "stays")]
    killed_id = killed.call("CLIENT", "ID")[1:-2].decode()
    out.append(admin.call("CLIENT", "PAUSE", "100000", "WRITE"))
    out.append(admin.call("CLIENT", "PAUSE", "1", "WRITE"))  # a shorter pause does not shorten it
    time.sleep(0.1)
    leaving.send("SET", "gone", "1")
    until_blocked(port, 1)
    killed.send("SET", "killed", "1")
    until_blocked(port, 2)
    staying.send("SET", "stays", "1")
    until_blocked(port, 3)
    leaving.close()
    until_blocked(port, 2)
    out.append(admin.call("CLIENT", "KILL", "ID", killed_id))
    until_blocked(port, 1)
    out.append(admin.call("CLIENT", "UNPAUSE"))
    out.append(staying.reply())
    out.append(admin.call("EXISTS", "gone", "killed", "stays"))
    for client in (admin, killed, staying):
        client.close()
    return out


# A script that runs for a while (80 ms by the server's clock), then pushes
SLOW_PUSH = """
local function now() local t = redis.call('TIME'); return t[1] * 1000000 + t[2] end
local start = now()
while now() - start < 80000 do end
return redis.call('RPUSH', KEYS[1], ARGV[1])
"""


def held_behind_a_script(port: int, protocol: int) -> Transcript:
    # Released from the pause's line, a script runs and the line goes on
    # (the script holds the server); a command that then finds it running
    # keeps the line's turn until it has run itself, or the next in line
    # would wait for the script's end beside it and wake before it half the
    # time (found by CI under load). Rounds, so that the order cannot hold
    # by chance.
    admin, slow, second, third = (Raw(port, protocol) for _ in range(4))
    out = []
    for _ in range(6):
        out.append(admin.call("DEL", "l"))
        out.append(admin.call("CLIENT", "PAUSE", "100000", "WRITE"))
        slow.send("EVAL", SLOW_PUSH, "1", "l", "slow")
        until_blocked(port, 1)
        second.send("EVAL", "return redis.call('RPUSH', KEYS[1], ARGV[1])", "1", "l", "second")
        until_blocked(port, 2)
        third.send("RPUSH", "l", "third")
        until_blocked(port, 3)
        out.append(admin.call("CLIENT", "UNPAUSE"))
        out += [slow.reply(), second.reply(), third.reply()]
        out.append(admin.call("LRANGE", "l", "0", "-1"))
    for client in (admin, slow, second, third):
        client.close()
    return out


# The same, for 600 ms; and one that loops until SCRIPT KILL
SLOWER_PUSH = SLOW_PUSH.replace("80000", "600000")
ENDLESS_PUSH = "while true do end\nreturn redis.call('RPUSH', KEYS[1], ARGV[1])"


@contextlib.contextmanager
def busy_after_100_ms(
    port: int, protocol: int, count: int
) -> Iterator[tuple[Transcript, list[Raw]]]:
    """`count` clients, the first an admin that sets busy-reply-threshold to
    100 ms (its reply starts the transcript); the threshold put back and
    every client closed after."""
    clients = [Raw(port, protocol) for _ in range(count)]
    out = [clients[0].call("CONFIG", "SET", "busy-reply-threshold", "100")]
    try:
        yield out, clients
    finally:
        clients[0].call("CONFIG", "SET", "busy-reply-threshold", "5000")
        for client in clients:
            client.close()


def held_behind_a_busy_script(port: int, protocol: int) -> Transcript:
    # The command whose turn comes while a script released before it runs
    # past busy-reply-threshold is not answered BUSY, as a new command is:
    # it runs once the script ends, as Redis runs its postponed clients. And
    # SCRIPT KILL, which may run then, does not join the line behind it: it
    # would wait for the end of the script it is there to end.
    with busy_after_100_ms(port, protocol, 4) as (out, [admin, slow, second, other]):
        for script in (SLOWER_PUSH, ENDLESS_PUSH):
            out.append(admin.call("DEL", "l"))
            out.append(admin.call("CLIENT", "PAUSE", "100000", "WRITE"))
            slow.send("EVAL", script, "1", "l", "slow")
            until_blocked(port, 1)
            second.send("RPUSH", "l", "second")
            until_blocked(port, 2)
            out.append(admin.call("CLIENT", "UNPAUSE"))
            time.sleep(0.25)  # the script runs, past the threshold
            out.append(other.call("PING"))  # BUSY
            if script is ENDLESS_PUSH:
                out.append(other.call("SCRIPT", "KILL"))
            out += [slow.reply(), second.reply()]
            out.append(admin.call("LRANGE", "l", "0", "-1"))
    return out


def held_leaves_behind_a_busy_script(port: int, protocol: int) -> Transcript:
    # A held client that leaves while its command waits for a busy script's
    # end is dropped, its command never run (Redis reads its close then)
    with busy_after_100_ms(port, protocol, 3) as (out, [admin, slow, second]):
        out.append(admin.call("DEL", "l"))
        out.append(admin.call("CLIENT", "PAUSE", "100000", "WRITE"))
        slow.send("EVAL", SLOWER_PUSH, "1", "l", "slow")
        until_blocked(port, 1)
        second.send("RPUSH", "l", "second")
        until_blocked(port, 2)
        out.append(admin.call("CLIENT", "UNPAUSE"))
        time.sleep(0.25)  # the script runs, past the threshold
        second.close()
        out.append(slow.reply())
        out.append(admin.call("LRANGE", "l", "0", "-1"))
    return out


def held_kill_behind_a_busy_script(port: int, protocol: int) -> Transcript:
    # A SCRIPT KILL held (ALL) behind a script runs once the script has
    # ended, as any held command: it finds none to kill
    with busy_after_100_ms(port, protocol, 3) as (out, [admin, slow, killer]):
        out.append(admin.call("DEL", "l"))
        out.append(admin.call("CLIENT", "PAUSE", "300", "ALL"))
        slow.send("EVAL", SLOWER_PUSH, "1", "l", "slow")
        time.sleep(0.05)  # in line first (ALL holds INFO too: no until_blocked)
        killer.send("SCRIPT", "KILL")
        out += [slow.reply(), killer.reply()]  # the pause ends by itself
        out.append(admin.call("LRANGE", "l", "0", "-1"))
    return out


def exec_while_a_script_is_busy(port: int, protocol: int) -> Transcript:
    # Not the pause's: EXEC refused by a busy script aborts its transaction
    # (EXECABORT with the BUSY reason; DISCARD then finds none), in MULTI or not
    with busy_after_100_ms(port, protocol, 3) as (out, [admin, slow, other]):
        out.append(admin.call("DEL", "l"))
        slow.send("EVAL", SLOWER_PUSH, "1", "l", "slow")
        time.sleep(0.25)  # the script runs, past the threshold
        for command in (("EXEC",), ("MULTI",), ("SET", "k", "v"), ("EXEC",), ("DISCARD",)):
            out.append(other.call(*command))
        out.append(slow.reply())
    return out


def refused_while_subscribed(port: int, protocol: int) -> Transcript:
    # Not the pause's either: RESP2's subscribed context refuses a command
    # before a busy script does, and EXEC so refused aborts (its WATCH goes)
    with busy_after_100_ms(port, protocol, 4) as (out, [admin, sub, slow, other]):
        out.append(admin.call("DEL", "l", "w", "y"))
        out += [sub.call("WATCH", "w"), sub.call("SUBSCRIBE", "ch"), sub.call("EXEC")]
        slow.send("EVAL", SLOWER_PUSH, "1", "l", "slow")
        time.sleep(0.25)  # the script runs, past the threshold
        out.append(sub.call("GET", "k"))
        out += [slow.reply(), sub.call("UNSUBSCRIBE"), other.call("SET", "w", "5")]
        out += [sub.call("MULTI"), sub.call("SET", "y", "1"), sub.call("EXEC")]
    return out


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize(
    "scenario",
    [
        held_in_order,
        held_client_leaves,
        held_behind_a_script,
        held_behind_a_busy_script,
        held_leaves_behind_a_busy_script,
        held_kill_behind_a_busy_script,
        exec_while_a_script_is_busy,
        refused_while_subscribed,
    ],
)
def test_client_pause_matches_redis(
    redis_port: int, netsvc_port: int, scenario: Scenario, protocol: int
) -> None:
    both(redis_port, netsvc_port, scenario, protocol)


ERRORS: list[tuple[str, ...]] = [
    ("CLIENT", "PAUSE"),
    ("CLIENT", "PAUSE", "x"),
    ("CLIENT", "PAUSE", "-1"),
    ("CLIENT", "PAUSE", "1.5"),
    ("CLIENT", "PAUSE", "x", "NEITHER"),  # the mode is read first
    ("CLIENT", "PAUSE", "10", "WRITE", "x"),
    ("CLIENT", "UNPAUSE", "x"),
    ("CLIENT", "PAUSE", "0"),  # no pause at all
    ("SET", "k", "not held"),
    ("CLIENT", "PAUSE", "0", "write"),
    ("CLIENT", "UNPAUSE"),
    ("CLIENT", "UNPAUSE"),
]


def errors(port: int, protocol: int) -> Transcript:
    client = Raw(port, protocol)
    out = [client.call(*call) for call in ERRORS]
    client.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
def test_client_pause_errors_match_redis(redis_port: int, netsvc_port: int, protocol: int) -> None:
    both(redis_port, netsvc_port, errors, protocol)


@pytest.mark.parametrize("server", ["redis", "netsvc"])
def test_pause_ends_by_itself_and_holds_its_caller(
    request: pytest.FixtureRequest, server: str
) -> None:
    port = request.getfixturevalue(f"{server}_port")
    with RespClient(port, timeout=20) as client, RespClient(port, timeout=20) as other:
        client.call("DEL", "k")
        assert client.call("CLIENT", "PAUSE", "400", "WRITE") == b"OK"
        started = time.monotonic()
        assert client.call("SET", "k", "v") == b"OK"  # the caller waits too
        assert time.monotonic() - started >= 0.3
        client.call("MULTI")
        client.call("SET", "k", "queued")
        assert other.call("CLIENT", "PAUSE", "400", "WRITE") == b"OK"
        started = time.monotonic()
        assert client.call("EXEC") == [b"OK"]  # a transaction that writes waits
        assert time.monotonic() - started >= 0.3
        assert other.call("CLIENT", "PAUSE", "400", "ALL") == b"OK"
        started = time.monotonic()
        assert client.call("PING") == b"PONG"  # ALL: every command waits
        assert time.monotonic() - started >= 0.3


def expired_keys(client: RespClient) -> int:
    info = client.call("INFO", "stats").decode()
    return int(info.split("expired_keys:")[1].split()[0])


@pytest.mark.parametrize("server", ["redis", "netsvc"])
def test_keys_do_not_expire_while_paused(request: pytest.FixtureRequest, server: str) -> None:
    port = request.getfixturevalue(f"{server}_port")
    with RespClient(port, timeout=20) as client:
        client.call("SELECT", "9")
        client.call("FLUSHDB")
        expired = expired_keys(client)
        client.call("SET", "short", "lived", "PX", "400")
        assert client.call("CLIENT", "PAUSE", "100000", "WRITE") == b"OK"
        time.sleep(1.0)  # Redis's active expiry (10 times a second) would have run
        # reads see it expired, and leave it there: the dataset stays as it is
        assert client.call("GET", "short") is None
        assert client.call("EXISTS", "short") == 0
        assert client.call("TTL", "short") == -2
        assert client.call("KEYS", "*") == []
        assert client.call("DBSIZE") == 1
        assert expired_keys(client) == expired
        # once the pause is over, a read removes it, and it counts as expired
        # (one pipeline: no active expiry can run before the GET)
        pipeline = [("CLIENT", "UNPAUSE"), ("GET", "short"), ("DBSIZE",)]
        client.send_raw(b"".join(encode_command(*command) for command in pipeline))
        assert [client.reply() for _ in pipeline] == [b"OK", None, 0]
        assert expired_keys(client) == expired + 1
        assert blocked_clients(port) == 0
        assert client.call("CONFIG", "RESETSTAT") == b"OK"
        assert expired_keys(client) == 0


def test_client_unblock_leaves_a_held_client_held(netsvc_port: int) -> None:
    # Redis 7.2 answers 0 (blockedClientMayTimeout: not for a pause); 7.0.15
    # crashes on this, so netsvc alone
    with RespClient(netsvc_port) as admin, RespClient(netsvc_port, timeout=20) as held:
        held_id = held.call("CLIENT", "ID")
        held.call("DEL", "unblock:k")
        assert admin.call("CLIENT", "PAUSE", "100000", "WRITE") == b"OK"
        held.send_raw(encode_command("SET", "unblock:k", "v"))
        until_blocked(netsvc_port, 1)
        flags = {
            line.split()[0]: line.split(" flags=")[1].split()[0]
            for line in admin.call("CLIENT", "LIST").decode().splitlines()
        }
        assert flags[f"id={held_id}"] == "b"
        assert admin.call("CLIENT", "UNBLOCK", held_id) == 0
        assert admin.call("CLIENT", "UNBLOCK", held_id, "ERROR") == 0
        assert admin.call("EXISTS", "unblock:k") == 0
        assert admin.call("CLIENT", "UNPAUSE") == b"OK"
        assert held.reply() == b"OK"
        assert admin.call("EXISTS", "unblock:k") == 1


LOOPING = (
    "#!lua name=looping\nredis.register_function{function_name='loop', "
    "callback=function() while true do end end, flags={'no-writes'}}"
)


@pytest.mark.parametrize(
    ("mode", "command", "kill"),
    [
        ("WRITE", ("EVAL", "while true do end", "0"), "SCRIPT"),  # declares no no-writes: held
        ("ALL", ("EVAL_RO", "while true do end", "0"), "SCRIPT"),
        ("ALL", ("FCALL_RO", "loop", "0"), "FUNCTION"),
    ],
)
def test_a_busy_script_after_a_pause_can_still_be_killed(
    netsvc_port: int, mode: str, command: tuple[str, ...], kill: str
) -> None:
    # held by the pause, the script runs when it ends, and loops: the clients
    # after it in line must not wait on it, or SCRIPT KILL never runs
    looper = Raw(netsvc_port, 2)
    with RespClient(netsvc_port) as admin:
        admin.call("CONFIG", "SET", "busy-reply-threshold", "100")
        admin.call("FUNCTION", "LOAD", "REPLACE", LOOPING)
        try:
            assert admin.call("CLIENT", "PAUSE", "300", mode) == b"OK"
            looper.send(*command)
            time.sleep(0.6)  # the pause is over; the script loops
            started = time.monotonic()
            with RespClient(netsvc_port, timeout=10) as killer:
                assert killer.call(kill, "KILL") == b"OK"
            assert time.monotonic() - started < 5
            looper.sock.settimeout(10)
            assert b"killed by user" in looper.reply()
        finally:
            admin.call("CONFIG", "SET", "busy-reply-threshold", "5000")
            admin.call("FUNCTION", "DELETE", "looping")
            looper.sock.close()


FILLER = ("-- " + "x" * 2000 + "\n") * 50  # 100 kB of comments: a library slow to dump or load


def library(name: str) -> str:
    return (
        f"#!lua name={name}\n{FILLER}redis.register_function('{name}_f', function() return 1 end)"
    )


@pytest.mark.parametrize("server", ["redis", "netsvc"])
def test_one_turn_at_a_time_when_a_renewed_pause_ends(
    request: pytest.FixtureRequest, server: str
) -> None:
    # Held by an ALL pause: a CLIENT PAUSE WRITE, a FUNCTION DUMP (a read:
    # the WRITE pause lets it run, and it holds the turn while netsvc dumps
    # on a thread), a FUNCTION RESTORE and an FCALL of what it restores
    # (writes: held until the short WRITE pause ends). The WRITE pause ends
    # while the dump still runs; the restore must still come before the
    # FCALL, as in Redis. (netsvc gave the turn away when the pause ended:
    # the restore started while the dump ran, and the dump's end gave the
    # FCALL a turn too, which ran before the restore was done.)
    port = request.getfixturevalue(f"{server}_port")
    clients = [RespClient(port, timeout=30) for _ in range(5)]
    admin, pauser, dumper, restorer, caller = clients
    try:
        admin.call("FUNCTION", "FLUSH")
        for index in range(24):
            admin.call("FUNCTION", "LOAD", library(f"restored{index}"))
        payload = admin.call("FUNCTION", "DUMP")
        admin.call("FUNCTION", "FLUSH")
        for index in range(4):
            admin.call("FUNCTION", "LOAD", library(f"dumped{index}"))
        assert admin.call("CLIENT", "PAUSE", "1500", "ALL") == b"OK"
        held = [
            (pauser, ("CLIENT", "PAUSE", "5", "WRITE")),
            (dumper, ("FUNCTION", "DUMP")),
            (restorer, ("FUNCTION", "RESTORE", payload)),
            (caller, ("FCALL", "restored1_f", "0")),
        ]
        for client, command in held:
            client.send_raw(encode_command(*command))
            time.sleep(0.2)  # in this order (an ALL pause holds INFO: nothing to wait on)
        assert pauser.reply() == b"OK"
        assert dumper.reply().startswith(b"\xf5")  # a payload
        assert restorer.reply() == b"OK"
        assert caller.reply() == 1  # after the restore
        assert blocked_clients(port) == 0
    finally:
        admin.call("FUNCTION", "FLUSH")
        for client in clients:
            client.close()

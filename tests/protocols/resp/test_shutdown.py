# SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: its refusals byte for byte
# as redis-server 7.0's (syntax, ABORT, MULTI, scripts, ACL, NOAUTH); and the
# stop itself from outside: redis-cli's and redis-py's SHUTDOWN end a `netsvc
# serve` process (exit 0, a log line naming the client), the asker gets no
# reply, blocked and idle clients are closed as at SIGTERM, and SHUTDOWN
# NOSAVE stops a server under a busy script at once, as it does Redis; no
# client's command runs after SHUTDOWN (Redis exits there).
# netsvc keeps nothing on disk: SAVE (without FORCE) is refused in Redis's
# words when it cannot save, the reason in the log.
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.protocols.resp.conftest import redis_server
from tests.protocols.resp.respclient import RespClient, encode_command, error
from tests.protocols.resp.test_acl_vs_redis import admin, as_user, compare, login
from tests.protocols.resp.waiting import until_blocked
from tests.serveprocess import ServeProcess, host_port

SERVE = ["--protocol", "resp", "--port", "0"]
EXIT = 20.0  # seconds a stopping server may take to exit: generous, the machine is shared
ASKED = r"SHUTDOWN asked by client id=\d+ addr=127\.0\.0\.1:\d+ user={user}{name}: "
CANNOT_SAVE = "ERR Errors trying to SHUTDOWN. Check logs."  # redis-server 7.0's words
WHY_NOT_SAVED = (
    "SHUTDOWN SAVE refused: SAVE asks for the data to be written to disk, and netsvc keeps "
    "none on disk; SHUTDOWN NOSAVE (or SHUTDOWN SAVE FORCE) stops the server without saving"
)


@pytest.fixture(scope="module")
def ports(netsvc_port: int, redis_port: int) -> Iterator[tuple[int, int]]:
    yield netsvc_port, redis_port


def raw_replies(port: int, *commands: tuple[str, ...]) -> list[bytes]:
    """Each command's reply as the server wrote it, on one connection."""
    with RespClient(port, timeout=10) as client:
        return [client.raw_call(*command) for command in commands]


REFUSALS: list[tuple[str, ...]] = [
    ("SHUTDOWN", "FOO"),
    ("SHUTDOWN", "NOSAVE", "BAR"),
    ("SHUTDOWN", "SAVE", "NOSAVE"),
    ("SHUTDOWN", "nosave", "save", "now"),
    ("SHUTDOWN", "ABORT", "NOW"),
    ("SHUTDOWN", "NOSAVE", "ABORT"),
    ("SHUTDOWN", "FORCE", "abort"),
    ("SHUTDOWN", "ABORT"),
    ("SHUTDOWN", "abort", "ABORT"),
    ("MULTI",),
    ("SHUTDOWN",),
    ("SHUTDOWN", "NOW"),
    ("SHUTDOWN", "ABORT"),
    ("EXEC",),
    ("MULTI",),
    ("SET", "k", "v"),
    ("SHUTDOWN", "NOSAVE"),
    ("EXEC",),
    ("EVAL", "return redis.call('SHUTDOWN')", "0"),
    ("EVAL", "return redis.pcall('SHUTDOWN', 'NOSAVE')", "0"),
    ("EVAL", "return redis.pcall('SHUTDOWN', 'ABORT')", "0"),
    ("COMMAND", "INFO", "shutdown"),
    ("ACL", "CAT", "admin"),
    ("PING",),
]


def test_refusals_as_redis_byte_for_byte(ports: tuple[int, int]) -> None:
    netsvc_port, redis_port = ports
    ours, theirs = raw_replies(netsvc_port, *REFUSALS), raw_replies(redis_port, *REFUSALS)
    for command, want, got in zip(REFUSALS, theirs, ours, strict=True):
        if command == ("ACL", "CAT", "admin"):  # netsvc has fewer commands: shutdown is there
            assert b"$8\r\nshutdown\r\n" in got and b"$8\r\nshutdown\r\n" in want
        else:
            assert got == want, command
    assert ours[-1] == b"+PONG\r\n"  # both still serve


def test_a_restricted_user_gets_noperm_as_redis(ports: tuple[int, int]) -> None:
    # SHUTDOWN is @admin @slow @dangerous; inside MULTI the refusal comes
    # before the ACL check, as in Redis
    compare(
        ports,
        [
            admin("ACL", "SETUSER", "amy", "on", ">pw", "~*", "+@all", "-@admin"),
            login("amy"),
            as_user("amy", "SHUTDOWN"),
            as_user("amy", "SHUTDOWN", "NOSAVE", "NOW", "FORCE"),
            as_user("amy", "SHUTDOWN", "ABORT"),
            as_user("amy", "MULTI"),
            as_user("amy", "SHUTDOWN"),
            as_user("amy", "EXEC"),
            admin("ACL", "SETUSER", "amy", "+shutdown"),
            as_user("amy", "SHUTDOWN", "ABORT"),
            admin("ACL", "DRYRUN", "amy", "SHUTDOWN"),
            admin("ACL", "SETUSER", "amy", "-@dangerous"),
            admin("ACL", "DRYRUN", "amy", "SHUTDOWN"),
            admin("PING"),
        ],
    )


def read_to_end(sock: socket.socket, timeout: float = EXIT) -> bytes:
    sock.settimeout(timeout)
    received = b""
    while data := sock.recv(65536):
        received += data
    return received


def test_redis_cli_shutdown_stops_the_server() -> None:
    cli = shutil.which("redis-cli")
    assert cli is not None, "redis-cli is missing (Debian package redis-tools)"
    # a long grace period: the clients below must not be what ends the wait
    with ServeProcess([*SERVE, "--graceful-timeout", "60"]) as server:
        port = host_port(server.urls[0])[1]
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as blocked,
            socket.create_connection(("127.0.0.1", port), timeout=10) as idle,
        ):
            blocked.sendall(encode_command("BLPOP", "queue", "0"))
            idle.sendall(encode_command("PING"))
            assert idle.recv(100) == b"+PONG\r\n"
            until_blocked(port, 1)
            started = time.monotonic()
            stop = subprocess.run(
                [cli, "-p", str(port), "SHUTDOWN"], capture_output=True, text=True, timeout=30
            )
            assert (stop.returncode, stop.stdout, stop.stderr) == (0, "", "")
            # as at SIGTERM: the blocked client gets its null reply, both the end
            assert read_to_end(blocked) == b"*-1\r\n"
            assert read_to_end(idle) == b""
            assert server.wait(EXIT) == 0
            assert time.monotonic() - started < EXIT
        server.wait_for_log(ASKED.format(user="default", name="") + "the server shuts down")
        assert "grace period over" not in server.log
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_redis_py_shutdown_ends_with_the_connection_closed() -> None:
    with ServeProcess(SERVE) as server:
        port = host_port(server.urls[0])[1]
        client = redis.Redis(port=port, client_name="deployer", socket_timeout=10)
        # SAVE: netsvc cannot save, so it refuses and goes on serving
        with pytest.raises(redis.ResponseError, match=f"^{re.escape(CANNOT_SAVE[4:])}$"):
            client.shutdown(save=True)
        with pytest.raises(redis.ResponseError, match=r"^No shutdown in progress\.$"):
            client.shutdown(abort=True)
        assert client.ping() is True
        server.wait_for_log(re.escape(WHY_NOT_SAVED))
        # redis-py's shutdown() succeeds only if the connection closes unanswered
        client.shutdown(nosave=True, now=True)
        assert server.wait(EXIT) == 0
        server.wait_for_log(ASKED.format(user="default", name=" name=deployer"))
        client.close()


def cannot_save(port: int) -> list[bytes]:
    return raw_replies(port, ("SHUTDOWN", "SAVE"), ("SHUTDOWN", "save", "NOW"), ("PING",))


def test_save_refused_as_by_a_redis_that_cannot_save(tmp_path: Path) -> None:
    # a redis-server whose directory is gone cannot write its RDB file
    workdir = tmp_path / "gone"
    workdir.mkdir()
    with redis_server(workdir) as redis_port:
        workdir.rmdir()
        theirs = cannot_save(redis_port)
    with ServeProcess(SERVE) as server:
        ours = cannot_save(host_port(server.urls[0])[1])
        server.wait_for_log(re.escape(WHY_NOT_SAVED))  # the why, for the operator
    assert ours == theirs
    assert ours == [b"-%s\r\n" % CANNOT_SAVE.encode()] * 2 + [b"+PONG\r\n"]


def test_save_force_stops_without_saving() -> None:
    with ServeProcess(SERVE) as server, RespClient(host_port(server.urls[0])[1]) as client:
        client.send_raw(encode_command("SHUTDOWN", "SAVE", "FORCE"))
        assert client.closed()
        assert server.wait(EXIT) == 0
        server.wait_for_log(r"SAVE FORCE: nothing saved, netsvc keeps no data on disk")


def test_what_came_before_in_the_same_read_is_answered() -> None:
    # Redis exits with such replies unsent; netsvc sends them, then closes
    with ServeProcess(SERVE) as server:
        port = host_port(server.urls[0])[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            pipeline = [("SET", "k", "v"), ("PING",), ("SHUTDOWN", "NOW"), ("PING",)]
            sock.sendall(b"".join(encode_command(*command) for command in pipeline))
            assert read_to_end(sock) == b"+OK\r\n+PONG\r\n"
        assert server.wait(EXIT) == 0


def test_requirepass_applies() -> None:
    with ServeProcess([*SERVE, "--resp-requirepass", "sesame"]) as server:
        port = host_port(server.urls[0])[1]
        with RespClient(port) as client:
            assert client.call("SHUTDOWN") == error("NOAUTH Authentication required.")
            assert client.call("AUTH", "sesame") == b"OK"
            assert client.call("PING") == b"PONG"  # the refused SHUTDOWN stopped nothing
            client.send_raw(encode_command("SHUTDOWN"))
            assert client.closed()
        assert server.wait(EXIT) == 0


def busy_script_and_shutdown(port: int) -> list[Any]:
    """SHUTDOWN's answers while a script that wrote loops past
    busy-reply-threshold, then what SHUTDOWN NOSAVE and the script's own
    client get (both: the connection's end)."""
    seen: list[Any] = []
    with RespClient(port, timeout=EXIT) as stopper, RespClient(port, timeout=EXIT) as looper:
        stopper.call("CONFIG", "SET", "busy-reply-threshold", "100")
        looper.send_raw(encode_command("EVAL", "redis.call('SET', 'k', 'v') while true do end", 0))
        deadline = time.monotonic() + EXIT
        while (reply := stopper.call("PING")) == b"PONG":  # until BUSY: the script runs
            assert time.monotonic() < deadline
            time.sleep(0.05)
        seen.append(reply)
        for modifiers in ((), ("SAVE",), ("NOW",), ("FORCE",), ("ABORT",), ("NOSAVE", "SAVE")):
            seen.append(stopper.call("SHUTDOWN", *modifiers))
        seen.append(stopper.call("SCRIPT", "KILL"))
        stopper.send_raw(encode_command("SHUTDOWN", "NOSAVE"))
        for client in (stopper, looper):
            with pytest.raises(ConnectionError):
                seen.append(client.reply())
    return seen


def test_shutdown_nosave_stops_a_server_under_a_busy_script_as_redis(tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis_port:
        theirs = busy_script_and_shutdown(redis_port)
    # the grace period (60 s) is not what ends the script: SHUTDOWN NOSAVE kills it
    with ServeProcess([*SERVE, "--graceful-timeout", "60"]) as server:
        started = time.monotonic()
        ours = busy_script_and_shutdown(host_port(server.urls[0])[1])
        assert server.wait(EXIT) == 0
        assert time.monotonic() - started < EXIT
        server.wait_for_log(r"Lua script \w+ killed: the server is shutting down")
        assert "grace period over" not in server.log
    assert ours == theirs
    busy = error(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    )
    assert ours[:5] == [busy] * 5


def held_write_behind_a_busy_script_and_shutdown(port: int) -> list[Any]:
    """A write held by CLIENT PAUSE whose turn comes while an endless script
    runs past busy-reply-threshold waits for the script's end; SHUTDOWN
    NOSAVE ends both: the write never runs, and no client gets a reply."""
    seen: list[Any] = []
    with (
        RespClient(port, timeout=EXIT) as stopper,
        RespClient(port, timeout=EXIT) as looper,
        RespClient(port, timeout=EXIT) as writer,
    ):
        seen.append(stopper.call("CONFIG", "SET", "busy-reply-threshold", "100"))
        seen.append(stopper.call("CLIENT", "PAUSE", "100000", "WRITE"))
        looper.send_raw(encode_command("EVAL", "while true do end", 0))  # may write: held
        until_blocked(port, 1)
        writer.send_raw(encode_command("RPUSH", "l", "x"))
        until_blocked(port, 2)
        seen.append(stopper.call("CLIENT", "UNPAUSE"))
        time.sleep(0.25)  # the script runs, past the threshold
        stopper.send_raw(encode_command("SHUTDOWN", "NOSAVE"))
        for client in (stopper, looper, writer):
            with pytest.raises(ConnectionError):
                seen.append(client.reply())
    return seen


def test_a_held_write_waiting_for_a_busy_script_never_runs_after_shutdown(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as redis_port:
        theirs = held_write_behind_a_busy_script_and_shutdown(redis_port)
    with ServeProcess([*SERVE, "--graceful-timeout", "60"]) as server:
        ours = held_write_behind_a_busy_script_and_shutdown(host_port(server.urls[0])[1])
        assert server.wait(EXIT) == 0
    assert ours == theirs == [b"OK", b"OK", b"OK"]


def test_nothing_runs_after_shutdown() -> None:
    # Redis exits at SHUTDOWN: no client's command runs after it. Here a
    # client blocked in BLPOP has an INCR pipelined behind it: the shutdown
    # wakes the BLPOP (its null reply, as at SIGTERM), and the INCR never runs.
    with ServeProcess([*SERVE, "--graceful-timeout", "60"]) as server:
        port = host_port(server.urls[0])[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as blocked:
            blocked.sendall(encode_command("BLPOP", "queue", "0") + encode_command("INCR", "n"))
            until_blocked(port, 1)
            with RespClient(port) as stopper:
                stopper.send_raw(encode_command("SHUTDOWN"))
                assert stopper.closed()
            assert read_to_end(blocked) == b"*-1\r\n"
        assert server.wait(EXIT) == 0

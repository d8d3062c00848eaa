# INFO's counters against redis-server: CONFIG RESETSTAT clears the error
# counts (errorstats, total_error_replies) and the command count
# (total_commands_processed) as Redis does; each count between is Redis's,
# an EXEC refused for want of AUTH (EXECABORT) included.
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.protocols.resp.conftest import redis_server
from tests.protocols.resp.respclient import RespClient, error
from tests.serveprocess import ServeProcess, host_port

ERRORS = [("GET",), ("INCR",), ("SET", "info:a", "b"), ("INCR", "info:a"), ("NOSUCHCOMMAND",)]


def counts(port: int) -> list[Any]:
    with RespClient(port) as client:
        client.call("CONFIG", "RESETSTAT")
        replies = [client.call(*command) for command in ERRORS]
        before = client.call("INFO", "errorstats")
        client.call("CONFIG", "RESETSTAT")
        after = client.call("INFO", "errorstats")
        stats = client.call("INFO", "stats").split(b"\r\n")
        totals = [line for line in stats if line.startswith((b"total_error", b"total_commands"))]
    return [replies, before, after, totals]


def test_resetstat_clears_the_error_and_command_counts_as_redis(
    netsvc_port: int, redis_port: int
) -> None:
    ours, theirs = counts(netsvc_port), counts(redis_port)
    assert ours == theirs
    assert theirs[2] == b"# Errorstats\r\n"  # nothing counted since the reset


def unauthenticated_exec(port: int) -> list[Any]:
    """EXEC refused for want of AUTH: its transaction's abort (Redis's
    rejectCommand), counted as EXECABORT; then a wrong arity, once logged in."""
    with RespClient(port) as client:
        replies = [
            client.call("EXEC"),
            client.call("AUTH", "pw"),
            client.call("CONFIG", "RESETSTAT"),
        ]
        replies += [client.call("EXEC", "x"), client.call("INFO", "errorstats")]
    return replies


def test_an_exec_refused_for_want_of_auth_aborts_as_redis(tmp_path: Path) -> None:
    with redis_server(tmp_path, "--requirepass", "pw") as redis_port:
        theirs = unauthenticated_exec(redis_port)
    with ServeProcess(["--protocol", "resp", "--port", "0", "--resp-requirepass", "pw"]) as server:
        ours = unauthenticated_exec(host_port(server.urls[0])[1])
    assert ours == theirs
    assert theirs[0] == error(
        "EXECABORT Transaction discarded because of: NOAUTH Authentication required."
    )

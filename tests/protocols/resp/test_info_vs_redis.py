# INFO's counters against redis-server: CONFIG RESETSTAT clears the error
# counts (errorstats, total_error_replies) and the command count
# (total_commands_processed) as Redis does; each count between is Redis's.
from __future__ import annotations

from typing import Any

from tests.protocols.resp.respclient import RespClient

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

# The counters add up (netsvc/_stats.py), found by mutation testing: mutants
# that count 1 instead of adding survived the other tests, which never
# looked past the first request, error or refusal.
from __future__ import annotations

import ast

import pytest

from netsvc import Connection, ConnectionLimits, Counters
from netsvc.testing import serve
from tests.lineclient import LineClient, greeted
from tests.netsvc.probe import ProbeApp
from tests.netsvc.probe import protocol as probe

pytestmark = pytest.mark.usefixtures("close_line_clients")

SNAPSHOT_KEYS = {
    "connections_open",
    "connections_total",
    "connections_refused",
    "requests",
    "errors",
    "logins_failed",
}


async def test_requests_add_up_per_listener_and_for_the_server() -> None:
    async with serve(probe) as running:
        client = await greeted(running)
        await client.send(b"ECHO a\nECHO b\n")  # two requests in one read, or two reads
        assert [await client.line(), await client.line()] == [b"a", b"b"]
        assert await client.ask("ECHO c") == b"c"
        other = await greeted(running)
        assert await other.ask("ECHO d") == b"d"
        stats = ast.literal_eval((await other.ask("STATS")).decode())
        assert stats["requests"] == 5  # STATS itself was parsed before it ran
        assert running.server.runtime.counters.requests == 5


async def test_a_plugin_counting_a_request_itself_adds_one() -> None:
    app = ProbeApp()

    @app.command("COUNT")
    async def count(conn: Connection, arg: str) -> bytes:
        conn.counters.request()  # the default: one request
        return b"counted"

    async with serve(probe, app=app) as running:
        client = await greeted(running)
        assert await client.ask("COUNT") == b"counted"
        assert await client.ask("COUNT") == b"counted"
        (listener,) = running.server.runtime.listeners
        # each COUNT: one from parsed(), one from the handler
        assert listener.counters.requests == 4
        assert running.server.runtime.counters.requests == 4


@pytest.mark.server_errors(r"handler failed; closing this connection")
async def test_errors_add_up() -> None:
    async with serve(probe) as running:
        for _ in range(3):
            victim = await greeted(running)
            assert await victim.ask("CRASH") == b"ERR internal error"
        (listener,) = running.server.runtime.listeners
        assert listener.counters.errors == 3
        assert running.server.runtime.counters.errors == 3


async def test_refusals_add_up() -> None:
    async with serve(probe, limits=ConnectionLimits(max_connections=1)) as running:
        holder = await greeted(running)
        for _ in range(3):
            refused = LineClient(await running.connect())
            assert await refused.line() == b"BUSY too many connections"
        (listener,) = running.server.runtime.listeners
        assert listener.counters.connections_refused == 3
        assert running.server.runtime.counters.connections_refused == 3
        assert await holder.ask("ECHO still served") == b"still served"


async def test_snapshot_names_each_counter() -> None:
    async with serve(probe) as running:
        client = await greeted(running)
        stats = ast.literal_eval((await client.ask("STATS")).decode())
        assert set(stats) >= SNAPSHOT_KEYS  # each under its name (more may come)
        assert stats["connections_open"] == 1
        assert stats["connections_total"] == 1
        assert stats["requests"] == 1
        totals = running.server.runtime.counters.snapshot()
        expected = {
            "connections_open": 1,
            "connections_total": 1,
            "connections_refused": 0,
            "requests": 1,
            "errors": 0,
            "logins_failed": 0,
        }
        assert {name: totals.get(name) for name in expected} == expected


async def test_a_request_counts_in_every_set_up_the_chain_of_parents() -> None:
    server = Counters()
    listener = Counters(parent=server)
    inner = Counters(parent=listener)  # a plugin's own set under a listener's, say
    inner.request(3)
    listener.request()
    assert (inner.requests, listener.requests, server.requests) == (3, 4, 4)

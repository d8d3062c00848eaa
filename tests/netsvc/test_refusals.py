# Server behaviours found unchecked by mutation testing (netsvc/_server.py):
# over-limit connections are answered in the protocol's words, at most
# MAX_PENDING_REFUSALS at a time; past that they are closed without a word,
# and a refusal that has finished frees its place.
from __future__ import annotations

import pytest
import trio

from netsvc import ConnectionLimits
from netsvc._server import MAX_PENDING_REFUSALS, REFUSAL_TIMEOUT
from netsvc.testing import RunningServer, serve
from tests.lineclient import LineClient, greeted
from tests.netsvc.probe import protocol as probe

pytestmark = pytest.mark.usefixtures("close_line_clients")

BUSY = b"BUSY too many connections"


async def test_every_refusal_in_turn_is_answered() -> None:
    # one at a time, each closed before the next: none is ever pending with
    # another, so all are answered, however many there are
    async with serve(probe, limits=ConnectionLimits(max_connections=1)) as running:
        holder = await greeted(running)
        for _ in range(2 * MAX_PENDING_REFUSALS + 8):
            refused = LineClient(await running.connect())
            assert await refused.line() == BUSY
            assert await refused.closed()  # the server closed: its refusal is over
            await refused.aclose()
        assert await holder.ask("ECHO still served") == b"still served"


async def refuse_burst(running: RunningServer, count: int) -> int:
    """Open `count` over-limit connections at once, keep them open (each
    refusal then waits for the client's end), and count those answered."""
    clients = [LineClient(await running.connect()) for _ in range(count)]
    answers = [await client.line() for client in clients]
    assert set(answers) <= {BUSY, b""}  # b"": closed without a word
    for client in clients:
        await client.aclose()
    return answers.count(BUSY)


async def test_at_most_so_many_refusals_are_pending_and_finished_ones_free_their_place() -> None:
    extra = 8
    async with serve(probe, limits=ConnectionLimits(max_connections=1)) as running:
        holder = await greeted(running)
        assert await refuse_burst(running, MAX_PENDING_REFUSALS + extra) == MAX_PENDING_REFUSALS
        # every refusal ends within REFUSAL_TIMEOUT, and sooner once its client has closed
        await trio.sleep(REFUSAL_TIMEOUT + 1)
        assert await refuse_burst(running, MAX_PENDING_REFUSALS + extra) == MAX_PENDING_REFUSALS
        assert await holder.ask("ECHO still served") == b"still served"

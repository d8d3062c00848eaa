# Connection behaviours found unchecked by mutation testing (netsvc/_connection.py).
from __future__ import annotations

import pytest
import trio

from netsvc import Connection
from netsvc.testing import serve
from tests.lineclient import greeted
from tests.netsvc.probe import ProbeApp
from tests.netsvc.probe import protocol as probe

pytestmark = pytest.mark.usefixtures("close_line_clients")


def killer_app() -> ProbeApp:
    """NAME X names this connection; KILL X disconnects the one named X (as
    RESP's CLIENT KILL does)."""
    app = ProbeApp()
    named: dict[str, Connection] = {}

    @app.command("NAME")
    async def name(conn: Connection, arg: str) -> bytes:
        named[arg] = conn
        return b"OK"

    @app.command("KILL")
    async def kill(conn: Connection, arg: str) -> bytes:
        named[arg].disconnect()
        return b"KILLED"

    return app


@pytest.mark.parametrize("pending", [b"", b"ECHO half a lin"], ids=["idle", "in-a-request"])
async def test_disconnect_ends_a_receive_that_is_waiting(pending: bytes) -> None:
    # the probe's idle and request timeouts are 60 s and 10 s: only disconnect()
    # can end the victim's receive within the 5 s the client waits
    async with serve(probe, app=killer_app()) as running:
        victim = await greeted(running)
        assert await victim.ask("NAME victim") == b"OK"
        await victim.send(pending)
        await trio.sleep(0.1)  # the victim's handler is waiting in receive()
        killer = await greeted(running)
        assert await killer.ask("KILL victim") == b"KILLED"
        assert await victim.line(timeout=5) == b"BYE"  # receive() returned b""
        assert await victim.closed(timeout=5)
        assert await killer.ask("NAME killer") == b"OK"  # the others are served on

# Limits that keep one user's data from locking them out, from outside with
# raw clients: thousands of subscription requests waiting for an answer are
# re-sent at login through flow control (the client gets them all, and is
# not cut as a client that does not read), and past MAX_PENDING_REQUESTS a
# new request gets resource-constraint.
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import trio

from netsvc.testing import serve
from protocols.xmpp import Store
from protocols.xmpp._service import MAX_PENDING_REQUESTS
from protocols.xmpp._session import HARD_LIMIT
from tests.protocols.xmpp.rawclient import Client

STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


def requests_for(path: Path, user: str, count: int) -> None:
    """`count` subscription requests waiting for `user`'s answer."""
    store = Store(str(path))
    store.add_user(user, "pw")
    store.add_user("eve", "pw")
    for i in range(count):
        request = f"<presence type='subscribe' from='u{i}@localhost' to='{user}@localhost'/>"
        store.save(user, f"u{i}@localhost", None, True, request)
    store.close()


async def test_more_waiting_requests_than_a_queue_holds_arrive_at_login(tmp_path: Path) -> None:
    database = tmp_path / "xmpp.db"
    count = HARD_LIMIT + 1000
    requests_for(database, "victim", count)
    async with serve("xmpp", settings={"database": str(database)}) as running:
        victim = Client(await running.connect())
        await victim.login("victim", password="pw")
        await victim.say(b"<presence/>")
        with trio.fail_after(120):
            lines = await victim.settle()
        assert sum(b"type='subscribe'" in line for line in lines) == count
        await victim.ping()  # still connected


async def test_past_the_cap_a_new_request_gets_resource_constraint(tmp_path: Path) -> None:
    database = tmp_path / "xmpp.db"
    requests_for(database, "victim", MAX_PENDING_REQUESTS)
    async with serve("xmpp", settings={"database": str(database)}) as running:
        eve = Client(await running.connect())
        await eve.login("eve", password="pw")
        await eve.say(b"<presence type='subscribe' to='victim@localhost' id='s'/>")
        (line,) = await eve.settle()
        error = ET.fromstring(line).find("error")
        assert error is not None and error.get("type") == "wait"
        assert error.find(f"{STANZAS}resource-constraint") is not None
    store = Store(str(database))
    try:
        assert store.pending_count("victim") == MAX_PENDING_REQUESTS
        assert store.item("eve", "victim@localhost") is None  # nothing changed
    finally:
        store.close()

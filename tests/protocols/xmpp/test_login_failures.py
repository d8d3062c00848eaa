# Failed XMPP logins: counted in the listener's counters (logins_failed, on
# status pages) and logged with the client's address at most once a second
# per address, never with the password tried.
from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
import trio

from netsvc.testing import serve
from protocols.xmpp import Accounts
from tests.protocols.xmpp.rawclient import HEADER, Client


async def test_failed_logins_are_counted_and_logged_sparingly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    accounts = Accounts()
    accounts.path = tmp_path / "users"
    accounts.add("alice", "wonderland", [])
    accounts.save()
    async with serve("xmpp", settings={"users_file": str(accounts.path)}) as running:
        for attempt in range(4):
            client = Client(await running.connect())
            await client.say(HEADER)
            await client.line()
            await client.line()
            token = base64.b64encode(f"\0alice\0wrong-{attempt}".encode())
            auth = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            await client.say(auth + token + b"</auth>")
            with trio.fail_after(5):
                assert b"<not-authorized/>" in await client.line()
            await client.stream.aclose()
        assert running.server.runtime.counters.logins_failed == 4
    failures = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert failures == [
        f"authentication failed for 'alice' (1 failed logins on {running.url} so far)"
    ]  # four in well under a second: logged once
    assert "wrong-" not in caplog.text

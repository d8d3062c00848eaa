# Failed XMPP logins: counted in the listener's counters (logins_failed, on
# status pages) and logged with the client's address at most once a second
# per address, never with the password tried. A wrong password and a user
# who does not exist take as long.
from __future__ import annotations

import base64
import logging
import statistics
import time
from pathlib import Path

import pytest
import trio

from netsvc.testing import serve
from protocols.xmpp import Accounts, Store
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


@pytest.mark.parametrize("storage", ["users_file", "database"])
async def test_a_wrong_password_and_an_unknown_user_take_as_long(
    tmp_path: Path, storage: str
) -> None:
    # PLAIN does not tell by its timing who has an account: a user who does
    # not exist is checked against made-up keys, as long as a wrong password
    # is (one PBKDF2). Interleaved attempts, medians compared: a loaded
    # machine slows both alike.
    if storage == "users_file":
        accounts = Accounts()
        accounts.path = tmp_path / "users"
        accounts.add("alice", "wonderland", [])
        accounts.save()
        path = accounts.path
    else:
        path = tmp_path / "xmpp.db"
        store = Store(str(path))
        store.add_user("alice", "wonderland")
        store.close()
    async with serve("xmpp", settings={storage: str(path)}) as running:
        client = Client(await running.connect())
        await client.say(HEADER)
        await client.line()
        await client.line()

        async def attempt(user: str) -> float:
            token = base64.b64encode(f"\0{user}\0wrong".encode())
            auth = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            started = time.perf_counter()
            await client.say(auth + token + b"</auth>")
            with trio.fail_after(10):
                assert b"<not-authorized/>" in await client.line()
            return time.perf_counter() - started

        await attempt("nobody")  # the made-up keys are made at the first need
        known, unknown = [], []
        for _ in range(15):
            known.append(await attempt("alice"))
            unknown.append(await attempt("nobody"))
        await client.stream.aclose()
    assert statistics.median(unknown) >= statistics.median(known) / 2, (known, unknown)

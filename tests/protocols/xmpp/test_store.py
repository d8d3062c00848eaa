# The XMPP service's sqlite storage: a new file (WAL, synchronous=NORMAL,
# readable by its owner only, schema version 3) keeps accounts, rosters,
# pending requests and offline messages across reopening; a file a newer
# netsvc wrote is refused, by the store and by `netsvc serve`; then from
# outside: `adduser --database` (and its usage errors), users logging in
# against the database with PLAIN and SCRAM, an account file's users
# imported into the database at start (legacy scrypt entries upgraded at
# their first PLAIN login, in the database), what a server without users
# says, and messages and requests to users who do not exist; an account
# removed from a client stays removed at the next start (not imported from
# the account file again), and a version-1 file is migrated.
from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio

import netsvc.testing as netsvc_testing
from protocols.xmpp import Accounts, Store
from protocols.xmpp._accounts import AccountError
from protocols.xmpp._roster import Item
from protocols.xmpp._store import MIGRATIONS, SCHEMA_VERSION
from tests.protocols.xmpp.rawclient import HEADER, Client
from tests.protocols.xmpp.test_scram import USERS, old_scrypt_line, slixmpp_login
from tests.serveprocess import NETSVC, Certificates, ServeProcess, host_port, netsvc_env

STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


def test_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "xmpp.db"
    store = Store(str(path))
    try:
        assert store.version == SCHEMA_VERSION == 3
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds credentials


def test_everything_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "xmpp.db")
    store = Store(path)
    store.add_user("Alice", "wonderland")
    item = Item("bob@localhost", "Bob", ("Friends", "Work"), "to", ask=False, approved=True)
    store.save("alice", "bob@localhost", item, pending_in=False)
    store.save("alice", "carol@localhost", None, pending_in=True, request="<presence/>")
    assert store.store_offline("alice", ["<message>1</message>", "<message>2</message>"], 0, 3) == 2
    assert store.store_offline("alice", ["<message>3</message>", "<message>4</message>"], 0, 3) == 1
    store.close()
    store = Store(path)
    try:
        assert store.users() == ["alice"]
        assert store.check("alice", "wonderland") and not store.check("alice", "wonder")
        assert store.scram("alice", "SCRAM-SHA-1") is not None
        assert store.roster("alice") == [item]
        assert store.relation("alice", "carol@localhost") == (None, True)
        assert store.pending_in("alice") == ["<presence/>"]
        assert store.take_offline("alice") == [f"<message>{i}</message>" for i in (1, 2, 3)]
        assert store.take_offline("alice") == []
    finally:
        store.close()


NEWER = "has schema version 4; this netsvc knows versions up to 3"


@pytest.mark.server_errors(NEWER)
def test_a_database_a_newer_netsvc_wrote_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "xmpp.db"
    Store(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 4")
    db.close()
    with pytest.raises(AccountError, match=NEWER):
        Store(str(path))
    done = subprocess.run(
        [NETSVC, "serve", "--protocol", "xmpp", "--port", "0", "--xmpp-database", str(path)],
        env=netsvc_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0 and NEWER in done.stderr
    assert "listening on" not in done.stderr


# -- from outside ------------------------------------------------------------------------


def adduser(*args: str, password: str = "wonderland") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "protocols.xmpp", "adduser", *args],
        env=netsvc_env({"NETSVC_XMPP_NEW_PASSWORD": password}),
        capture_output=True,
        text=True,
        timeout=30,
    )


async def logged_in(server: ServeProcess, user: str, password: str) -> Client:
    client = Client(await trio.open_tcp_stream(*host_port(server.urls[0])))
    await client.login(user, password=password)
    return client


async def roster_of(server: ServeProcess, user: str, password: str) -> dict[str, str]:
    client = await logged_in(server, user, password)
    async with client.stream:
        await client.say(b"<iq type='get' id='get'><query xmlns='jabber:iq:roster'/></iq>")
        result = ET.fromstring(await client.line())
    items = result.iter("{jabber:iq:roster}item")
    return {item.get("jid", ""): item.get("subscription", "") for item in items}


async def refused(server: ServeProcess, user: str, password: str) -> bool:
    async with await trio.open_tcp_stream(*host_port(server.urls[0])) as stream:
        client = Client(stream)
        try:
            await client.login(user, password=password)
        except AssertionError:
            return True
    return False


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "xmpp.db"
    assert adduser("--database", str(path), "alice", "--contacts", "bob").returncode == 0
    done = adduser("--database", str(path), "bob", password="builder")
    assert done.returncode == 0, done.stderr
    assert f"bob saved in {path}" in done.stderr
    return path


def serve_database(path: Path, *more: str) -> ServeProcess:
    return ServeProcess(["--listen", "xmpp://127.0.0.1:0", "--xmpp-database", str(path), *more])


async def test_adduser_database_and_logging_in_against_it(database: Path) -> None:
    with serve_database(database) as server:
        assert await roster_of(server, "alice", "wonderland") == {"bob@localhost": "both"}
        assert await roster_of(server, "bob", "builder") == {"alice@localhost": "both"}
        assert await refused(server, "alice", "builder")
        server.wait_for_log("authentication failed for 'alice'")
    assert adduser("--database", str(database), "alice", password="new one").returncode == 0
    with serve_database(database) as server:  # a new password, the roster kept
        assert await roster_of(server, "alice", "new one") == {"bob@localhost": "both"}


def test_scram_against_the_database(database: Path, certificates: Certificates) -> None:
    assert USERS["alice"] == "wonderland"
    with serve_database(database, *certificates.args) as server:
        address = host_port(server.urls[0])
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            assert slixmpp_login(address, certificates.cafile, mechanism) == "ok"
            server.wait_for_log(rf"authenticated as alice \({mechanism}\)")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--database", "x.db"], "expected --database DB NAME"),
        (["--database", "x.db", "file", "alice"], "expected --database DB NAME"),
        (["alice"], "expected FILE NAME (or --database DB NAME)"),
        (["--database", "x.db", "al ice"], "'al ice' is not a usable user name"),
    ],
)
def test_adduser_usage_errors(tmp_path: Path, args: list[str], error: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "protocols.xmpp", "adduser", *args],
        env=netsvc_env({"NETSVC_XMPP_NEW_PASSWORD": "pw"}),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert done.returncode != 0 and error in done.stderr
    assert not (tmp_path / "x.db").exists()


async def test_an_account_files_users_are_imported_at_start(tmp_path: Path) -> None:
    users = tmp_path / "users"
    accounts = Accounts()
    accounts.path = users
    accounts.add("alice", "wonderland", ["bob"])
    accounts.add("bob", "builder")
    accounts.save()
    with users.open("a") as file:  # a line from before SCRAM
        file.write(old_scrypt_line("carol", "secret") + "\n")
    database = tmp_path / "xmpp.db"
    args = ["--xmpp-users-file", str(users)]
    with serve_database(database, *args) as server:
        server.wait_for_log(
            rf"imported 3 users \(alice, bob, carol\) and 2 roster items from {users} "
            rf"into {database}"
        )
        assert await roster_of(server, "alice", "wonderland") == {"bob@localhost": "both"}
        assert await roster_of(server, "bob", "builder") == {"alice@localhost": "both"}
        assert await roster_of(server, "carol", "secret") == {}  # PLAIN: now SCRAM keys
        server.wait_for_log(f"carol's password is now kept as SCRAM keys in {database}")
    accounts = Accounts(str(users))
    accounts.add("alice", "changed in the file")
    accounts.save()
    with serve_database(database, *args) as server:  # the database has them: left alone
        server.wait_for_log(
            f"3 users of {users} are in {database} already and were left as they are"
        )
        assert await roster_of(server, "alice", "wonderland") == {"bob@localhost": "both"}
    store = Store(str(database))
    try:
        assert store.scram("carol", "SCRAM-SHA-256") is not None
    finally:
        store.close()


def test_a_database_without_accounts_says_how_to_add_some(tmp_path: Path) -> None:
    database = tmp_path / "xmpp.db"
    with serve_database(database) as server:
        server.wait_for_log(
            f"{database} has no accounts yet: add some with "
            rf"`python -m protocols.xmpp adduser --database {database} NAME`"
        )


async def test_messages_and_requests_to_nobody(database: Path) -> None:
    with serve_database(database) as server:
        alice = await logged_in(server, "alice", "wonderland")
        async with alice.stream:
            await alice.say(
                b"<message to='nobody@localhost' id='m' type='chat'><body>?</body></message>"
            )
            (error,) = [ET.fromstring(line) for line in await alice.settle()]
            assert (error.get("id"), error.get("type")) == ("m", "error")
            assert error.find(f"error/{STANZAS}service-unavailable") is not None
            assert error.find(f"error/{STANZAS}text") is None  # not a full mailbox: nobody
            await alice.say(
                b"<presence/><iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>"
            )
            await alice.settle()  # available, and she asked for the roster: she gets pushes
            await alice.say(b"<presence type='subscribe' to='nobody@localhost'/>")
            got = [ET.fromstring(line) for line in await alice.settle()]
            refusal = [p for p in got if p.tag == "presence"]
            assert [(p.get("type"), p.get("from")) for p in refusal] == [
                ("unsubscribed", "nobody@localhost")
            ]
            pushes = [item for iq in got for item in iq.iter("{jabber:iq:roster}item")]
            assert [(i.get("subscription"), i.get("ask")) for i in pushes] == [
                ("none", "subscribe"),
                ("none", None),
            ]
        store = Store(str(database))
        try:
            assert store.take_offline("nobody") == []
        finally:
            store.close()


async def test_without_a_database_rosters_live_in_memory(tmp_path: Path) -> None:
    users = tmp_path / "users"
    accounts = Accounts()
    accounts.path = users
    accounts.add("alice", "wonderland", ["bob"])
    accounts.save()
    args = ["--listen", "xmpp://127.0.0.1:0", "--xmpp-users-file", str(users)]
    with ServeProcess(args) as server:
        server.wait_for_log("rosters and offline messages are kept in memory and lost at exit")
        assert await roster_of(server, "alice", "wonderland") == {"bob@localhost": "both"}
    assert sorted(os.listdir(tmp_path)) == ["users"]  # no database file


async def test_a_removed_account_is_not_imported_again_at_restart(tmp_path: Path) -> None:
    users = tmp_path / "users"
    accounts = Accounts()
    accounts.path = users
    accounts.add("alice", "old", ["bob"])
    accounts.add("bob", "pw", ["alice"])
    accounts.save()
    settings = {"users_file": str(users), "database": str(tmp_path / "xmpp.db")}
    async with netsvc_testing.serve("xmpp", settings=settings) as running:
        alice = Client(await running.connect())
        await alice.login("alice", password="old")
        await alice.say(
            b"<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>"
        )
        assert b"type='result'" in await alice.line()
    async with netsvc_testing.serve("xmpp", settings=settings) as running:
        assert await plain_login(running, "alice", "old") == b"not-authorized"
        assert await plain_login(running, "bob", "pw") == b"success"
    store = Store(settings["database"])
    try:
        assert store.users() == ["bob"]
        assert [(i.jid, i.subscription) for i in store.roster("bob")] == [
            ("alice@localhost", "none")
        ]
    finally:
        store.close()
    accounts = Accounts(str(users))
    accounts.add("alice", "new")  # adduser makes the account again: imported
    accounts.save()
    async with netsvc_testing.serve("xmpp", settings=settings) as running:
        assert await plain_login(running, "alice", "new") == b"success"


async def plain_login(running: netsvc_testing.RunningServer, user: str, password: str) -> bytes:
    """What a PLAIN login gets: b"success" or the failure's condition."""
    client = Client(await running.connect())
    await client.say(HEADER)
    await client.line()
    await client.line()
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    auth = f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    await client.say(auth.encode())
    answer = ET.fromstring(await client.line())
    await client.stream.aclose()
    if answer.tag.endswith("success"):
        return b"success"
    return next(iter(answer)).tag.rpartition("}")[2].encode()


def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "xmpp.db"
    with sqlite3.connect(path) as db:  # as netsvc wrote it before version 2
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (1)")
        db.executescript(MIGRATIONS[1])
        db.execute("INSERT INTO accounts VALUES ('alice', 'scram$x')")
    db.close()
    store = Store(str(path))
    try:
        assert store.version == 3
        assert store.db.execute("SELECT * FROM imported").fetchall() == [("alice", "scram$x")]
    finally:
        store.close()

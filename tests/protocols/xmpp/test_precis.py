# Strings people type, prepared before they are compared: passwords by
# SASLprep (RFC 4013) and user names by RFC 8265's UsernameCaseMapped. First
# the functions (RFC 4013's own examples); then slixmpp, which SASLpreps,
# logging in with SCRAM and PLAIN as users whose passwords SASLprep changes,
# made by `adduser` and by in-band registration; accounts of earlier
# versions (keys of the password as typed) keep working; fullwidth, capital
# and decomposed forms of a name log in to, and reach, the same account; and
# a database or account file of an earlier version with names that are not
# prepared is migrated (a warning names each), or, where two names become
# one, refused.
from __future__ import annotations

import base64
import logging
import secrets
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio

import netsvc.testing as netsvc_testing
from protocols.xmpp import Accounts, Store
from protocols.xmpp._accounts import AccountError
from protocols.xmpp._precis import PrepError, saslprep, username
from protocols.xmpp._scram import derive
from tests.protocols.xmpp.rawclient import Client
from tests.protocols.xmpp.test_register import REGISTER, log_in, register_iq
from tests.protocols.xmpp.test_scram import slixmpp_login
from tests.protocols.xmpp.test_starttls import RawClient
from tests.serveprocess import NETSVC, Certificates, ServeProcess, host_port, netsvc_env

# -- the functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "prepared"),
    [  # RFC 4013 section 3, and the passwords slixmpp users type
        ("I\u00adX", "IX"),
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),
        ("\u2168", "IX"),
        ("\uff30assword", "Password"),
        ("pass\u00a0word", "pass word"),
        ("x\u00bd", "x1\u20442"),
        ("cafe\u0301", "caf\u00e9"),
    ],
)
def test_saslprep(given: str, prepared: str) -> None:
    assert saslprep(given) == prepared


@pytest.mark.parametrize("given", ["\u0007", "\u0627\u0031", "a\ue000"])
def test_saslprep_refuses(given: str) -> None:  # RFC 4013 section 3: prohibited, bidi
    with pytest.raises(PrepError):
        saslprep(given)


def test_saslprep_refuses_unassigned_code_points_only_in_what_is_stored() -> None:
    assert saslprep("a\u0221") == "a\u0221"  # unassigned in Unicode 3.2
    with pytest.raises(PrepError):
        saslprep("a\u0221", stored=True)


@pytest.mark.parametrize(
    ("given", "prepared"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("\uff21\uff2c\uff29\uff23\uff25", "alice"),  # fullwidth
        ("\uff41\uff4c\uff49\uff43\uff45", "alice"),
        ("rene\u0301", "ren\u00e9"),  # NFC
        ("REN\u00c9", "ren\u00e9"),
        ("\u0430lice", "\u0430lice"),  # Cyrillic: a letter, allowed (a confusable)
        ("stra\u00dfe", "stra\u00dfe"),  # sharp s stays (lower case, not case folding)
        (
            "\u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2",
            "\u03c3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2",
        ),
        ("\u05e9\u05dc\u05d5\u05dd", "\u05e9\u05dc\u05d5\u05dd"),  # right to left
        ("o'neil", None),  # RFC 7622: no apostrophe in a localpart
        ("a b", None),  # a space
        ("a\u3000b", None),  # an ideographic space
        ("a\tb", None),  # a control
        ("alice\u00ad", None),  # default ignorable
        ("a\u200dlice", None),  # a joiner: contextual, refused here
        ("x\u00bd", None),  # a compatibility character
        ("\u2603", None),  # a symbol
        ("\u0378x", None),  # unassigned
        ("\u05e9alom", None),  # the Bidi Rule
        ("", None),
        ("x" * 1023, "x" * 1023),
        ("x" * 1024, None),
        ("\u00e9" * 511, "\u00e9" * 511),  # 1022 bytes
        ("\u00e9" * 512, None),  # 1024 bytes
    ],
)
def test_username(given: str, prepared: str | None) -> None:
    if prepared is None:
        with pytest.raises(PrepError):
            username(given)
    else:
        assert username(given) == prepared


@pytest.mark.parametrize("text", ["a{}b", "{}", "{}{}"])
def test_every_ascii_character_in_a_username(text: str) -> None:
    # Names already prepared take a shorter way (nearly every JID parsed has
    # one); it must agree with RFC 8265 and RFC 7622 for each ASCII character
    for code in range(0x80):
        given = text.format(chr(code), chr(code))
        if 0x21 <= code <= 0x7E and chr(code) not in "\"&'/:<>@":
            assert username(given) == given.lower(), given
            assert username(given.upper()) == given.lower(), given
        else:  # controls, space, and what a localpart may not hold
            with pytest.raises(PrepError):
                username(given)


# -- passwords, from outside -----------------------------------------------------------------

CHANGED_BY_SASLPREP = ["\uff30assword", "pass\u00a0word", "x\u00bd"]
MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]


def serve_tls(certificates: Certificates, *args: str) -> ServeProcess:
    listen = ["--listen", "xmpp://127.0.0.1:0", "--xmpp-starttls", "optional"]
    return ServeProcess([*listen, *args, *certificates.args])


def adduser(database: Path, name: str, password: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "protocols.xmpp", "adduser", "--database", str(database), name],
        env=netsvc_env({"NETSVC_XMPP_NEW_PASSWORD": password}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize("password", CHANGED_BY_SASLPREP)
@pytest.mark.parametrize("made_by", ["adduser", "registration"])
def test_slixmpp_logs_in_with_a_password_saslprep_changes(
    tmp_path: Path, certificates: Certificates, password: str, made_by: str
) -> None:
    database = tmp_path / "xmpp.db"
    if made_by == "adduser":
        adduser(database, "alice", password)
    with serve_tls(certificates, "--xmpp-database", str(database), *REGISTER) as server:
        if made_by == "registration":  # on loopback, STARTTLS optional: allowed in the clear
            client = RawClient(server.urls[0])
            client.open_stream()
            client.say(register_iq("alice", password))
            assert b"type='result'" in client.line()
            client.sock.close()
        for mechanism in MECHANISMS:
            address = host_port(server.urls[0])
            result = slixmpp_login(address, certificates.cafile, mechanism, password=password)
            assert result == "ok", (mechanism, result)


def keys_as_typed(name: str, password: str) -> str:
    """An account-file line as earlier versions wrote it: the keys of the
    password as typed, not SASLprepped."""
    salt = secrets.token_bytes(16)
    fields = ["scram$4096", base64.b64encode(salt).decode()]
    for hash_name in ("sha1", "sha256"):
        keys = derive(password, hash_name, salt, 4096)
        fields += [base64.b64encode(k).decode() for k in (keys.stored_key, keys.server_key)]
    return f"{name}:{'$'.join(fields)}:\n"


def test_an_ascii_password_of_an_earlier_version_keeps_working(
    tmp_path: Path, certificates: Certificates
) -> None:
    users = tmp_path / "users"
    users.write_text(keys_as_typed("alice", "wonder land!"))
    with serve_tls(certificates, "--xmpp-users-file", str(users)) as server:
        for mechanism in MECHANISMS:
            address = host_port(server.urls[0])
            result = slixmpp_login(address, certificates.cafile, mechanism, password="wonder land!")
            assert result == "ok", (mechanism, result)


@pytest.mark.server_errors(".*authentication failed.*", required=False)
def test_a_password_of_an_earlier_version_that_saslprep_changes_is_rekeyed_at_plain_login(
    tmp_path: Path, certificates: Certificates
) -> None:
    # keys of "\uff30assword" (fullwidth P) as typed: slixmpp, which sends "Password", cannot log
    # in; a client that sends it as typed can, with PLAIN, and the account
    # then keeps the keys of the prepared password
    users = tmp_path / "users"
    users.write_text(keys_as_typed("alice", "\uff30assword"))
    with serve_tls(certificates, "--xmpp-users-file", str(users)) as server:
        address = host_port(server.urls[0])
        login = slixmpp_login(
            address, certificates.cafile, "SCRAM-SHA-256", password="\uff30assword"
        )
        assert login.startswith("failed")
        client = RawClient(server.urls[0])
        client.open_stream()
        log_in(client, "alice", "\uff30assword")
        client.sock.close()
        server.wait_for_log("alice's password is now kept as SCRAM keys")
        for mechanism in MECHANISMS:
            result = slixmpp_login(
                address, certificates.cafile, mechanism, password="\uff30assword"
            )
            assert result == "ok", (mechanism, result)


# -- user names, from outside ----------------------------------------------------------------


async def logged_in_as(running: netsvc_testing.RunningServer, name: str) -> tuple[Client, str]:
    """A client logged in with PLAIN as `name`; it and the JID it was bound to."""
    client = Client(await running.connect())
    await client.say(
        b"<stream:stream to='localhost' xmlns='jabber:client'"
        b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
    await client.line()
    await client.line()
    token = base64.b64encode(f"\0{name}\0pw".encode())
    await client.say(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>")
    await client.say(token + b"</auth>")
    assert (await client.line()).startswith(b"<success"), name
    await client.say(
        b"<stream:stream to='localhost' xmlns='jabber:client'"
        b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
    await client.line()
    await client.line()
    await client.say(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    jid = ET.fromstring(await client.line()).findtext(".//{urn:ietf:params:xml:ns:xmpp-bind}jid")
    await client.say(b"<presence/>")
    await client.settle()
    return client, (jid or "").partition("/")[0]


def database_with(path: Path, *names: str) -> Path:
    store = Store(str(path))
    for name in names:
        store.add_user(name, "pw")
    store.close()
    return path


@pytest.mark.server_errors(".*authentication failed.*", required=False)
async def test_lookalike_names_are_one_account(tmp_path: Path) -> None:
    database = database_with(tmp_path / "xmpp.db", "alice", "REN\u00c9", "bob")
    assert Store(str(database)).users() == ["alice", "bob", "ren\u00e9"]
    settings = {"database": str(database), "max_bytes_per_second": 0}
    async with netsvc_testing.serve("xmpp", settings=settings) as running:
        for typed, jid in [
            ("\uff41\uff4c\uff49\uff43\uff45", "alice@localhost"),
            ("ALICE", "alice@localhost"),
            ("rene\u0301", "ren\u00e9@localhost"),
            ("R\uff25N\u00c9", "ren\u00e9@localhost"),
        ]:
            client, bound = await logged_in_as(running, typed)
            assert bound == jid
            await client.stream.aclose()
        alice, _ = await logged_in_as(running, "alice")
        rene, _ = await logged_in_as(running, "rene\u0301")
        bob, _ = await logged_in_as(running, "bob")
        for to, receiver in [("\uff21LICE@localhost", alice), ("RENE\u0301@localhost", rene)]:
            await bob.say(f"<message to='{to}' type='chat'><body>hi</body></message>".encode())
            got = [ET.fromstring(line) for line in await receiver.settle()]
            assert [m.findtext("body") for m in got] == ["hi"]
        # a name that cannot be prepared logs in as nobody
        client = Client(await running.connect())
        await client.say(
            b"<stream:stream to='localhost' xmlns='jabber:client'"
            b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        )
        await client.line()
        await client.line()
        token = base64.b64encode("\0alice\u00ad\0pw".encode())
        await client.say(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>")
        await client.say(token + b"</auth>")
        assert b"not-authorized" in await client.line()
    # adduser with a lookalike changes that account's password
    assert "alice saved in" in adduser(database, "\uff21lice", "new")
    assert Store(str(database)).users() == ["alice", "bob", "ren\u00e9"]


def older_database(path: Path, *names: str) -> Path:
    """A database as an earlier version kept it (schema version 2: names
    only lowercased), with `names`, a roster row and an offline message
    for each, and each in the next one's roster."""
    store = Store(str(path))
    store.close()
    with sqlite3.connect(path) as db:
        for index, name in enumerate(names):
            other = names[(index + 1) % len(names)]
            db.execute("INSERT INTO accounts VALUES (?, 'scram$x')", (name,))
            db.execute(
                "INSERT INTO roster (owner, contact, subscription) VALUES (?, ?, 'both')",
                (name, f"{other}@localhost"),
            )
            db.execute(
                "INSERT INTO offline (owner, stanza, stored, size) VALUES (?, '<message/>', 0, 10)",
                (name,),
            )
        db.execute("UPDATE schema_version SET version = 2")
    db.close()
    return path


def test_names_of_an_earlier_version_are_prepared_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = older_database(tmp_path / "xmpp.db", "\uff41\uff4c\uff49\uff43\uff45", "bob")
    with caplog.at_level(logging.WARNING, logger="netsvc.xmpp"):
        store = Store(str(path))
    try:
        assert store.version == 3
        assert store.users() == ["alice", "bob"]
        assert [item.jid for item in store.roster("alice")] == ["bob@localhost"]
        assert [item.jid for item in store.roster("bob")] == ["alice@localhost"]
        assert store.offline_count("alice") == 1
    finally:
        store.close()
    assert "user '\uff41\uff4c\uff49\uff43\uff45' is now 'alice'" in caplog.text


CLASH = "users '\uff41\uff4c\uff49\uff43\uff45' and 'alice' are one user once prepared"


@pytest.mark.server_errors(".*are one user once prepared.*")
def test_a_database_where_two_names_become_one_is_refused(tmp_path: Path) -> None:
    path = older_database(tmp_path / "xmpp.db", "\uff41\uff4c\uff49\uff43\uff45", "alice")
    with pytest.raises(AccountError, match=CLASH):
        Store(str(path))
    done = subprocess.run(
        [NETSVC, "serve", "--protocol", "xmpp", "--port", "0", "--xmpp-database", str(path)],
        env=netsvc_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0 and CLASH in done.stderr
    with sqlite3.connect(path) as db:  # nothing changed: the operator decides
        assert db.execute("SELECT version FROM schema_version").fetchone() == (2,)
    db.close()


def test_an_account_file_of_an_earlier_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    users = tmp_path / "users"
    users.write_text(keys_as_typed("\uff41\uff4c\uff49\uff43\uff45", "pw"))
    with caplog.at_level(logging.WARNING, logger="netsvc.xmpp"):
        accounts = Accounts(str(users))
    assert accounts.check("alice", "pw") and accounts.exists("ALICE")
    assert "is read as 'alice'" in caplog.text
    users.write_text(users.read_text() + keys_as_typed("alice", "other"))
    with pytest.raises(AccountError, match="are the same user, 'alice'"):
        Accounts(str(users))


@pytest.mark.server_errors(".*authentication failed.*", required=False)
async def test_names_are_prepared_without_accounts_too() -> None:  # --xmpp-insecure-any-password
    settings = {"insecure_any_password": True, "max_bytes_per_second": 0}
    async with netsvc_testing.serve("xmpp", settings=settings) as running:
        client, bound = await logged_in_as(running, "\uff21LICE")
        assert bound == "alice@localhost"
        client = Client(await running.connect())
        await client.say(
            b"<stream:stream to='localhost' xmlns='jabber:client'"
            b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        )
        await client.line()
        await client.line()
        token = base64.b64encode(b"\0a b\0pw")
        await client.say(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>")
        await client.say(token + b"</auth>")
        assert b"not-authorized" in await client.line()


ROSTER_GET = b"<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>"


def remove_item(jid: str) -> bytes:
    item = f"<item jid='{jid}' subscription='remove'/>"
    return f"<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>{item}</query></iq>".encode()


async def test_a_contact_an_earlier_version_kept_that_does_not_parse_can_be_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Migration 3 keeps a contact whose JID RFC 8265 refuses (a snowman) as
    # it is: the roster shows it, and removing it by that exact JID works;
    # an unparsable JID that is in no roster is still jid-malformed. Two
    # rows that become one contact are merged, with a warning.
    path = older_database(tmp_path / "xmpp.db", "alice", "bob")
    with sqlite3.connect(path) as db:
        for contact in ("snow\u2603@elsewhere", "\uff43arol@elsewhere", "carol@elsewhere"):
            db.execute("INSERT INTO roster (owner, contact) VALUES ('alice', ?)", (contact,))
    db.close()
    with caplog.at_level(logging.WARNING, logger="netsvc.xmpp"):
        store = Store(str(path))
    store.add_user("alice", "pw")
    store.close()
    assert "rows for '\uff43arol@elsewhere' and 'carol@elsewhere' are one contact" in caplog.text
    settings = {"database": str(path)}
    async with netsvc_testing.serve("xmpp", settings=settings) as running:
        with trio.fail_after(30):
            alice, _ = await logged_in_as(running, "alice")
            await alice.say(ROSTER_GET)
            roster = ET.fromstring(await alice.line())
            jids = [item.get("jid") for item in roster.iter("{jabber:iq:roster}item")]
            assert jids == ["bob@localhost", "carol@elsewhere", "snow\u2603@elsewhere"]
            await alice.say(remove_item("snow\u2603@elsewhere"))
            answers = [ET.fromstring(line) for line in (await alice.line(), await alice.line())]
            assert {a.get("type") for a in answers} == {"set", "result"}  # the push, the answer
            (push,) = [a for a in answers if a.get("type") == "set"]
            assert [(i.get("jid"), i.get("subscription")) for i in push.iter()][2:] == [
                ("snow\u2603@elsewhere", "remove")
            ]
            await alice.say(remove_item("rain\u2614@elsewhere"))
            error = ET.fromstring(await alice.line())
            assert error.get("type") == "error"
            assert error.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}jid-malformed") is not None
            await alice.say(ROSTER_GET)
            roster = ET.fromstring(await alice.line())
            jids = [item.get("jid") for item in roster.iter("{jabber:iq:roster}item")]
            assert jids == ["bob@localhost", "carol@elsewhere"]
            await alice.stream.aclose()

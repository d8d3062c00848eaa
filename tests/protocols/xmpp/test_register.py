# In-band registration (XEP-0077) from outside, against `netsvc serve` in a
# subprocess with its database in tmp_path: off by default (no feature,
# service-unavailable); with --xmpp-allow-registration the feature and the
# form, then a new account that logs in on the same stream; refusals (a
# name taken by a user or a bot, an unusable name, no password, <remove/>
# before login); the budget per address (IPv4 address, IPv6 /64, through a
# PROXY protocol listener that lets the test be other machines); only over
# TLS or loopback; refused at startup without a database. A logged-in user
# changes their password (their other sessions end with `reset`) and
# removes their account (contacts told, sessions ended, all of it gone),
# as Prosody lets them; with an account file they may not. slixmpp's
# xep_0077, with its default security (STARTTLS, SCRAM), registers and logs in.
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import ssl
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from protocols.xmpp import Accounts, Store
from tests.protocols.xmpp.test_starttls import RawClient
from tests.serveprocess import Certificates, ServeProcess, host_port, run_netsvc

STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
FEATURE = b"<register xmlns='http://jabber.org/features/iq-register'/>"
FORM = (
    b"<iq type='result' id='f'><query xmlns='jabber:iq:register'>"
    b"<instructions>Choose a user name and password for use with this service.</instructions>"
    b"<username/><password/></query></iq>"
)
GET_FORM = b"<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>"
REGISTER = ["--xmpp-allow-registration", "true"]


def database(folder: Path, **users: str) -> Path:
    """A database with these users (name=password), contacts of one another."""
    path = folder / "xmpp.db"
    store = Store(str(path))
    for name, password in users.items():
        store.add_user(name, password)
    for name in users:
        store.add_contacts(name, [other for other in users if other != name], "localhost")
    store.close()
    return path


def serve(db: Path, *extra: str, listeners: int = 1) -> ServeProcess:
    urls = [arg for arg in extra if "://" in arg]
    args = [] if urls else ["--listen", "xmpp://127.0.0.1:0"]
    return ServeProcess([*args, "--xmpp-database", str(db), *extra], listeners=listeners)


def register_iq(username: str | None, password: str | None, id: str = "r") -> bytes:
    fields = "" if username is None else f"<username>{username}</username>"
    fields += "" if password is None else f"<password>{password}</password>"
    return (
        f"<iq type='set' id='{id}'><query xmlns='jabber:iq:register'>{fields}</query></iq>".encode()
    )


def error(line: bytes) -> tuple[str, str, str]:
    """(error type, condition, text) of an error stanza."""
    stanza = ET.fromstring(line)
    assert stanza.get("type") == "error", line
    (element,) = stanza.findall("error")
    condition = next(c.tag for c in element if c.tag != f"{STANZAS}text")
    return (
        element.get("type", ""),
        condition.removeprefix(STANZAS),
        element.findtext(f"{STANZAS}text") or "",
    )


def plain(user: str, password: str) -> bytes:
    token = base64.b64encode(f"\0{user}\0{password}".encode())
    return b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + token + b"</auth>"


def log_in(client: RawClient, user: str, password: str, resource: str = "r") -> None:
    """PLAIN on a stream whose features were read, then the restart and binding."""
    client.say(plain(user, password))
    assert client.line().startswith(b"<success "), user
    client.open_stream()
    bind = f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind>"
    client.say(f"<iq type='set' id='b'>{bind}</iq>".encode())
    assert b"<jid>" in client.line()


def logged_in(url: str, user: str, password: str, resource: str = "r") -> RawClient:
    client = RawClient(url)
    client.open_stream()
    log_in(client, user, password, resource)
    return client


def login_fails(url: str, user: str, password: str) -> bool:
    client = RawClient(url)
    client.open_stream()
    client.say(plain(user, password))
    answer = client.line()
    client.close()
    return b"<not-authorized/>" in answer


def settle(client: RawClient) -> bytes:
    """Ping; what came before the answer."""
    client.say(b"<iq type='get' id='settle'><ping xmlns='urn:xmpp:ping'/></iq>")
    lines = []
    while b"id='settle'" not in (line := client.line()):
        lines.append(line)
    return b"\n".join(lines)


def proxied(url: str, address: str) -> RawClient:
    """A client that a +proxy listener takes for one at `address`."""
    client = RawClient(url)
    family, to = ("TCP6", "::1") if ":" in address else ("TCP4", "127.0.0.1")
    client.say(f"PROXY {family} {address} {to} 40000 5222\r\n".encode())
    return client


# -- registration before login ------------------------------------------------------


def test_off_by_default(tmp_path: Path) -> None:
    with serve(database(tmp_path, alice="pw")) as server:
        client = RawClient(server.urls[0])
        assert b"iq-register" not in client.open_stream()
        client.say(GET_FORM)
        assert error(client.line())[:2] == ("cancel", "service-unavailable")  # XEP-0077 3.1
        client.say(register_iq("mallory", "pw"))
        assert error(client.line())[:2] == ("cancel", "service-unavailable")
        log_in(client, "alice", "pw")  # the stream goes on
        client.close()
        assert login_fails(server.urls[0], "mallory", "pw")


def test_a_new_account_logs_in_on_the_same_stream(tmp_path: Path) -> None:
    with serve(database(tmp_path, alice="pw"), *REGISTER) as server:
        client = RawClient(server.urls[0])
        features = client.open_stream()
        assert FEATURE in features and b"<mechanism>PLAIN</mechanism>" in features
        client.say(GET_FORM)
        assert client.line() == FORM
        client.say(register_iq("Bill", "Calliope"))  # kept as adduser keeps names: lowercase
        assert client.line() == b"<iq type='result' id='r'/>"
        log_in(client, "bill", "Calliope")
        client.say(b"<iq type='get' id='q'><query xmlns='jabber:iq:roster'/></iq>")
        assert client.line() == (
            b"<iq type='result' id='q' to='bill@localhost/r' from='localhost'>"
            b"<query xmlns='jabber:iq:roster'/></iq>"
        )
        client.close()
        assert login_fails(server.urls[0], "bill", "calliope")
        logged_in(server.urls[0], "BILL", "Calliope").close()
        server.wait_for_log(r"registered bill@localhost \[peer=127\.0\.0\.1:")
    store = Store(str(tmp_path / "xmpp.db"))
    assert store.users() == ["alice", "bill"]
    store.close()


NOT_USABLE = "{} is not a usable user name: {}"
NOT_IDENTIFIER = "only letters, digits and punctuation"
SOFT_HYPHEN = "U+00AD (SOFT HYPHEN) is not allowed"
ZWJ = "U+200D (ZERO WIDTH JOINER) is not allowed"
SNOWMAN = "U+2603 (SNOWMAN) is not allowed"
UNASSIGNED = "U+0378 (an unassigned code point) is not allowed"
TOO_LONG = "longer than 1023 bytes"
EMPTY_ONCE_PREPARED = "the password is empty once prepared (SASLprep maps what it holds to nothing)"


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        ("alice", "other", ("cancel", "conflict", "alice@localhost is taken")),
        ("ALICE", "other", ("cancel", "conflict", "alice@localhost is taken")),
        ("echo", "pw", ("cancel", "conflict", "echo@localhost is taken")),  # a bot's name
        # RFC 8265: fullwidth, capital or decomposed forms of a taken name are that name
        ("\uff41\uff4c\uff49\uff43\uff45", "x", ("cancel", "conflict", "alice@localhost is taken")),
        ("rene\u0301", "x", ("cancel", "conflict", "ren\u00e9@localhost is taken")),
        ("REN\u00c9", "x", ("cancel", "conflict", "ren\u00e9@localhost is taken")),
        (
            "a b",
            "pw",
            ("modify", "not-acceptable", NOT_USABLE.format("'a b'", NOT_IDENTIFIER)),
        ),
        (
            "a@b",
            "pw",
            (
                "modify",
                "not-acceptable",
                NOT_USABLE.format("'a@b'", "it has one of \" & ' / : < > @"),
            ),
        ),
        (
            "alice\u00ad",  # a soft hyphen, invisible
            "pw",
            ("modify", "not-acceptable", NOT_USABLE.format(repr("alice\u00ad"), SOFT_HYPHEN)),
        ),
        (
            "a\u200dlice",  # a zero width joiner
            "pw",
            ("modify", "not-acceptable", NOT_USABLE.format(repr("a\u200dlice"), ZWJ)),
        ),
        (
            "snow\u2603",  # a symbol
            "pw",
            ("modify", "not-acceptable", NOT_USABLE.format(repr("snow\u2603"), SNOWMAN)),
        ),
        (
            "\u0378x",  # unassigned
            "pw",
            ("modify", "not-acceptable", NOT_USABLE.format(repr("\u0378x"), UNASSIGNED)),
        ),
        (
            "x" * 1024,
            "pw",
            ("modify", "not-acceptable", NOT_USABLE.format(f"'{'x' * 100}'", TOO_LONG)),
        ),
        # SASLprep (RFC 4013) refuses controls in a password
        (
            "carol",
            "a\ue000b",  # private use
            ("modify", "not-acceptable", "the password: U+E000 is not allowed in a password"),
        ),
        # SASLprep maps a soft hyphen, a combining grapheme joiner, a BOM to nothing
        ("carol", "\u00ad", ("modify", "not-acceptable", EMPTY_ONCE_PREPARED)),
        ("carol", "\u00ad\u034f\ufeff", ("modify", "not-acceptable", EMPTY_ONCE_PREPARED)),
        ("", "pw", ("modify", "not-acceptable", "a user name and a password are required")),
        ("carol", "", ("modify", "not-acceptable", "a user name and a password are required")),
        ("carol", None, ("modify", "not-acceptable", "a user name and a password are required")),
        (None, "pw", ("modify", "not-acceptable", "a user name and a password are required")),
    ],
)
def test_refusals(
    tmp_path: Path, username: str | None, password: str | None, expected: tuple[str, ...]
) -> None:
    app = ["--app", "examples.echobot:app"]
    with serve(database(tmp_path, alice="pw", **{"ren\u00e9": "pw"}), *REGISTER, *app) as server:
        client = RawClient(server.urls[0])
        client.open_stream()
        client.say(register_iq(username, password))
        assert error(client.line()) == expected
        log_in(client, "alice", "pw")  # the stream goes on; alice's password is hers
        client.close()
    store = Store(str(tmp_path / "xmpp.db"))
    assert store.users() == ["alice", "ren\u00e9"]  # nobody new
    store.close()


def test_no_account_to_remove_before_login(tmp_path: Path) -> None:
    with serve(database(tmp_path, alice="pw"), *REGISTER) as server:
        client = RawClient(server.urls[0])
        client.open_stream()
        client.say(
            b"<iq type='set' id='x'><query xmlns='jabber:iq:register'><remove/></query></iq>"
        )
        assert error(client.line()) == (
            "auth",
            "registration-required",
            "log in to remove an account",
        )
        log_in(client, "alice", "pw")
        client.close()


def test_new_accounts_per_address_are_limited(tmp_path: Path) -> None:
    listen = ["--listen", "xmpp://127.0.0.1:0", "--listen", "xmpp+proxy://127.0.0.1:0"]
    options = [*REGISTER, "--xmpp-registrations-per-hour", "2"]
    options += ["--xmpp-allow-plain-without-tls", "true"]  # the proxied clients are not local
    with serve(database(tmp_path), *listen, *options, listeners=2) as server:
        local, behind_proxy = server.urls

        def register(client: RawClient, name: str) -> bytes:
            client.say(register_iq(name, "pw", id=name))
            return client.line()

        first = RawClient(local)
        first.open_stream()
        assert register(first, "u1") == b"<iq type='result' id='u1'/>"
        assert register(first, "u1").startswith(b"<iq type='error'")  # a conflict counts too
        second = RawClient(local)  # another connection from the same address
        second.open_stream()
        kind, condition, text = error(register(second, "u2"))
        assert (kind, condition) == ("wait", "policy-violation")
        assert text.startswith("at most 2 new accounts an hour from your address: try in ")
        assert 1 < float(text.split("try in ")[1].removesuffix(" s")) <= 1800
        log_in(second, "u1", "pw")  # logins are not limited
        for client in (first, second):
            client.close()
        # other addresses have budgets of their own; an IPv6 /64 has one
        for address, name, allowed in [
            ("203.0.113.9", "v4", True),
            ("2001:db8:1:2::1", "v6a", True),
            ("2001:db8:1:2::ffff", "v6b", True),
            ("2001:db8:1:2:aaaa::1", "v6c", False),
            ("2001:db8:1:3::1", "v6d", True),
        ]:
            client = proxied(behind_proxy, address)
            client.open_stream()
            answer = register(client, name)
            assert answer.startswith(b"<iq type='result'") is allowed, (address, answer)
            client.close()
    store = Store(str(tmp_path / "xmpp.db"))
    assert store.users() == ["u1", "v4", "v6a", "v6b", "v6d"]
    store.close()


def test_only_over_tls_or_loopback(tmp_path: Path, certificates: Certificates) -> None:
    listen = ["--listen", "xmpp://127.0.0.1:0", "--listen", "xmpp+proxy://127.0.0.1:0"]
    with serve(database(tmp_path), *listen, *REGISTER, *certificates.args, listeners=2) as server:
        local, behind_proxy = server.urls
        for name, client in [
            ("local", RawClient(local)),
            ("remote", proxied(behind_proxy, "203.0.113.9")),
        ]:
            features = client.open_stream()
            assert b"<required/></starttls>" in features and b"iq-register" not in features
            client.say(register_iq("eve", "pw"))  # in the clear: refused, as Prosody
            assert error(client.line()) == ("modify", "policy-violation", "encryption is required")
            client.start_tls(certificates.client_context())
            assert FEATURE in client.open_stream()
            client.say(register_iq(name, "pw"))
            assert client.line() == b"<iq type='result' id='r'/>"
            client.close()
    with serve(tmp_path / "xmpp.db", "--listen", "xmpp+proxy://127.0.0.1:0", *REGISTER) as server:
        client = proxied(server.urls[0], "203.0.113.9")  # no certificate: TLS is not possible
        assert b"iq-register" not in client.open_stream()
        client.say(register_iq("eve", "pw"))
        assert error(client.line()) == ("modify", "policy-violation", "encryption is required")
        client.close()
    store = Store(str(tmp_path / "xmpp.db"))
    assert store.users() == ["local", "remote"]
    store.close()


@pytest.mark.server_errors(r"--xmpp-allow-registration")
def test_refused_at_startup_without_a_database(tmp_path: Path) -> None:
    accounts = Accounts()
    accounts.path = tmp_path / "users"
    accounts.add("alice", "pw")
    accounts.save()
    listen = ["serve", "--listen", "xmpp://127.0.0.1:0"]
    for options, message in [
        (
            ["--xmpp-users-file", str(accounts.path)],
            "--xmpp-allow-registration needs --xmpp-database FILE: the accounts clients "
            "register are kept there (an account file is written by adduser alone)",
        ),
        (
            ["--xmpp-database", str(tmp_path / "xmpp.db"), "--xmpp-insecure-any-password", "true"],
            "--xmpp-allow-registration with --xmpp-insecure-any-password: every name logs in "
            "already, so no account can be registered; drop one of them",
        ),
    ]:
        done = run_netsvc(*listen, *options, *REGISTER)
        assert done.returncode == 1, done.stderr
        assert message in done.stderr and "listening on" not in done.stderr


# -- a logged-in user's account --------------------------------------------------------


def test_a_user_changes_their_password(tmp_path: Path) -> None:
    with serve(database(tmp_path, alice="old", bob="pw")) as server:  # registration off
        url = server.urls[0]
        phone, laptop = (
            logged_in(url, "alice", "old", "phone"),
            logged_in(url, "alice", "old", "laptop"),
        )
        bob = logged_in(url, "bob", "pw")
        phone.say(
            b"<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        )
        assert b"<feature var='jabber:iq:register'/>" in phone.line()
        phone.say(b"<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>")
        assert phone.line() == (
            b"<iq type='result' id='g' to='alice@localhost/phone' from='localhost'>"
            b"<query xmlns='jabber:iq:register'><registered/><username>alice</username>"
            b"<password/></query></iq>"
        )
        for username, password, expected in [
            (
                "bob",
                "new",
                ("modify", "bad-request", "give your user name (alice) and the new password"),
            ),
            (
                None,
                "new",
                ("modify", "bad-request", "give your user name (alice) and the new password"),
            ),
            (
                "alice",
                None,
                ("modify", "bad-request", "give your user name (alice) and the new password"),
            ),
            ("alice", "", ("modify", "not-acceptable", "the password is empty")),
            ("alice", "\u00ad", ("modify", "not-acceptable", EMPTY_ONCE_PREPARED)),
        ]:
            phone.say(register_iq(username, password, id="c"))
            assert error(phone.line()) == expected
        phone.say(register_iq("Alice", "new", id="c"))
        assert (
            phone.line()
            == b"<iq type='result' id='c' to='alice@localhost/phone' from='localhost'/>"
        )
        # her other session ends, as Prosody ends them; bob's goes on
        rest = laptop.until_eof()
        assert b"<stream:error><reset xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in rest
        assert b"the password was changed" in rest
        phone.say(b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        assert b"id='p'" in phone.line()
        bob.say(b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        assert b"id='p'" in bob.line()
        assert login_fails(url, "alice", "old")
        logged_in(url, "alice", "new").close()
        for client in (phone, laptop, bob):
            client.close()
    with serve(tmp_path / "xmpp.db") as server:
        logged_in(server.urls[0], "alice", "new").close()


def scram_sha1_login(client: RawClient, user: str, password: str) -> None:
    """SASL SCRAM-SHA-1 (RFC 5802) from the client's side, on a stream whose
    features were read; then the restart and binding."""
    nonce = secrets.token_hex(12)
    first = f"n={user},r={nonce}"
    client.say(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"
        + base64.b64encode(f"n,,{first}".encode())
        + b"</auth>"
    )
    server_first = base64.b64decode(ET.fromstring(client.line()).text or "").decode()
    fields = dict(field.split("=", 1) for field in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(
        "sha1", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha1")
    final = f"c=biws,r={fields['r']}"
    signature = hmac.digest(
        hashlib.sha1(client_key).digest(), f"{first},{server_first},{final}".encode(), "sha1"
    )
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    response = f"{final},p={base64.b64encode(proof).decode()}"
    client.say(
        b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
        + base64.b64encode(response.encode())
        + b"</response>"
    )
    assert client.line().startswith(b"<success "), user
    client.open_stream()
    client.say(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    assert b"<jid>" in client.line()


def test_no_new_password_over_a_connection_others_can_read(tmp_path: Path) -> None:
    # from another machine without TLS, SCRAM logs in (it sends no password),
    # but a new password would cross in the clear: XEP-0077 3.3's not-authorized
    with serve(database(tmp_path, alice="old"), "--listen", "xmpp+proxy://127.0.0.1:0") as server:
        client = proxied(server.urls[0], "203.0.113.9")
        client.open_stream()
        scram_sha1_login(client, "alice", "old")
        client.say(register_iq("alice", "new", id="c"))
        assert error(client.line()) == (
            "auth",
            "not-authorized",
            "a password may not cross an unencrypted connection",
        )
        client.close()
    store = Store(str(tmp_path / "xmpp.db"))
    assert store.check("alice", "old")
    store.close()


def test_a_user_removes_their_account(tmp_path: Path) -> None:
    db = database(tmp_path, alice="pw", bob="pw")
    store = Store(str(db))
    store.add_user("carol", "pw")
    store.close()
    with serve(db, *REGISTER) as server:
        url = server.urls[0]
        alice = logged_in(url, "alice", "pw")
        alice.say(b"<iq type='get' id='q'><query xmlns='jabber:iq:roster'/></iq><presence/>")
        assert b"bob@localhost" in alice.line()
        carol = logged_in(url, "carol", "pw")
        carol.say(b"<iq type='get' id='q'><query xmlns='jabber:iq:roster'/></iq><presence/>")
        carol.say(b"<presence to='bob@localhost' type='subscribe'/>")  # waits for bob's answer
        assert b"ask='subscribe'" in settle(carol)
        phone, laptop = logged_in(url, "bob", "pw", "phone"), logged_in(url, "bob", "pw", "laptop")
        for client in (phone, laptop):
            client.say(b"<presence/>")
        alice.say(b"<message to='bob@localhost/phone' id='m'><body>before</body></message>")
        assert b"<body>before</body>" in settle(phone)
        phone.say(b"<iq type='set' id='x'><query xmlns='jabber:iq:register'><remove/></query></iq>")
        phone_rest, laptop_rest = phone.until_eof(), laptop.until_eof()
        for rest in (phone_rest, laptop_rest):
            assert (
                b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                in rest
            )
            assert b"the account was removed" in rest
        assert b"<iq type='result' id='x' to='bob@localhost/phone' from='localhost'/>" in phone_rest
        # alice is told, as for a contact who removed her from the roster
        told = settle(alice)
        assert b"<presence type='unsubscribed' from='bob@localhost' to='alice@localhost'/>" in told
        assert b"<presence type='unsubscribe' from='bob@localhost' to='alice@localhost'/>" in told
        assert b"<presence type='unavailable' from='bob@localhost/" in told
        assert b"<item jid='bob@localhost' subscription='none'/>" in told
        # carol's request is refused
        told = settle(carol)
        assert b"<presence type='unsubscribed' from='bob@localhost' to='carol@localhost'/>" in told
        assert b"<item jid='bob@localhost' subscription='none'/>" in told  # no longer asking
        # bob is gone: no login, messages to him come back, his name is free
        assert login_fails(url, "bob", "pw")
        alice.say(b"<message to='bob@localhost' id='n'><body>after</body></message>")
        assert error(alice.line())[1] == "service-unavailable"
        client = RawClient(url)
        client.open_stream()
        client.say(register_iq("bob", "new"))
        assert client.line() == b"<iq type='result' id='r'/>"
        log_in(client, "bob", "new")
        client.say(b"<iq type='get' id='q'><query xmlns='jabber:iq:roster'/></iq>")
        assert b"<query xmlns='jabber:iq:roster'/>" in client.line()  # nothing of the old bob's
        for each in (alice, carol, client, phone, laptop):
            each.close()
        server.wait_for_log(r"bob removed their account")


def test_with_an_account_file_accounts_are_the_administrators(tmp_path: Path) -> None:
    accounts = Accounts()
    accounts.path = tmp_path / "users"
    accounts.add("alice", "pw")
    accounts.save()
    with ServeProcess(
        ["--listen", "xmpp://127.0.0.1:0", "--xmpp-users-file", str(accounts.path)]
    ) as server:
        client = logged_in(server.urls[0], "alice", "pw")
        for request in (
            register_iq("alice", "new", id="c"),
            b"<iq type='set' id='c'><query xmlns='jabber:iq:register'><remove/></query></iq>",
        ):
            client.say(request)
            assert error(client.line()) == (
                "cancel",
                "not-allowed",
                "accounts are changed by the administrator here",
            )
        client.close()
        logged_in(server.urls[0], "alice", "pw").close()


# -- slixmpp --------------------------------------------------------------------------------


def slixmpp_register_and_log_in(address: tuple[str, int], cafile: Path) -> dict[str, object]:
    """slixmpp with its default security (STARTTLS, SCRAM) and xep_0077
    registers dora, then logs in as dora with a second client."""
    got: dict[str, object] = {}

    async def scenario() -> None:
        registering = slixmpp.ClientXMPP("dora@localhost/reg", "explorer")
        registering.ca_certs = cafile
        registering.register_plugin("xep_0077")
        registered, started = asyncio.Event(), asyncio.Event()

        async def on_register(form: slixmpp.Iq) -> None:
            reply = registering.Iq()
            reply["type"] = "set"
            reply["register"]["username"] = registering.boundjid.user
            reply["register"]["password"] = registering.password
            try:
                await reply.send()
                got["registered"] = True
            except IqError as exc:
                got["registered"] = exc.iq["error"]["condition"]
            registered.set()

        def on_start(_: object) -> None:
            tls = registering.socket  # what slixmpp itself asks before it sends a password
            got["tls"] = tls.version() if isinstance(tls, ssl.SSLObject) else None
            started.set()

        registering.add_event_handler("register", on_register)
        registering.add_event_handler("session_start", on_start)
        for event in ("failed_auth", "connection_failed", "stream_error"):
            registering.add_event_handler(
                event, lambda detail, e=event: got.setdefault(e, str(detail))
            )
        checking = slixmpp.ClientXMPP("dora@localhost/check", "explorer")
        checking.ca_certs = cafile
        checked = asyncio.Event()
        checking.add_event_handler("session_start", lambda _: checked.set())
        try:
            registering.connect(*address)
            await asyncio.wait_for(registered.wait(), 20)
            await asyncio.wait_for(started.wait(), 20)  # logged in after registering
            checking.connect(*address)
            await asyncio.wait_for(checked.wait(), 20)
            got["second login"] = True
        except TimeoutError:
            got["timed out"] = True
        finally:
            for client in (registering, checking):
                client.cancel_connection_attempt()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), 5)

    thread = threading.Thread(target=lambda: asyncio.run(scenario()))
    thread.start()
    thread.join(90)
    assert not thread.is_alive(), "slixmpp did not finish"
    return got


def test_slixmpp_registers_and_logs_in(tmp_path: Path, certificates: Certificates) -> None:
    with serve(database(tmp_path, alice="pw"), *REGISTER, *certificates.args) as server:
        got = slixmpp_register_and_log_in(host_port(server.urls[0]), certificates.cafile)
        server.wait_for_log(r"authenticated as dora \(SCRAM-SHA-(1|256)\)", count=2)
    assert got.get("registered") is True, got
    assert got.get("second login") is True, got
    assert str(got.get("tls")).startswith("TLSv1."), got

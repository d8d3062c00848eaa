# SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677): the exchange against
# the RFCs' own test vectors and its failures, sans-IO; then slixmpp logging
# in with each (over STARTTLS, as it insists), an account file that keeps no
# password (PLAIN is checked against the SCRAM keys), and a file of the old
# scrypt form upgraded by a user's first PLAIN login.
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import slixmpp
import trio

import netsvc.testing as netsvc_testing
from protocols.xmpp import Accounts
from protocols.xmpp._scram import ScramCredentials, ScramError, ScramServer, derive
from tests.protocols.xmpp.rawclient import Client
from tests.serveprocess import Certificates, ServeProcess, host_port, netsvc_env

SECRET = b"s" * 32


def b64(text: str) -> bytes:
    return base64.b64decode(text)


# (mechanism, password, salt, client-first, server nonce, client-final, server-final)
VECTORS = [
    (  # RFC 5802 section 5
        "SCRAM-SHA-1",
        "pencil",
        "QSXCR+Q6sek8bf92",
        b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        "3rfcNHYJY1ZVvWVs7j",
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    ),
    (  # RFC 7677 section 3
        "SCRAM-SHA-256",
        "pencil",
        "W22ZaJ0SNY7soEsUEjb6gQ==",
        b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    ),
]


def started(mechanism: str, password: str, salt: str, first: bytes, nonce: str) -> ScramServer:
    server = ScramServer(mechanism, nonce=nonce)
    assert server.first(first) == "user"
    hash_name = "sha1" if mechanism == "SCRAM-SHA-1" else "sha256"
    server.challenge(derive(password, hash_name, b64(salt), 4096), secret=SECRET)
    return server


@pytest.mark.parametrize(
    ("mechanism", "password", "salt", "first", "nonce", "final", "server_final"), VECTORS
)
def test_the_rfc_test_vectors(
    mechanism: str,
    password: str,
    salt: str,
    first: bytes,
    nonce: str,
    final: bytes,
    server_final: bytes,
) -> None:
    server = ScramServer(mechanism, nonce=nonce)
    assert server.first(first) == "user"
    hash_name = "sha1" if mechanism == "SCRAM-SHA-1" else "sha256"
    credentials = derive(password, hash_name, b64(salt), 4096)
    client_nonce = first.decode().rpartition("r=")[2]
    assert server.challenge(credentials, secret=SECRET) == (
        f"r={client_nonce}{nonce},s={salt},i=4096".encode()
    )
    assert server.final(final) == server_final


@pytest.mark.parametrize(
    ("mechanism", "password", "salt", "first", "nonce", "final", "server_final"), VECTORS
)
@pytest.mark.parametrize(
    ("change", "condition"),
    [
        (lambda final: final[:-6] + b"AAAAA=", "not-authorized"),  # another proof
        (lambda final: final.replace(b",r=", b",r=x"), "not-authorized"),  # another nonce
        (lambda final: final.replace(b"c=biws", b"c=eSws"), "not-authorized"),  # "y,,": downgrade
        (lambda final: final.rpartition(b",p=")[0], "malformed-request"),  # no proof
        (lambda final: final.replace(b"p=", b"p=!"), "malformed-request"),  # not base64
    ],
    ids=["wrong-proof", "wrong-nonce", "binding-mismatch", "no-proof", "bad-base64"],
)
def test_a_wrong_final_message_fails(
    mechanism: str,
    password: str,
    salt: str,
    first: bytes,
    nonce: str,
    final: bytes,
    server_final: bytes,
    change: object,
    condition: str,
) -> None:
    server = started(mechanism, password, salt, first, nonce)
    with pytest.raises(ScramError) as failed:
        server.final(change(final))  # type: ignore[operator]
    assert failed.value.condition == condition


@pytest.mark.parametrize(
    "first",
    [
        b"p=tls-unique,,n=user,r=abc",  # channel binding: not offered
        b"x,,n=user,r=abc",
        b"n,,r=abc,n=user",
        b"n,,m=ext,n=user,r=abc",
        b"n,,n=us=er,r=abc",
        b"n,n=user,r=abc",
        b"n,,n=user",
        b"\xff,,n=user,r=abc",
    ],
)
def test_a_malformed_first_message_is_refused(first: bytes) -> None:
    with pytest.raises(ScramError) as failed:
        ScramServer("SCRAM-SHA-256").first(first)
    assert failed.value.condition == "malformed-request"


def with_valid_proof(
    mechanism: str, password: str, salt: str, first: bytes, challenge: bytes, without_proof: bytes
) -> bytes:
    """client-final for `without_proof` (its c= and r= as given) with the
    proof a client that knows the password computes over that message: so
    only the check of c= or r= can refuse it, not the proof."""
    hash_name = "sha1" if mechanism == "SCRAM-SHA-1" else "sha256"
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), b64(salt), 4096)
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    stored_key = hashlib.new(hash_name, client_key).digest()
    bare = first.split(b",", 2)[2]
    auth_message = b",".join([bare, challenge, without_proof])
    signature = hmac.digest(stored_key, auth_message, hash_name)
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return without_proof + b",p=" + base64.b64encode(proof)


@pytest.mark.parametrize(
    ("mechanism", "password", "salt", "first", "nonce", "final", "server_final"), VECTORS
)
@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda nonce: b"c=biws,r=" + nonce + b"x", "the nonce does not match"),
        (lambda nonce: b"c=biws,r=" + nonce[:-1], "the nonce does not match"),
        (lambda nonce: b"c=eSws,r=" + nonce, "channel binding does not match"),  # "y,,"
        (lambda nonce: b"c=,r=" + nonce, "channel binding does not match"),
        (lambda nonce: b"r=" + nonce, "channel binding does not match"),
    ],
    ids=["longer-nonce", "shorter-nonce", "binding-downgrade", "empty-binding", "no-binding"],
)
def test_a_right_proof_over_a_wrong_message_fails(
    mechanism: str,
    password: str,
    salt: str,
    first: bytes,
    nonce: str,
    final: bytes,
    server_final: bytes,
    change: object,
    detail: str,
) -> None:
    server = ScramServer(mechanism, nonce=nonce)
    server.first(first)
    hash_name = "sha1" if mechanism == "SCRAM-SHA-1" else "sha256"
    challenge = server.challenge(derive(password, hash_name, b64(salt), 4096), secret=SECRET)
    full_nonce = challenge.split(b",")[0][2:]
    right = with_valid_proof(mechanism, password, salt, first, challenge, b"c=biws,r=" + full_nonce)
    assert right == final  # the helper makes the RFC's own message from the right parts
    wrong = change(full_nonce)  # type: ignore[operator]
    with pytest.raises(ScramError, match=detail) as failed:
        server.final(with_valid_proof(mechanism, password, salt, first, challenge, wrong))
    assert failed.value.condition == "not-authorized"


def test_made_up_keys_never_let_anyone_in() -> None:
    # the keys of an unknown user are made up; even a proof that matched
    # them (here: the server is handed keys whose password is known) fails
    server = ScramServer("SCRAM-SHA-256", nonce="N")
    server.first(b"n,,n=nobody,r=abc")
    challenge = server.challenge(None, secret=SECRET)
    salt = base64.b64encode(server._credentials.salt).decode()  # type: ignore[union-attr]
    server._credentials = derive("guess", "sha256", b64(salt), 4096)
    final = with_valid_proof(
        "SCRAM-SHA-256", "guess", salt, b"n,,n=nobody,r=abc", challenge, b"c=biws,r=abcN"
    )
    with pytest.raises(ScramError, match="wrong proof"):
        server.final(final)


def test_an_unknown_user_gets_a_steady_challenge_and_fails_at_the_end() -> None:
    # the same salt each time, as for a real user, so no name is given away
    challenges = []
    for _ in range(2):
        server = ScramServer("SCRAM-SHA-256", nonce="N")
        server.first(b"n,,n=nobody,r=abc")
        challenges.append(server.challenge(None, secret=SECRET))
    assert challenges[0] == challenges[1]
    with pytest.raises(ScramError, match="wrong proof"):
        server.final(b"c=biws,r=abcN,p=" + base64.b64encode(bytes(32)))


def test_credentials_are_not_the_password() -> None:
    keys = derive("pencil", "sha256", b"salt", 4096)
    assert isinstance(keys, ScramCredentials)
    assert b"pencil" not in keys.stored_key + keys.server_key


# -- from outside ----------------------------------------------------------------------------

USERS = {"alice": "wonderland"}


def accounts_file(folder: Path) -> Path:
    accounts = Accounts()
    accounts.path = folder / "users"
    accounts.add("alice", USERS["alice"])
    accounts.save()
    return accounts.path


def slixmpp_login(
    address: tuple[str, int],
    cafile: Path,
    mechanism: str,
    *,
    jid: str = "alice@localhost/s",
    password: str | None = None,
) -> str:
    """Log in with slixmpp using `mechanism` (alice with her password unless
    told); "ok" or what went wrong."""
    outcome: list[str] = []

    async def scenario() -> None:
        client = slixmpp.ClientXMPP(
            jid,
            USERS["alice"] if password is None else password,
            plugin_config={"feature_mechanisms": {"use_mech": mechanism}},
        )
        client.ca_certs = cafile
        done = asyncio.Event()

        def on_start(_: object) -> None:
            outcome.append("ok")
            done.set()

        def on_failure(detail: object) -> None:
            outcome.append(f"failed: {detail}")
            done.set()

        client.add_event_handler("session_start", on_start)
        client.add_event_handler("failed_auth", on_failure)
        client.connect(*address)
        try:
            await asyncio.wait_for(done.wait(), 20)
        except TimeoutError:
            outcome.append("timed out")
        finally:
            client.cancel_connection_attempt()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 5)

    thread = threading.Thread(target=lambda: asyncio.run(scenario()))
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "slixmpp did not finish"
    return outcome[0] if outcome else "nothing happened"


def serve(users: Path, certificates: Certificates) -> ServeProcess:
    args = ["--listen", "xmpp://127.0.0.1:0", "--xmpp-users-file", str(users)]
    return ServeProcess([*args, *certificates.args])


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
def test_slixmpp_logs_in(tmp_path: Path, certificates: Certificates, mechanism: str) -> None:
    with serve(accounts_file(tmp_path), certificates) as server:
        address = host_port(server.urls[0])
        assert slixmpp_login(address, certificates.cafile, mechanism) == "ok"
        server.wait_for_log(rf"authenticated as alice \({mechanism}\)")


@pytest.mark.server_errors()
def test_a_wrong_password_fails_with_scram(tmp_path: Path, certificates: Certificates) -> None:
    users = accounts_file(tmp_path)
    USERS["alice"], right = "not the password", USERS["alice"]
    try:
        with serve(users, certificates) as server:
            result = slixmpp_login(host_port(server.urls[0]), certificates.cafile, "SCRAM-SHA-256")
            assert result.startswith("failed"), result
            server.wait_for_log("authentication failed for 'alice'")
    finally:
        USERS["alice"] = right


def test_the_account_file_keeps_no_password(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "protocols.xmpp", "adduser", str(tmp_path / "users"), "bob"],
        env=netsvc_env({"NETSVC_XMPP_NEW_PASSWORD": "correct horse"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    line = (tmp_path / "users").read_text()
    assert line.startswith("bob:scram$4096$")
    assert "correct horse" not in line and base64.b64encode(b"correct horse").decode() not in line
    accounts = Accounts(str(tmp_path / "users"))
    assert accounts.check("bob", "correct horse") and not accounts.check("bob", "wrong")
    assert accounts.scram("bob", "SCRAM-SHA-1") is not None


def old_scrypt_line(name: str, password: str) -> str:
    """A line as netsvc wrote them before SCRAM."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    encoded = [base64.b64encode(x).decode() for x in (salt, digest)]
    return f"{name}:scrypt$16384$8$1${encoded[0]}${encoded[1]}:"


def test_an_old_scrypt_account_moves_to_scram_at_its_first_plain_login(
    tmp_path: Path, certificates: Certificates
) -> None:
    users = tmp_path / "users"
    users.write_text(old_scrypt_line("alice", USERS["alice"]) + "\n")
    with serve(users, certificates) as server:
        address = host_port(server.urls[0])
        # no SCRAM keys yet: SCRAM fails, as for a wrong password
        assert slixmpp_login(address, certificates.cafile, "SCRAM-SHA-256").startswith("failed")
        assert slixmpp_login(address, certificates.cafile, "PLAIN") == "ok"
        server.wait_for_log("alice's password is now kept as SCRAM keys")
        assert users.read_text().startswith("alice:scram$4096$")
        assert slixmpp_login(address, certificates.cafile, "SCRAM-SHA-256") == "ok"
    with serve(users, certificates) as server:  # and after a restart
        assert slixmpp_login(host_port(server.urls[0]), certificates.cafile, "SCRAM-SHA-1") == "ok"


async def test_the_upgrade_keeps_users_adduser_added_since_the_start(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(old_scrypt_line("old", "pw") + "\n")
    async with netsvc_testing.serve("xmpp", settings={"users_file": str(users)}) as running:
        added = await trio.run_process(
            [sys.executable, "-m", "protocols.xmpp", "adduser", str(users), "newbie"],
            env=netsvc_env({"NETSVC_XMPP_NEW_PASSWORD": "x"}),
            capture_stderr=True,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        client = Client(await running.connect())
        await client.login("old", password="pw")  # PLAIN: the line becomes SCRAM keys
        await client.stream.aclose()
    lines = dict(line.split(":", 2)[:2] for line in users.read_text().splitlines())
    assert sorted(lines) == ["newbie", "old"]  # newbie is still there
    assert lines["old"].startswith("scram$")
    assert stat.S_IMODE(users.stat().st_mode) == 0o600

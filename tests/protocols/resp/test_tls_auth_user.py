# Certificate login (issue 13), like Redis's tls-auth-clients-user: with
# `--resp-tls-auth-user cn`, a TLS client whose certificate the server verified
# starts logged in as the ACL user its certificate's CN names (if it is on),
# with no AUTH; any other client starts as the default user. Driven with the
# real redis-cli (--tls --cert --key) and trustme certificates: alice's CN
# names a user, a stranger's names none, olga's names a user that is off,
# mallory's comes from a CA the server does not trust.
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.protocols.resp.test_redis_cli import tool
from tests.serveprocess import Certificates, ServeProcess, host_port

USERS = (
    "user default on >default-pw ~* &* +@all\n"
    "user alice on resetpass ~alice:* +@all\n"  # no password: her certificate is her login
    "user olga off ~* +@all\n"
)


class Pki:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        ca = trustme.CA()
        self.server = Certificates.issue(ca, folder)
        self.certs = {
            name: ca.issue_cert(f"{name}@example.org", common_name=name)
            for name in ("alice", "stranger", "olga")
        }
        self.certs["mallory"] = trustme.CA().issue_cert("m@example.org", common_name="alice")
        self.aclfile = folder / "users.acl"
        self.aclfile.write_text(USERS)

    def args(self, client_certs: str, *extra: str) -> list[str]:
        return [
            "--listen", "rediss://127.0.0.1:0", *self.server.args,
            "--ca-certs", str(self.server.cafile), "--client-certs", client_certs,
            "--resp-aclfile", str(self.aclfile), *extra,
        ]  # fmt: skip

    def cli(self, port: int, *command: str, cert: str | None = None) -> str:
        """redis-cli over TLS, with `cert`'s certificate: its output."""
        args = [tool("redis-cli"), "-p", str(port), "--tls", "--cacert", str(self.server.cafile)]
        if cert is not None:
            leaf = self.certs[cert]
            certfile, keyfile = self.folder / f"{cert}.pem", self.folder / f"{cert}-key.pem"
            leaf.cert_chain_pems[0].write_to_path(str(certfile))
            leaf.private_key_pem.write_to_path(str(keyfile))
            args += ["--cert", str(certfile), "--key", str(keyfile)]
        done = subprocess.run([*args, *command], capture_output=True, text=True, timeout=30)
        return (done.stdout + done.stderr).strip()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def required(pki: Pki) -> Iterator[tuple[int, ServeProcess]]:
    """Certificates required, certificate login on."""
    with ServeProcess(pki.args("required", "--resp-tls-auth-user", "cn")) as server:
        yield host_port(server.urls[0])[1], server


def test_a_certificate_naming_a_user_logs_in_as_that_user(
    pki: Pki, required: tuple[int, ServeProcess]
) -> None:
    port, server = required
    assert pki.cli(port, "ACL", "WHOAMI", cert="alice") == "alice"
    # logged in without AUTH, though the default user has a password
    assert pki.cli(port, "SET", "alice:1", "v", cert="alice") == "OK"
    assert pki.cli(port, "SET", "bob:1", "v", cert="alice") == (
        "NOPERM No permissions to access a key"
    )
    server.wait_for_log(r"INFO netsvc\.connection: logged in as ACL user 'alice' by its client")


def test_a_certificate_naming_no_user_starts_as_default(
    pki: Pki, required: tuple[int, ServeProcess]
) -> None:
    port, _ = required
    assert pki.cli(port, "ACL", "WHOAMI", cert="stranger") == ("NOAUTH Authentication required.")
    login = ["--user", "default", "--pass", "default-pw", "--no-auth-warning"]
    assert pki.cli(port, *login, "ACL", "WHOAMI", cert="stranger") == "default"
    # a user that is off does not log in either
    assert pki.cli(port, "ACL", "WHOAMI", cert="olga") == "NOAUTH Authentication required."


def test_without_a_trusted_certificate_a_client_is_refused_when_required(
    pki: Pki, required: tuple[int, ServeProcess]
) -> None:
    port, _ = required
    for cert in (None, "mallory"):  # mallory's CN is alice's, from another CA
        out = pki.cli(port, "ACL", "WHOAMI", cert=cert)
        assert "alice" not in out and "default" not in out, out


def test_optional_certificates_a_client_without_one_starts_as_default(pki: Pki) -> None:
    with ServeProcess(pki.args("optional", "--resp-tls-auth-user", "cn")) as server:
        port = host_port(server.urls[0])[1]
        assert pki.cli(port, "ACL", "WHOAMI", cert="alice") == "alice"
        assert pki.cli(port, "ACL", "WHOAMI") == "NOAUTH Authentication required."
        server.wait_for_log(
            r"authentication ACL users \(AUTH user password\) \(ACL users besides default: 2; "
            r"a client certificate's CN logs in as the ACL user it names\)"
        )


def test_without_the_setting_a_certificate_logs_no_one_in(pki: Pki) -> None:
    with ServeProcess(pki.args("required")) as server:
        port = host_port(server.urls[0])[1]
        assert pki.cli(port, "ACL", "WHOAMI", cert="alice") == "NOAUTH Authentication required."


@pytest.mark.server_errors(r"--resp-tls-auth-user: choose cn or off")
def test_the_setting_is_cn_or_off(pki: Pki) -> None:
    args = pki.args("required", "--resp-tls-auth-user", "email")
    with ServeProcess(args, listeners=0) as server:
        assert server.wait() == 1
    assert "--resp-tls-auth-user: choose cn or off, got 'email'" in server.log


@pytest.mark.server_errors(r"no RESP listener asks for one")
@pytest.mark.parametrize("client_certs", ["none", None])
def test_certificate_login_needs_a_listener_asking_for_certificates(
    pki: Pki, client_certs: str | None
) -> None:
    if client_certs is None:  # a plain listener
        args = ["--protocol", "resp", "--port", "0", "--resp-tls-auth-user", "cn"]
    else:
        args = pki.args(client_certs, "--resp-tls-auth-user", "cn")
    with ServeProcess(args, listeners=0) as server:
        assert server.wait() == 1
    assert (
        "--resp-tls-auth-user cn logs clients in by their TLS certificate, but no RESP listener "
        "asks for one: serve rediss:// (--certfile, --keyfile) with --ca-certs and "
        "--client-certs optional or required, or drop --resp-tls-auth-user"
    ) in server.log

# The startup audit: one line per listener saying who can reach it, whether
# it has TLS (and asks for client certificates) and who is let in, and a
# warning, with the protocol's way out, when other machines can reach a
# listener that asks nobody who they are (HTTP leaves that to the app).
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import trustme

from netsvc import Access
from netsvc._server import audit_line
from tests.serveprocess import Certificates, ServeProcess, host_port

URL = "redis://0.0.0.0:6380"
NOBODY = Access(advice="set a password")
CASES = [
    # (local, client certs, access) -> (level, message)
    (
        (True, None, NOBODY),
        (logging.INFO, f"{URL}: reachable from this machine only; TLS off; authentication none"),
    ),
    (
        (False, None, NOBODY),
        (
            logging.WARNING,
            f"{URL}: reachable from other machines too; TLS off; authentication none: "
            "anyone who reaches it gets in; set a password",
        ),
    ),
    (
        (False, "none", Access()),
        (
            logging.WARNING,
            f"{URL}: reachable from other machines too; TLS on; authentication none: anyone "
            "who reaches it gets in; require a client certificate (--client-certs required)",
        ),
    ),
    (
        (False, "required", Access()),
        (
            logging.INFO,
            f"{URL}: reachable from other machines too; TLS on, client certificates required; "
            "authentication client certificate",
        ),
    ),
    (
        (False, "optional", Access("password (AUTH)", note="protected mode off")),
        (
            logging.INFO,
            f"{URL}: reachable from other machines too; TLS on, client certificates optional; "
            "authentication password (AUTH) (protected mode off)",
        ),
    ),
    (
        (False, None, Access(note="protected", risk="others are refused", advice="do X")),
        (
            logging.WARNING,
            f"{URL}: reachable from other machines too; TLS off; authentication none "
            "(protected): others are refused; do X",
        ),
    ),
    (
        (False, None, Access(by_app=True)),
        (
            logging.INFO,
            f"{URL}: reachable from other machines too; TLS off; authentication by the app",
        ),
    ),
]


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_audit_line(given: tuple[bool, str | None, Access], expected: tuple[int, str]) -> None:
    local, client_certs, access = given
    assert audit_line(URL, local=local, client_certs=client_certs, access=access) == expected


@pytest.mark.parametrize(
    ("args", "authentication"),
    [
        (
            ["--protocol", "resp"],
            "none (protected mode: only 127.0.0.1, ::1 and Unix socket clients are served)",
        ),
        (["--protocol", "resp", "--resp-protected-mode", "false"], "none"),
        (["--protocol", "resp", "--resp-requirepass", "s3cret"], "password (AUTH)"),
        (["--protocol", "http"], "by the app"),
        (
            ["--protocol", "xmpp", "--xmpp-insecure-any-password", "true"],
            "none (--xmpp-insecure-any-password: any login works, for development)",
        ),
    ],
)
def test_each_listener_is_audited_at_startup(args: list[str], authentication: str) -> None:
    args, env = list(args), {}
    if "--resp-requirepass" in args:  # a password belongs in the environment
        env["NETSVC_RESP_REQUIREPASS"] = args.pop()
        args.pop()
    with ServeProcess([*args, "--port", "0"], env=env) as server:
        (url,) = server.urls
        line = f"{url}: reachable from this machine only; TLS off; authentication {authentication}"
        server.wait_for_log(rf"INFO netsvc.server: {re.escape(line)}$")
        assert "WARNING" not in server.log


def test_a_tls_listener_with_client_certificates_is_audited(tmp_path: Path) -> None:
    certificates = Certificates.issue(trustme.CA(), tmp_path)
    tls = [*certificates.args, "--ca-certs", str(certificates.cafile), "--client-certs"]
    with ServeProcess(["--protocol", "resp", "--port", "0", *tls, "required"]) as server:
        host, port = host_port(server.urls[0])
        server.wait_for_log(
            rf"rediss://{host}:{port}: reachable from this machine only; TLS on, client "
            r"certificates required; authentication client certificate \(protected mode"
        )


def test_a_password_on_the_command_line_draws_a_warning() -> None:
    args = ["--protocol", "resp", "--port", "0", "--resp-requirepass", "s3cret"]
    with ServeProcess(args) as server:
        server.wait_for_log(
            r"WARNING netsvc: --resp-requirepass was given on the command line, which other "
            r"users of this machine can read \(ps, /proc\): give it in the environment "
            r"instead, as NETSVC_RESP_REQUIREPASS$"
        )
        assert "s3cret" not in server.log

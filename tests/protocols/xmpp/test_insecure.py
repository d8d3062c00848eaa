# --xmpp-insecure-any-password (any user logs in with any password) stays on
# loopback: `netsvc serve` refuses to start when an XMPP listener could be
# reached from elsewhere (0.0.0.0, an inherited socket it cannot vouch for)
# before binding anything, says how to get past it, and starts on loopback,
# localhost and Unix sockets; --xmpp-insecure-any-password-off-loopback opens
# it deliberately.
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.serveprocess import NETSVC, ServeProcess, netsvc_env

INSECURE = ["--protocol", "xmpp", "--xmpp-insecure-any-password", "true"]


def refused(*args: str, **popen: object) -> str:
    done = subprocess.run(
        [NETSVC, "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=netsvc_env(),
        **popen,  # type: ignore[call-overload]
    )
    assert done.returncode == 1, done.stderr
    assert "listening on" not in done.stderr
    return str(done.stderr)


REFUSAL = r"--xmpp-insecure-any-password lets anyone log in as anyone"


@pytest.mark.server_errors(REFUSAL)
def test_refused_on_all_interfaces() -> None:
    error = refused(*INSECURE, "--host", "0.0.0.0", "--port", "0")
    assert "--xmpp-insecure-any-password lets anyone log in as anyone" in error
    assert "0.0.0.0:0 is not one" in error
    assert "--xmpp-insecure-any-password-off-loopback true" in error


@pytest.mark.server_errors(REFUSAL)
def test_refused_behind_a_proxy_whatever_its_address() -> None:
    # a +proxy listener's clients are the proxy's: anywhere
    error = refused("--listen", "xmpp+proxy://127.0.0.1:0", "--xmpp-insecure-any-password", "true")
    assert "127.0.0.1:0 behind a proxy (+proxy) is not one" in error


@pytest.mark.parametrize("listen", ["xmpp://127.0.0.1:0", "xmpp://localhost:0"])
def test_served_on_loopback(listen: str) -> None:
    with ServeProcess(["--listen", listen, "--xmpp-insecure-any-password", "true"]):
        pass


def test_served_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "xmpp.sock"
    with ServeProcess([*INSECURE, "--unix", str(path)]):
        assert path.exists()


@pytest.mark.server_errors(REFUSAL)
def test_an_inherited_socket_needs_the_second_flag() -> None:
    # netsvc cannot tell who can reach an inherited socket: refused, unless
    # the second, explicitly named flag says so (this one is on loopback)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        fd = sock.fileno()
        error = refused(*INSECURE, "--fd", str(fd), pass_fds=(fd,))
        assert f"the inherited socket (fd {fd}) is not one" in error
        args = [*INSECURE, "--fd", str(fd), "--xmpp-insecure-any-password-off-loopback", "true"]
        with ServeProcess(args, pass_fds=(fd,)):
            pass

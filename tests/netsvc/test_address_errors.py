# What the core says when a listener cannot be had, from outside: an
# inherited fd that is closed, not a socket, not a stream or not listening;
# a Unix socket another server holds, or one in a missing directory. And what
# it does to the fds it is given: adopted and systemd sockets are not passed
# on to the app's children, and systemd's variables are consumed.
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from netsvc import ListenAddress, listens_locally
from tests.serveprocess import NETSVC, PROBE, ServeProcess, netsvc_env


def serve_fd(fd: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NETSVC, "serve", "--protocol", PROBE, "--fd", str(fd)],
        capture_output=True,
        text=True,
        timeout=30,
        env=netsvc_env(),
        pass_fds=(fd,) if fd < 1000 else (),
    )


@pytest.mark.server_errors(r"file descriptor \d+ is")
@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda tmp: None, "file descriptor 1500 is not open: Bad file descriptor"),
        (lambda tmp: open(tmp / "file", "w"), "file descriptor {fd} is not a socket"),  # noqa: SIM115
        (
            lambda tmp: socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
            "file descriptor {fd} is not a stream socket",
        ),
        (lambda tmp: socket.socket(), "file descriptor {fd} is a socket that is not listening"),
    ],
    ids=["closed", "a-file", "udp", "not-listening"],
)
def test_an_unusable_inherited_fd_is_refused_with_the_reason(
    tmp_path: Path, make: object, error: str
) -> None:
    thing = make(tmp_path)  # type: ignore[operator]
    try:
        fd = 1500 if thing is None else thing.fileno()
        done = serve_fd(fd)
    finally:
        if thing is not None:
            thing.close()
    assert done.returncode == 1, done.stderr
    assert error.format(fd=fd) in done.stderr


@pytest.mark.server_errors(r"is in use by another server")
def test_a_unix_socket_another_server_holds_is_not_taken(tmp_path: Path) -> None:
    path = str(tmp_path / "probe.sock")
    with ServeProcess(["--protocol", PROBE, "--unix", path]):
        done = subprocess.run(
            [NETSVC, "serve", "--protocol", PROBE, "--unix", path],
            capture_output=True,
            text=True,
            timeout=30,
            env=netsvc_env(),
        )
    assert done.returncode == 1
    assert f"Unix socket {path} is in use by another server" in done.stderr


@pytest.mark.server_errors(r"cannot listen on Unix socket")
def test_a_unix_socket_in_a_missing_directory_says_why(tmp_path: Path) -> None:
    path = str(tmp_path / "missing" / "probe.sock")
    done = subprocess.run(
        [NETSVC, "serve", "--protocol", PROBE, "--unix", path],
        capture_output=True,
        text=True,
        timeout=30,
        env=netsvc_env(),
    )
    assert done.returncode == 1
    assert f"cannot listen on Unix socket {path}: No such file or directory" in done.stderr


def test_a_name_that_does_not_resolve_is_not_local(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert not listens_locally(ListenAddress("tcp", "nowhere.invalid", 0))


# In a child, as systemd leaves a socket-activated service: two listening
# sockets at fds 3 and 4, one name for them, LISTEN_PID its own pid. Prints
# what the core made of them.
SYSTEMD_CHILD = """
import json, os, socket, sys
from netsvc._address import ListenAddress, open_sockets, systemd_fds
held = [socket.socket() for _ in range(2)]
for index, sock in enumerate(held):
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    os.dup2(sock.fileno(), 3 + index)  # inheritable, as systemd passes them
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="web")
fds = systemd_fds(os.environ)
adopted = open_sockets(ListenAddress("fd", fd=3), default_port=0, backlog=1)
print(json.dumps({
    "fds": fds,
    "left": sorted(k for k in os.environ if k.startswith("LISTEN_")),
    "inheritable": [os.get_inheritable(fd) for fd, _ in fds],
    "adopted_inheritable": [sock.get_inheritable() for sock in adopted],
}))
"""


def test_systemd_and_inherited_sockets_are_kept_from_children() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SYSTEMD_CHILD],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["fds"] == [[3, "web"], [4, "unknown"]]  # a missing name is "unknown"
    assert seen["left"] == []  # as sd_listen_fds(1): the variables are consumed
    assert seen["inheritable"] == [False, False]  # an app's subprocess gets none
    assert seen["adopted_inheritable"] == [False]

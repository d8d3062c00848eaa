# Protected mode, as Redis 7 has it, on netsvc and on a real redis-server
# running the same scenario (replies compared byte for byte): with no password,
# a client from 127.0.0.2 (not local: Redis counts only 127.0.0.1, ::1 and Unix
# sockets) gets Redis's DENIED text and a clean close; local clients are
# served; after CONFIG SET requirepass the outsider is asked to AUTH and then
# served; with protected mode off everyone is. Only the default user counts:
# other ACL users change nothing, a password given it by ACL SETUSER does.
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.protocols.resp.conftest import redis_server
from tests.protocols.resp.respclient import encode_command
from tests.serveprocess import ServeProcess, host_port

OUTSIDE = "127.0.0.2"  # loopback to the kernel, not local to Redis


def exchange(port: int, source: str, *commands: tuple[str, ...]) -> bytes:
    """What the server sends a client from `source` for `commands`, until it
    closes or goes quiet."""
    with socket.socket() as sock:
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.settimeout(0.5)
        for command in commands:
            sock.sendall(encode_command(*command))
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            received += b"<open>"
        except ConnectionResetError:
            received += b"<reset>"
        return received


def scenario(port: int) -> list[bytes]:
    out = [exchange(port, OUTSIDE, ("PING",))]  # refused at once: DENIED, then the close
    out.append(exchange(port, "127.0.0.1", ("PING",)))
    local = redis.Redis(port=port)
    local.config_set("requirepass", "pw")
    out.append(exchange(port, OUTSIDE, ("PING",), ("AUTH", "pw"), ("PING",)))
    admin = redis.Redis(port=port, password="pw")
    admin.config_set("requirepass", "")
    admin.config_set("protected-mode", "no")
    out.append(exchange(port, OUTSIDE, ("PING",)))
    local.config_set("protected-mode", "yes")
    out.append(exchange(port, OUTSIDE, ("PING",)))
    local.close()
    admin.close()
    return out


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[tuple[int, int]]:
    with redis_server(tmp_path) as redis_port:
        with ServeProcess(["--protocol", "resp", "--port", "0"]) as netsvc:
            yield redis_port, host_port(netsvc.urls[0])[1]


def test_protected_mode_as_redis(ports: tuple[int, int]) -> None:
    redis_port, netsvc_port = ports
    # the same bytes; Redis then resets a refused client if its PING is still
    # unread, netsvc reads what it sent and closes cleanly
    expected = [reply.replace(b"<reset>", b"") for reply in scenario(redis_port)]
    assert expected[0].startswith(b"-DENIED Redis is running in protected mode")
    assert expected[1] == b"+PONG\r\n<open>"
    assert expected[2] == b"-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n<open>"
    assert expected[3] == b"+PONG\r\n<open>"
    assert expected[4] == expected[0]  # protected again
    assert scenario(netsvc_port) == expected


def test_a_unix_socket_client_is_local(tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    with ServeProcess(["--protocol", "resp", "--unix", str(path)]):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            sock.sendall(encode_command("PING"))
            assert sock.recv(100) == b"+PONG\r\n"


def test_protected_mode_off_by_option() -> None:
    args = ["--protocol", "resp", "--port", "0", "--resp-protected-mode", "false"]
    with ServeProcess(args) as server:
        port = host_port(server.urls[0])[1]
        assert exchange(port, OUTSIDE, ("PING",)) == b"+PONG\r\n<open>"


def acl_scenario(port: int) -> list[bytes]:
    """Protected mode looks at the default user alone: other users change nothing
    while it has no password; a password set with ACL SETUSER counts as requirepass."""
    local = redis.Redis(port=port)
    local.execute_command("ACL", "SETUSER", "alice", "on", ">pw", "+@all", "~*")
    out = [exchange(port, OUTSIDE, ("PING",))]
    local.execute_command("ACL", "SETUSER", "default", "resetpass", ">dpw")
    out.append(exchange(port, OUTSIDE, ("PING",), ("AUTH", "alice", "pw"), ("ACL", "WHOAMI")))
    local.execute_command("ACL", "SETUSER", "default", "nopass")
    local.execute_command("ACL", "DELUSER", "alice")
    out.append(exchange(port, OUTSIDE, ("PING",)))
    local.close()
    return out


def test_protected_mode_with_acl_users_as_redis(ports: tuple[int, int]) -> None:
    redis_port, netsvc_port = ports
    expected = [reply.replace(b"<reset>", b"") for reply in acl_scenario(redis_port)]
    assert expected[0].startswith(b"-DENIED Redis is running in protected mode")
    assert expected[1] == (b"-NOAUTH Authentication required.\r\n+OK\r\n$5\r\nalice\r\n<open>")
    assert expected[2] == expected[0]
    assert acl_scenario(netsvc_port) == expected

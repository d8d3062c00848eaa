# CLIENT KILL and blocked clients, as redis-server does it (both servers run
# the same scenario): a client killed by another while it blocks gets no reply
# more (not a null, which a client library would take for a timeout), and the
# replies to what it pipelined before blocking are not held back by the wait.
from __future__ import annotations

import time

import pytest

from tests.protocols.resp.respclient import RespClient, encode_command


def read_until_closed(client: RespClient) -> bytes:
    client.sock.settimeout(3)
    data = b""
    while chunk := client.sock.recv(100):
        data += chunk
    return data


@pytest.mark.parametrize("server", ["netsvc_port", "redis_port"])
def test_a_client_killed_while_blocked_gets_no_reply(
    server: str, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue(server)
    with RespClient(port) as blocked, RespClient(port) as killer:
        client_id = blocked.call("CLIENT", "ID")
        blocked.send_raw(
            encode_command("SET", "before", "1") + encode_command("BZPOPMIN", "kz", "0")
        )
        blocked.sock.settimeout(3)
        assert blocked.sock.recv(100) == b"+OK\r\n"  # not held back by the wait
        time.sleep(0.2)
        assert killer.call("CLIENT", "KILL", "ID", client_id) == 1
        assert read_until_closed(blocked) == b""


@pytest.mark.parametrize("server", ["netsvc_port", "redis_port"])
def test_a_client_killing_itself_gets_its_reply(
    server: str, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue(server)
    with RespClient(port) as client:
        client_id = client.call("CLIENT", "ID")
        client.send_raw(encode_command("CLIENT", "KILL", "ID", client_id, "SKIPME", "no"))
        assert read_until_closed(client) == b":1\r\n"

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


@pytest.mark.parametrize("server", ["netsvc_port", "redis_port"])
def test_a_client_killed_while_a_reply_goes_out_reaches_its_end(
    request: pytest.FixtureRequest, server: str
) -> None:
    # a reply bigger than the sockets' buffers, not read, then CLIENT KILL
    # from another client: the victim reads (part of) the reply and then its
    # end, at once (Redis drops what it had not written; netsvc sends the rest
    # of a reply from the connection's task, then closes)
    port = request.getfixturevalue(server)
    size = 16_000_000
    killer = RespClient(port)
    assert killer.call("SET", "big", "x" * size) == b"OK"
    victim = RespClient(port)
    victim_id = victim.call("CLIENT", "ID")
    victim.send_raw(encode_command("GET", "big"))
    time.sleep(0.3)  # the reply is under way, stuck on the victim's full buffers
    assert killer.call("CLIENT", "KILL", "ID", victim_id) == 1
    victim.sock.settimeout(5)
    received = bytearray()
    started = time.monotonic()
    while chunk := victim.sock.recv(1 << 20):
        received += chunk
    assert time.monotonic() - started < 5
    assert (b"$%d\r\n%s\r\n" % (size, b"x" * size)).startswith(received)
    killer.close()
    victim.close()

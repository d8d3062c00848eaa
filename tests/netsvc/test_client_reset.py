# A client that resets its connection while the server is sending to it, on
# the real protocols through `netsvc serve`: the connection ends quietly (a
# lost client is an ordinary end, not a handler error: no ERROR in the log,
# the errors counter unchanged) and the server goes on serving the others.
from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.protocols.resp.respclient import RespClient, encode_command
from tests.rawclient import linger_reset
from tests.serveprocess import ServeProcess, host_port

MiB = 1024 * 1024
BIG = 32 * MiB  # far more than the socket buffers of both ends hold


@pytest.fixture
def server() -> Iterator[ServeProcess]:
    args = ["--listen", "redis://127.0.0.1:0", "--listen", "http://127.0.0.1:0"]
    args += ["--app", "http=tests.protocols.http.apps:native", "--log-level", "debug"]
    with ServeProcess(args, listeners=2) as process:
        yield process


def urls(server: ServeProcess) -> tuple[str, str]:
    resp_url, http_url = server.urls
    assert resp_url.startswith("redis://") and http_url.startswith("http://")
    return resp_url, http_url


def errors(http_url: str) -> int:
    """The server's errors counter, from the HTTP app's /counters page."""
    count: int = httpx.get(f"{http_url}/counters").json()["errors"]
    return count


def resp_victim(resp_url: str, http_url: str) -> socket.socket:
    """A RESP client that asks for a 32 MiB reply and reads only its start."""
    sock = socket.create_connection(host_port(resp_url), timeout=5)
    sock.sendall(encode_command("SETRANGE", "big", BIG - 1, "x"))
    assert sock.recv(100) == b":%d\r\n" % BIG
    sock.sendall(encode_command("GET", "big"))
    assert sock.recv(65536).startswith(b"$%d\r\n" % BIG)  # the server is sending
    return sock


def http_victim(resp_url: str, http_url: str) -> socket.socket:
    """An HTTP client that asks for a 32 MiB body and reads only its start."""
    sock = socket.create_connection(host_port(http_url), timeout=5)
    sock.sendall(b"GET /big?n=%d HTTP/1.1\r\nhost: x\r\n\r\n" % BIG)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")  # the server is sending
    return sock


@pytest.mark.parametrize("victim", [resp_victim, http_victim], ids=["resp", "http"])
def test_a_client_that_resets_while_the_server_sends_ends_quietly(
    server: ServeProcess, victim: Callable[[str, str], socket.socket]
) -> None:
    resp_url, http_url = urls(server)
    assert errors(http_url) == 0
    sock = victim(resp_url, http_url)
    peer = re.escape(f"127.0.0.1:{sock.getsockname()[1]}")
    linger_reset(sock)
    sock.close()  # a reset, while the server is blocked sending the rest
    server.wait_for_log(rf"connection closed \[peer={peer} conn=\d+\]")
    went_away = rf"DEBUG netsvc\.connection: client went away: .* \[peer={peer} "
    server.wait_for_log(went_away, timeout=0)  # the send found the client gone: a quiet end
    assert " ERROR " not in server.log and "Traceback" not in server.log
    assert errors(http_url) == 0
    # and the others are served
    with RespClient(host_port(resp_url)[1]) as client:
        assert client.call("PING") == b"PONG"
        assert client.call("SET", "k", "v") == b"OK" and client.call("GET", "k") == b"v"
    assert httpx.get(f"{http_url}/hello/after").text == "hello, after\n"

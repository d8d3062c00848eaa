# The connection limits and TLS as `netsvc serve` options and environment
# variables, each enforced on a real protocol through a subprocess and seen
# from outside: the connection over the limit refused in the protocol's words,
# a dribbled request cut, a client that does not read dropped, an idle
# connection closed, each at its deadline and with the option beating the
# variable; --certfile with --protocol turning TLS on, and the refusal at the
# limit sent through TLS; --proxy-protocol and --forwarded-allow-ips.
from __future__ import annotations

import re
import socket
import ssl
import subprocess

import httpx
import pytest
import redis
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.protocols.resp.respclient import encode_command
from tests.rawclient import exchange, open_raw
from tests.serveprocess import NETSVC, Certificates, ServeProcess, host_port, netsvc_env

# How early and how late a deadline may be seen from here on a busy machine:
# the core's clock is read once per watchdog tick (50ms), and is older still
# after the server was busy or not scheduled (see test_deadline_clock.py).
EARLY = 0.25
LATE = 0.6
SECONDS = 0.6  # the timeout each test sets
OTHER = 2.5  # the variable's value when the option sets SECONDS: a test that sees it fails
MiB = 1024 * 1024
BIG = 32 * MiB  # a reply far larger than the socket buffers of both ends
REFUSED = b"-ERR max number of clients reached\r\n"


def by_variable_then_option(option: str, variable: str, value: str, other: str) -> list[object]:
    """Two ways to set a limit to `value`: by the variable alone, and by the
    option while the variable says `other` (the option wins)."""
    return [
        pytest.param({variable: value}, [], id="variable"),
        pytest.param({variable: other}, [option, value], id="option-beats-variable"),
    ]


def within_the_deadline(seconds: float, *, early: float = EARLY) -> bool:
    return SECONDS - early <= seconds < SECONDS + LATE


@pytest.mark.parametrize(
    ("env", "args"),
    by_variable_then_option("--max-connections", "NETSVC_MAX_CONNECTIONS", "2", "1"),
)
async def test_max_connections(env: dict[str, str], args: list[str]) -> None:
    with ServeProcess(["--protocol", "resp", "--port", "0", *args], env=env) as process:
        host, port = host_port(process.urls[0])
        held = []
        for _ in range(2):
            stream = await open_raw(host, port)
            held.append(stream)
            await stream.send_all(encode_command("PING"))
            assert await stream.receive_some() == b"+PONG\r\n"
        ending = await exchange(host, port, encode_command("PING"), timeout=3)
        assert (ending.data, ending.end) == (REFUSED, "eof")
        for stream in held:
            await stream.aclose()
    assert "connection limit of 2 reached" in process.log


@pytest.mark.parametrize(
    ("env", "args"),
    by_variable_then_option("--idle-timeout", "NETSVC_IDLE_TIMEOUT", str(SECONDS), str(OTHER)),
)
async def test_idle_timeout(env: dict[str, str], args: list[str]) -> None:
    # RESP's own default is no idle timeout at all, as Redis's
    with ServeProcess(["--protocol", "resp", "--port", "0", *args], env=env) as process:
        ending = await exchange(*host_port(process.urls[0]), encode_command("PING"), timeout=3)
    assert (ending.data, ending.end) == (b"+PONG\r\n", "eof")
    assert within_the_deadline(ending.seconds), ending.seconds


@pytest.mark.parametrize(
    ("env", "args"),
    by_variable_then_option(
        "--request-timeout", "NETSVC_REQUEST_TIMEOUT", str(SECONDS), str(OTHER)
    ),
)
async def test_request_timeout(env: dict[str, str], args: list[str]) -> None:
    with ServeProcess(["--protocol", "http", "--port", "0", *args], env=env) as process:
        # a head dribbled a byte every 0.1s: 4s to arrive, cut a request timeout
        # after its first byte however steadily it comes
        head = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
        steps = [(0.1 if i else 0.0, head[i : i + 1]) for i in range(len(head))]
        ending = await exchange(*host_port(process.urls[0]), steps, timeout=3)
    assert ending.data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), ending.data
    assert ending.end == "eof"
    assert within_the_deadline(ending.seconds), ending.seconds


@pytest.mark.parametrize(
    ("env", "args"),
    by_variable_then_option("--send-timeout", "NETSVC_SEND_TIMEOUT", str(SECONDS), str(OTHER)),
)
async def test_send_timeout(env: dict[str, str], args: list[str]) -> None:
    with ServeProcess(["--protocol", "resp", "--port", "0", *args], env=env) as process:
        host, port = host_port(process.urls[0])
        hog = await open_raw(host, port)
        async with hog:
            await hog.send_all(encode_command("SETRANGE", "big", BIG - 1, "x"))
            assert await hog.receive_some() == b":%d\r\n" % BIG
            await hog.send_all(encode_command("GET", "big"))  # and read no more
            asked = trio.current_time()
            (dropped,) = await trio.to_thread.run_sync(
                process.wait_for_log, r"closing: a send did not finish within (\S+)s"
            )
            elapsed = trio.current_time() - asked
            received = 0
            with trio.fail_after(5):  # what the kernel held, then the end
                while data := await hog.receive_some():
                    received += len(data)
        assert dropped.group(1) == str(SECONDS)
        # building the 32 MiB reply keeps the server busy just before the send
        assert within_the_deadline(elapsed, early=SECONDS / 2), elapsed
        assert received < BIG
        other = await open_raw(host, port)  # the others are served
        async with other:
            await other.send_all(encode_command("PING"))
            assert await other.receive_some() == b"+PONG\r\n"


def test_certfile_with_protocol_serves_resp_over_tls(certificates: Certificates) -> None:
    with ServeProcess(["--protocol", "resp", "--port", "0", *certificates.args]) as process:
        (url,) = process.urls
        assert url.startswith("rediss://127.0.0.1:")
        host, port = host_port(url)
        secure = redis.Redis(
            host=host, port=port, ssl=True, ssl_ca_certs=str(certificates.cafile), socket_timeout=5
        )
        assert secure.set("k", "over tls") and secure.get("k") == b"over tls"
        secure.close()
        plain = redis.Redis(host=host, port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.ConnectionError):
            plain.ping()
        plain.close()


def test_certfile_with_protocol_serves_http_over_tls(certificates: Certificates) -> None:
    with ServeProcess(["--protocol", "http", "--port", "0", *certificates.args]) as process:
        (url,) = process.urls
        assert url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=certificates.client_context()) as client:
            assert client.get(f"{url}/healthz").text == "ok\n"
        with pytest.raises(httpx.TransportError):  # plain HTTP to a TLS port
            httpx.get(url.replace("https://", "http://") + "/healthz")


def tls_connection(certificates: Certificates, url: str) -> ssl.SSLSocket:
    raw = socket.create_connection(host_port(url), timeout=5)
    return certificates.client_context().wrap_socket(raw, server_hostname="127.0.0.1")


def read_to_end(sock: socket.socket) -> bytes:
    received = b""
    while data := sock.recv(65536):
        received += data
    return received


@pytest.mark.parametrize(
    ("protocol", "refusal"),
    [("resp", REFUSED), ("http", b"HTTP/1.1 503 Service Unavailable\r\n")],
    ids=["resp", "http"],
)
def test_refusal_at_the_limit_goes_through_tls(
    certificates: Certificates, protocol: str, refusal: bytes
) -> None:
    args = ["--protocol", protocol, "--port", "0", "--max-connections", "1", *certificates.args]
    with ServeProcess(args) as process:
        (url,) = process.urls
        with tls_connection(certificates, url):  # handshake done: it was accepted
            with tls_connection(certificates, url) as refused:  # the refusal's handshake
                assert read_to_end(refused).startswith(refusal)


# -- the PROXY protocol ----------------------------------------------------------------------

V1_FROM_OUTSIDE = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 6380\r\n"


def ping_through_proxy(url: str) -> bytes:
    """PING after a PROXY header naming an outside client (protected mode off)."""
    with socket.create_connection(host_port(url), timeout=5) as sock:
        sock.sendall(V1_FROM_OUTSIDE + encode_command("PING"))
        return sock.recv(100)


@pytest.mark.parametrize(
    ("env", "args"),
    [
        pytest.param({"NETSVC_PROXY_PROTOCOL": "1"}, [], id="variable"),
        pytest.param({}, ["--proxy-protocol"], id="option"),
    ],
)
def test_proxy_protocol(env: dict[str, str], args: list[str]) -> None:
    serve = ["--protocol", "resp", "--port", "0", "--resp-protected-mode", "no", *args]
    with ServeProcess(serve, env=env) as process:
        (url,) = process.urls
        assert url.startswith("redis+proxy://")
        assert ping_through_proxy(url) == b"+PONG\r\n"


@pytest.mark.parametrize(
    ("env", "args"),
    by_variable_then_option(
        "--forwarded-allow-ips", "NETSVC_FORWARDED_ALLOW_IPS", "10.0.0.0/8", "127.0.0.1"
    ),
)
def test_forwarded_allow_ips(env: dict[str, str], args: list[str]) -> None:
    serve = ["--listen", "redis+proxy://127.0.0.1:0", "--resp-protected-mode", "no", *args]
    with ServeProcess(serve, env=env) as process:
        assert ping_through_proxy(process.urls[0]) == b""  # 127.0.0.1 is not a trusted proxy
        process.wait_for_log(re.escape("not a trusted proxy (--forwarded-allow-ips 10.0.0.0/8)"))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--protocol", "resp", "--forwarded-allow-ips", "10.0.0.1,proxy"],
            "--forwarded-allow-ips: 'proxy' is not an IP address or network",
        ),
        (
            ["--listen", "redis://127.0.0.1:0", "--proxy-protocol"],
            "--proxy-protocol needs --protocol; in --listen, write +proxy",
        ),
    ],
)
def test_proxy_options_that_cannot_work_are_refused(args: list[str], error: str) -> None:
    done = subprocess.run(
        [NETSVC, "serve", "--port", "0", *args]
        if "--protocol" in args
        else [NETSVC, "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=netsvc_env(),
    )
    assert done.returncode == 2, done.stderr
    assert error in done.stderr


@pytest.mark.parametrize(
    ("env", "args"),
    by_variable_then_option("--host", "NETSVC_HOST", "127.0.0.2", "127.0.0.3"),
)
def test_host_with_protocol(env: dict[str, str], args: list[str]) -> None:
    # another loopback address than the default 127.0.0.1: the one asked for is bound
    with ServeProcess(["--protocol", "resp", "--port", "0", *args], env=env) as process:
        (url,) = process.urls
        assert url.startswith("redis://127.0.0.2:")
        with socket.create_connection(host_port(url), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(100) == b"+PONG\r\n"

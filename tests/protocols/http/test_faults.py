# The core's promises, kept by the HTTP plugin under faults, from outside with
# raw sockets against `netsvc serve`: an error response survives the client's
# unread input (no reset), a head dribbled in gets 408 at --request-timeout,
# steady keep-alive requests are never a slow request, and SIGTERM under load
# ends every connection after a whole response, with no "unfinished" errors.
from __future__ import annotations

from collections.abc import Iterator

import h11
import pytest
import trio

from tests.rawclient import exchange, open_raw, sigterm_under_load
from tests.serveprocess import ServeProcess, host_port

REQUEST_TIMEOUT = 1.0
TICK = 0.05
JUNK = b"x" * 200_000
GET = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def process(http_parser: str) -> Iterator[ServeProcess]:  # one per parser
    args = ["--protocol", "http", "--port", "0", "--request-timeout", str(REQUEST_TIMEOUT)]
    with ServeProcess([*args, "--idle-timeout", "10", "--max-connections", "200"]) as process:
        yield process


@pytest.fixture
def server(process: ServeProcess) -> tuple[str, int]:
    return host_port(process.urls[0])


def responses(data: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """The whole responses in `data` (status, headers, body); fails on a
    truncated one."""
    client = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target="/", headers=[("Host", "x")])
    client.send(request)
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    client.receive_data(b"")
    found: list[tuple[int, dict[bytes, bytes], bytes]] = []
    status, headers, body = 0, {}, b""
    if not data:
        return found  # a clean EOF before any response
    while True:
        event = client.next_event()
        if isinstance(event, h11.Response):
            status, headers, body = event.status_code, dict(event.headers), b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            found.append((status, headers, body))
            if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
                return found
            if not client.trailing_data[0]:  # a clean EOF between responses
                return found
            client.start_next_cycle()
            client.send(request)
            client.send(h11.EndOfMessage())
        elif isinstance(event, h11.ConnectionClosed):
            return found
        else:
            raise AssertionError(f"unexpected {event!r} after {found!r}")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413),
    ],
)
async def test_error_response_survives_unread_input(
    server: tuple[str, int], request_bytes: bytes, status: int
) -> None:
    async def one() -> None:
        ending = await exchange(*server, request_bytes + JUNK, read_delay=0.2)
        assert ending.end == "eof"
        [(got, headers, _)] = responses(ending.data)
        assert got == status
        assert headers[b"connection"] == b"close"

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)


async def test_refusal_at_the_limit_survives_unread_input() -> None:
    with ServeProcess(["--protocol", "http", "--port", "0", "--max-connections", "1"]) as process:
        host, port = host_port(process.urls[0])
        holder = await open_raw(host, port)
        async with holder:
            await holder.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # in a request
            await trio.sleep(0.1)
            ending = await exchange(host, port, GET + JUNK, read_delay=0.2)
        assert ending.end == "eof"
        [(status, _, _)] = responses(ending.data)
        assert status == 503


async def test_a_dribbled_head_gets_408_at_the_request_timeout(server: tuple[str, int]) -> None:
    steps = [(0.2, GET[i : i + 1]) for i in range(len(GET))]
    ending = await exchange(*server, steps)
    assert ending.end == "eof"
    [(status, _, _)] = responses(ending.data)
    assert status == 408
    assert REQUEST_TIMEOUT < ending.seconds < 0.2 + REQUEST_TIMEOUT + 1.0  # not 8s


async def test_steady_keep_alive_requests_are_never_a_slow_request(
    server: tuple[str, int],
) -> None:
    stream = await open_raw(*server)
    async with stream:
        for _ in range(8):  # 2.4s on one connection: more than twice the request timeout
            await stream.send_all(GET)
            data = b""
            while not data.endswith(b"ok\n"):
                chunk = await stream.receive_some()
                assert chunk, "the server closed a steady keep-alive connection"
                data += chunk
            await trio.sleep(0.3)


async def test_sigterm_under_load_ends_every_connection_after_a_whole_response() -> None:
    process = ServeProcess(["--protocol", "http", "--port", "0", "--http-access-log", "false"])
    host, port = host_port(process.urls[0])
    endings: list[str] = []
    served = 0
    started = trio.Event()

    async def client() -> None:
        nonlocal served
        stream = await open_raw(host, port)
        received = b""
        end = "eof"
        async with stream:
            served_here = 0
            try:
                while True:
                    await stream.send_all(GET * 5)  # pipelined
                    while received.count(b"ok\n") < served_here + 5:
                        data = await stream.receive_some()
                        if not data:
                            raise EOFError
                        received += data
                    served_here += 5
                    served += 5
                    if served >= 50 * 5:
                        started.set()
            except EOFError:
                pass
            except trio.BrokenResourceError as exc:
                end = f"broken: {exc.__cause__!r}"
        found = responses(received)  # fails on a truncated response
        assert all(status == 200 for status, _, _ in found)
        if found and len(found) > served_here:  # served at shutdown: says it closes
            assert found[-1][1].get(b"connection") == b"close"
        endings.append(end)

    await sigterm_under_load(process, client, started)
    assert endings == ["eof"] * 50
    assert "ERROR" not in process.log


async def test_http_10_and_connection_close_log_no_error(
    process: ServeProcess, server: tuple[str, int]
) -> None:
    for request in (
        b"GET /healthz HTTP/1.0\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ):
        ending = await exchange(*server, request)
        assert ending.end == "eof"
        [(status, _, body)] = responses(ending.data)
        assert (status, body) == (200, b"ok\n")
    await trio.sleep(0.1)
    assert "unfinished" not in process.log

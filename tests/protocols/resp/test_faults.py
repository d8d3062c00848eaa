# The core's promises, kept by the RESP plugin under faults, from outside with
# raw sockets against `netsvc serve`: an error reply survives the client's
# unread input (no reset), a request dribbled in is cut at --request-timeout,
# a client whose commands get no reply (CLIENT REPLY OFF) is never cut, and
# SIGTERM under pipelining load answers everything it executed.
from __future__ import annotations

from collections.abc import Iterator

import hiredis
import pytest
import trio

from tests.protocols.resp.respclient import encode_command
from tests.rawclient import exchange, open_raw, sigterm_under_load
from tests.serveprocess import ServeProcess, host_port

REQUEST_TIMEOUT = 1.0
TICK = 0.05  # the core's deadline watchdog
JUNK = b"x" * 200_000


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    args = ["--protocol", "resp", "--port", "0", "--request-timeout", str(REQUEST_TIMEOUT)]
    with ServeProcess([*args, "--max-connections", "200"]) as process:
        yield host_port(process.urls[0])


async def test_protocol_error_reply_survives_unread_input(server: tuple[str, int]) -> None:
    async def one() -> None:
        ending = await exchange(*server, b"*1\r\n$x\r\n" + JUNK, read_delay=0.2)
        assert ending.data == b"-ERR Protocol error: invalid bulk length\r\n"
        assert ending.end == "eof"

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)


async def test_refusal_at_the_limit_survives_unread_input() -> None:
    with ServeProcess(["--protocol", "resp", "--port", "0", "--max-connections", "1"]) as process:
        host, port = host_port(process.urls[0])
        holder = await open_raw(host, port)
        async with holder:
            await holder.send_all(encode_command("PING"))
            assert await holder.receive_some() == b"+PONG\r\n"
            ending = await exchange(host, port, JUNK, read_delay=0.2)
        assert ending.data == b"-ERR max number of clients reached\r\n"
        assert ending.end == "eof"


async def test_a_dribbled_request_is_cut_at_the_request_timeout(server: tuple[str, int]) -> None:
    command = encode_command("SET", "dribbled", "value")  # 37 bytes: 7s at this pace
    steps = [(0.2, command[i : i + 1]) for i in range(len(command))]
    ending = await exchange(*server, steps)
    assert ending.end == "eof"
    assert ending.data == b""
    # cut a request timeout after its first byte (sent after the first pause)
    assert REQUEST_TIMEOUT < ending.seconds < 0.2 + REQUEST_TIMEOUT + 1.0  # not 7s


async def test_a_dribbled_pipeline_is_cut_even_between_whole_commands(
    server: tuple[str, int],
) -> None:
    # whole commands complete along the way, so each restarts the deadline;
    # the partial one that follows must still finish in time: it does not
    ping = encode_command("PING")
    steps = [(0.0, ping + ping[:3])] + [(0.2, ping[3:][i : i + 1]) for i in range(11)]
    ending = await exchange(*server, steps)
    assert ending.data == b"+PONG\r\n"
    assert ending.end == "eof"
    assert ending.seconds < REQUEST_TIMEOUT + 1.0  # not the 2.2s the whole pipeline takes


async def test_commands_without_replies_are_never_a_slow_request(
    server: tuple[str, int],
) -> None:
    stream = await open_raw(*server)
    async with stream:
        await stream.send_all(encode_command("CLIENT", "REPLY", "OFF"))
        for i in range(12):  # 2.4s: more than twice the request timeout
            await trio.sleep(0.2)
            await stream.send_all(encode_command("SET", "quiet", str(i)))
        await stream.send_all(encode_command("CLIENT", "REPLY", "ON"))
        await stream.send_all(encode_command("GET", "quiet"))
        with trio.fail_after(2):
            assert await _read_exactly(stream, 13) == b"+OK\r\n$2\r\n11\r\n"


async def test_client_reply_matches_redis(redis_port: int, netsvc_port: int) -> None:
    script = [
        ("CLIENT", "REPLY", "SKIP"),
        ("SET", "k", "skipped"),
        ("GET", "k"),
        ("CLIENT", "REPLY", "OFF"),
        ("INCR", "n"),
        ("CLIENT", "REPLY", "SKIP"),
        ("GET", "n"),
        ("CLIENT", "REPLY", "ON"),
        ("GET", "n"),
        ("CLIENT", "REPLY", "MAYBE"),
        ("CLIENT", "REPLY"),
        ("DEL", "k", "n"),
    ]
    payload = b"".join(encode_command(*command) for command in script)
    replies = []
    for port in (redis_port, netsvc_port):
        stream = await open_raw("127.0.0.1", port)
        async with stream:
            await stream.send_all(payload)
            await trio.sleep(0.2)
            replies.append(await stream.receive_some())
    assert replies[1] == replies[0]


async def test_sigterm_under_pipelining_answers_everything_it_ran() -> None:
    process = ServeProcess(["--protocol", "resp", "--port", "0"])
    host, port = host_port(process.urls[0])
    replies: list[int] = []
    endings: list[str] = []
    started = trio.Event()
    running = 0

    async def pipeliner() -> None:
        nonlocal running
        stream = await open_raw(host, port)
        reader = hiredis.Reader()
        batch = encode_command("INCR", "counter") * 20
        end = "eof"
        async with stream:
            running += 1
            if running == 50:
                started.set()
            try:
                while True:
                    await stream.send_all(batch)
                    wanted = 20
                    while wanted:
                        data = await stream.receive_some()
                        if not data:
                            raise EOFError
                        reader.feed(data)
                        while (reply := reader.gets()) is not False:
                            replies.append(reply)
                            wanted -= 1
            except EOFError:
                pass
            except trio.BrokenResourceError as exc:
                end = f"broken: {exc.__cause__!r}"
            if reader.has_data():
                end = "truncated reply"
        endings.append(end)

    await sigterm_under_load(process, pipeliner, started)
    assert endings == ["eof"] * 50
    assert len(replies) > 1000
    assert sorted(replies) == list(range(1, len(replies) + 1))  # no INCR ran unanswered


async def _read_exactly(stream: trio.SocketStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.receive_some()
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


@pytest.mark.server_errors(r"handler failed; closing this connection")
async def test_a_failing_connection_gets_last_words_and_others_go_on() -> None:
    # Service.internal_error(): the failed client reads RESP's own error and
    # a clean EOF; everyone else is unaffected
    args = ["--protocol", "resp", "--port", "0", "--app", "tests.protocols.resp.faulty_app:app"]
    with ServeProcess(args) as process:
        host, port = host_port(process.urls[0])
        bystander = await open_raw(host, port)
        async with bystander:
            ending = await exchange(host, port, encode_command(b"UNENCODABLE") + b"PING\r\n")
            assert ending.data == b"-ERR internal error; see the server log\r\n"
            assert ending.end == "eof"
            await bystander.send_all(encode_command(b"PING"))
            assert await bystander.receive_some() == b"+PONG\r\n"
        process.wait_for_log(r"TypeError: cannot encode object as a RESP reply")

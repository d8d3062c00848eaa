# Ten thousand idle connections per protocol, against `netsvc serve`: while
# they are open a fresh client is served within 100 ms, and after they all
# close at once the server answers again within 100 ms (their connections are
# parked, so they wake a batch at a time: netsvc/_parking.py). Prints what each
# idle connection costs the server in RSS.
from __future__ import annotations

import resource
import time

import pytest
import trio

from netsvc._parking import PARK_AFTER
from tests.protocols.xmpp.test_chat import HEADER
from tests.serveprocess import ServeProcess, host_port

CONNECTIONS = 10_000
AT_ONCE = 500  # connections being set up at the same time (the listen backlog is 1024)
SERVED_WITHIN = 0.100  # seconds

# per protocol: the server's options, what a client sends to be set up, how
# its answer ends, and a request whose answer a fresh client times
PROTOCOLS: dict[str, tuple[list[str], bytes, bytes]] = {
    "resp": (["--protocol", "resp"], b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"),
    "http": (
        ["--protocol", "http", "--http-access-log", "false", "--idle-timeout", "0"],
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"ok\n",
    ),
    "xmpp": (
        ["--protocol", "xmpp", "--xmpp-insecure-any-password", "true", "--idle-timeout", "0"],
        HEADER.encode(),
        b"</stream:features>\n",
    ),
}

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def enough_file_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CONNECTIONS + 200:
        pytest.skip(f"the hard open file limit ({hard}) is below {CONNECTIONS + 200}")
    if soft != resource.RLIM_INFINITY and soft < CONNECTIONS + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def open_set_up(
    address: tuple[str, int], hello: bytes, answer_end: bytes
) -> trio.socket.SocketType:
    """A connection that has said hello and read the answer."""
    sock = trio.socket.socket()
    await sock.connect(address)
    await sock.send(hello)
    received = b""
    while not received.endswith(answer_end):
        data = await sock.recv(65536)
        assert data, f"closed during set-up after {received!r}"
        received += data
    return sock


async def time_fresh_request(address: tuple[str, int], hello: bytes, answer_end: bytes) -> float:
    start = time.perf_counter()
    with await open_set_up(address, hello, answer_end):
        return time.perf_counter() - start


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
async def test_ten_thousand_idle_connections(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    args, hello, answer_end = PROTOCOLS[name]
    with ServeProcess(
        [*args, "--port", "0", "--max-connections", str(CONNECTIONS + 100)]
    ) as server:
        address = host_port(server.urls[0])
        await time_fresh_request(address, hello, answer_end)  # warm up
        before = rss_kib(server.proc.pid)
        idle: list[trio.socket.SocketType] = []
        limiter = trio.Semaphore(AT_ONCE)

        async def one() -> None:
            async with limiter:
                idle.append(await open_set_up(address, hello, answer_end))

        try:
            with trio.fail_after(120):
                async with trio.open_nursery() as nursery:
                    for _ in range(CONNECTIONS):
                        nursery.start_soon(one)
            await trio.sleep(PARK_AFTER + 0.5)  # let the server settle (and park them)
            per_connection = (rss_kib(server.proc.pid) - before) / CONNECTIONS
            busy = await time_fresh_request(address, hello, answer_end)
        finally:
            for sock in idle:
                sock.close()
        # a client that connects as soon as they have all gone
        after = await time_fresh_request(address, hello, answer_end)
        with capsys.disabled():
            print(
                f"\n{name}: {per_connection:.1f} KiB per idle connection; a fresh client "
                f"served in {busy * 1000:.1f} ms with {CONNECTIONS} open, and in "
                f"{after * 1000:.1f} ms right after they all closed"
            )
        assert busy < SERVED_WITHIN
        assert after < SERVED_WITHIN  # the audit measured 3.3 s; 0.5-1.3 s unparked

# HTTP throughput, run by hand from the repository root: `.venv/bin/python -m bench.http` (needs wrk
# from Debian, and uvicorn + hypercorn + websockets: `pip install -e '.[bench]'`).
#
# In one run, serves the same hello-world with netsvc (native and ASGI, each
# with both parsers, h11 and httptools; then native with --workers 2),
# uvicorn (h11, one worker; and httptools on uvloop, uvicorn[standard] as
# FastAPI users install it), hypercorn (trio worker), and the floors: a
# minimal trio+h11 loop, a minimal trio+httptools loop and a minimal asyncio
# (no uvloop) + httptools Protocol, each with a fixed response, and the trio
# loop as a netsvc plugin (bench/core_floor.py: the core's share); drives each
# with wrk and prints requests/s, the server's CPU microseconds per request
# (all its processes, from /proc), the parser, and netsvc native's ratio to
# each (with h11, and with httptools). Then a WebSocket echo, the
# "ws" rows: netsvc (native and ASGI) and uvicorn (its websockets and wsproto
# implementations), driven by a raw-socket client in this process that keeps
# a window of small text messages in flight on each connection; it prints
# messages/s, CPU microseconds per message, and netsvc native's ratio.
from __future__ import annotations

import argparse
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench._common import add_round_options, chosen_servers, cpu_seconds, free_port, median

BIN = Path(sys.executable).parent

MINIMAL_LOOP = """
import functools, sys, h11, trio
BODY = b"Hello, world!\\n"
async def handle(stream):
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                if not data:
                    return
                continue
            if type(event) is h11.Request:
                continue
            if type(event) is h11.EndOfMessage:
                headers = [(b"content-type", b"text/plain"), (b"content-length", b"14")]
                out = conn.send(h11.Response(status_code=200, headers=headers))
                out += conn.send(h11.Data(data=BODY)) + conn.send(h11.EndOfMessage())
                await stream.send_all(out)
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
                continue
            return
    except (trio.BrokenResourceError, h11.RemoteProtocolError):
        pass
trio.run(functools.partial(trio.serve_tcp, handle, int(sys.argv[1]), host="127.0.0.1"))
"""

# The floor of a trio server on httptools: llhttp's callbacks, a fixed
# response, trio's own SocketStream (what a hand-written trio server does).
MINIMAL_TRIO_HTTPTOOLS = """
import functools, sys, httptools, trio
RESPONSE = b"HTTP/1.1 200 OK\\r\\ncontent-type: text/plain\\r\\ncontent-length: 14\\r\\n"
RESPONSE += b"\\r\\nHello, world!\\n"
class Requests:
    def __init__(self):
        self.complete = 0
    def on_message_complete(self):
        self.complete += 1
async def handle(stream):
    requests = Requests()
    parser = httptools.HttpRequestParser(requests)
    try:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            parser.feed_data(data)
            if requests.complete:
                await stream.send_all(RESPONSE * requests.complete)
                requests.complete = 0
    except (trio.BrokenResourceError, httptools.HttpParserError):
        pass
trio.run(functools.partial(trio.serve_tcp, handle, int(sys.argv[1]), host="127.0.0.1"))
"""

# The same on asyncio's own loop (no uvloop): what uvloop buys uvicorn.
MINIMAL_ASYNCIO_HTTPTOOLS = """
import asyncio, sys, httptools
RESPONSE = b"HTTP/1.1 200 OK\\r\\ncontent-type: text/plain\\r\\ncontent-length: 14\\r\\n"
RESPONSE += b"\\r\\nHello, world!\\n"
class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()
    def on_message_complete(self):
        self.transport.write(RESPONSE)
async def main():
    server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""


# the HTTP/1.1 parser of each server of servers(), for the table
PARSERS = {
    "netsvc native": "h11",
    "netsvc native httptools": "httptools",
    "netsvc asgi": "h11",
    "netsvc asgi httptools": "httptools",
    "netsvc native x2": "h11",
    "netsvc core + loop": "httptools",
    "uvicorn h11": "h11",
    "uvicorn standard": "httptools",
    "hypercorn trio": "h11",
    "minimal trio+h11": "h11",
    "minimal trio+httptools": "httptools",
    "minimal asyncio+httptools": "httptools",
}
FAST = "netsvc native httptools"  # the second ratio column's


def servers(port: int) -> dict[str, list[str]]:
    netsvc = [str(BIN / "netsvc"), "serve", "--protocol", "http", "--port", str(port)]
    quiet = ["--http-access-log", "false", "--log-level", "warning"]
    native = [*netsvc, "--app", "bench.http_apps:native", *quiet]
    asgi = [*netsvc, "--app", "bench.http_apps:asgi", *quiet]
    return {
        "netsvc native": [*native, "--http-parser", "h11"],
        "netsvc native httptools": [*native, "--http-parser", "httptools"],
        "netsvc asgi": [*asgi, "--http-parser", "h11"],
        "netsvc asgi httptools": [*asgi, "--http-parser", "httptools"],
        "netsvc native x2": [*native, "--http-parser", "h11", "--workers", "2"],
        # the minimal trio+httptools loop as a netsvc plugin: the core's share of the gap
        "netsvc core + loop": [
            *netsvc[:3],
            "bench.core_floor:http_protocol",
            *netsvc[4:],
            "--log-level",
            "warning",
        ],
        "uvicorn h11": [
            str(BIN / "uvicorn"),
            "bench.http_apps:asgi",
            "--http",
            "h11",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        # what FastAPI users install: httptools (a C parser) on uvloop
        "uvicorn standard": [
            str(BIN / "uvicorn"),
            "bench.http_apps:asgi",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        "hypercorn trio": [
            str(BIN / "hypercorn"),
            "--worker-class",
            "trio",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.http_apps:asgi",
        ],
        "minimal trio+h11": [sys.executable, "-c", MINIMAL_LOOP, str(port)],
        "minimal trio+httptools": [sys.executable, "-c", MINIMAL_TRIO_HTTPTOOLS, str(port)],
        "minimal asyncio+httptools": [sys.executable, "-c", MINIMAL_ASYNCIO_HTTPTOOLS, str(port)],
    }


def websocket_servers(port: int) -> dict[str, list[str]]:
    netsvc = [str(BIN / "netsvc"), "serve", "--protocol", "http", "--port", str(port)]
    quiet = ["--http-access-log", "false", "--log-level", "warning"]
    h11 = ["--http-parser", "h11"]  # the parser reads the handshake only
    uvicorn = [str(BIN / "uvicorn"), "bench.http_apps:asgi", "--http", "h11", "--port", str(port)]
    uvicorn += ["--workers", "1", "--log-level", "warning", "--no-access-log"]
    return {
        "ws netsvc native": [*netsvc, "--app", "bench.http_apps:native", *quiet, *h11],
        "ws netsvc asgi": [*netsvc, "--app", "bench.http_apps:asgi", *quiet, *h11],
        "ws uvicorn websockets": [*uvicorn, "--ws", "websockets"],
        "ws uvicorn wsproto": [*uvicorn, "--ws", "wsproto"],
    }


def wait_for(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers on port {port}")
        time.sleep(0.05)


def measure(name: str, seconds: int, connections: int) -> tuple[float, float]:
    port = free_port()
    proc = subprocess.Popen(
        servers(port)[name],
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        before = cpu_seconds(proc.pid)
        result = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            check=True,
        )
        used = cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait(15)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    total = float(re.search(r"(\d+) requests in", result.stdout).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        print(f"  warning: {name}: wrk reported errors:\n{result.stdout}")
    return rps, used / total * 1e6


HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)  # no Sec-WebSocket-Extensions: no compression, so every echo is one frame of known size


def echo_load(port: int, seconds: float, connections: int, window: int, size: int) -> int:
    """Echoes received in `seconds` over `connections` WebSockets, each
    keeping `window` text messages of `size` bytes in flight."""
    assert size < 126  # a one-byte length: the echo is 2 + size bytes
    mask = b"\x01\x02\x03\x04"
    payload = bytes(ord("a") ^ mask[i % 4] for i in range(size))
    message = bytes([0x81, 0x80 | size]) + mask + payload  # FIN + text, masked
    echo_size = 2 + size
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(HANDSHAKE)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"no WebSocket on port {port}: {head!r}")
        selector.register(sock, selectors.EVENT_READ, sock)
        socks.append(sock)
    partial = dict.fromkeys(socks, 0)  # bytes of an echo not received whole yet
    for sock in socks:
        sock.sendall(message * window)
    received = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            sock = key.data
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("the server closed a WebSocket")
            echoes, partial[sock] = divmod(partial[sock] + len(data), echo_size)
            received += echoes
            if echoes:
                sock.sendall(message * echoes)
    for sock in socks:
        sock.close()
    return received


def measure_websocket(name: str, seconds: int, connections: int) -> tuple[float, float]:
    port = free_port()
    proc = subprocess.Popen(
        websocket_servers(port)[name],
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        before = cpu_seconds(proc.pid)
        started = time.monotonic()
        echoes = echo_load(port, seconds, connections, window=8, size=32)
        elapsed = time.monotonic() - started
        used = cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait(15)
    return echoes / elapsed, used / echoes * 1e6


def print_table(
    runs: dict[str, list[tuple[float, float]]], ours: str, unit: str, rate: str
) -> None:
    """A row per server; the ratios of `ours` (and of FAST, if it ran) to it."""
    fast = FAST if FAST in runs else None
    head = f"{'server':24} {'parser':>9} {rate:>9} {f'cpu us/{unit}':>11} {'native/this':>12}"
    print(head + (f" {'httptools/this':>15}" if fast else ""))
    for name, values in runs.items():
        rps = median([r for r, _ in values])
        cpu = median([c for _, c in values])
        ratio = median([o[0] / v[0] for o, v in zip(runs[ours], values, strict=True)])
        row = f"{name:24} {PARSERS.get(name, 'h11'):>9} {rps:9.0f} {cpu:11.1f} {ratio:12.2f}"
        if fast:
            row += (
                f" {median([o[0] / v[0] for o, v in zip(runs[fast], values, strict=True)]):15.2f}"
            )
        print(row)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="HTTP hello-world throughput against peers")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    add_round_options(parser, [*servers(0), *websocket_servers(0)])
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    chosen = chosen_servers(args, "netsvc native")
    names = [name for name in chosen if name in servers(0)]
    ws_names = [name for name in chosen if name in websocket_servers(0)]
    if ws_names:  # the WebSocket ratios are against netsvc native's echo
        ws_names = ["ws netsvc native", *(n for n in ws_names if n != "ws netsvc native")]
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    ws_runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ws_names}
    for _ in range(args.rounds):
        for name in names:
            runs[name].append(measure(name, args.seconds, args.connections))
        for name in ws_names:
            ws_runs[name].append(measure_websocket(name, args.seconds, args.connections))
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds}s, {os.cpu_count()} cpus, "
        f"median of {args.rounds} interleaved rounds (ratios: median of each round's ratio)"
    )
    print_table(runs, "netsvc native", "req", "req/s")
    if "netsvc native x2" in runs:
        ours = runs["netsvc native"]
        scaling = median([v[0] / o[0] for o, v in zip(ours, runs["netsvc native x2"], strict=True)])
        print(f"--workers 2 / one worker: {scaling:.2f}x")
    if ws_runs:
        print(
            f"\nWebSocket echo: {args.connections} connections, 8 messages of 32 bytes in "
            f"flight on each, {args.seconds}s"
        )
        print_table(ws_runs, "ws netsvc native", "msg", "msg/s")


if __name__ == "__main__":
    main()

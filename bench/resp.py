# RESP throughput, run by hand from the repository root: `.venv/bin/python -m bench.resp`.
#
# Starts, one after another on loopback: `netsvc serve --protocol resp`, a
# real redis-server (Debian), a minimal trio+hiredis loop (a plain
# serve_tcp handler answering GET/SET: the floor of what trio can do with a
# task per connection), the same on asyncio's Protocol callbacks (the floor of
# pure-Python asyncio) and on trio with one task serving every connection
# from an epoll set of its own (what a trio server without a task switch per
# request could reach). Each is
# driven by `redis-benchmark -c 50 -t set,get` at -P 1 and -P 16; prints
# requests/s and the server's CPU microseconds per request (from
# /proc/<pid>/stat), and netsvc's ratio to the minimal loop.
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench._common import add_round_options, chosen_servers, cpu_seconds, free_port, median

NETSVC = str(Path(sys.executable).with_name("netsvc"))

# What both minimal loops do with what they read: answer GET and SET from a
# dict, and anything else (redis-benchmark's CONFIG GET probes) with an empty
# array. A function in the scripts' source, so that the loops differ only in
# how they read and write.
ANSWER = """
data = {}
def answer(reader, chunk):
    reader.feed(chunk)
    out = []
    while (command := reader.gets()) is not False:
        name = command[0].upper()
        if name == b"GET":
            value = data.get(command[1])
            if value is None:
                out.append(b"$-1\\r\\n")
            else:
                out.append(b"$%d\\r\\n%b\\r\\n" % (len(value), value))
        elif name == b"SET":
            data[command[1]] = command[2]
            out.append(b"+OK\\r\\n")
        else:
            out.append(b"*0\\r\\n")
    return b"".join(out)
"""

# a plain trio serve_tcp handler: the floor of what trio can do
MINIMAL_LOOP = (
    ANSWER
    + """
import functools, sys, hiredis, trio
async def handle(stream):
    reader = hiredis.Reader()
    try:
        while chunk := await stream.receive_some(65536):
            await stream.send_all(answer(reader, chunk))
    except trio.BrokenResourceError:
        pass
trio.run(functools.partial(trio.serve_tcp, handle, int(sys.argv[1]), host="127.0.0.1"))
"""
)

# the same on asyncio's Protocol callbacks (no streams, no task per
# connection): the floor of what pure-Python asyncio can do
MINIMAL_ASYNCIO = (
    ANSWER
    + """
import asyncio, sys, hiredis
class Resp(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.reader = hiredis.Reader()
    def data_received(self, chunk):
        self.transport.write(answer(self.reader, chunk))
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Resp, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""
)


# trio with one dispatcher task for all connections, as asyncio's loop does:
# it waits for its own epoll set (an fd trio's loop watches), then reads,
# answers and writes every ready connection without a task switch; a
# connection whose reply does not fit the socket buffer gets a task of its own
# until it is written (its fd out of the set meanwhile, so that it reads no
# more than its client waits for)
MINIMAL_EPOLL = (
    ANSWER
    + """
import select, socket, sys, hiredis, trio
async def main():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1])))
    listener.listen(1024)
    listener.setblocking(False)
    ready = select.epoll()
    conns = {}
    async def accept():
        while True:
            await trio.lowlevel.wait_readable(listener)
            while True:
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    break
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns[sock.fileno()] = (sock, hiredis.Reader())
                ready.register(sock.fileno(), select.EPOLLIN)
    async def send_rest(fd, sock, data):
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        try:
            await stream.send_all(data)
            ready.register(fd, select.EPOLLIN)
        except trio.BrokenResourceError:
            del conns[fd]
            sock.close()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        while True:
            await trio.lowlevel.wait_readable(ready.fileno())
            for fd, _ in ready.poll(0):
                sock, reader = conns[fd]
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    ready.unregister(fd)
                    del conns[fd]
                    sock.close()
                    continue
                out = answer(reader, chunk)
                try:
                    sent = sock.send(out)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    continue  # the next read sees the end
                if sent < len(out):
                    ready.unregister(fd)
                    nursery.start_soon(send_rest, fd, sock, out[sent:])
trio.run(main)
"""
)


def wait_for(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def commands(port: int) -> dict[str, list[str]]:
    return {
        "netsvc resp": [
            NETSVC,
            "serve",
            "--protocol",
            "resp",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        "redis-server": [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        "minimal trio+hiredis": [sys.executable, "-c", MINIMAL_LOOP, str(port)],
        "minimal asyncio+hiredis": [sys.executable, "-c", MINIMAL_ASYNCIO, str(port)],
        "minimal trio epoll task": [sys.executable, "-c", MINIMAL_EPOLL, str(port)],
        # the same loop as a netsvc plugin: the core's share of the gap
        "netsvc core + loop": [
            NETSVC,
            "serve",
            "--protocol",
            "bench.core_floor:protocol",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
    }


@contextmanager
def running(name: str) -> Iterator[tuple[int, int]]:
    port = free_port()
    proc = subprocess.Popen(
        commands(port)[name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(port)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def redis_benchmark(pid: int, args: list[str], requests: int) -> tuple[float, float]:
    """Run redis-benchmark with `args` (-p, -n and the test are the caller's,
    -c 50 -q added): requests/s, and the server's (`pid`) CPU microseconds per
    request."""
    before = cpu_seconds(pid)
    result = subprocess.run(
        ["redis-benchmark", "-c", "50", "-q", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    used = cpu_seconds(pid) - before
    match = re.search(r"([\d.]+) requests per second", result.stdout)
    if match is None:
        raise RuntimeError(f"unexpected redis-benchmark output: {result.stdout!r}")
    return float(match.group(1)), used / requests * 1e6


def benchmark(port: int, pid: int, test: str, pipeline: int, requests: int) -> tuple[float, float]:
    args = ["-p", str(port), "-t", test, "-P", str(pipeline), "-n", str(requests)]
    return redis_benchmark(pid, args, requests)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="RESP throughput against peers")
    parser.add_argument("--requests", type=int, default=100_000)
    add_round_options(parser, list(commands(0)))
    args = parser.parse_args(argv)
    names = chosen_servers(args, "netsvc resp")
    runs: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for name in names:
            with running(name) as (port, pid):
                for pipeline in (1, 16):
                    for test in ("set", "get"):
                        runs.setdefault((name, test, pipeline), []).append(
                            benchmark(port, pid, test, pipeline, args.requests)
                        )
    print(
        f"redis-benchmark -c 50, {args.requests} requests per run, {os.cpu_count()} cpus, "
        f"median of {args.rounds} interleaved rounds (ratios: median of each round's ratio)"
    )
    print(
        f"{'server':24} {'test':5} {'-P':>3} {'req/s':>10} {'cpu us/req':>11} {'netsvc/this':>12}"
    )
    for (name, test, pipeline), values in runs.items():
        ours = runs[("netsvc resp", test, pipeline)]
        rps = median([r for r, _ in values])
        cpu = median([c for _, c in values])
        ratio = median([o[0] / v[0] for o, v in zip(ours, values, strict=True)])
        print(f"{name:24} {test:5} {pipeline:3} {rps:10.0f} {cpu:11.1f} {ratio:12.2f}")


if __name__ == "__main__":
    main()

# Core measurements, run by hand from the repository root: `.venv/bin/python -m bench.core`.
#
# 1. Startup: time from spawning `netsvc serve --protocol echo` to its first
#    echoed byte (median of N runs), against a minimal trio echo server and a
#    bare `python -c` that binds a socket, started the same way.
# 2. Idle connections: server RSS growth per idle connection after 1,000
#    connections are open and have each echoed a byte, against the same
#    minimal trio echo server.
from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench._common import free_port

VENV_BIN = Path(sys.executable).parent
NETSVC = str(VENV_BIN / "netsvc")

MINIMAL_TRIO = """
import functools, sys, trio
async def echo(stream):
    try:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass
trio.run(functools.partial(trio.serve_tcp, echo, int(sys.argv[1]), host="127.0.0.1"))
"""

BARE_SOCKET = """
import socket, sys
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
c, _ = s.accept()
c.sendall(c.recv(1))
"""


def servers(port: int) -> dict[str, list[str]]:
    return {
        "netsvc echo": [
            NETSVC,
            "serve",
            "--protocol",
            "echo",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        "minimal trio echo": [sys.executable, "-c", MINIMAL_TRIO, str(port)],
        "bare python socket": [sys.executable, "-c", BARE_SOCKET, str(port)],
    }


def first_echo(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"x")
                if sock.recv(1) == b"x":
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.002)


def startup_seconds(command_for: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        port = free_port()
        command = servers(port)[command_for]
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            first_echo(port)
            times.append(time.perf_counter() - start)
        finally:
            proc.terminate()
            proc.wait(10)
    return statistics.median(times)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def idle_kib_per_connection(command_for: str, count: int) -> tuple[float, int]:
    port = free_port()
    proc = subprocess.Popen(
        servers(port)[command_for], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    clients: list[socket.socket] = []
    try:
        first_echo(port)
        time.sleep(0.3)
        before = rss_kib(proc.pid)
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            clients.append(sock)
        time.sleep(0.5)
        after = rss_kib(proc.pid)
        return (after - before) / count, after
    finally:
        for sock in clients:
            sock.close()
        proc.terminate()
        proc.wait(10)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.connections)), hard))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")

    print(f"\nstartup to first echoed byte, median of {args.runs} runs")
    startup = {name: startup_seconds(name, args.runs) for name in servers(0)}
    for name, seconds in startup.items():
        ratio = startup["netsvc echo"] / seconds
        print(f"  {name:20} {seconds * 1000:7.1f} ms   netsvc/this = {ratio:.2f}")

    print(f"\nidle connections: RSS growth per connection over {args.connections}")
    for name in ("netsvc echo", "minimal trio echo"):
        per, total = idle_kib_per_connection(name, args.connections)
        print(f"  {name:20} {per:6.1f} KiB/connection   (RSS then {total / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()

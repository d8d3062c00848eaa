# Instructions per request, counted by callgrind, run by hand from the
# repository root: `.venv/bin/python -m bench.instructions` (RESP), or with
# `--protocol http` (HTTP: keep-alive GETs of bench.http's hello world, one
# at a time on one connection, or with `--clients N` on N connections as wrk
# sends them, for each server of bench.http, both netsvc parsers included).
#
# Throughput on a shared 2-core machine drifts by tens of percent from one run
# to the next; the instructions a server executes per request do not, so they
# are the repeatable measure of what the core and the plugins cost. Each server
# of bench.resp runs under `valgrind --tool=callgrind`; redis-benchmark
# (--clients connections, default 1) warms it up, then the counters are zeroed (callgrind_control
# -z), REQUESTS requests are sent and the counters dumped (-d): the dump's
# total over REQUESTS is the server's instructions per request, the event
# loop, the kernel interface in user space and the interpreter included.
from __future__ import annotations

import argparse
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import http
from bench._common import free_port
from bench.resp import commands, wait_for

WARM_UP = 2_000
HTTP_GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"


def instructions(
    name: str, tests: Sequence[tuple[str, int]], requests: int, clients: int
) -> dict[str, float]:
    """Instructions per request of server `name` for each (test, pipeline),
    with `clients` connections."""
    valgrind = shutil.which("valgrind")
    if valgrind is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is missing: apt-get install -y valgrind")
    port = free_port()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        proc = subprocess.Popen(
            [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", *commands(port)[name]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(port, timeout=120)
            for test, pipeline in tests:
                bench = ["redis-benchmark", "-p", str(port), "-c", str(clients), "-q", "-t", test]
                bench += ["-P", str(pipeline)]
                subprocess.run([*bench, "-n", str(WARM_UP)], capture_output=True, check=True)
                control = ["callgrind_control", str(proc.pid)]
                subprocess.run([*control, "-z"], capture_output=True, check=True)
                subprocess.run([*bench, "-n", str(requests)], capture_output=True, check=True)
                for old in Path(folder).glob("callgrind.out.*"):
                    old.unlink()
                subprocess.run([*control, "-d"], capture_output=True, check=True)
                (dump,) = Path(folder).glob("callgrind.out.*")
                match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
                if match is None:
                    raise RuntimeError(f"no total in {dump}")
                results[f"{test} -P {pipeline}"] = int(match.group(1)) / requests
        finally:
            proc.terminate()
            proc.wait(60)
    return results


def keep_alive_gets(socks: list[socket.socket], count: int) -> None:
    """Send `count` keep-alive GETs over the connections `socks`, as wrk does:
    each sends its next GET as soon as its response is whole, so that one
    request per connection is in flight (one connection: each GET after the
    previous response). The connections stay open: opening and closing them
    is not a request's cost."""
    response_length: int | None = None
    sent = done = 0
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            if sent < count:
                sock.sendall(HTTP_GET)
                selector.register(sock, selectors.EVENT_READ, bytearray())
                sent += 1
        while done < count:
            for key, _ in selector.select():
                ready, buffer = key.fileobj, key.data
                assert isinstance(ready, socket.socket)
                buffer += _recv(ready)
                if response_length is None and (end := buffer.find(b"\r\n\r\n")) >= 0:
                    match = re.search(rb"\r\ncontent-length: *(\d+)", buffer, re.IGNORECASE)
                    if not buffer.startswith(b"HTTP/1.1 200") or match is None:
                        raise RuntimeError(f"unexpected response {bytes(buffer)!r}")
                    response_length = end + 4 + int(match.group(1))
                while response_length is not None and len(buffer) >= response_length:
                    del buffer[:response_length]
                    done += 1
                    if sent < count:
                        ready.sendall(HTTP_GET)
                        sent += 1


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise RuntimeError("the server closed the connection")
    return data


def http_instructions(name: str, requests: int, clients: int) -> float:
    """Instructions per keep-alive GET of bench.http's server `name`, with
    `clients` connections (one: each GET after the previous response)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is missing: apt-get install -y valgrind")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        proc = subprocess.Popen(
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                *http.servers(port)[name],
            ],
            cwd=Path(__file__).parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            http.wait_for(port, timeout=180)
            control = ["callgrind_control", str(proc.pid)]
            socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
            try:
                keep_alive_gets(socks, WARM_UP)
                subprocess.run([*control, "-z"], capture_output=True, check=True)
                keep_alive_gets(socks, requests)
                subprocess.run([*control, "-d"], capture_output=True, check=True)
            finally:
                for sock in socks:
                    sock.close()
            (dump,) = Path(folder).glob("callgrind.out.*")
            match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
            if match is None:
                raise RuntimeError(f"no total in {dump}")
            return int(match.group(1)) / requests
        finally:
            proc.terminate()
            proc.wait(60)


def main_http(servers: list[str], requests: int, clients: int) -> None:
    print(
        f"instructions per keep-alive GET (callgrind), {requests} requests, {clients} connection(s)"
    )
    print(f"{'server':24} {'parser':>9} {'instructions':>13}")
    for name in servers:
        count = http_instructions(name, requests, clients)
        print(f"{name:24} {http.PARSERS.get(name, 'h11'):>9} {count:13,.0f}")


def main(argv: Sequence[str] | None = None) -> None:
    names = list(commands(0))
    http_names = [name for name in http.servers(0) if name != "netsvc native x2"]
    parser = argparse.ArgumentParser(description="instructions per request, by callgrind")
    parser.add_argument("--protocol", choices=["resp", "http"], default="resp")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument(
        "--clients", type=int, default=1, help="connections (redis-benchmark -c for RESP)"
    )
    parser.add_argument(
        "--servers",
        help="comma-separated subset of: "
        + ", ".join(names)
        + " (RESP); "
        + ", ".join(http_names)
        + " (HTTP)",
    )
    args = parser.parse_args(argv)
    if args.protocol == "http":
        chosen = args.servers.split(",") if args.servers else http_names
        main_http([name.strip() for name in chosen], args.requests, args.clients)
        return
    if args.servers is None:
        args.servers = ",".join(name for name in names if name != "redis-server")
    tests = [("get", 1), ("get", 16), ("set", 1)]
    print(
        f"instructions per request (callgrind), {args.requests} requests, "
        f"{args.clients} connection(s)"
    )
    print(f"{'server':24} " + " ".join(f"{f'{t} -P {p}':>12}" for t, p in tests))
    for name in args.servers.split(","):
        counts = instructions(name.strip(), tests, args.requests, args.clients)
        print(f"{name:24} " + " ".join(f"{counts[f'{t} -P {p}']:12,.0f}" for t, p in tests))


if __name__ == "__main__":
    main()

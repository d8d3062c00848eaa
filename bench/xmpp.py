# XMPP routing, run by hand from the repository root: `.venv/bin/python -m bench.xmpp`.
#
# N pairs of raw c2s clients on loopback: each sender writes chat messages to
# its receiver's full JID as fast as the server takes them, each receiver
# reads as fast as it can. Runs `netsvc serve --protocol xmpp` and Debian's
# Prosody (PLAIN allowed without TLS, for the benchmark only) in interleaved
# rounds and prints messages/s, the server's CPU microseconds per message,
# what was lost, and netsvc's ratio to Prosody. Prosody refuses to run as
# root: it is started as the `prosody` user (`apt-get install prosody`).
from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from bench._common import add_round_options, chosen_servers, cpu_seconds, free_port, median

NETSVC = str(Path(sys.executable).with_name("netsvc"))
SERVERS = ("netsvc", "prosody")
PASSWORD = "benchmark"
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client'"
    b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
BODY = b"hello there, this is a chat message of an ordinary length"
BATCH = 50  # messages per write


class Client:
    """A raw c2s client: logs in with PLAIN, binds resource r."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def until(self, marker: bytes) -> None:
        while marker not in self.buffer:
            data = await self.stream.receive_some(65536)
            if not data:
                raise ConnectionError(
                    f"closed while waiting for {marker!r}: {self.buffer[-300:]!r}"
                )
            self.buffer += data
        self.buffer = self.buffer.split(marker, 1)[1]

    @classmethod
    async def login(cls, port: int, user: str) -> Client:
        client = cls(await trio.open_tcp_stream("127.0.0.1", port))
        await client.stream.send_all(HEADER)
        await client.until(b"</stream:features>")
        token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode())
        await client.stream.send_all(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            + token
            + b"</auth>"
        )
        await client.until(b"success")
        await client.stream.send_all(HEADER)
        await client.until(b"</stream:features>")
        await client.stream.send_all(
            b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            b"<resource>r</resource></bind></iq>"
        )
        await client.until(b"</iq>")
        await client.stream.send_all(
            b"<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
        )
        await client.until(b"id='s'")
        client.buffer = b""
        return client


async def route(port: int, pairs: int, each: int, pid: int) -> tuple[float, float, int]:
    """Messages/s, server CPU us per message, and how many were lost."""
    senders = [await Client.login(port, f"s{i}") for i in range(pairs)]
    receivers = [await Client.login(port, f"r{i}") for i in range(pairs)]
    for receiver in receivers:
        await receiver.stream.send_all(b"<presence/>")
    await trio.sleep(0.5)  # presence settles; what it brings is not counted
    for receiver in receivers:
        receiver.buffer = b""
    received = [0] * pairs

    async def send(i: int) -> None:
        message = (
            b"<message to='r%d@localhost/r' type='chat'><body>" % i + BODY + b"</body></message>"
        )
        for _ in range(0, each, BATCH):
            await senders[i].stream.send_all(message * BATCH)

    marker = b"<message "

    async def receive(i: int) -> None:
        tail = b""  # shorter than the marker: one cut in two is counted once, whole
        while received[i] < each:
            data = await receivers[i].stream.receive_some(262144)
            if not data:
                return
            chunk = tail + data
            received[i] += chunk.count(marker)
            tail = chunk[-(len(marker) - 1) :]

    cpu_before, started = cpu_seconds(pid), time.monotonic()
    with trio.move_on_after(120):
        async with trio.open_nursery() as nursery:
            for i in range(pairs):
                nursery.start_soon(send, i)
                nursery.start_soon(receive, i)
    elapsed, cpu = time.monotonic() - started, cpu_seconds(pid) - cpu_before
    for client in senders + receivers:
        await client.stream.aclose()
    total = sum(received)
    return total / elapsed, cpu / max(total, 1) * 1e6, pairs * each - total


@contextmanager
def netsvc_server(port: int) -> Iterator[int]:
    args = [NETSVC, "serve", "--listen", f"xmpp://127.0.0.1:{port}"]
    args += ["--xmpp-insecure-any-password", "true", "--xmpp-max-bytes-per-second", "0"]
    args += ["--log-level", "warning"]
    process = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port)
        yield process.pid
    finally:
        process.terminate()
        process.wait(10)


PROSODY_CONFIG = """
daemonize = false
pidfile = "{folder}/prosody.pid"
data_path = "{folder}/data"
certificates = "{folder}"
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "posix" }}
modules_disabled = {{ "s2s"; "tls" }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
log = {{ error = "*console" }}
VirtualHost "localhost"
"""


@contextmanager
def prosody_server(port: int, pairs: int) -> Iterator[int]:
    if shutil.which("prosody") is None:
        raise SystemExit("prosody is not installed: apt-get install prosody")
    folder = Path(tempfile.mkdtemp(prefix="bench-prosody-"))
    (folder / "data").mkdir()
    config = folder / "prosody.cfg.lua"
    config.write_text(PROSODY_CONFIG.format(folder=folder, port=port))
    shutil.chown(folder, "prosody", "prosody")
    shutil.chown(folder / "data", "prosody", "prosody")
    as_prosody = ["runuser", "-u", "prosody", "--"]
    for name in [f"s{i}" for i in range(pairs)] + [f"r{i}" for i in range(pairs)]:
        subprocess.run(
            [
                *as_prosody,
                "prosodyctl",
                "--config",
                str(config),
                "register",
                name,
                "localhost",
                PASSWORD,
            ],
            check=True,
            capture_output=True,
        )
    process = subprocess.Popen([*as_prosody, "prosody", "--config", str(config), "-F"])
    try:
        _wait_for_port(port)
        yield process.pid  # runuser's: cpu_seconds counts prosody, its child
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5000, help="per sender")
    add_round_options(parser, SERVERS)
    args = parser.parse_args()
    servers = chosen_servers(args, "netsvc")
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in servers}
    for round_ in range(args.rounds):
        for name in servers:
            port = free_port()
            start = netsvc_server(port) if name == "netsvc" else prosody_server(port, args.pairs)
            with start as pid:
                result = trio.run(route, port, args.pairs, args.messages, pid)
            results[name].append(result)
            rate, cpu, lost = result
            print(f"round {round_ + 1} {name:8} {rate:9,.0f} msg/s {cpu:6.1f} us/msg lost {lost}")
    print(f"\n{args.pairs} pairs x {args.messages} messages, median of {args.rounds} rounds:")
    for name in servers:
        rate = median([r[0] for r in results[name]])
        cpu = median([r[1] for r in results[name]])
        lost = max(r[2] for r in results[name])
        line = f"{name:8} {rate:9,.0f} msg/s {cpu:6.1f} us/msg, at most {lost} lost"
        if name != "netsvc" and name in results:
            ratios = [a[0] / b[0] for a, b in zip(results["netsvc"], results[name], strict=True)]
            line += f"; netsvc/{name} {median(ratios):.2f}x (per round)"
        print(line)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

# Regenerates protocols/resp/redis_docs.json, the COMMAND DOCS that netsvc's
# built-in Redis commands reply (summary, since, complexity, arguments,
# history...), from a real redis-server: the same words and argument
# descriptions Redis gives, which redis-cli shows as its command hints.
"""Write protocols/resp/redis_docs.json from a real redis-server's COMMAND DOCS.

Usage, from the repository root (redis-server on PATH):

    .venv/bin/python -m tools.command_docs

It starts redis-server on a Unix socket in a temporary directory, asks for the
docs of every built-in command of the RESP plugin in RESP3 and keeps, for a
container (CLIENT, OBJECT...), only the subcommands netsvc has. A built-in
command that this redis-server does not know (a newer one) keeps its entry from
EXTRA below, copied from the newer Redis's docs.

JSON cannot say which strings were RESP3 simple strings and which arrays were
sets. In COMMAND DOCS only the values of "flags" and "doc_flags" (sets of
simple strings) and of "history" (a set of [version, change] arrays) are. This
script checks that before it writes, and the loader
(protocols/resp/_redisdocs.py) turns exactly those back into sets.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from protocols.resp.commands import BUILTINS

OUTPUT = Path(__file__).resolve().parent.parent / "protocols" / "resp" / "redis_docs.json"
# the keys whose values are RESP3 sets: of simple strings, and of [version, change] pairs
STATUS_SETS = ("flags", "doc_flags")
ARRAY_SETS = ("history",)

# Built-ins newer than the redis-server this runs with, as Redis 7.2 documents them.
EXTRA: dict[str, Any] = {
    "waitaof": {
        "summary": "Blocks until all of the preceding write commands sent by the connection "
        "are written to the append-only file of the master and/or replicas.",
        "since": "7.2.0",
        "group": "generic",
        "complexity": "O(1)",
        "arguments": [
            {"name": "numlocal", "type": "integer"},
            {"name": "numreplicas", "type": "integer"},
            {"name": "timeout", "type": "integer"},
        ],
    },
}


class _Status(str):
    """A RESP3 simple string, while parsing."""


class _Set(list[Any]):
    """A RESP3 set, while parsing."""


def parse(data: bytes, pos: int = 0) -> tuple[Any, int]:
    """One RESP3 value from `data` at `pos`, and where the next one starts."""
    kind = data[pos : pos + 1]
    end = data.index(b"\r\n", pos)
    line = data[pos + 1 : end].decode()
    pos = end + 2
    if kind == b"$":
        size = int(line)
        return data[pos : pos + size].decode(), pos + size + 2
    if kind == b"+":
        return _Status(line), pos
    if kind == b":":
        return int(line), pos
    if kind == b"-":
        raise RuntimeError(f"redis-server replied an error: {line}")
    if kind in (b"*", b"~", b"%"):
        count = int(line) * (2 if kind == b"%" else 1)
        items = []
        for _ in range(count):
            item, pos = parse(data, pos)
            items.append(item)
        if kind == b"%":
            return dict(zip(items[::2], items[1::2], strict=True)), pos
        return (_Set(items) if kind == b"~" else items), pos
    raise RuntimeError(f"unexpected RESP3 type {kind!r}")


def checked(value: Any, key: str = "") -> Any:
    """`value` as plain JSON, after checking that sets and simple strings
    appear only where the loader expects them."""
    if key in STATUS_SETS:
        if not isinstance(value, _Set) or not all(isinstance(v, _Status) for v in value):
            raise RuntimeError(f"{key!r} is not a set of simple strings: {value!r}")
        return [str(v) for v in value]
    if key in ARRAY_SETS:
        if not isinstance(value, _Set):
            raise RuntimeError(f"{key!r} is not a set: {value!r}")
        return [checked(v) for v in value]
    if isinstance(value, (_Set, _Status)):
        raise RuntimeError(f"a set or simple string under {key!r}: the loader would lose it")
    if isinstance(value, dict):
        return {k: checked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [checked(v) for v in value]
    return value


def command(sock: socket.socket, *args: str) -> Any:
    sock.sendall(
        b"".join(
            [f"*{len(args)}\r\n".encode()]
            + [f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args]
        )
    )
    data = b""
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("redis-server closed the connection")
        data += chunk
        try:
            value, end = parse(data)
        except (ValueError, IndexError):
            continue  # not all of it yet
        if end == len(data):
            return value


def fetch(names: list[str]) -> tuple[str, dict[str, Any]]:
    """redis-server's version and its COMMAND DOCS for `names`."""
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "redis.sock"
        server = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(path), "--save", ""],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                if path.exists():
                    break
                time.sleep(0.05)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(path))
                hello = command(sock, "HELLO", "3")
                return hello["version"], command(sock, "COMMAND", "DOCS", *names)
        finally:
            server.terminate()
            server.wait()


def main() -> int:
    specs = {spec.name: spec for spec in BUILTINS}
    version, docs = fetch(sorted(specs))
    out: dict[str, Any] = {}
    for name, spec in sorted(specs.items()):
        entry = docs.get(name)
        if entry is None:
            if name not in EXTRA:
                print(f"redis-server {version} has no docs for {name!r}: add it to EXTRA")
                return 1
            out[name] = EXTRA[name]
            continue
        subs = entry.get("subcommands")
        if subs is not None:
            have = {f"{name}|{sub.decode()}" for sub in spec.subcommands}
            kept = {sub: doc for sub, doc in subs.items() if sub in have}
            if kept:
                entry["subcommands"] = kept
            else:
                del entry["subcommands"]
        out[name] = checked(entry)
    text = json.dumps({"redis_version": version, "commands": out}, indent=1, sort_keys=False)
    OUTPUT.write_text(text + "\n")
    print(f"wrote {len(out)} commands' docs from redis-server {version} to {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

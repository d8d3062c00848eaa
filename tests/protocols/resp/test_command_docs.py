# COMMAND DOCS, which redis-cli reads for its command hints: every built-in's
# docs are redis-server's own, byte for byte in RESP2 and RESP3 (in the
# compiled build too, which has no docstrings to fall back on), but for the
# order of a container's subcommands, which is a hash table's in Redis and
# differs between two redis-servers; an app's commands say what a module
# command without docs says in Redis.
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from protocols.resp._redisdocs import redis_version
from protocols.resp.commands import BUILTINS
from tests.protocols.resp.respclient import RespClient
from tests.serveprocess import ServeProcess, host_port

BUILTIN_NAMES = sorted(spec.name for spec in BUILTINS)
NEWER_THAN_7_0 = {"waitaof"}  # Redis 7.2's: the redis-server here does not know them


@pytest.fixture(scope="module")
def clients(netsvc_port: int, redis_port: int) -> Iterator[dict[str, dict[int, RespClient]]]:
    made = {
        "netsvc": {2: RespClient(netsvc_port), 3: RespClient(netsvc_port)},
        "redis": {2: RespClient(redis_port), 3: RespClient(redis_port)},
    }
    for by_protocol in made.values():
        by_protocol[3].call("HELLO", "3")
    yield made
    for by_protocol in made.values():
        for client in by_protocol.values():
            client.close()


def test_the_docs_are_those_of_the_redis_server_the_tests_compare_with(
    clients: dict[str, dict[int, RespClient]],
) -> None:
    # tools/command_docs.py regenerates redis_docs.json from another version
    hello = clients["redis"][3].call("HELLO", "3")
    assert hello[b"version"].decode() == redis_version()


@pytest.mark.parametrize("protocol", [2, 3])
def test_every_builtin_is_documented_as_redis_documents_it(
    clients: dict[str, dict[int, RespClient]], protocol: int
) -> None:
    differ = []
    containers = 0
    for name in BUILTIN_NAMES:
        if name in NEWER_THAN_7_0:
            continue
        ours = clients["netsvc"][protocol].raw_call("COMMAND", "DOCS", name)
        theirs = clients["redis"][protocol].raw_call("COMMAND", "DOCS", name)
        if b"subcommands" in theirs:
            containers += 1
            ours_docs = clients["netsvc"][protocol].call("COMMAND", "DOCS", name)
            theirs_docs = clients["redis"][protocol].call("COMMAND", "DOCS", name)
            if unordered_subcommands(ours_docs) != unordered_subcommands(theirs_docs):
                differ.append(name)
        elif ours != theirs:
            differ.append(name)
    assert differ == []
    assert containers == 10  # ACL, CLIENT, COMMAND, CONFIG, FUNCTION, OBJECT...


def unordered_subcommands(reply: Any) -> Any:
    """A container's docs with its subcommands as a dict (RESP2 gives maps as
    flat arrays), for a comparison that ignores their order."""
    if isinstance(reply, list):  # RESP2: [name, [field, value, ...]]
        name, fields = reply
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
        subs = fields[b"subcommands"]
        fields[b"subcommands"] = dict(zip(subs[::2], subs[1::2], strict=True))
        return {name: fields}
    return reply  # RESP3: maps are dicts already


def test_a_newer_builtin_has_its_redis_summary(clients: dict[str, dict[int, RespClient]]) -> None:
    docs = clients["netsvc"][3].call("COMMAND", "DOCS", "waitaof")[b"waitaof"]
    assert docs[b"summary"].startswith(b"Blocks until all of the preceding write commands")
    assert docs[b"since"] == b"7.2.0"
    assert [arg[b"name"] for arg in docs[b"arguments"]] == [b"numlocal", b"numreplicas", b"timeout"]


def test_docs_without_names_cover_every_command(clients: dict[str, dict[int, RespClient]]) -> None:
    client = clients["netsvc"][3]
    docs = client.call("COMMAND", "DOCS")
    assert sorted(docs) == sorted(name.encode() for name in BUILTIN_NAMES)
    assert all(docs[name][b"summary"] for name in docs)


def test_names_are_case_insensitive_unknown_ones_left_out_and_repeats_kept(
    clients: dict[str, dict[int, RespClient]],
) -> None:
    for protocol in (2, 3):
        for names in (
            ("GeT", "nosuch", "SET"),
            ("get", "get"),  # twice: answered twice
            ("client|list", "CONFIG|GET", "client|nosuch", "get|x"),  # subcommands
        ):
            ours = clients["netsvc"][protocol].raw_call("COMMAND", "DOCS", *names)
            theirs = clients["redis"][protocol].raw_call("COMMAND", "DOCS", *names)
            assert ours == theirs


def test_an_apps_commands_are_documented_by_their_docstrings() -> None:
    args = ["--protocol", "resp", "--port", "0", "--app", "tests.protocols.resp.user_app:app"]
    with ServeProcess(args) as server:
        client = RespClient(host_port(server.urls[0])[1])
        client.call("HELLO", "3")
        docs = client.call("COMMAND", "DOCS", "greet", "echo", "get")
        client.close()
    assert docs[b"greet"] == {b"summary": b"Greet someone.", b"group": b"generic"}
    # a replaced built-in is the app's command: Redis's docs no longer describe it
    assert docs[b"echo"] == {b"summary": b"Echo, louder.", b"group": b"generic"}
    assert docs[b"get"][b"summary"] == b"Get the value of a key"

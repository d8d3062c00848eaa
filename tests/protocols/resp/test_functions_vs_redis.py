# Functions (FUNCTION LOAD, FCALL, FCALL_RO, FUNCTION LIST/STATS/DELETE/FLUSH/
# DUMP/RESTORE/HELP) against a real redis-server 7.0, byte for byte in RESP2
# and RESP3: scripts of commands (the metadata line and its errors, what a
# library's code may use while it loads, redis.register_function's forms and
# errors, calls and their errors with Redis's `script: f, on
# @user_function:N.` context, read-only functions, MULTI, the payload and its
# errors) run on both servers from no data and no libraries. Then what one
# server's FUNCTION DUMP gives the other: the same bytes, restored both ways,
# and COMMAND INFO of the new commands.
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.protocols.resp.respclient import RespClient, error
from tests.protocols.resp.test_zsets import Command, RawClient


def lib(name: str, *lines: str) -> str:
    """A library's code: its metadata line, then `lines`."""
    return "\n".join([f"#!lua name={name}", *lines])


def register(function: str, body: str, **named: str) -> str:
    """A redis.register_function call of a function(keys, args) with `body`;
    with `named` (flags=..., description=...), the table form."""
    callback = f"function(keys, args) {body} end"
    if not named:
        return f"redis.register_function('{function}', {callback})"
    extra = "".join(f", {key}={value}" for key, value in named.items())
    return f"redis.register_function{{function_name='{function}', callback={callback}{extra}}}"


ONE = lib("one", register("f1", "return 1"))
SPIN = "local i = 0 while true do i = i + 1 end"

SCRIPTS: dict[str, list[Command]] = {
    "the metadata line": [
        ("function", "load", "return 1"),
        ("function", "load", "#!lua"),
        ("function", "load", "#!lua\nreturn 1"),
        ("function", "load", "#!lua name=\nreturn 1"),
        ("function", "load", "#!lua name=a-b\nreturn 1"),
        ("function", "load", "#!lua name=a name=b\nreturn 1"),
        ("function", "load", "#!lua foo=bar\nreturn 1"),
        ("function", "load", "#!lua NAME=x\nreturn 1"),
        ("function", "load", "#!js name=x\nreturn 1"),
        ("function", "load", "#! name=x\nreturn 1"),
        ("function", "load", "#!\nreturn 1"),
        ("function", "load", '#!lua name=x "quoted\nreturn 1'),
        ("function", "load", b"#!lua name=nul\x00 x\n" + register("g", "").encode()),
        ("function", "load", '#!lua name="a\\x41"\n' + register("qf", "return 1")),
        ("function", "load", "#!lua  name=sp   \r\n" + register("spf", "return 2")),
        ("function", "load", "#!lua name=cr\r" + register("crf", "return 3")),
        ("function", "load", "#!LUA name=upper\n" + register("up", "return 4")),
        ("function", "list", "libraryname", "aA"),
        ("function", "list", "libraryname", "sp"),
        ("function", "list", "libraryname", "up*", "withcode"),
        ("fcall", "qf", "0"),
        ("fcall", "spf", "0"),
        ("fcall", "UP", "0"),
    ],
    "load errors leave no trace": [
        ("function", "load", ONE),
        ("function", "load", ONE),
        ("function", "load", lib("one", register("other", "return 2"))),
        ("function", "load", lib("two", register("f1", "return 2"))),
        ("function", "load", lib("two", register("F1", "return 2"))),
        ("function", "load", lib("two", "return 1 +")),
        ("function", "load", lib("two", "return 1")),
        ("function", "load", lib("two", register("a", ""), register("a", ""))),
        ("function", "load", lib("two", register("a", ""), "local x = nil + 1")),
        ("function", "load", lib("two", register("a", ""), "while true do end")),
        ("function", "load", "replace", lib("one", register("g", ""), "local x = nil + 1")),
        ("function", "load", "replace", lib("one", "return 1")),
        ("function", "load", "replace", lib("one", register("f1", "return 1"), "x = 1")),
        ("function", "list", "withcode"),
        ("function", "stats"),
        ("fcall", "f1", "0"),
        ("fcall", "a", "0"),
        ("function", "load", "replace", lib("one", register("f2", "return 'new'"))),
        ("fcall", "f1", "0"),
        ("fcall", "f2", "0"),
        ("function", "load", lib("two", register("f3", "return 3"))),
        ("function", "load", "replace", lib("two", register("f2", "return 3"))),
        ("fcall", "f3", "0"),
        ("function", "load", "foo", ONE),
        ("function", "load", "replace", "replace", lib("one", register("f2", "return 'x'"))),
        ("function", "load", "replace"),
        ("function", "load"),
        ("fcall", "f2", "0"),
    ],
    "the API while a library loads": [
        ("function", "load", lib("l", "redis.call('ping')")),
        ("function", "load", lib("l", "redis.pcall('ping')")),
        ("function", "load", lib("l", "redis.setresp(3)")),
        ("function", "load", lib("l", "redis.set_repl(redis.REPL_ALL)")),
        ("function", "load", lib("l", "local x = redis.sha1hex")),
        ("function", "load", lib("l", "local x = redis.error_reply")),
        ("function", "load", lib("l", "local x = string.len('x')")),
        ("function", "load", lib("l", "local x = math.random()")),
        ("function", "load", lib("l", "local x = cjson")),
        ("function", "load", lib("l", "local x = tostring")),
        ("function", "load", lib("l", "local x = pairs")),
        ("function", "load", lib("l", "error('x')")),
        ("function", "load", lib("l", "local x = KEYS")),
        ("function", "load", lib("l", "local x = _G")),
        ("function", "load", lib("l", "x = 1")),
        ("function", "load", lib("l", "redis.x = 1")),
        ("function", "load", lib("l", "redis.log(redis.LOG_DEBUG, 'loading')")),
        ("function", "load", lib("l", "redis.log(redis.LOG_WARNING)")),
        ("function", "load", lib("l", "redis.log(9, 'x')")),
        ("function", "load", lib("l", "local x = redis.LOG_NOTICE + redis.REDIS_VERSION_NUM")),
        ("function", "load", lib("l", register("up", "return 1"), "local u = ('abc'):upper()")),
        ("function", "load", lib("l", "redis.register_function(('abc'):upper(), function() end)")),
        ("fcall", "ABC", "0"),
    ],
    "register_function": [
        ("function", "load", lib("r", "redis.register_function()")),
        ("function", "load", lib("r", "redis.register_function('a', function() end, 3)")),
        ("function", "load", lib("r", "redis.register_function(1, function() return 1 end)")),
        ("function", "load", lib("r", "redis.register_function(1.5, function() end)")),
        ("function", "load", lib("r", "redis.register_function({}, function() end)")),
        ("function", "load", lib("r", "redis.register_function(true, function() end)")),
        ("function", "load", lib("r", "redis.register_function('a', 'b')")),
        ("function", "load", lib("r", "redis.register_function('a', nil)")),
        ("function", "load", lib("r", "redis.register_function('a')")),
        ("function", "load", lib("r", "redis.register_function{}")),
        ("function", "load", lib("r", "redis.register_function{function_name='a'}")),
        ("function", "load", lib("r", "redis.register_function{callback=function() end}")),
        ("function", "load", lib("r", register("a", "", flags="'no-writes'"))),
        ("function", "load", lib("r", register("a", "", flags="{'bad'}"))),
        ("function", "load", lib("r", register("a", "", flags="{1}"))),
        ("function", "load", lib("r", register("a", "", flags="{{}}"))),
        ("function", "load", lib("r", register("a", "", description="{}"))),
        ("function", "load", lib("r", register("a", "", foo="1"))),
        ("function", "load", lib("r", register("a", "", **{"[1]": "1"}))),
        ("function", "load", lib("r", "redis.register_function{function_name={}, callback=1}")),
        ("function", "load", lib("r", "redis.register_function{function_name='a', callback=1}")),
        ("function", "load", lib("r", "redis.register_function('a b', function() end)")),
        ("function", "load", lib("r", "redis.register_function('', function() end)")),
        ("function", "load", lib("r", "redis.register_function('a\\0b', function() end)")),
        ("function", "list"),
        ("function", "load", lib("n", "redis.register_function{function_name=7, callback=print}")),
        (
            "function",
            "load",
            lib(
                "named",
                "redis.register_function{FUNCTION_NAME='n1', Callback=function() return 1 end,"
                " FLAGS={'NO-WRITES', 'no-writes', 'allow-oom'}, Description='the first'}",
            ),
        ),
        ("function", "list", "libraryname", "named"),
        ("function", "load", lib("upper", register("u1", "return 1", flags="{'No-Writes'}"))),
        ("function", "list", "libraryname", "upper"),
        ("fcall_ro", "u1", "0"),
        (
            "function",
            "load",
            lib(
                "every",
                register(
                    "n2",
                    "return 2",
                    flags="{'allow-cross-slot-keys', 'no-cluster', 'allow-stale', 'allow-oom',"
                    " 'no-writes'}",
                    description="''",
                ),
            ),
        ),
        ("function", "list", "libraryname", "every"),
        ("function", "load", lib("num", register("n3", "return 3", description="3"))),
        ("function", "list", "libraryname", "num"),
        ("function", "load", lib("digits", "redis.register_function(12, function() end)")),
        ("function", "list", "libraryname", "digits"),
        ("fcall", "12", "0"),
        ("function", "stats"),
    ],
    "calls": [
        (
            "function",
            "load",
            lib(
                "t",
                "local reg = redis.register_function",
                register("ka", "return {keys, args}"),
                register("nokeys", "return KEYS"),
                register("noargv", "return ARGV"),
                register("boom", "error('boom')"),
                register("unknown", "return redis.call('nosuch')"),
                register("incr", "return redis.call('incr', keys[1])"),
                register("global", "x = 1"),
                register("later", "reg('zz', function() end)"),
                register("errreply", "return redis.error_reply('MY err')"),
                register("errtable", "error({err='CUSTOM thing'})"),
                register("pc", "return {redis.pcall('nosuch')}"),
                register("nested", "return redis.call('fcall', 'ka', 0)"),
                register("function", "return redis.call('function', 'list')"),
                register("fhelp", "return #redis.call('function', 'help')"),
                register("ev", "return redis.call('eval', 'return 1', 0)"),
                register("setresp", "redis.setresp(3) return redis.call('hgetall', keys[1])"),
                register("types", "return {1, 'two', 3.9, true, false, nil, {ok='fine'}}"),
                register("double", "redis.setresp(3) return {double=3.5}"),
                register("set", "return redis.call('set', keys[1], args[1])"),
                register("get", "return redis.call('get', keys[1])"),
                register("nothing", ""),
                register("time", "return type(redis.call('time'))"),
                register("argtypes", "return {type(keys), #keys, type(args), #args}"),
                register("rnd", "return {math.random(1000), math.random(1000)}"),
                register("seed", "math.randomseed(tonumber(args[1]))"),
            ),
        ),
        ("fcall", "ka", "2", "k1", "k2", "a1", "a2"),
        ("fcall", "KA", "0", "a1"),
        ("fcall", "ka", "0"),
        ("fcall", "nokeys", "0"),
        ("fcall", "noargv", "0"),
        ("fcall", "boom", "0"),
        ("fcall", "unknown", "0"),
        ("set", "s", "abc"),
        ("fcall", "incr", "1", "s"),
        ("fcall", "incr", "1", "n"),
        ("fcall", "global", "0"),
        ("fcall", "later", "0"),
        ("fcall", "errreply", "0"),
        ("fcall", "errtable", "0"),
        ("fcall", "pc", "0"),
        ("fcall", "nested", "0"),
        ("fcall", "function", "0"),
        ("fcall", "fhelp", "0"),
        ("fcall", "ev", "0"),
        ("hset", "h", "a", "1"),
        ("fcall", "setresp", "1", "h"),
        ("fcall", "types", "0"),
        ("fcall", "double", "0"),
        ("fcall", "set", "1", "k", "v"),
        ("fcall", "get", "1", "k"),
        ("fcall", "nothing", "0"),
        ("fcall", "time", "0"),
        ("fcall", "argtypes", "1", "k", "a", "b"),
        # one math.random sequence for scripts and functions, as Redis's one PRNG
        ("eval", "math.randomseed(7)", "0"),
        ("fcall", "rnd", "0"),
        ("eval", "return math.random(1000)", "0"),
        ("fcall", "seed", "0", "9"),
        ("eval", "return math.random(1000)", "0"),
        ("fcall", "rnd", "0"),
        ("fcall", "ka", "x"),
        ("fcall", "ka", "1.0"),
        ("fcall", "ka", "-1"),
        ("fcall", "ka", "3", "a", "b"),
        ("fcall", "missing", "0"),
        ("fcall", "missing", "x"),
        ("fcall", "ka"),
        ("fcall",),
        ("eval", "return redis.call('fcall', 'ka', 0)", "0"),
        ("eval", "return redis.call('function', 'stats')", "0"),
        ("multi",),
        ("fcall", "set", "1", "k", "in-multi"),
        ("fcall", "get", "1", "k"),
        ("fcall", "missing", "0"),
        ("exec",),
    ],
    "read-only functions": [
        (
            "function",
            "load",
            lib(
                "ro",
                register("reader", "return redis.call('get', keys[1])", flags="{'no-writes'}"),
                register("sneaky", "return redis.call('set', keys[1], 'x')", flags="{'no-writes'}"),
                register("writer", "return redis.call('set', keys[1], args[1])"),
                register(
                    "pwriter", "return redis.pcall('set', keys[1], 'x')", flags="{'no-writes'}"
                ),
            ),
        ),
        ("fcall", "writer", "1", "k", "v"),
        ("fcall_ro", "writer", "1", "k", "v"),
        ("fcall_ro", "reader", "1", "k"),
        ("fcall", "reader", "1", "k"),
        ("fcall", "sneaky", "1", "k"),
        ("fcall_ro", "sneaky", "1", "k"),
        ("fcall_ro", "pwriter", "1", "k"),
        ("get", "k"),
        ("fcall_ro", "missing", "0"),
        ("fcall_ro", "reader", "x"),
    ],
    "list, stats, delete, flush": [
        ("function", "list"),
        ("function", "stats"),
        ("function", "load", lib("lib1", register("f1", "return 1", flags="{'no-writes'}"))),
        ("function", "load", lib("other", register("o1", "return 1", description="'about o1'"))),
        ("function", "list", "libraryname", "l*"),
        ("function", "list", "libraryname", "L*"),
        ("function", "list", "libraryname", "x*"),
        ("function", "list", "libraryname", "oth?r", "withcode"),
        ("function", "list", "withcode", "libraryname", "lib1"),
        ("function", "list", "libraryname"),
        ("function", "list", "withcode", "withcode"),
        ("function", "list", "foo"),
        ("function", "list", "libraryname", "a", "libraryname", "b"),
        ("function", "stats"),
        ("function", "stats", "x"),
        ("function", "kill"),
        ("function", "kill", "x"),
        ("script", "kill"),
        ("function", "delete", "nolib"),
        ("function", "delete", "LIB1"),
        ("function", "delete", "lib1"),
        ("function", "delete", "lib1"),
        ("fcall", "f1", "0"),
        ("function", "delete"),
        ("function", "stats"),
        ("script", "flush"),
        ("fcall", "o1", "0"),
        ("flushall",),
        ("fcall", "o1", "0"),
        ("function", "flush", "foo"),
        ("function", "flush", "sync", "x"),
        ("function", "flush", "async"),
        ("fcall", "o1", "0"),
        ("function", "load", ONE),
        ("function", "flush", "SYNC"),
        ("function", "flush"),
        ("function", "list"),
        ("function", "dump"),
        ("function", "nosuch"),
        ("function", "help", "x"),
        ("function", "help"),
        ("function",),
        ("multi",),
        ("function", "load", ONE),
        ("fcall", "f1", "0"),
        ("function", "list"),
        ("exec",),
    ],
    "dump and restore": [
        ("function", "load", ONE),
        ("function", "dump"),
        ("function", "load", lib("big", register("fbig", "return 1"), "-- " + "abcdefgh" * 3000)),
        ("function", "list", "libraryname", "big"),
        ("function", "restore", "xxx"),
        ("function", "restore", "xxx", "foo"),
        ("function", "restore", "xxx", "flush", "x"),
        ("function", "restore", b"\n\x00" + b"\x00" * 8),
        ("function", "restore"),
        ("function", "delete", "big"),
        ("function", "dump"),
    ],
}


def run(port: int, protocol: int, script: list[Command]) -> list[bytes]:
    client = RawClient(port)
    try:
        client.call("flushall")
        client.call("function", "flush")
        if protocol == 3:
            client.call("hello", "3")
        return client.pipeline(script)
    finally:
        client.close()


@pytest.fixture(scope="module")
def ports(netsvc_port: int, redis_port: int) -> Iterator[tuple[int, int]]:
    yield netsvc_port, redis_port


def test_scripts_are_meaningful() -> None:
    assert sum(len(script) for script in SCRIPTS.values()) > 200


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_same_bytes_as_redis(name: str, protocol: int, ports: tuple[int, int]) -> None:
    netsvc_port, redis_port = ports
    script = SCRIPTS[name]
    ours, theirs = run(netsvc_port, protocol, script), run(redis_port, protocol, script)
    differ = [
        f"{command!r:.150}:\n  redis : {want!r:.600}\n  netsvc: {have!r:.600}"
        for command, want, have in zip(script, theirs, ours, strict=True)
        if want != have
    ]
    assert not differ, "\n".join(differ)


# -- FUNCTION DUMP and RESTORE across the two servers ----------------------------------

LIBRARIES = [
    ONE,
    lib("second", register("s1", "return redis.call('incr', keys[1])"), register("s2", "return 2")),
    lib("third", "local n = 0", register("t1", "n = n + 1 return n", flags="{'no-writes'}")),
    lib("big", register("fbig", "return 1"), "-- " + "abcdefghij" * 2000, "-- " + "x" * 70000),
    lib("bin", register("fbin", "return 1"), "--[[" + "".join(map(chr, range(1, 127))) * 20 + "]]"),
]


@pytest.fixture
def clients(ports: tuple[int, int]) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    netsvc_port, redis_port = ports
    ours, theirs = redis.Redis(port=netsvc_port), redis.Redis(port=redis_port)
    for client in (ours, theirs):
        client.function_flush()
    yield ours, theirs
    for client in (ours, theirs):
        client.function_flush()
        client.close()


@pytest.mark.parametrize("code", LIBRARIES, ids=lambda code: code.split("\n")[0])
def test_dump_is_redis_bytes(code: str, clients: tuple[redis.Redis, redis.Redis]) -> None:
    ours, theirs = clients
    for client in clients:
        client.function_load(code)
    assert ours.function_dump() == theirs.function_dump()


def _sorted_list(client: redis.Redis) -> list[Any]:
    """FUNCTION LIST WITHCODE, libraries and their functions sorted: Redis
    lists both in its hash tables' order."""
    listing = client.execute_command("function", "list", "withcode")
    for library in listing:
        library[5] = sorted(library[5], key=repr)
    return sorted(listing, key=repr)


@pytest.mark.parametrize("direction", ["redis to netsvc", "netsvc to redis"])
def test_restore_the_other_servers_dump(
    direction: str, clients: tuple[redis.Redis, redis.Redis]
) -> None:
    ours, theirs = clients
    source, target = (theirs, ours) if direction == "redis to netsvc" else (ours, theirs)
    for code in LIBRARIES:
        source.function_load(code)
    payload = source.function_dump()
    assert target.function_restore(payload)
    assert _sorted_list(target) == _sorted_list(source)
    assert target.fcall("s1", 1, "counter") == 1
    assert target.fcall("t1", 0) == 1
    assert target.fcall("t1", 0) == 2  # the library's upvalue, shared by its calls
    # a second restore collides; REPLACE takes it; FLUSH leaves only the payload's
    with pytest.raises(redis.ResponseError, match=r"^Library \w+ already exists$"):
        target.function_restore(payload)  # the first one each finds: the order is Redis's hash's
    assert target.function_restore(payload, "REPLACE")
    assert target.fcall("t1", 0) == 1  # a fresh library: its upvalue starts again
    target.function_load(lib("extra", register("e1", "return 'e'")))
    assert target.function_restore(payload, "FLUSH")
    assert [entry[1] for entry in _sorted_list(target)] == sorted(
        code.split("\n")[0].removeprefix("#!lua name=").encode() for code in LIBRARIES
    )


def test_restore_errors_as_redis(clients: tuple[redis.Redis, redis.Redis]) -> None:
    for client in clients:
        client.function_load(LIBRARIES[1])
    payload = clients[1].function_dump()  # one library: a clash names it whatever the order
    corrupted = payload[:5] + bytes([payload[5] ^ 1]) + payload[6:]
    newer = payload[:-10] + b"\x0c\x00" + payload[-8:]  # RDB 12: from a newer Redis
    other = lib("other", register("s2", "return 'clash'"))
    commands: list[tuple[Any, ...]] = [
        ("function", "restore", corrupted),
        ("function", "restore", newer),
        ("function", "restore", payload[:9]),
        ("function", "restore", payload),
        ("function", "restore", payload, "append"),
        ("function", "restore", payload, "bogus"),
        ("function", "delete", "second"),
        ("function", "load", other),
        ("function", "restore", payload),
        ("function", "restore", payload, "replace"),  # replaces libraries, not functions
        ("function", "delete", "other"),
        ("function", "restore", payload, "replace"),
        ("fcall", "s1", "1", "n"),
        ("function", "restore", payload, "replace"),
        ("fcall", "s2", "0"),
    ]
    for command in commands:
        replies = []
        for client in clients:
            try:
                replies.append(client.execute_command(*command))
            except redis.ResponseError as exc:
                replies.append(f"error: {exc}")
        assert replies[0] == replies[1], (command[:2], replies)


def _crafted(*records: bytes, version: int = 10) -> bytes:
    """A payload of raw records with a right checksum (what a bad writer sends)."""
    from protocols.resp._functions import crc64

    body = b"".join(records) + version.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


@pytest.fixture(scope="module")
def one_record(redis_port: int) -> bytes:
    """redis-server's record of library `one` (its dump less version and checksum)."""
    with RespClient(redis_port) as client:
        client.call("function", "flush")
        client.call("function", "load", ONE)
        record: bytes = client.call("function", "dump")[:-10]
        client.call("function", "flush")
    return record


def test_crafted_payloads_get_redis_errors(ports: tuple[int, int], one_record: bytes) -> None:
    payloads = [
        _crafted(b"\x07" + one_record[1:]),  # not a function record
        _crafted(b"\xf5\x3f" + one_record[3:]),  # a string longer than what is left
        _crafted(b"\xf5\xc3\x05\x40\x10abcde"),  # LZF that does not decompress
        _crafted(b"\xf5\xc3\x03\x05\x01abc"),  # LZF whose size is not the one announced
        _crafted(b"\xf5\xc0\x07"),  # an integer-encoded "7": no metadata line
        _crafted(b"\xf5\xc9"),  # an unknown string encoding
        _crafted(b"\xf5\x84\x01"),  # an unknown length encoding
        _crafted(one_record, one_record),  # one library twice
        _crafted(one_record, version=9),  # an older RDB version is fine
        _crafted(one_record)[:-1],  # cut short
        _crafted(),  # no library at all: fine, and it flushes nothing
    ]
    for payload in payloads:
        replies = []
        for port in ports:
            with RespClient(port) as client:
                client.call("function", "flush")
                client.call("function", "load", lib("kept", register("k", "return 1")))
                replies.append(
                    [client.call("function", "restore", payload), client.call("fcall", "k", 0)]
                )
        assert replies[0] == replies[1], (payload, replies)


def test_a_redis_7_2_payload_restores(ports: tuple[int, int], one_record: bytes) -> None:
    # Redis 7.2 writes RDB 11 (its change is about sets, not these records):
    # redis-server 7.0 refuses it, netsvc reads it as 7.2 does
    netsvc_port, redis_port = ports
    payload = _crafted(one_record, version=11)
    with RespClient(redis_port) as theirs, RespClient(netsvc_port) as ours:
        for client in (ours, theirs):
            client.call("function", "flush")
        assert theirs.call("function", "restore", payload) == error(PAYLOAD_WRONG)
        assert ours.call("function", "restore", payload) == b"OK"
        assert ours.call("fcall", "f1", "0") == 1
        assert ours.call("function", "restore", _crafted(version=12)) == error(PAYLOAD_WRONG)
        # 7.0's release candidates wrote another record (246); 7.0 still tries
        # to read it, later Redis refuses it by name, as netsvc does
        pre_ga = _crafted(b"\xf6" + one_record[1:])
        assert ours.call("function", "restore", pre_ga) == error(
            "ERR Pre-GA function format not supported"
        )


PAYLOAD_WRONG = "ERR DUMP payload version or checksum are wrong"


def test_command_info_matches_redis(ports: tuple[int, int]) -> None:
    # name, arity, flags (no_mandatory_keys included), first/last/step key
    netsvc_port, redis_port = ports
    names = ["fcall", "fcall_ro", "function", "eval", "evalsha", "eval_ro", "evalsha_ro"]
    with RespClient(redis_port) as theirs, RespClient(netsvc_port) as ours:
        want = theirs.call("command", "info", *names)
        have = ours.call("command", "info", *names)
    for redis_entry, netsvc_entry in zip(want, have, strict=True):
        assert netsvc_entry[:2] == redis_entry[:2]
        assert netsvc_entry[2] == redis_entry[2], redis_entry[0]
        assert netsvc_entry[3:6] == redis_entry[3:6]

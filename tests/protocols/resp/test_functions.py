# Functions as their users see them, on netsvc alone (test_functions_vs_redis.py
# compares the replies with redis-server's): redis-py's function_* and fcall,
# a function working on keys, FCALL in MULTI/EXEC, a function's atomicity,
# BUSY and FUNCTION KILL (and SCRIPT KILL's refusal, and the other way round),
# FUNCTION STATS while a function runs, a library whose load fails or times
# out leaving no trace (others wait for a load, never BUSY), the memory cap,
# and what outlives what: SCRIPT FLUSH, FLUSHALL, FUNCTION FLUSH.
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.protocols.resp.respclient import RespClient, error

LIBRARY = """#!lua name=mylib
local function incr_both(keys, args)
  local a = redis.call('incrby', keys[1], args[1])
  local b = redis.call('hincrby', keys[2], 'total', args[1])
  return {a, b}
end
local function get(keys, args)
  return redis.call('get', keys[1])
end
redis.register_function('incr_both', incr_both)
redis.register_function{function_name='get', callback=get, flags={'no-writes'},
                        description='reads a key'}
"""

BUSY_FUNCTION = error(
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
)
BUSY_SCRIPT = error(
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
)
NOTBUSY = error("NOTBUSY No scripts in execution right now.")


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(request: pytest.FixtureRequest, netsvc_port: int) -> Iterator[redis.Redis]:
    c = redis.Redis(port=netsvc_port, protocol=request.param, socket_timeout=10)
    c.flushall()
    c.function_flush()
    yield c
    c.function_flush()
    c.close()


@pytest.fixture
def client(netsvc_port: int) -> Iterator[RespClient]:
    with RespClient(netsvc_port, timeout=20) as c:
        c.call("flushall")
        c.call("function", "flush")
        yield c
        c.call("config", "set", "busy-reply-threshold", "5000")
        c.call("function", "flush")


def _in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(target()), daemon=True)
    thread.start()
    return thread, result


def _until(call: Any, stop: Any, seconds: float = 10) -> Any:
    """call() until stop(reply) (or `seconds` pass): a running function's
    other clients see it only once it turns busy."""
    deadline = time.monotonic() + seconds
    reply = call()
    while not stop(reply) and time.monotonic() < deadline:
        time.sleep(0.02)
        reply = call()
    return reply


# -- redis-py ---------------------------------------------------------------------


def test_redis_py_load_call_list(r: redis.Redis) -> None:
    assert r.function_load(LIBRARY) in (b"mylib", "mylib")
    assert r.fcall("incr_both", 2, "counter", "totals", 5) == [5, 5]
    assert r.fcall("incr_both", 2, "counter", "totals", 2) == [7, 7]
    assert r.get("counter") == b"7" and r.hget("totals", "total") == b"7"
    assert r.fcall_ro("get", 1, "counter") == b"7"
    assert r.fcall("GET", 1, "counter") == b"7"  # function names: any case
    with pytest.raises(redis.ResponseError, match=r"write flag using \*_ro command"):
        r.fcall_ro("incr_both", 2, "counter", "totals", 1)
    with pytest.raises(redis.ResponseError, match=r"^Library 'mylib' already exists$"):
        r.function_load(LIBRARY)
    listing = r.function_list(withcode=True)
    assert len(listing) == 1
    library = _as_dict(listing[0])
    assert library[b"library_name"] == b"mylib" and library[b"engine"] == b"LUA"
    assert library[b"library_code"] == LIBRARY.encode()
    functions = {f[b"name"]: f for f in map(_as_dict, library[b"functions"])}
    assert functions[b"get"][b"description"] == b"reads a key"
    assert list(functions[b"get"][b"flags"]) == [b"no-writes"]
    assert functions[b"incr_both"][b"description"] is None
    assert not functions[b"incr_both"][b"flags"]
    assert [_as_dict(entry)[b"library_name"] for entry in r.function_list(library="my*")] == [
        b"mylib"
    ]
    assert r.function_list(library="other*") == []


def test_redis_py_dump_restore_delete(r: redis.Redis) -> None:
    r.function_load(LIBRARY)
    payload = r.function_dump()
    assert payload.startswith(b"\xf5") and payload[-10:-8] == b"\x0a\x00"
    assert r.function_delete("mylib")
    with pytest.raises(redis.ResponseError, match=r"^Function not found$"):
        r.fcall("get", 1, "k")
    assert r.function_restore(payload)
    r.set("k", "v")
    assert r.fcall("get", 1, "k") == b"v"
    with pytest.raises(redis.ResponseError, match=r"^Library mylib already exists$"):
        r.function_restore(payload)
    assert r.function_restore(payload, "REPLACE")
    assert r.function_flush()
    assert r.function_list() == []
    assert r.function_restore(payload, "FLUSH")
    assert r.fcall_ro("get", 1, "k") == b"v"
    stats = _as_dict(r.function_stats())
    assert stats[b"running_script"] is None
    assert _as_dict(_as_dict(stats[b"engines"])[b"LUA"]) == {
        b"libraries_count": 1,
        b"functions_count": 2,
    }


def _as_dict(value: Any) -> dict[Any, Any]:
    """A map as redis-py gives it: a dict in RESP3, a flat list in RESP2."""
    if isinstance(value, dict):
        return {_bytes(k): v for k, v in value.items()}
    return {_bytes(value[i]): value[i + 1] for i in range(0, len(value), 2)}


def _bytes(value: Any) -> Any:
    return value.encode() if isinstance(value, str) else value


def test_fcall_in_multi(r: redis.Redis) -> None:
    r.function_load(LIBRARY)
    with r.pipeline(transaction=True) as pipe:
        pipe.fcall("incr_both", 2, "a", "h", 3)
        pipe.fcall_ro("get", 1, "a")
        pipe.fcall("incr_both", 2, "a", "h", 4)
        assert pipe.execute() == [[3, 3], b"3", [7, 7]]
    # a watched key a function changes aborts the other client's transaction
    with r.pipeline(transaction=True) as pipe:
        pipe.watch("a")
        r.fcall("incr_both", 2, "a", "h", 1)
        pipe.multi()
        pipe.get("a")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    # a missing function is an error inside EXEC, the rest runs
    with pytest.raises(redis.ResponseError, match="Function not found"):
        with r.pipeline(transaction=True) as pipe:
            pipe.fcall("nope", 0)
            pipe.set("after", "1")
            pipe.execute()
    assert r.get("after") == b"1"


def test_a_function_works_in_the_callers_database(r: redis.Redis) -> None:
    r.function_load(LIBRARY)
    r.execute_command("select", "3")
    try:
        assert r.fcall("incr_both", 2, "in3", "h3", 1) == [1, 1]
        assert r.get("in3") == b"1"
    finally:
        r.execute_command("select", "0")
    assert r.get("in3") is None


def test_functions_outlive_script_flush_and_flushall(r: redis.Redis) -> None:
    r.function_load(LIBRARY)
    sha = r.script_load("return 'script'")
    r.script_flush()
    r.flushall()
    r.set("k", "still")
    assert r.fcall("get", 1, "k") == b"still"
    sha = r.script_load("return 'script'")
    r.function_flush()
    assert r.script_exists(sha) == [True]  # FUNCTION FLUSH leaves the scripts
    with pytest.raises(redis.ResponseError, match="Function not found"):
        r.fcall("get", 1, "k")


def test_a_librarys_upvalues_live_until_it_is_replaced(r: redis.Redis) -> None:
    counter = (
        "#!lua name=counter\nlocal n = 0\n"
        "redis.register_function('bump', function() n = n + 1 return n end)"
    )
    r.function_load(counter)
    assert [r.fcall("bump", 0) for _ in range(3)] == [1, 2, 3]
    r.function_load("#!lua name=last\nredis.register_function('last', function() end)")
    r.function_load(counter, replace=True)
    assert r.fcall("bump", 0) == 1
    # a replaced library keeps its place in FUNCTION LIST
    names = [_as_dict(entry)[b"library_name"] for entry in r.function_list()]
    assert names == [b"counter", b"last"]
    # libraries share no globals: writing one is refused, reading a missing one too
    r.function_load("#!lua name=other\nredis.register_function('peek', function() return n end)")
    with pytest.raises(redis.ResponseError, match="nonexistent global variable 'n'"):
        r.fcall("peek", 0)


def test_the_sandbox_holds_in_functions(r: redis.Redis) -> None:
    probes = {
        "os": "return os.time()",
        "io": "return io.open('/etc/passwd')",
        "require": "return require('os')",
        "debug": "return debug.getinfo(1)",
        "python": "return python",
        "loadfile": "return loadfile('/etc/passwd')",
    }
    code = "#!lua name=probes\n" + "\n".join(
        f"redis.register_function('{name}', function() {body} end)" for name, body in probes.items()
    )
    code += "\nredis.register_function('g', function() string.upper = nil end)"
    r.function_load(code)
    for name in probes:
        with pytest.raises(redis.ResponseError, match=f"nonexistent global variable '{name}'"):
            r.fcall(name, 0)
    with pytest.raises(redis.ResponseError, match="readonly table"):
        r.fcall("g", 0)


# -- atomicity, BUSY, FUNCTION KILL ---------------------------------------------------

SPIN = """#!lua name=spin
local function now() local t = redis.call('time') return t[1] + t[2] / 1e6 end
redis.register_function('spin', function(keys, args)
  redis.call('set', keys[1], 'during')
  local stop = now() + tonumber(args[1])
  while now() < stop do end
  redis.call('set', keys[1], 'after')
  return 'done'
end)
redis.register_function('loop', function(keys, args) while true do end end)
redis.register_function('writer', function(keys, args)
  redis.call('set', 'w', '1')
  local stop = now() + tonumber(args[1])
  while now() < stop do end
  return 'finished'
end)
"""


def test_a_function_is_atomic(client: RespClient, netsvc_port: int) -> None:
    client.call("function", "load", SPIN)
    client.call("set", "k", "before")
    with RespClient(netsvc_port, timeout=20) as other:
        thread, result = _in_thread(lambda: client.call("fcall", "spin", 1, "k", "0.3"))
        seen = _until(lambda: other.call("get", "k"), lambda reply: reply != b"before")
        assert seen == b"after"  # never "during"
        thread.join(10)
    assert result == [b"done"]


def test_busy_then_function_kill(client: RespClient, netsvc_port: int) -> None:
    client.call("function", "load", SPIN)
    client.call("config", "set", "busy-reply-threshold", "100")
    thread, result = _in_thread(lambda: client.call("fcall", "loop", 1, "key", "arg"))
    with RespClient(netsvc_port, timeout=20) as other:
        try:
            assert _until(lambda: other.call("ping"), lambda reply: reply != b"PONG") == (
                BUSY_FUNCTION
            )
            assert other.call("get", "x") == BUSY_FUNCTION
            stats = other.call("function", "stats")
            assert stats[0] == b"running_script" and stats[2] == b"engines"
            running = dict(zip(stats[1][::2], stats[1][1::2], strict=True))
            assert running[b"name"] == b"loop"
            assert running[b"command"] == [b"fcall", b"loop", b"1", b"key", b"arg"]
            assert running[b"duration_ms"] >= 100
            assert other.call("script", "kill") == BUSY_FUNCTION  # SCRIPT KILL: not a script
        finally:
            assert other.call("function", "kill") == b"OK"
        thread.join(10)
        assert not thread.is_alive()
        assert other.call("ping") == b"PONG"
        assert other.call("function", "kill") == NOTBUSY
    killed = "ERR Script killed by user with SCRIPT KILL... script: loop, on @user_function:10."
    assert result == [error(killed)]


def test_function_kill_and_stats_refuse_a_running_script(
    client: RespClient, netsvc_port: int
) -> None:
    client.call("config", "set", "busy-reply-threshold", "100")
    thread, result = _in_thread(lambda: client.call("eval", "while true do end", 0))
    with RespClient(netsvc_port, timeout=20) as other:
        try:
            assert _until(lambda: other.call("ping"), lambda reply: reply != b"PONG") == (
                BUSY_SCRIPT
            )
            assert other.call("function", "kill") == BUSY_SCRIPT
            assert other.call("function", "stats") == BUSY_SCRIPT
        finally:
            assert other.call("script", "kill") == b"OK"
        thread.join(10)
    assert result[0].message.startswith("ERR Script killed by user with SCRIPT KILL...")


def test_a_function_that_wrote_is_unkillable(client: RespClient, netsvc_port: int) -> None:
    client.call("function", "load", SPIN)
    client.call("config", "set", "busy-reply-threshold", "100")
    thread, result = _in_thread(lambda: client.call("fcall", "writer", 0, "1.0"))
    with RespClient(netsvc_port, timeout=20) as other:
        reply = _until(lambda: other.call("function", "kill"), lambda reply: reply != NOTBUSY)
        assert reply == error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. "
            "You can either wait the script termination or kill the server in a hard way using "
            "the SHUTDOWN NOSAVE command."
        )
        thread.join(10)
        assert result == [b"finished"]
        assert other.call("get", "w") == b"1"


# -- loading ------------------------------------------------------------------------


def test_a_failed_load_leaves_no_trace(client: RespClient) -> None:
    good = "#!lua name=lib\nredis.register_function('f', function() return 'old' end)"
    assert client.call("function", "load", good) == b"lib"
    before = client.call("function", "list", "withcode")
    failures = [
        "#!lua name=lib\nredis.register_function('g', function() return 'new' end) x = 1",
        "#!lua name=lib\nredis.register_function('g', function() return 'new' end) local i = 0 "
        "while true do i = i + 1 end",
        "#!lua name=lib\nredis.register_function('g', function() end) return 1 +",
        "#!lua name=lib\nreturn 1",
        "#!lua name=lib2\nredis.register_function('g', function() end) "
        "redis.register_function('F', function() end)",
    ]
    for code in failures:
        reply = client.call("function", "load", "replace", code)
        assert isinstance(reply, type(NOTBUSY)), (code, reply)
        assert client.call("function", "list", "withcode") == before
        assert client.call("fcall", "f", 0) == b"old"
        assert client.call("fcall", "g", 0) == error("ERR Function not found")
    assert client.call("function", "stats")[3] == [
        b"LUA",
        [b"libraries_count", 1, b"functions_count", 1],
    ]


def test_others_wait_for_a_load_and_never_get_busy(client: RespClient, netsvc_port: int) -> None:
    # Redis serves no one while a library's code runs (at most 500 ms): BUSY
    # is for long functions and scripts, not for loads
    client.call("config", "set", "busy-reply-threshold", "100")
    looping = "#!lua name=slow\nlocal i = 0 while true do i = i + 1 end"
    started = time.monotonic()
    thread, result = _in_thread(lambda: client.call("function", "load", looping))
    with RespClient(netsvc_port, timeout=20) as other:
        time.sleep(0.2)
        assert other.call("ping") == b"PONG"
        waited = time.monotonic() - started
    thread.join(10)
    assert result == [error("ERR Error registering functions: ERR FUNCTION LOAD timeout")]
    assert waited >= 0.45  # the PING was answered after the load's 500 ms


def test_memory_limit_in_a_function(client: RespClient) -> None:
    hog = (
        "#!lua name=hog\nredis.register_function('hog', function() local t = {} "
        "for i = 1, 1e9 do t[i] = string.rep('x', 64) .. i end return #t end)\n"
        "redis.register_function('ok', function() return 7 end)"
    )
    client.call("config", "set", "lua-memory-limit", str(8 * 1024 * 1024))
    try:
        client.call("function", "load", hog)
        reply = client.call("fcall", "hog", 0)
        assert "not enough memory" in reply.message
        assert client.call("fcall", "ok", 0) == 7  # the interpreter lives on
        big = "#!lua name=big\nlocal t = {} for i = 1, 1e9 do t[i] = i end"
        reply = client.call("function", "load", big)
        assert reply.message.startswith("ERR Error registering functions: ")
        assert "memory" in reply.message
    finally:
        client.call("config", "set", "lua-memory-limit", str(64 * 1024 * 1024))


def test_command_getkeys_of_fcall(client: RespClient) -> None:
    assert client.call("command", "getkeys", "fcall", "f", "2", "a", "b", "c") == [b"a", b"b"]
    assert client.call("command", "getkeys", "fcall_ro", "f", "1", "a") == [b"a"]
    assert client.call("command", "getkeys", "eval", "return 1", "1", "k") == [b"k"]


def test_info_memory_counts_scripts_functions_and_libraries(r: redis.Redis) -> None:
    r.function_flush()
    r.script_flush()
    r.function_load(
        "#!lua name=counted\n"
        "redis.register_function('one', function() return 1 end)\n"
        "redis.register_function('two', function() return 2 end)"
    )
    r.script_load("return 1")
    memory = r.info("memory")
    assert memory["number_of_functions"] == 2 and memory["number_of_libraries"] == 1
    assert memory["number_of_cached_scripts"] == 1
    assert memory["used_memory_vm_functions"] > 0
    assert memory["used_memory_vm_total"] == (
        memory["used_memory_vm_eval"] + memory["used_memory_vm_functions"]
    )


def test_command_getkeys_of_a_call_with_no_keys_is_empty(client: RespClient) -> None:
    # EVAL and FCALL may name no key (no_mandatory_keys): an empty list, as
    # Redis answers (redis-py's COMMAND parser would make a dict of it)
    assert client.call("command", "getkeys", "eval", "return 1", "0") == []
    assert client.call("command", "getkeys", "fcall", "f", "1", "k") == [b"k"]
    error = client.call("command", "getkeys", "ping", "x")
    assert "has no key arguments" in str(error)


def test_a_restore_bomb_is_refused_without_expanding_it(client: RespClient) -> None:
    # a record that expands to more than any library can be (lua-memory-limit,
    # here 1 MiB) is refused before it is expanded: LZF turns a few KB into
    # many MB, and the expansion is pure Python
    from protocols.resp._functions import (
        OPCODE_FUNCTION,
        RDB_VERSION_WRITTEN,
        _rdb_length,
        crc64,
        lzf_compress,
    )

    plain = b"-" * (2 * 1024 * 1024)
    packed = lzf_compress(plain, len(plain) - 1)
    assert packed is not None and len(packed) < 100_000
    record = bytes([OPCODE_FUNCTION, 0xC3]) + _rdb_length(len(packed)) + _rdb_length(len(plain))
    body = record + packed + RDB_VERSION_WRITTEN.to_bytes(2, "little")
    payload = body + crc64(body).to_bytes(8, "little")
    client.call("config", "set", "lua-memory-limit", str(1024 * 1024))
    try:
        reply = client.call("function", "restore", payload)
    finally:
        client.call("config", "set", "lua-memory-limit", str(64 * 1024 * 1024))
    assert "Failed loading library payload" in str(reply), reply
    assert client.call("function", "list") == []


def test_a_large_restore_leaves_other_clients_served(client: RespClient, netsvc_port: int) -> None:
    # a valid 4 MB payload: its checksum alone is about 0.2 s of pure Python,
    # in a worker thread, while another client's PING is answered
    body = "-- " + "x" * (4 * 1024 * 1024) + "\n"
    code = "#!lua name=big\n" + body + "redis.register_function('f', function() return 1 end)"
    assert client.call("function", "load", code) == b"big"
    payload = client.call("function", "dump")
    client.call("function", "flush")
    thread, result = _in_thread(lambda: client.call("function", "restore", payload))
    with RespClient(netsvc_port, timeout=20) as other:
        started = time.monotonic()
        assert other.call("ping") == b"PONG"
        pinged = time.monotonic() - started
    thread.join(30)
    assert result == [b"OK"]
    assert pinged < 1.0

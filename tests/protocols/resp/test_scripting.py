# Scripting (EVAL, EVALSHA, SCRIPT ...) against a real redis-server 7.0 byte
# for byte in RESP2 and RESP3, then what a comparison cannot show: atomicity,
# BUSY and SCRIPT KILL, the memory cap, and redis-py's Lock and Script.
from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import hiredis
import pytest
import redis

from tests.protocols.resp.respclient import RespClient, encode_command, error
from tests.serveprocess import ServeProcess, host_port

# EVAL <script> <numkeys> <args...>, each reply compared byte for byte
CASES: list[tuple[Any, ...]] = [
    ("return 1", 0),
    # XREAD of one stream twice: a map whose key repeats (RESP3), into Lua
    (
        "redis.call('xadd','s','1-1','f','v'); "
        "return redis.call('xread','streams','s','s','0','0')",
        0,
    ),
    (
        "redis.setresp(3); redis.call('xadd','s3','1-1','f','v'); "
        "return redis.call('xread','streams','s3','s3','0','0')",
        0,
    ),
    (
        "redis.setresp(3); local r = redis.call('xread','streams','s3','s3','0','0'); "
        "local n = 0; for k, v in pairs(r['map']) do n = n + #v end; return n",
        0,
    ),
    ("return 1.9", 0),
    ("return -1.9", 0),
    ("return 1e20", 0),
    ("return 0/0", 0),
    ("return 'hello'", 0),
    ("return true", 0),
    ("return false", 0),
    ("return nil", 0),
    ("return {1,2,nil,3}", 0),
    ("return {1, 'a', {ok='x'}, {err='e'}, true, false}", 0),
    ("return {ok='fine'}", 0),
    ("return {err='My Error'}", 0),
    ("return {err='ERR x\\r\\ny'}", 0),
    ("return redis.status_reply('PONG')", 0),
    ("return redis.error_reply('x y')", 0),
    ("return redis.error_reply('oops')", 0),
    ("return redis.error_reply('-oops')", 0),
    ("return redis.error_reply(1)", 0),
    ("return redis.status_reply(1)", 0),
    ("return {double=3.5}", 0),
    ("return {big_number='123'}", 0),
    ("redis.setresp(3); return {map={a=1}}", 0),
    ("redis.setresp(3); return {double=3.5}", 0),
    # doubles as Redis 7.0 writes them (%.17g): 0.1, -0, 1e+17, 3
    ("return {double=0.1}", 0),
    ("return {double=-0.0}", 0),
    ("return {double=1e17}", 0),
    ("return {double=3}", 0),
    ("redis.setresp(3); return true", 0),
    ("redis.setresp(3); return false", 0),
    ("redis.setresp(3); return {set={a=true}}", 0),
    ("return KEYS", 2, "k1", "k2", "a1"),
    ("return ARGV", 1, "k1", "a1", "a2"),
    ("return {#KEYS, #ARGV}", 0),
    ("return KEYS[1]", 1, "x"),
    ("return redis.call('set', KEYS[1], ARGV[1])", 1, "key", "val"),
    ("return redis.call('get', KEYS[1])", 1, "key"),
    ("return redis.call('get', 'nokey')", 0),
    ("return type(redis.call('get', 'nokey'))", 0),
    ("redis.setresp(3); return type(redis.call('get', 'nokey'))", 0),
    ("return redis.call('incr', 'counter')", 0),
    ("return redis.call('incrbyfloat', 'fl', 1.5)", 0),
    ("redis.call('rpush', 'list', 'a', 'b', 'c'); return redis.call('lrange', 'list', 0, -1)", 0),
    ("redis.call('hset', 'h', 'f', 'v'); return redis.call('hgetall', 'h')", 0),
    ("redis.setresp(3); return redis.call('hgetall', 'h')", 0),
    ("redis.setresp(3); local r = redis.call('hgetall', 'h'); return r.map.f", 0),
    ("return redis.call('ping')", 0),
    ("return redis.call('ping')['ok']", 0),
    ("local r = redis.call('ping'); return type(r)", 0),
    ("redis.call('set', 's', 'abc'); return redis.pcall('incr', 's')", 0),
    ("return redis.call('incr', 's')", 0),
    ("local r = redis.pcall('incr', 's'); return r['err']", 0),
    ("return pcall(redis.call, 'incr', 's')", 0),
    ("local ok, e = pcall(redis.call, 'incr', 's'); return e", 0),
    ("local ok, e = pcall(error, 'x'); return e", 0),
    ("local ok, e = pcall(error, {err='t'}); return e", 0),
    ("return redis.call('nosuch')", 0),
    ("return redis.pcall('nosuch')", 0),
    ("return redis.call('get')", 0),
    ("return redis.pcall('get')", 0),
    ("return redis.call('subscribe', 'a')", 0),
    ("return redis.call('multi')", 0),
    ("return redis.call('blpop', 'nolist', 0)", 0),
    ("return redis.call('eval', 'return 1', 0)", 0),
    ("return redis.call('config', 'get', 'maxmemory')", 0),
    ("return redis.call()", 0),
    ("return redis.pcall()", 0),
    ("return redis.call('get', {})", 0),
    ("return redis.call('get', nil)", 0),
    ("return redis.call('set', 'n', 0.1)", 0),
    ("return redis.call('get', 'n')", 0),
    ("return redis.call('set', 'n', 10)", 0),
    ("return redis.call('get', 'n')", 0),
    ("return redis.sha1hex('')", 0),
    ("return redis.sha1hex('abc')", 0),
    ("return redis.sha1hex(12)", 0),
    ("return redis.sha1hex(nil)", 0),
    ("return redis.sha1hex()", 0),
    ("return redis.setresp(4)", 0),
    ("return redis.setresp()", 0),
    ("return redis.log(1)", 0),
    ("return redis.log('x', 'y')", 0),
    ("return redis.log(9, 'y')", 0),
    ("redis.log(redis.LOG_DEBUG, 'hi'); return redis.LOG_WARNING", 0),
    ("return redis.replicate_commands()", 0),
    ("return redis.acl_check_cmd('get', 'k')", 0),
    ("return redis.acl_check_cmd('nosuch')", 0),
    ("return redis.set_repl(99)", 0),
    ("redis.set_repl(redis.REPL_ALL); return 1", 0),
    ("return x", 0),
    ("x = 1", 0),
    ("return os.execute('ls')", 0),
    ("return io", 0),
    ("return type(debug)", 0),
    ("return type(print)", 0),
    ("return type(loadfile)", 0),
    ("return type(dofile)", 0),
    ("return type(require)", 0),
    ("return type(loadstring)", 0),
    ("string.x = 1", 0),
    ("redis.x = 1", 0),
    ("rawset(_G, 'y', 1)", 0),
    ("setmetatable(_G, {})", 0),
    ("_G.y = 1", 0),
    ("return _G.nope", 0),
    ("local t = {} t.x = 1 return t.x", 0),
    ("error('boom')", 0),
    ("error({err='My Error'})", 0),
    ("error({err=12})", 0),
    ("error(12)", 0),
    ("error()", 0),
    ("local function f() error('deep') end f()", 0),
    ("\n\nerror('line three')", 0),
    ("syntax error here", 0),
    ("return +", 0),
    ("return tostring(0.1)", 0),
    ("return string.format('%d', 7)", 0),
    ("return string.rep('x', 3)", 0),
    ("return table.concat({'a','b'}, ',')", 0),
    ("return math.floor(3.7)", 0),
    ("return tonumber('10')", 0),
    ("return bit.tohex(-1)", 0),
    ("return bit.tohex(255, 2)", 0),
    ("return bit.tohex(255, -4)", 0),
    ("return bit.band(0xff, 0x0f)", 0),
    ("return bit.bor(1, 2, 4)", 0),
    ("return bit.bxor(5, 3)", 0),
    ("return bit.bnot(0)", 0),
    ("return bit.lshift(1, 31)", 0),
    ("return bit.rshift(-1, 28)", 0),
    ("return bit.arshift(-256, 4)", 0),
    ("return bit.rol(0x12345678, 8)", 0),
    ("return bit.ror(0x12345678, 8)", 0),
    ("return bit.bswap(0x12345678)", 0),
    ("return bit.tobit(0xffffffff)", 0),
    ("return bit.tobit(2^31)", 0),
    ("return bit.band('x')", 0),
    ("return bit.band('12', 4)", 0),
    ("return bit.band()", 0),
    ("return cjson.encode({1,2,{a='x/y'}})", 0),
    ("return cjson.encode({[1]=1,[3]=3})", 0),
    ("return cjson.encode({[1]=1,[30]=3})", 0),
    ("return cjson.encode({})", 0),
    ("return cjson.encode('a\"b\\\\c\\n\\1')", 0),
    ("return cjson.encode(1.5)", 0),
    ("return cjson.encode(123456789012)", 0),
    ("return cjson.encode(0.1)", 0),
    ("return cjson.encode(true)", 0),
    ("return cjson.encode(cjson.null)", 0),
    ("return cjson.encode({a={b={c=1}}})", 0),
    ("return cjson.encode({[true]=1})", 0),
    ("return cjson.encode(function() end)", 0),
    ("return cjson.encode(0/0)", 0),
    ("local t = {} t[1]=t return cjson.encode(t)", 0),
    ("return cjson.decode('[1,2,3]')", 0),
    ('return cjson.decode(\'{"a":[1,"x"]}\').a[2]', 0),
    ("return cjson.decode('[1,2')", 0),
    ("return cjson.decode('')", 0),
    ("return cjson.decode('nope')", 0),
    ("return cjson.decode('{\"a\" 1}')", 0),
    ("return cjson.decode('{1:2}')", 0),
    ("return cjson.decode('[1] x')", 0),
    ("return cjson.decode('\"\\\\u00e9\"')", 0),
    ("return cjson.decode('01')", 0),
    ("return cjson.decode('1.5e3')", 0),
    ("return cjson.decode('null') == cjson.null and 1 or 0", 0),
    ("return cjson.decode('[true,false,null,\"s\"]')[1] and 1 or 0", 0),
    ("return cjson.decode()", 0),
    ("return cjson.decode(1)", 0),
    ('return cjson.encode(cjson.decode(\'{"k":{"n":[1,2.5,-3]}}\'))', 0),
    ("return cmsgpack.pack({1,2,3})", 0),
    ("return cmsgpack.pack('abc', 1, -1, 1.5, true, false)", 0),
    ("return cmsgpack.pack({a=1})", 0),
    ("return cmsgpack.pack(2^40, -2^40, 300, -300, 70000)", 0),
    ("return cmsgpack.pack(0.1)", 0),
    ("return cmsgpack.pack(string.rep('x', 40))", 0),
    ("return cmsgpack.pack(string.rep('x', 300))", 0),
    ("return cmsgpack.pack()", 0),
    ("return cmsgpack.unpack(cmsgpack.pack({1,2,3}))", 0),
    ("return {cmsgpack.unpack(cmsgpack.pack(1, 'two', 3))}", 0),
    ("return cmsgpack.unpack(cmsgpack.pack({a='b'})).a", 0),
    ("return cmsgpack.unpack('\\145')", 0),
    ("return cmsgpack.unpack('\\193')", 0),
    ("return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 0)}", 0),
    ("return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}", 0),
    ("return struct.pack('>i', 5)", 0),
    ("return struct.pack('<h', -2)", 0),
    ("return struct.pack('BBB', 1, 2, 3)", 0),
    ("return struct.pack('>I2', 65535)", 0),
    ("return struct.pack('s', 'ab')", 0),
    ("return struct.pack('c3', 'abcdef')", 0),
    ("return struct.pack('!4 b i', 1, 2)", 0),
    ("return struct.pack('>d', 1.5)", 0),
    ("return {struct.unpack('>i', struct.pack('>i', -5))}", 0),
    ("return {struct.unpack('<hB', struct.pack('<hB', -2, 7))}", 0),
    ("return {struct.unpack('s', 'ab\\0cd')}", 0),
    ("return {struct.unpack('>I4', 'ab')}", 0),
    ("return {struct.unpack('bc0', '\\3abc')}", 0),
    ("return struct.size('>iih')", 0),
    ("return struct.pack('y', 1)", 0),
    ("return struct.size('s')", 0),
    ("return {struct.unpack('>d', struct.pack('>d', 2.25))}", 0),
    ("return loadstring('\\27Lua')", 0),
    ("return getfenv(0).nope", 0),
    ("return type(getmetatable(_G))", 0),
    ("local t = setmetatable({}, {__index=function() return 5 end}); return t.x", 0),
    ("return coroutine.wrap(function() return 7 end)()", 0),
    ("return select('#', 1, 2, 3)", 0),
    ("return unpack({1, 2})", 0),
    ("return redis.call('select', 1)", 0),
    (
        "redis.call('select', 1) redis.call('set', 'dbkey', 'x') return redis.call('get','dbkey')",
        0,
    ),
    ("return redis.call('get', 'dbkey')", 0),
    ("return redis.call('time')[3]", 0),
    ("return #redis.call('time')", 0),
    ("return redis.call('publish', 'ch', 'msg')", 0),
    ("return redis.call('lpop', 'nolist')", 0),
    ("return redis.call('exists', 'key', 'nokey')", 0),
    ("return redis.call('zadd', 'z', 1.5, 'a')", 0),
    ("return redis.call('zscore', 'z', 'a')", 0),
    ("redis.setresp(3); return redis.call('zscore', 'z', 'a')", 0),
    ("redis.setresp(3); return redis.call('zscore', 'z', 'a').double", 0),
    ("return redis.call('zrange', 'z', 0, -1, 'withscores')", 0),
    ("return redis.call('smembers', 'noset')", 0),
    ("redis.setresp(3); return redis.call('smembers', 'noset')", 0),
    ("redis.call('sadd', 'st', 'm'); redis.setresp(3); return redis.call('smembers', 'st')", 0),
    ("redis.setresp(3); return redis.call('smembers', 'st').set.m", 0),
    ("redis.setresp(3); return redis.call('lpop', 'nolist')", 0),
    ("return redis.call('del', 'key')", 0),
]
# other commands, in order: EVAL's neighbours, errors, MULTI
RAW: list[tuple[str, ...]] = [
    ("eval", "return 1", "-1"),
    ("eval", "return 1", "3", "a"),
    ("eval", "return 1", "x"),
    ("eval", "return 1"),
    ("evalsha", "ffffffffffffffffffffffffffffffffffffffff", "0"),
    ("evalsha", "abc", "0"),
    ("script", "load", "return 'loaded'"),
    ("evalsha", "f0c7a1d5bfe4bc6c69a8dda40d6d3c0e7d2d2d2e", "0"),
    ("script", "exists", "ffffffffffffffffffffffffffffffffffffffff"),
    ("script", "load", "bad bad"),
    ("script", "help"),
    ("script",),
    ("script", "load"),
    ("script", "foo"),
    ("script", "flush", "x"),
    ("script", "kill"),
    ("eval_ro", "return redis.call('set','a',1)", "0"),
    ("eval_ro", "return redis.call('get','a')", "0"),
    ("eval", "#!lua flags=no-writes\nreturn redis.call('set','a',1)", "0"),
    ("eval", "#!lua\nreturn redis.call('set','a',1)", "0"),
    ("eval_ro", "#!lua\nreturn 1", "0"),
    ("eval_ro", "#!lua flags=no-writes\nreturn 2", "0"),
    ("eval", "#!foo\nreturn 1", "0"),
    ("eval", "#!lua bar\nreturn 1", "0"),
    ("eval", "#!lua flags=bar\nreturn 1", "0"),
    ("eval", "#!lua\nerror('x')", "0"),
    ("multi",),
    ("eval", "return 1", "0"),
    ("eval", "error('in multi')", "0"),
    ("incr", "counter"),
    ("exec",),
    ("multi",),
    ("evalsha", "ffffffffffffffffffffffffffffffffffffffff", "0"),
    ("exec",),
    ("script", "flush"),
    ("script", "exists", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
]


# Where netsvc follows Redis 7.2 or cannot say it Redis's way (see _scripting.py).
KNOWN_DIFFERENCES = {
    # RESP3 big numbers: _reply.py has no big-number type; sent as a bulk string
    (3, "return {big_number='123'}"),
}


def _raw_replies(port: int, protocol: int) -> list[bytes]:
    """Every case's raw reply, from a fresh keyspace and script cache."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    replies: list[bytes] = []
    pending = b""

    def call(*args: str | int) -> bytes:
        nonlocal pending
        sock.sendall(encode_command(*args))
        reader = hiredis.Reader(notEnoughData=Ellipsis)
        data = pending
        reader.feed(data)
        while reader.gets() is Ellipsis:
            chunk = sock.recv(65536)
            assert chunk, "server closed the connection"
            data += chunk
            reader.feed(chunk)
        return data

    try:
        call("flushall")
        call("script", "flush")
        if protocol == 3:
            call("hello", "3")
        for case in CASES:
            replies.append(call("eval", *case))
        for command in RAW:
            replies.append(call(*command))
    finally:
        sock.close()
    return replies


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_same_bytes_as_redis(protocol: int, netsvc_port: int, redis_port: int) -> None:
    expected = _raw_replies(redis_port, protocol)
    got = _raw_replies(netsvc_port, protocol)
    names = [case[0] for case in CASES] + [" ".join(command) for command in RAW]
    differ = [
        f"{name!r}:\n  redis : {want!r}\n  netsvc: {have!r}"
        for name, want, have in zip(names, expected, got, strict=True)
        if want != have and (protocol, name) not in KNOWN_DIFFERENCES
    ]
    assert not differ, "\n".join(differ)


# -- atomicity, BUSY, SCRIPT KILL -------------------------------------------------

SPIN = """
local deadline = tonumber(ARGV[1])
local function now() local t = redis.call('time') return t[1] + t[2] / 1e6 end
local stop = now() + deadline
while now() < stop do end
"""


@pytest.fixture
def client(netsvc_port: int) -> Iterator[RespClient]:
    with RespClient(netsvc_port, timeout=20) as c:
        c.call("flushall")
        yield c
        c.call("config", "set", "busy-reply-threshold", "5000")


def _in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(target()), daemon=True)
    thread.start()
    return thread, result


def test_a_script_is_atomic(client: RespClient, netsvc_port: int) -> None:
    # the script writes "during", spins, then writes "after": another client
    # sees the value from before the script or after it, never "during"
    script = (
        "redis.call('set', KEYS[1], 'during')"
        + SPIN
        + "redis.call('set', KEYS[1], 'after'); return 'done'"
    )
    client.call("set", "k", "before")
    with RespClient(netsvc_port, timeout=20) as other:
        thread, result = _in_thread(lambda: client.call("eval", script, 1, "k", "0.3"))
        deadline = time.monotonic() + 10
        seen = other.call("get", "k")
        while seen == b"before" and time.monotonic() < deadline:
            seen = other.call("get", "k")
        assert seen == b"after"
        assert other.call("incr", "n") == 1
        thread.join(10)
    assert result == [b"done"]


BUSY = error(
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
)


def test_busy_then_script_kill(client: RespClient, netsvc_port: int) -> None:
    client.call("config", "set", "busy-reply-threshold", "100")
    thread, result = _in_thread(lambda: client.call("eval", "while true do end", 0))
    with RespClient(netsvc_port, timeout=20) as other:
        try:
            deadline = time.monotonic() + 10
            reply = other.call("ping")
            while reply == b"PONG" and time.monotonic() < deadline:  # not started yet
                time.sleep(0.02)
                reply = other.call("ping")
            assert reply == BUSY
            assert other.call("multi") == b"OK"  # allow_busy commands run
            assert other.call("get", "x") == BUSY
            # EXEC is not allow_busy: refused, as Redis, as its transaction's abort
            assert other.call("exec") == error(
                "EXECABORT Transaction discarded because of: BUSY Redis is busy running a "
                "script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
            )
            assert other.call("discard") == error("ERR DISCARD without MULTI")
        finally:
            assert other.call("script", "kill") == b"OK"
        thread.join(10)
        assert other.call("ping") == b"PONG"
        assert other.call("script", "kill") == error("NOTBUSY No scripts in execution right now.")
    assert len(result) == 1
    assert result[0].message.startswith("ERR Script killed by user with SCRIPT KILL... script: ")
    assert result[0].message.endswith(", on @user_script:1.")


def test_a_script_that_wrote_is_unkillable(client: RespClient, netsvc_port: int) -> None:
    client.call("config", "set", "busy-reply-threshold", "100")
    script = "redis.call('set', 'w', '1')" + SPIN + "return 'finished'"
    thread, result = _in_thread(lambda: client.call("eval", script, 0, "1.0"))
    with RespClient(netsvc_port, timeout=20) as other:
        deadline = time.monotonic() + 10
        reply = other.call("script", "kill")
        while reply == error("NOTBUSY No scripts in execution right now.") and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
            reply = other.call("script", "kill")
        assert reply == error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. "
            "You can either wait the script termination or kill the server in a hard way using "
            "the SHUTDOWN NOSAVE command."
        )
        thread.join(10)
        assert result == [b"finished"]
        assert other.call("get", "w") == b"1"


# -- the sandbox and the memory cap -----------------------------------------------


def test_sandbox(client: RespClient) -> None:
    for body, name in [
        ("return os.execute('ls')", "os"),
        ("return io.open('/etc/passwd')", "io"),
        ("return require('os')", "require"),
        ("return dofile('/x')", "dofile"),
        ("return debug.getinfo(1)", "debug"),
        ("return python", "python"),
    ]:
        reply = client.call("eval", body, 0)
        assert f"nonexistent global variable '{name}'" in reply.message
    assert "readonly table" in client.call("eval", "leak = 1", 0).message
    assert "readonly table" in client.call("eval", "string.upper = nil", 0).message
    assert "readonly table" in client.call("eval", "rawset(_G, 'leak', 1)", 0).message
    assert "nonexistent" in client.call("eval", "return leak", 0).message
    assert client.call("eval", "return loadstring(string.dump(function() end))", 0) is None


def test_memory_limit(client: RespClient) -> None:
    client.call("config", "set", "lua-memory-limit", str(8 * 1024 * 1024))
    try:
        hog = "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 64) .. i end return #t"
        reply = client.call("eval", hog, 0)
        assert "not enough memory" in reply.message
        assert client.call("eval", "return 7", 0) == 7  # the interpreter lives on
        caught = "return {pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end)}"
        assert client.call("eval", caught, 0) == [
            None,
            b"ERR Script used more memory than lua-memory-limit allows: not enough memory",
        ]
    finally:
        client.call("config", "set", "lua-memory-limit", str(64 * 1024 * 1024))
    assert client.call("config", "get", "lua-memory-limit") == [
        b"lua-memory-limit",
        str(64 * 1024 * 1024).encode(),
    ]
    assert client.call("config", "get", "lua-time-limit") == [b"lua-time-limit", b"5000"]


# -- redis-py -------------------------------------------------------------------


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(request: pytest.FixtureRequest, netsvc_port: int) -> Iterator[redis.Redis]:
    c = redis.Redis(port=netsvc_port, protocol=request.param, socket_timeout=10)
    c.flushall()
    yield c
    c.close()


def test_redis_py_lock(r: redis.Redis) -> None:
    lock = r.lock("resource", timeout=10)
    assert lock.acquire(blocking=False)
    rival = r.lock("resource", timeout=10)
    assert not rival.acquire(blocking=False)  # contention
    assert lock.extend(5)  # EVALSHA: extend
    assert 10 < r.pttl("resource") / 1000 <= 15
    assert lock.reacquire()
    lock.release()  # EVALSHA: release
    assert r.get("resource") is None
    assert rival.acquire(blocking=True, blocking_timeout=2)
    r.set("resource", "stolen")  # the token no longer matches: the script says so
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        rival.release()
    lock = r.lock("other", timeout=10)
    assert lock.acquire(blocking=False)
    r.set("other", "stolen")
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        lock.extend(1)


def test_redis_py_script_reloads_after_noscript(r: redis.Redis) -> None:
    incr_by = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert incr_by(keys=["n"], args=[2]) == 2
    r.script_flush()
    assert incr_by(keys=["n"], args=[3]) == 5  # NOSCRIPT, then EVAL... or SCRIPT LOAD
    assert r.script_exists(incr_by.sha) == [True]
    assert r.eval("return ARGV[1] .. KEYS[1]", 1, "k", "v") == b"vk"
    assert r.evalsha_ro(r.script_load("return redis.call('get', KEYS[1])"), 1, "n") == b"5"


# -- what the security review found --------------------------------------------------


def test_no_bytecode_through_any_load(client: RespClient) -> None:
    # Lua 5.1's bytecode is not verified: loading it is the way to native code
    script = """
    local dump = string.dump(function() return 1 end)
    local pieces = {dump}
    local a, e1 = load(dump)
    local b, e2 = loadstring(dump)
    local c, e3 = load(function() return table.remove(pieces) end)
    return {tostring(a), e1, tostring(b), e2, tostring(c), e3}
    """
    refused = b"bytecode is not supported"
    assert client.call("eval", script, 0) == [b"nil", refused, b"nil", refused, b"nil", refused]


def test_python_objects_metatable_is_out_of_reach(client: RespClient) -> None:
    # changing redis.call's __call would let a script see (and rewrite) every
    # later script's commands, or make itself unkillable
    attempts = [
        "getmetatable(redis.call).__call = function() return 1 end",
        "getmetatable(redis.call).__gc(redis.call)",
        "table.insert(redis, 'planted')",
        "table.insert(_G, 'planted')",
    ]
    for attempt in attempts:
        reply = client.call("eval", attempt, 0)
        assert isinstance(reply, type(error(""))), (attempt, reply)
    assert client.call("eval", "return redis.call('ping')", 0) == b"PONG"
    assert client.call("eval", "return redis[1] == nil and rawget(_G, 1) == nil", 0) == 1


def test_a_chunk_named_like_ours_is_still_killed(client: RespClient, netsvc_port: int) -> None:
    # the kill hook skips the engine's own frames: a script may not pass for them
    client.call("config", "set", "busy-reply-threshold", "100")
    script = "return loadstring('while true do end', '=netsvc')()"
    thread, result = _in_thread(lambda: client.call("eval", script, 0))
    with RespClient(netsvc_port, timeout=20) as other:
        deadline = time.monotonic() + 10
        reply = other.call("script", "kill")
        while reply != b"OK" and time.monotonic() < deadline:
            time.sleep(0.02)
            reply = other.call("script", "kill")
        assert reply == b"OK"
        thread.join(10)
        assert not thread.is_alive()
        assert other.call("ping") == b"PONG"
    assert result[0].message.startswith("ERR Script killed by user with SCRIPT KILL...")


def test_a_reply_too_big_for_the_memory_cap_is_an_error_not_a_hang(client: RespClient) -> None:
    client.call("config", "set", "lua-memory-limit", str(1024 * 1024))
    try:
        client.call("set", "big", b"x" * (8 * 1024 * 1024))
        reply = client.call("eval", "return #redis.call('GET', 'big')", 0)
        assert isinstance(reply, type(error(""))) and b"not enough memory" in str(reply).encode()
        encoded = (
            "local s = string.rep('x', 300000) local t = {} "
            "for i = 1, 20 do t[i] = s end return #cjson.encode(t)"  # 6 MB out of a small table
        )
        assert isinstance(client.call("eval", encoded, 0), type(error("")))
        assert client.call("ping") == b"PONG"  # the server goes on
    finally:
        client.call("config", "set", "lua-memory-limit", str(64 * 1024 * 1024))
        client.call("del", "big")


def test_a_stuck_script_does_not_keep_the_server_from_stopping() -> None:
    # A script that wrote, then loops: SCRIPT KILL refuses it, and the
    # server's stop cancels what its grace period left running, a script
    # included: it is killed, as redis-server's SHUTDOWN NOSAVE kills a busy
    # script. (It ran to its end before, shielded: the server never stopped.)
    args = ["--protocol", "resp", "--port", "0", "--graceful-timeout", "0.5"]
    with ServeProcess(args) as server:
        port = host_port(server.urls[0])[1]
        with RespClient(port, timeout=20) as admin, RespClient(port, timeout=20) as looper:
            admin.call("CONFIG", "SET", "busy-reply-threshold", "100")
            looper.send_raw(
                encode_command("EVAL", "redis.call('SET', 'k', 'v') while true do end", "0")
            )
            deadline = time.monotonic() + 20
            while admin.call("PING") == b"PONG":  # until BUSY: the script runs
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert admin.call("SCRIPT", "KILL") == error(
                "UNKILLABLE Sorry the script already executed write commands against the "
                "dataset. You can either wait the script termination or kill the server in a "
                "hard way using the SHUTDOWN NOSAVE command."
            )
            server.signal(signal.SIGTERM)
            assert server.wait(20) == 0
        server.wait_for_log("Lua script .* killed: the server is shutting down")

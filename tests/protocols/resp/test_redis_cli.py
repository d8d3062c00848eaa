# The real redis-cli and redis-benchmark against netsvc serve --protocol resp.
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.serveprocess import ServeProcess, host_port


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: ./dev test installs it (Debian package redis-tools)")
    return path


def cli(port: int, *args: str, stdin: str | bytes | None = None) -> str:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(
        [tool("redis-cli"), "-p", str(port), *args],
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


@pytest.fixture
def port(netsvc_port: int) -> Iterator[int]:
    cli(netsvc_port, "flushall")
    yield netsvc_port


def test_scripted_session(port: int) -> None:
    script = "SET greeting hello\nGET greeting\nINCR visits\nINCR visits\n"
    script += "LPUSH l a b\nLRANGE l 0 -1\n"
    assert cli(port, stdin=script).split() == ["OK", "hello", "1", "2", "2", "b", "a"]


def test_inline_quoting_reaches_the_server_intact(port: int) -> None:
    cli(port, "set", "quoted", "two words\nand a line")
    assert cli(port, "--no-raw", "get", "quoted") == '"two words\\nand a line"\n'


def test_errors_as_redis_words_them(port: int) -> None:
    out = cli(port, "nosuch", "arg")
    assert out.strip() == "ERR unknown command 'nosuch', with args beginning with: 'arg'"


def test_pipe_mass_insertion(port: int) -> None:
    count = 20_000
    data = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
        % (len(k := b"key:%d" % i), k, len(v := b"value-%d" % i), v)
        for i in range(count)
    )
    out = cli(port, "--pipe", stdin=data)
    assert f"errors: 0, replies: {count}" in out
    assert cli(port, "dbsize").strip() == str(count)


def test_resp3_mode(port: int) -> None:
    cli(port, "hset", "h", "field", "value")
    out = cli(port, "-3", "--no-raw", "hgetall", "h")
    assert out == '1# "field" => "value"\n'
    hello = cli(port, "-3", "--no-raw", "hello", "3")
    assert '"proto" => (integer) 3' in hello and '"server" => "redis"' in hello


def test_users_app_from_the_cli() -> None:
    args = ["--protocol", "resp", "--port", "0", "--app", "tests.protocols.resp.user_app:app"]
    with ServeProcess(args) as server:
        port = host_port(server.urls[0])[1]
        assert cli(port, "greet", "world").strip() == "hello, world"
        assert cli(port, "echo", "quiet").strip() == "QUIET"
        assert cli(port, "set", "still", "there").strip() == "OK"
        assert "greet" in cli(port, "command", "list").split()


def test_redis_benchmark_runs_clean(port: int) -> None:
    tests = "ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,lrange,mset"
    result = subprocess.run(
        [tool("redis-benchmark"), "-p", str(port), "-t", tests, "-n", "2000", "-c", "10", "-q"],
        capture_output=True,
        timeout=300,
    )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    assert "error" not in out.lower(), out
    for name in ("PING_INLINE", "SET", "GET", "INCR", "LPUSH", "SPOP", "LRANGE_600", "MSET"):
        assert name in out, out

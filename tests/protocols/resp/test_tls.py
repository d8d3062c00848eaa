# The real redis-cli over TLS (rediss://, a certificate from a trustme CA)
# against netsvc serve: commands, a scripted session and --pipe on one
# connection; and what shows it is TLS: redis-cli checks the certificate, and
# a plain redis-cli is not served on the TLS port. (redis-py and httpx over
# TLS: tests/netsvc/test_cli_options.py and test_behaviour.py.)
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Protocol

import pytest
import trustme

from tests.protocols.resp.test_redis_cli import tool
from tests.serveprocess import Certificates, ServeProcess, host_port


@pytest.fixture(scope="module")
def tls_server(
    tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Certificates]]:
    certificates = Certificates.issue(tls_ca, tmp_path_factory.mktemp("tls"))
    with ServeProcess(["--listen", "rediss://127.0.0.1:0", *certificates.args]) as server:
        (url,) = server.urls
        assert url.startswith("rediss://127.0.0.1:")
        yield host_port(url)[1], certificates


def redis_cli(
    port: int, *args: str, stdin: bytes | None = None, tls: list[str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """redis-cli -h 127.0.0.1 -p PORT, with the `tls` options, then ARGS."""
    return subprocess.run(
        [tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *(tls or []), *args],
        input=stdin,
        capture_output=True,
        timeout=30,  # seconds of work at most; a TLS client on a plain port waits forever
    )


class Cli(Protocol):
    def __call__(self, *args: str, stdin: str | bytes | None = None) -> str: ...


@pytest.fixture
def cli(tls_server: tuple[int, Certificates]) -> Iterator[Cli]:
    """redis-cli over TLS, trusting the test CA: its output, once it succeeded."""
    port, certificates = tls_server
    options = ["--tls", "--cacert", str(certificates.cafile)]

    def run(*args: str, stdin: str | bytes | None = None) -> str:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        result = redis_cli(port, *args, stdin=data, tls=options)
        out = result.stdout.decode() + result.stderr.decode()
        assert result.returncode == 0 and "Could not connect" not in out, out
        return result.stdout.decode()

    run("flushall")
    yield run


def test_redis_cli_set_then_get_over_tls(cli: Cli) -> None:
    assert cli("set", "greeting", "over tls").strip() == "OK"
    assert cli("get", "greeting").strip() == "over tls"
    assert cli("--no-raw", "incrby", "visits", "2") == "(integer) 2\n"


def test_redis_cli_scripted_session_over_tls(cli: Cli) -> None:
    script = "SET k v\nGET k\nRPUSH l a b c\nLRANGE l 0 -1\nDEL k\nEXISTS k\n"
    assert cli(stdin=script).split() == ["OK", "v", "3", "a", "b", "c", "1", "0"]


def test_redis_cli_pipe_over_tls(cli: Cli) -> None:
    count = 5000
    data = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
        % (len(k := b"key:%d" % i), k, len(v := b"value-%d" % i), v)
        for i in range(count)
    )
    out = cli("--pipe", stdin=data)
    assert f"errors: 0, replies: {count}" in out, out
    assert cli("dbsize").strip() == str(count)
    assert cli("get", f"key:{count - 1}").strip() == f"value-{count - 1}"


def test_redis_cli_checks_the_servers_certificate(tls_server: tuple[int, Certificates]) -> None:
    port, _ = tls_server
    result = redis_cli(port, "ping", tls=["--tls"])  # the system's CAs: not the test CA
    out = result.stdout.decode() + result.stderr.decode()
    assert "certificate verify failed" in out, out
    assert "PONG" not in out


def test_a_plain_redis_cli_is_not_served_on_the_tls_port(
    tls_server: tuple[int, Certificates],
) -> None:
    port, _ = tls_server
    result = redis_cli(port, "ping")
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode != 0 and "PONG" not in out, out

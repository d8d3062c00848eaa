# What the RESP service does beyond single replies: protocol errors closing
# the connection (compared byte for byte with redis-server), AUTH and its
# lower limits, TLS, the active expiry sweep, SCAN's guarantee, CLIENT KILL,
# blocked clients served in order, and the RESP2 subscribed state.
from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trustme

from tests.protocols.resp.respclient import RespClient, error
from tests.serveprocess import ServeProcess, host_port

MALFORMED = [
    b"*1\r\n$-5\r\n",
    b"*1\r\n$abc\r\n",
    b"*abc\r\n",
    b"*2\r\n$3\r\nGET\r\n:1\r\n",
    b"*1\r\n*1\r\n$1\r\na\r\n",
    b'SET "unbalanced\r\n',
    b"SET 'a'b\r\n",
    b"*1\r\n$600000000\r\n",
]


def raw_exchange(port: int, data: bytes) -> bytes:
    """Everything the server sends back for `data`, until it closes (or 2s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            received += b"<still open>"
        return received


@pytest.mark.parametrize("data", MALFORMED, ids=[repr(d)[:30] for d in MALFORMED])
def test_protocol_errors_match_redis_and_close(
    data: bytes, netsvc_port: int, redis_port: int
) -> None:
    theirs = raw_exchange(redis_port, data)
    ours = raw_exchange(netsvc_port, data)
    assert ours == theirs
    assert ours.startswith(b"-ERR Protocol error") and not ours.endswith(b"<still open>")


def test_pipelined_inline_and_multibulk_in_one_write(netsvc_port: int) -> None:
    with RespClient(netsvc_port) as client:
        client.send_raw(
            b'PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\n\r\nECHO "a b"\r\n'
        )
        assert [client.reply() for _ in range(4)] == [b"PONG", b"OK", b"v", b"a b"]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, trustme.CA]]:
    """A server with a password, plain and TLS listeners."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    args = ["--listen", "redis://127.0.0.1:0", "--listen", "rediss://127.0.0.1:0"]
    args += ["--certfile", str(certfile), "--keyfile", str(keyfile)]
    with ServeProcess(args, env={"NETSVC_RESP_REQUIREPASS": "s3cret"}, listeners=2) as server:
        plain, tls = (host_port(url)[1] for url in server.urls)
        assert server.urls[1].startswith("rediss://")
        yield plain, tls, ca


def test_auth_required(secured: tuple[int, int, trustme.CA]) -> None:
    plain, _, _ = secured
    with RespClient(plain) as client:
        assert client.call("get", "k") == error("NOAUTH Authentication required.")
        assert client.call("ping") == error("NOAUTH Authentication required.")
        assert client.call("auth", "wrong") == error(
            "WRONGPASS invalid username-password pair or user is disabled."
        )
        assert client.call("auth", "default", "s3cret") == b"OK"
        assert client.call("ping") == b"PONG"
    with RespClient(plain) as client:
        hello = client.call("hello", "3", "auth", "default", "s3cret", "setname", "app")
        assert hello[b"proto"] == 3 and hello[b"server"] == b"redis"
        assert client.call("client", "getname") == b"app"
    r = redis.Redis(port=plain, password="s3cret", protocol=3)
    assert r.ping() is True
    r.close()


def test_before_auth_limits_are_lower(secured: tuple[int, int, trustme.CA]) -> None:
    plain, _, _ = secured
    eleven = b"*11\r\n" + b"$1\r\na\r\n" * 11
    assert (
        raw_exchange(plain, eleven) == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    )
    big = b"*2\r\n$4\r\nAUTH\r\n$20000\r\n"
    assert raw_exchange(plain, big) == b"-ERR Protocol error: unauthenticated bulk length\r\n"


def test_tls_listener_with_redis_py(secured: tuple[int, int, trustme.CA], tmp_path: Path) -> None:
    _, tls, ca = secured
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    r = redis.Redis(
        host="127.0.0.1", port=tls, password="s3cret", ssl=True, ssl_ca_certs=str(cafile)
    )
    assert r.set("over", "tls") is True
    assert r.get("over") == b"tls"
    r.close()
    with pytest.raises(ssl.SSLError):  # a client that does not trust the certificate
        context = ssl.create_default_context()
        with socket.create_connection(("127.0.0.1", tls), timeout=5) as raw:
            context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_active_expiry_removes_keys_nobody_reads(netsvc_port: int) -> None:
    r = redis.Redis(port=netsvc_port)
    r.select(3)
    r.flushdb()
    with r.pipeline(transaction=False) as pipe:
        for i in range(500):
            pipe.set(f"short:{i}", "x", px=50)
        pipe.set("long", "x", ex=100)
        pipe.execute()
    deadline = time.monotonic() + 5
    while r.dbsize() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.dbsize() == 1  # DBSIZE counts expired keys until they are removed
    r.close()


def test_keepttl_on_an_expired_key_keeps_no_ttl(netsvc_port: int) -> None:
    r = redis.Redis(port=netsvc_port)
    r.select(4)
    r.set("k", "old", px=5)
    time.sleep(0.05)  # expired, not yet swept (or swept: the same either way)
    assert r.set("k", "new", keepttl=True)
    assert r.get("k") == b"new" and r.ttl("k") == -1
    r.close()


def test_scan_returns_every_lasting_key_once_while_keys_change(netsvc_port: int) -> None:
    r = redis.Redis(port=netsvc_port)
    r.select(4)
    r.flushdb()
    lasting = {f"keep:{i}".encode() for i in range(300)}
    r.mset({key: 1 for key in lasting} | {f"gone:{i}": 1 for i in range(300)})
    seen: list[bytes] = []
    cursor, rounds = 0, 0
    while True:
        cursor, keys = r.scan(cursor, count=25)
        seen += keys
        r.delete(f"gone:{rounds}", f"gone:{rounds + 150}")  # churn during the iteration
        r.set(f"new:{rounds}", 1)
        rounds += 1
        if cursor == 0:
            break
    kept = [key for key in seen if key.startswith(b"keep:")]
    assert sorted(kept) == sorted(lasting)  # each exactly once
    assert rounds > 10
    r.close()


def test_client_list_and_kill(netsvc_port: int) -> None:
    victim = redis.Redis(port=netsvc_port, client_name="victim")
    victim.ping()
    admin = redis.Redis(port=netsvc_port)
    listing = admin.client_list()
    (entry,) = [c for c in listing if c["name"] == "victim"]
    assert int(entry["id"]) > 0 and entry["cmd"] in ("ping", "client|setname", "client")
    assert admin.client_kill_filter(_id=entry["id"]) == 1
    assert all(c["name"] != "victim" for c in admin.client_list())
    victim.close()
    admin.close()


def test_blocked_clients_are_served_in_arrival_order(netsvc_port: int) -> None:
    results: dict[str, object] = {}

    def wait(name: str) -> None:
        client = redis.Redis(port=netsvc_port, socket_timeout=10)
        results[name] = client.blpop(["jobs"], timeout=5)
        client.close()

    first = threading.Thread(target=wait, args=("first",))
    first.start()
    time.sleep(0.2)
    second = threading.Thread(target=wait, args=("second",))
    second.start()
    time.sleep(0.2)
    pusher = redis.Redis(port=netsvc_port)
    assert pusher.rpush("jobs", "a", "b") == 2  # the reply counts both; the waiters get them
    first.join(5)
    second.join(5)
    assert results == {"first": (b"jobs", b"a"), "second": (b"jobs", b"b")}
    assert pusher.llen("jobs") == 0
    pusher.close()


def test_commands_sent_while_blocked_run_after_the_blocking_one(netsvc_port: int) -> None:
    with socket.create_connection(("127.0.0.1", netsvc_port), timeout=5) as sock:
        sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nqueue\r\n$1\r\n0\r\n")
        time.sleep(0.2)
        sock.sendall(b"*2\r\n$4\r\nECHO\r\n$5\r\nafter\r\n")  # read while BLPOP waits
        time.sleep(0.2)
        pusher = redis.Redis(port=netsvc_port)
        pusher.lpush("queue", "job")
        pusher.close()
        expected = b"*2\r\n$5\r\nqueue\r\n$3\r\njob\r\n$5\r\nafter\r\n"
        received = b""
        while len(received) < len(expected):  # both replies, with nothing more sent
            chunk = sock.recv(65536)
            assert chunk, f"closed after {received!r}"
            received += chunk
        assert received == expected


def test_a_blocked_client_that_hangs_up_takes_nothing(netsvc_port: int) -> None:
    with RespClient(netsvc_port) as quitter:
        quitter.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$4\r\nmail\r\n$1\r\n0\r\n")
        time.sleep(0.2)
    time.sleep(0.2)  # the server notices the hang-up
    with RespClient(netsvc_port) as client:
        assert client.call("rpush", "mail", "letter") == 1
        assert client.call("lpop", "mail") == b"letter"


def test_resp2_subscribed_state(netsvc_port: int) -> None:
    with RespClient(netsvc_port) as client:
        assert client.call("subscribe", "ch") == [b"subscribe", b"ch", 1]
        assert client.call("get", "k") == error(
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
            "are allowed in this context"
        )
        assert client.call("ping") == [b"pong", b""]
        assert client.call("unsubscribe") == [b"unsubscribe", b"ch", 0]
        assert client.call("ping") == b"PONG"


def test_reset_returns_the_connection_to_its_first_state(netsvc_port: int) -> None:
    with RespClient(netsvc_port) as client:
        client.call("select", "2")
        client.call("multi")
        assert client.call("reset") == b"RESET"
        assert client.call("client", "info").split(b" db=")[1].startswith(b"0 ")
        assert client.call("exec") == error("ERR EXEC without MULTI")

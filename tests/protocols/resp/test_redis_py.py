# redis-py against netsvc's RESP plugin, in RESP2 and RESP3: what an app that
# uses netsvc as its backing service does.
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(request: pytest.FixtureRequest, netsvc_port: int) -> Iterator[redis.Redis]:
    client = redis.Redis(port=netsvc_port, protocol=request.param, socket_timeout=10)
    client.flushall()
    yield client
    client.close()


def test_handshake_and_strings(r: redis.Redis) -> None:
    assert r.ping() is True
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == b"hello"
    assert r.set("greeting", "x", nx=True) is None
    assert r.incr("n") == 1
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.mget("greeting", "nope") == [b"hello", None]
    assert r.set("t", "v", ex=100) and 99 <= r.ttl("t") <= 100
    assert r.client_id() > 0
    r.client_setname("tester")
    assert r.client_getname() == "tester" or r.client_getname() == b"tester"


def test_hashes_sets_lists(r: redis.Redis) -> None:
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.hgetall("h") == {b"a": b"1", b"b": b"2"}
    r.sadd("s", "x", "y")
    assert r.smembers("s") == {b"x", b"y"}
    assert r.sismember("s", "x") in (1, True)
    r.rpush("l", "a", "b", "c")
    assert r.lrange("l", 0, -1) == [b"a", b"b", b"c"]
    assert r.lpop("l", 2) == [b"a", b"b"]


def test_wrong_type_and_unknown_command_errors(r: redis.Redis) -> None:
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.lpush("s", "y")
    with pytest.raises(redis.ResponseError, match="unknown command 'NOSUCH'"):
        r.execute_command("NOSUCH", "a")


def test_pipeline(r: redis.Redis) -> None:
    with r.pipeline(transaction=False) as pipe:
        for i in range(100):
            pipe.set(f"k{i}", i)
        pipe.get("k42")
        results = pipe.execute()
    assert results[-1] == b"42"
    assert r.dbsize() == 100


def test_transaction_with_watch(r: redis.Redis, netsvc_port: int) -> None:
    r.set("balance", 10)
    with r.pipeline() as pipe:
        pipe.watch("balance")
        balance = int(pipe.get("balance"))
        pipe.multi()
        pipe.set("balance", balance + 5)
        assert pipe.execute() == [True]
    assert r.get("balance") == b"15"
    other = redis.Redis(port=netsvc_port)
    with r.pipeline() as pipe:
        pipe.watch("balance")
        other.set("balance", 0)  # someone else changes it between WATCH and EXEC
        pipe.multi()
        pipe.set("balance", 100)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("balance") == b"0"
    other.close()


def test_watch_sees_expiry(r: redis.Redis) -> None:
    r.set("lease", "x", px=100)
    with r.pipeline() as pipe:
        pipe.watch("lease")
        time.sleep(0.2)
        pipe.multi()
        pipe.set("lease", "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()


def test_pubsub_channels_patterns_and_health_check(r: redis.Redis, netsvc_port: int) -> None:
    protocol = r.get_connection_kwargs()["protocol"]
    subscriber = redis.Redis(port=netsvc_port, protocol=protocol, socket_timeout=10)
    pubsub = subscriber.pubsub()
    try:
        pubsub.subscribe("news")
        pubsub.psubscribe("alerts.*")
        confirmations = [_next_message(pubsub) for _ in range(2)]
        assert [(m["type"], m["channel"], m["data"]) for m in confirmations] == [
            ("subscribe", b"news", 1),
            ("psubscribe", b"alerts.*", 2),
        ]
        assert r.pubsub_numsub("news") == [(b"news", 1)]
        assert r.pubsub_numpat() == 1
        assert r.publish("news", "hello") == 1
        assert r.publish("alerts.fire", "run") == 1
        received = [_next_message(pubsub) for _ in range(2)]
        assert [(m["type"], m["channel"], m["data"]) for m in received] == [
            ("message", b"news", b"hello"),
            ("pmessage", b"alerts.fire", b"run"),
        ]
        assert received[1]["pattern"] == b"alerts.*"
        pubsub.check_health()  # a PING while subscribed, answered in pub/sub form
        pubsub.unsubscribe()
        pubsub.punsubscribe()
        assert _next_message(pubsub)["type"] == "unsubscribe"
        assert _next_message(pubsub)["type"] == "punsubscribe"
        assert r.pubsub_numsub("news") == [(b"news", 0)]
    finally:
        pubsub.close()
        subscriber.close()


def _next_message(pubsub: redis.client.PubSub) -> dict[str, object]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)
        if message is not None:
            return message
    raise AssertionError("no pub/sub message within 5s")


def test_blocking_pop_times_out_and_is_woken(r: redis.Redis, netsvc_port: int) -> None:
    start = time.monotonic()
    assert r.blpop(["queue"], timeout=0.3) is None
    assert 0.25 < time.monotonic() - start < 3

    def push_later() -> None:
        time.sleep(0.3)
        pusher = redis.Redis(port=netsvc_port)
        pusher.rpush("queue", "job")
        pusher.close()

    threading.Thread(target=push_later).start()
    popped = r.blpop(["queue"], timeout=5)
    assert popped is not None and tuple(popped) == (b"queue", b"job")
    assert r.brpop(["queue"], timeout=0.1) is None

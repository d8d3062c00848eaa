# dramatiq on Redis (RedisBroker, and the Results middleware on its Redis
# backend): actors send messages, a Worker in this process (threads) runs
# them, `broker.join` waits for the queues to drain, results come back.
# Every broker operation (enqueue, fetch, ack, nack, the delay queue, queue
# sizes for join) is one Lua script, dispatch.lua, run with EVALSHA; a caller
# that blocks for a result waits with BRPOPLPUSH key key timeout.
from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import ResultFailure, Results
from dramatiq.results.backends import RedisBackend

from tests.protocols.resp.apps.conftest import Backend

pytestmark = pytest.mark.slow  # two servers for the package, worker processes

MS = 1000


@pytest.fixture
def broker(backend: Backend) -> Iterator[RedisBroker]:
    broker = RedisBroker(host=backend.host, port=backend.port)
    broker.add_middleware(Results(backend=RedisBackend(host=backend.host, port=backend.port)))
    dramatiq.set_broker(broker)  # a message's get_result() looks up the global broker
    yield broker
    broker.close()


def test_actors_worker_join(broker: RedisBroker) -> None:
    done: list[int] = []

    @dramatiq.actor(broker=broker, store_results=True)
    def add(a: int, b: int) -> int:
        done.append(a + b)
        return a + b

    @dramatiq.actor(broker=broker, store_results=True, max_retries=0)
    def fail(message: str) -> None:
        raise ValueError(message)

    messages = [add.send(i, i) for i in range(5)]
    later = add.send_with_options(args=(10, 10), delay=300)
    failed = fail.send("no luck")
    added = dramatiq.group(add.message(i, 1) for i in range(3)).run()

    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        broker.join(add.queue_name, timeout=30 * MS)
        worker.join()
        results = [message.get_result(block=True, timeout=30 * MS) for message in messages]
        assert results == [0, 2, 4, 6, 8]
        assert later.get_result(block=True, timeout=30 * MS) == 20
        assert list(added.get_results(block=True, timeout=30 * MS)) == [1, 2, 3]
        with pytest.raises(ResultFailure, match="no luck"):
            failed.get_result(block=True, timeout=30 * MS)
    finally:
        worker.stop()
    assert sorted(done) == [0, 1, 2, 2, 3, 4, 6, 8, 20]

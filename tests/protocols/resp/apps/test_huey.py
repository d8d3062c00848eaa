# huey on Redis (RedisHuey): a `huey_consumer` subprocess (2 worker threads)
# runs the tasks the app enqueues (LPUSH, BRPOP) and stores their results in
# a hash the app polls; a task scheduled for later waits in a sorted set, from
# which the consumer's scheduler pops what is due with a Lua script.
from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huey.api import Result
from huey.exceptions import ResultTimeout, TaskException

from tests.protocols.resp.apps.conftest import Backend, WorkerProcess
from tests.protocols.resp.apps.huey_app import App, make_app

pytestmark = pytest.mark.slow  # two servers for the package, worker processes

CONSUMER = str(Path(sys.executable).with_name("huey_consumer"))
# SCHEDULE_POP_LUA in huey/storage.py: ZRANGEBYSCORE and ZREMRANGEBYSCORE


@pytest.fixture
def consumer(backend: Backend) -> Iterator[WorkerProcess]:
    command = [CONSUMER, "tests.protocols.resp.apps.huey_app.huey", "-k", "thread", "-w", "2"]
    with WorkerProcess(command, env={"APPS_REDIS_URL": backend.url()}) as process:
        process.wait_for(r"Huey consumer started")
        yield process


@pytest.fixture
def app(backend: Backend, consumer: WorkerProcess) -> App:
    return make_app(backend.url())


def outcome(result: Result, consumer: WorkerProcess, timeout: float = 30) -> Any:
    """The task's result once the consumer stores it; fails at once if the
    consumer logs an error of its own (not a task's: those are results)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return result.get(blocking=True, timeout=0.2)
        except ResultTimeout:
            errors = [line for line in consumer.lines if "ERROR:huey.consumer" in line]
            assert not errors, consumer.log
            assert time.monotonic() < deadline, consumer.log


def test_task_and_result(app: App, consumer: WorkerProcess) -> None:
    result = app.add(2, 3)
    assert outcome(result, consumer) == 5
    with app.huey.storage.conn as client:  # huey keeps a result until it is read
        assert client.hlen("huey.results.apps") == 0
    results = [app.add(i, i) for i in range(5)]
    assert [outcome(result, consumer) for result in results] == [0, 2, 4, 6, 8]
    failed = app.fail("no luck")
    with pytest.raises(TaskException, match="no luck"):
        outcome(failed, consumer)
    assert len(app.huey) == 0  # nothing left in the queue


def test_scheduled_task(app: App, consumer: WorkerProcess) -> None:
    started = time.monotonic()
    later = app.add.schedule((1, 2), delay=1)
    revoked = app.add.schedule((5, 5), delay=1)
    revoked.revoke()
    assert revoked.is_revoked()
    assert outcome(later, consumer) == 3
    assert time.monotonic() - started >= 1
    # the revoked task does not run: past its time, no result comes
    time.sleep(1)
    assert revoked.get() is None
    consumer.wait_for(rf"{revoked.id}.* was revoked, not executing")

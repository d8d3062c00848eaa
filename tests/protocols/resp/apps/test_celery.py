# Celery with Redis as broker and result backend: a `celery worker`
# subprocess (threads pool), tasks sent with .delay() and waited for with
# .get() (the result backend's pub/sub), a failing task, a chain, a group and
# a chord (the Redis backend's native chord counter), a task with a countdown.
from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery, chain, chord, group

from tests.protocols.resp.apps.celery_app import make_app
from tests.protocols.resp.apps.conftest import Backend, WorkerProcess

pytestmark = pytest.mark.slow  # two servers for the package, worker processes

CELERY = str(Path(sys.executable).with_name("celery"))
# kombu's worker, on start, restores unacknowledged messages under a
# redis-py Lock on "unacked_mutex", and releases it with a Lua script: the
# worker dies of the error. Nothing else was missing (found by releasing that
# lock without Lua).


@pytest.fixture
def worker(backend: Backend) -> Iterator[WorkerProcess]:
    command = [
        CELERY,
        "--app",
        "tests.protocols.resp.apps.celery_app",
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        "2",
        "--loglevel",
        "info",
    ]
    with WorkerProcess(command, env={"APPS_REDIS_URL": backend.url()}) as process:
        yield process


def test_tasks_and_canvas(backend: Backend, worker: WorkerProcess) -> None:
    worker.wait_for(r"celery@\S+ ready\.", timeout=60)
    app = make_app(backend.url())
    try:
        run_tasks(app)
    finally:
        # results unsubscribe from their channel when collected: before the
        # app and the server go
        gc.collect()
        app.close()
    assert worker.stop() == 0, worker.log
    assert "Task apps.fail" in worker.log and "ValueError: no luck" in worker.log


def run_tasks(app: Celery) -> None:
    add, total, fail = (app.tasks[f"apps.{name}"] for name in ("add", "total", "fail"))
    assert add.delay(2, 3).get(timeout=30) == 5
    failing = fail.delay("no luck")
    with pytest.raises(ValueError, match="no luck"):
        failing.get(timeout=30)
    assert failing.state == "FAILURE"
    assert chain(add.s(1, 2), add.s(3))().get(timeout=30) == 6
    assert group(add.s(i, 1) for i in range(4))().get(timeout=30) == [1, 2, 3, 4]
    assert chord(add.s(i, i) for i in range(5))(total.s()).get(timeout=30) == 20
    started = time.monotonic()
    assert add.apply_async((4, 4), countdown=1).get(timeout=30) == 8
    assert time.monotonic() - started >= 0.9

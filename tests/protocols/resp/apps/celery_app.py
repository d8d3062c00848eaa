# The Celery app of the Celery tests, Redis as broker and result backend:
# `make_app(url)` in the test, and `app` for the worker subprocess, which
# reads the server's URL from $APPS_REDIS_URL.
from __future__ import annotations

import os

from celery import Celery


def make_app(url: str) -> Celery:
    app = Celery("apps", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        result_expires=600,
    )

    @app.task(name="apps.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="apps.total")
    def total(values: list[int]) -> int:
        return sum(values)

    @app.task(name="apps.fail")
    def fail(message: str) -> None:
        raise ValueError(message)

    return app


if "APPS_REDIS_URL" in os.environ:
    app = make_app(os.environ["APPS_REDIS_URL"])

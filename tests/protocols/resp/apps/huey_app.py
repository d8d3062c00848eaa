# The huey app of the huey tests, a RedisHuey: `make_app(url)` in the test,
# and `huey` for the consumer subprocess (`huey_consumer ...huey_app.huey`),
# which reads the server's URL from $APPS_REDIS_URL.
from __future__ import annotations

import dataclasses
import os
from typing import Any

from huey import RedisHuey


@dataclasses.dataclass
class App:
    huey: RedisHuey
    add: Any  # huey's TaskWrapper: calling it enqueues, and returns a Result
    fail: Any


def make_app(url: str) -> App:
    huey = RedisHuey("apps", url=url)

    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    @huey.task()
    def fail(message: str) -> None:
        raise ValueError(message)

    return App(huey, add, fail)


if "APPS_REDIS_URL" in os.environ:
    huey = make_app(os.environ["APPS_REDIS_URL"]).huey

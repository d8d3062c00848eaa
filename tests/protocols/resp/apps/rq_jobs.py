# The functions the RQ tests enqueue: a worker subprocess imports them by name.
from __future__ import annotations

from rq import get_current_job


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def total() -> int:
    """Sums the results of the jobs this one depends on."""

    job = get_current_job()
    assert job is not None
    return sum(dependency.return_value() for dependency in job.fetch_dependencies())

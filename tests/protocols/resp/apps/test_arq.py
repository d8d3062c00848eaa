# arq: an asyncio app enqueues jobs (WATCH, MULTI, PSETEX, ZADD), a burst
# worker in the same process polls the queue (ZRANGEBYSCORE ... LIMIT), runs
# them and stores their results, and the app reads each result and status.
# The test is synchronous and runs asyncio itself: the suite is under trio.
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import JobStatus
from arq.worker import Worker

from tests.protocols.resp.apps.conftest import Backend

# arq's Worker.close() calls redis-py's deprecated close(), not aclose()
pytestmark = [
    pytest.mark.slow,  # two servers for the package, worker processes
    pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning"),
]


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def fail(ctx: dict[str, Any], message: str) -> None:
    raise ValueError(message)


async def pool_for(backend: Backend) -> ArqRedis:
    return await create_pool(RedisSettings(host=backend.host, port=backend.port))


async def run_burst_worker(pool: ArqRedis) -> Worker:
    worker = Worker(functions=[add, fail], redis_pool=pool, burst=True, poll_delay=0.05)
    await worker.main()
    await worker.close()
    return worker


def test_enqueue_work_result(backend: Backend) -> None:
    async def scenario() -> None:
        pool = await pool_for(backend)
        try:
            added = await pool.enqueue_job("add", 2, 3)
            later = await pool.enqueue_job("add", 4, 5, _defer_by=0.3)
            failed = await pool.enqueue_job("fail", "no luck")
            unique = await pool.enqueue_job("add", 1, 1, _job_id="only-once")
            assert added and later and failed and unique
            assert await pool.enqueue_job("add", 1, 2, _job_id="only-once") is None
            assert await added.status() == JobStatus.queued
            assert await later.status() == JobStatus.deferred
            assert len(await pool.queued_jobs()) == 4

            worker = await run_burst_worker(pool)

            assert (worker.jobs_complete, worker.jobs_failed) == (3, 1)
            assert await added.result(timeout=5) == 5
            assert await later.result(timeout=5) == 9
            assert await unique.result(timeout=5) == 2
            with pytest.raises(ValueError, match="no luck"):
                await failed.result(timeout=5)
            assert await added.status() == JobStatus.complete
            info = await later.result_info()
            assert info is not None and info.success and info.function == "add"
            assert info.start_time >= info.enqueue_time
            results = await pool.all_job_results()
            assert sorted(result.job_id for result in results) == sorted(
                job.job_id for job in (added, later, failed, unique)
            )
            assert await pool.queued_jobs() == []
        finally:
            await pool.aclose()

    asyncio.run(scenario())

# RQ: an app enqueues jobs, `rq worker --burst` (a subprocess, as deployed)
# runs them and quits, and the app reads each job's status and result. RQ
# keeps results in a stream per job (XADD ... MAXLEN ~ 10 in the worker's
# MULTI, XREVRANGE ... COUNT 1 to read the latest) and the worker names its
# connection and reads it back (CLIENT SETNAME, CLIENT INFO).
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from tests.protocols.resp.apps import rq_jobs
from tests.protocols.resp.apps.conftest import Backend
from tests.serveprocess import ROOT

pytestmark = pytest.mark.slow  # two servers for the package, worker processes

RQ = str(Path(sys.executable).with_name("rq"))


def burst_worker(backend: Backend, *queues: str) -> subprocess.CompletedProcess[str]:
    worker = subprocess.run(
        [RQ, "worker", "--burst", "--url", backend.url(), "--path", str(ROOT), *queues],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    return worker


def test_enqueue_work_result(backend: Backend) -> None:
    with backend.client() as connection:
        queue = Queue("default", connection=connection)
        added = queue.enqueue(rq_jobs.add, 2, 3)
        failed = queue.enqueue(rq_jobs.fail, "no luck")
        summed = queue.enqueue(rq_jobs.total, depends_on=[added])
        assert added.get_status() == JobStatus.QUEUED
        assert summed.get_status() == JobStatus.DEFERRED
        assert len(queue) == 2

        worker = burst_worker(backend, "default")

        assert len(queue) == 0
        added.refresh()
        assert added.get_status() == JobStatus.FINISHED
        assert added.return_value() == 5
        assert Job.fetch(summed.id, connection=connection).return_value() == 5
        failed.refresh()
        assert failed.get_status() == JobStatus.FAILED
        assert "ValueError: no luck" in (failed.latest_result().exc_string or "")
        assert added.id in FinishedJobRegistry(queue=queue)
        assert failed.id in FailedJobRegistry(queue=queue)
        assert "ValueError: no luck" in worker.stderr + worker.stdout


def test_queues_in_priority_order(backend: Backend) -> None:
    with backend.client() as connection:
        high, low = (Queue(name, connection=connection) for name in ("high", "low"))
        jobs = [low.enqueue(rq_jobs.add, 1, 1), high.enqueue(rq_jobs.add, 2, 2)]
        at_front = high.enqueue(rq_jobs.add, 3, 3, at_front=True)
        burst_worker(backend, "high", "low")
        for job in [*jobs, at_front]:
            job.refresh()
            assert job.get_status() == JobStatus.FINISHED
        assert [job.return_value() for job in jobs] == [2, 4]
        started = sorted([*jobs, at_front], key=lambda job: job.started_at)
        assert started == [at_front, jobs[1], jobs[0]]

# redis-py's Lock, as apps use it to keep two processes out of one critical
# section: SET NX PX to acquire, Lua scripts (EVALSHA, SCRIPT LOAD on a miss)
# to extend, reacquire and release only a lock the caller still owns.
from __future__ import annotations

import threading
import time

import pytest
from redis.exceptions import LockError, LockNotOwnedError

from tests.protocols.resp.apps.conftest import Backend

pytestmark = pytest.mark.slow  # two servers for the package, worker processes


def test_acquire_and_contention(backend: Backend) -> None:
    with backend.client() as first, backend.client() as second:
        mine = first.lock("resource", timeout=0.5)
        theirs = second.lock("resource", timeout=5)
        assert mine.acquire(blocking=False)
        assert mine.owned() and mine.locked()
        assert theirs.locked() and not theirs.owned()
        assert not theirs.acquire(blocking=False)
        started = time.monotonic()
        assert not theirs.acquire(blocking_timeout=0.3)  # retries every 0.1 s
        assert time.monotonic() - started >= 0.2
        # the holder never releases: its lock expires after 0.5 s, and the
        # waiter gets it then
        assert theirs.acquire(blocking_timeout=10)
        assert theirs.owned() and not mine.owned()
        assert 0 < second.pttl("resource") <= 5000


def test_extend_and_reacquire(backend: Backend) -> None:
    with backend.client() as client, backend.client() as other:
        lock = client.lock("resource", timeout=2)
        assert lock.acquire(blocking=False)
        assert lock.extend(10)
        assert 10_000 < client.pttl("resource") <= 12_000
        assert lock.extend(3, replace_ttl=True)
        assert 2_000 < client.pttl("resource") <= 3_000
        assert lock.reacquire()
        assert 1_000 < client.pttl("resource") <= 2_000
        # a lock someone else holds cannot be extended by a stranger
        stranger = other.lock("resource", timeout=2)
        with pytest.raises(LockError):
            stranger.extend(10)


def test_release(backend: Backend) -> None:
    with backend.client() as client, backend.client() as other:
        with client.lock("resource", timeout=5, blocking_timeout=1):
            assert client.exists("resource")
            assert not other.lock("resource").acquire(blocking=False)
        assert not client.exists("resource")
        lock = other.lock("resource", timeout=5)
        assert lock.acquire(blocking=False)
        lock.release()
        with pytest.raises(LockError):
            lock.release()  # released already
        # a lock that expired and was taken by another cannot be released
        expiring = client.lock("resource", timeout=0.2)
        assert expiring.acquire(blocking=False)
        assert other.lock("resource", timeout=5).acquire(blocking_timeout=5)
        with pytest.raises(LockNotOwnedError):
            expiring.release()


def test_mutual_exclusion_between_threads(backend: Backend) -> None:
    # four workers, each its own connection, add one to a counter by a
    # read-modify-write that only the lock keeps from losing updates
    rounds, workers = 10, 4
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with backend.client() as client:
                for _ in range(rounds):
                    lock = client.lock("counter-lock", timeout=10)
                    deadline = time.monotonic() + 30
                    # wait in short turns, to stop soon after another fails
                    while not lock.acquire(blocking_timeout=0.5):
                        if errors or time.monotonic() > deadline:
                            return
                    try:
                        value = int(client.get("counter") or 0)
                        time.sleep(0.001)
                        client.set("counter", value + 1)
                    finally:
                        lock.release()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    with backend.client() as client:
        assert int(client.get("counter") or 0) == rounds * workers

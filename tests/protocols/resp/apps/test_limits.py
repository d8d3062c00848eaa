# `limits`, the rate limiting behind Flask-Limiter and slowapi, on its Redis
# storage: each strategy lets a client make as many hits as its limit allows
# in a window, refuses the next, tells what remains (the X-RateLimit headers)
# and lets the client in again once the window has passed. Every strategy's
# hit is a Lua script (EVALSHA, SCRIPT LOAD on a miss), and so is reset().
from __future__ import annotations

import time

import pytest
from limits import RateLimitItem, parse, storage, strategies

from tests.protocols.resp.apps.conftest import Backend

pytestmark = pytest.mark.slow  # two servers for the package, worker processes

STRATEGIES = {
    "fixed": strategies.FixedWindowRateLimiter,
    "moving": strategies.MovingWindowRateLimiter,
    "sliding": strategies.SlidingWindowCounterRateLimiter,
}


def limiter(backend: Backend, strategy: str) -> strategies.RateLimiter:
    return STRATEGIES[strategy](storage.storage_from_string(backend.url()))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_limit_refuses_past_its_count(backend: Backend, strategy: str) -> None:
    limits = limiter(backend, strategy)
    per_minute = parse("3/minute")
    assert limits.storage.check()
    assert [limits.hit(per_minute, "login", "alice") for _ in range(4)] == [True] * 3 + [False]
    assert not limits.test(per_minute, "login", "alice")
    stats = limits.get_window_stats(per_minute, "login", "alice")
    assert stats.remaining == 0
    assert time.time() - 1 < stats.reset_time <= time.time() + 61
    # another user, and another limit for the same user, count apart
    assert limits.hit(per_minute, "login", "bob")
    assert limits.get_window_stats(per_minute, "login", "bob").remaining == 2
    assert limits.hit(parse("5/hour"), "login", "alice")
    # a hit that costs several, and clearing one user's count
    assert limits.hit(per_minute, "upload", "carol", cost=3)
    assert not limits.hit(per_minute, "upload", "carol")
    limits.clear(per_minute, "login", "alice")
    assert limits.test(per_minute, "login", "alice")
    assert limits.get_window_stats(per_minute, "login", "alice").remaining == 3


def wait_for_window(limits: strategies.RateLimiter, item: RateLimitItem, *ids: str) -> None:
    deadline = time.monotonic() + 10
    while not limits.test(item, *ids):
        assert time.monotonic() < deadline, "the window never passed"
        time.sleep(0.1)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_window_passes(backend: Backend, strategy: str) -> None:
    limits = limiter(backend, strategy)
    per_second = parse("2/second")
    assert limits.hit(per_second, "api", "dave")
    assert limits.hit(per_second, "api", "dave")
    assert not limits.hit(per_second, "api", "dave")
    started = time.monotonic()
    wait_for_window(limits, per_second, "api", "dave")
    assert time.monotonic() - started < 5
    assert limits.hit(per_second, "api", "dave")


def test_storage_reset(backend: Backend) -> None:
    limits = limiter(backend, "fixed")
    per_minute = parse("1/minute")
    for user in ("alice", "bob"):
        assert limits.hit(per_minute, "login", user)
        assert not limits.hit(per_minute, "login", user)
    limits.storage.reset()  # what Flask-Limiter's Limiter.reset() calls
    assert limits.hit(per_minute, "login", "alice")
    assert limits.hit(per_minute, "login", "bob")

# The keyspace: numbered databases of keys with optional expiry times, lazy
# expiry on access plus an active sweep (both held while CLIENT PAUSE is in
# force, both counted for INFO's expired_keys; KEYS and WATCH only look), type
# checks, the bookkeeping that WATCH needs (every change to a key bumps its
# version; EXEC judges expired keys as Redis does), and when each key was
# last accessed (Redis's per-object `lru` field, for OBJECT IDLETIME and FREQ).
from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TypeAlias

from ._reply import ErrorReply
from ._stream import Stream
from ._zset import ZSet

__all__ = ["Database", "Keyspace", "Value", "now_ms", "type_name"]

Value: TypeAlias = bytes | deque[bytes] | dict[bytes, bytes] | set[bytes] | ZSet | Stream

WRONGTYPE: Final = "WRONGTYPE Operation against a key holding the wrong kind of value"
SWEEP_BATCH: Final = (
    1000  # most expired keys one sweep() removes, so a sweep never stalls the server
)

# Access times, as Redis keeps them in each object's 24-bit `lru` field: with
# an LRU policy (or none) the LRU clock, in seconds, of the last access; with
# an LFU policy the minute of the last decrement and a logarithmic counter
# of accesses, (minutes << 8) | counter (Redis's evict.c).
LRU_CLOCK_MAX: Final = (1 << 24) - 1
LFU_INIT_VAL: Final = 5  # a new key's counter, so that it is not evicted at once


def lru_clock() -> int:
    return int(time.monotonic()) & LRU_CLOCK_MAX


def lfu_minutes() -> int:
    return int(time.monotonic() / 60) & 65535


def now_ms() -> int:
    return int(time.time() * 1000)


def type_name(value: Value) -> str:
    if isinstance(value, bytes):
        return "string"
    if isinstance(value, deque):
        return "list"
    if isinstance(value, dict):
        return "hash"
    if isinstance(value, ZSet):
        return "zset"
    if isinstance(value, Stream):
        return "stream"
    return "set"


class Database:
    """One numbered database. All reads go through get() so expired keys vanish."""

    def __init__(self, index: int, ready: set[tuple[int, bytes]] | None = None) -> None:
        self.index = index
        # keys clients are blocked on (BLPOP...), and the keyspace-wide set of
        # (db, key) that changed while someone waits on them
        self.blocked: dict[bytes, int] = {}
        self.ready: set[tuple[int, bytes]] = set() if ready is None else ready
        self.data: dict[bytes, Value] = {}
        self.expires: dict[bytes, int] = {}  # key -> unix time in ms
        self.access: dict[bytes, int] = {}  # key -> its `lru` field (see LRU_CLOCK_MAX)
        # Set by the Keyspace for all its databases: the LRU clock; what an
        # access writes in `access`: the clock, or None when accesses count
        # in LFU's way (`counting`) or are not recorded (a CLIENT NO-TOUCH
        # client's command); the LFU settings while an LFU policy is selected.
        self.clock = lru_clock()
        self.stamp: int | None = self.clock
        self.counting = False
        self.lfu: LfuSettings | None = None
        # Set by the Keyspace: whether a key whose time has come may be
        # removed now (not while CLIENT PAUSE holds writes: it stays, unseen)
        self.may_expire: Callable[[], bool] = _always
        self.expired = 0  # keys removed because their time had come (INFO expired_keys)
        self.versions: dict[bytes, int] = {}  # key -> version, only for watched keys
        self.watched: dict[bytes, int] = {}  # key -> number of clients watching it
        # (expiry, key) for the active sweep; entries whose expiry has since
        # changed are stale and skipped, and the heap is rebuilt when mostly stale
        self._expiry_heap: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return len(self.data)

    # -- reading -------------------------------------------------------------

    def get(self, key: bytes) -> Value | None:
        """The live value at `key`, recording the access (Redis's lookupKey)."""
        expiry = self.expires.get(key)
        if expiry is not None and expiry <= now_ms():
            self._expire(key)
            return None
        value = self.data.get(key)
        if value is not None:
            stamp = self.stamp
            if stamp is not None:
                self.access[key] = stamp
            elif self.counting:
                self._count_access(key)
        return value

    def get_typed(self, key: bytes, kind: type[Any]) -> Any:
        """The value at `key` if it is of `kind`, None if missing, else WRONGTYPE."""
        if key in self.expires:
            value = self.get(key)
        else:  # get()'s work inline: this is nearly every command's path
            value = self.data.get(key)
            if value is not None:
                stamp = self.stamp
                if stamp is not None:
                    self.access[key] = stamp
                elif self.counting:
                    self._count_access(key)
        if value is not None and type(value) is not kind and not isinstance(value, kind):
            raise ErrorReply(WRONGTYPE)
        return value

    def peek(self, key: bytes) -> Value | None:
        """The live value at `key` without recording an access (Redis's
        LOOKUP_NOTOUCH: EXISTS, TYPE, TTL, OBJECT, KEYS and SCAN look so)."""
        expiry = self.expires.get(key)
        if expiry is not None and expiry <= now_ms():
            self._expire(key)
            return None
        return self.data.get(key)

    def is_expired(self, key: bytes) -> bool:
        """Whether `key` is there but its time has come: a look that removes
        nothing (Redis's keyIsExpired, as KEYS and WATCH look)."""
        expiry = self.expires.get(key)
        return expiry is not None and expiry <= now_ms()

    def exists(self, key: bytes) -> bool:
        return self.peek(key) is not None

    def idle_seconds(self, key: bytes) -> int:
        """OBJECT IDLETIME of a live key: seconds since its last access, as
        Redis's estimateObjectIdleTime reads the LRU clock (wrapping at 24 bits)."""
        now, then = lru_clock(), self.access.get(key, 0)
        return now - then if now >= then else now + LRU_CLOCK_MAX - then

    def frequency(self, key: bytes, lfu: LfuSettings) -> int:
        """OBJECT FREQ of a live key: its LFU counter, decayed (LFUDecrAndReturn)."""
        return lfu.decayed(self.access.get(key, 0))

    def _count_access(self, key: bytes) -> None:
        lfu = self.lfu
        assert lfu is not None, "counting is on only with an LFU policy"
        self.access[key] = lfu.counted(self.access.get(key, 0))

    def ttl_ms(self, key: bytes) -> int | None:
        """Milliseconds left, None without expiry. Call only for a live key."""
        expiry = self.expires.get(key)
        return None if expiry is None else max(0, expiry - now_ms())

    def random_key(self) -> bytes | None:
        """A random live key (O(n) in the number of keys, like Python's dict)."""
        for _ in range(100):
            if not self.data:
                return None
            offset = random.randrange(len(self.data))
            key = next(itertools.islice(self.data, offset, None))
            if self.peek(key) is not None:
                return key
        return None

    # -- writing -------------------------------------------------------------

    def set(self, key: bytes, value: Value, *, keep_ttl: bool = False) -> None:
        """Store `value` at `key`: a new value, accessed now (Redis's
        createObject); with an LFU policy one replacing another keeps its
        counter, counted as an access (dbSetValue after lookupKeyWrite).
        A key whose time has come is expired first, as lookupKeyWrite does:
        the new value is a new key."""
        expires = self.expires
        if expires and key in expires and expires[key] <= now_ms():
            self._expire(key)
        if self.lfu is None:
            self.access[key] = self.clock
        elif key not in self.data:
            self.access[key] = (lfu_minutes() << 8) | LFU_INIT_VAL
        elif self.counting:
            self._count_access(key)
        self.data[key] = value
        if not keep_ttl:
            self.expires.pop(key, None)
        self.touch(key)

    def move(self, key: bytes, target: Database) -> None:
        """MOVE the live `key` to `target` (where it is missing) with its
        expiry and access time: the same value, as Redis moves the object."""
        value, expiry, access = self.data[key], self.expires.get(key), self.access.get(key)
        self._remove(key)
        target.set(key, value)
        if access is not None:
            target.access[key] = access
        if expiry is not None:
            target.set_expiry(key, expiry)

    def delete(self, key: bytes) -> bool:
        if self.get(key) is None:
            return False
        self._remove(key)
        return True

    def set_expiry(self, key: bytes, when_ms: int) -> None:
        """Expire the live key `key` at `when_ms`; a time in the past deletes it."""
        if when_ms <= now_ms():
            self._remove(key)
        else:
            self.expires[key] = when_ms
            heapq.heappush(self._expiry_heap, (when_ms, key))
            if len(self._expiry_heap) > 2 * len(self.expires) + 1024:
                self._expiry_heap = [(when, k) for k, when in self.expires.items()]
                heapq.heapify(self._expiry_heap)
            self.touch(key)

    def persist(self, key: bytes) -> bool:
        if self.expires.pop(key, None) is None:
            return False
        self.touch(key)
        return True

    def touch(self, key: bytes) -> None:
        """Record that `key` changed (for WATCH and blocked clients)."""
        if key in self.watched:
            self.versions[key] = self.versions.get(key, 0) + 1
        if key in self.blocked:
            self.ready.add((self.index, key))

    def drop_if_empty(self, key: bytes) -> None:
        """Containers that become empty disappear, as in Redis."""
        value = self.data.get(key)
        if value is not None and not isinstance(value, bytes) and not value:
            self._remove(key)

    def flush(self) -> None:
        for key in list(self.watched):
            self.versions[key] = self.versions.get(key, 0) + 1
        for key in self.blocked:  # an XREADGROUP waiting on a stream learns it is gone
            self.ready.add((self.index, key))
        self.data.clear()
        self.expires.clear()
        self.access.clear()
        self._expiry_heap.clear()

    def _expire(self, key: bytes) -> None:
        """`key`'s time has come: remove it, unless expiry is held (CLIENT
        PAUSE): then it stays until the pause ends, though no read sees it,
        as Redis keeps the dataset as it is while it looks expired."""
        if self.may_expire():
            self._remove(key)
            self.expired += 1

    def _remove(self, key: bytes) -> None:
        self.data.pop(key, None)
        self.expires.pop(key, None)
        self.access.pop(key, None)
        self.touch(key)

    # -- WATCH ---------------------------------------------------------------

    def watch(self, key: bytes) -> tuple[int, bool]:
        """Start watching `key`: its current version, and whether it has
        expired (left in place, as Redis's WATCH leaves it)."""
        self.watched[key] = self.watched.get(key, 0) + 1
        return self.versions.get(key, 0), self.is_expired(key)

    def unwatch(self, key: bytes) -> None:
        count = self.watched.get(key, 0) - 1
        if count <= 0:
            self.watched.pop(key, None)
            self.versions.pop(key, None)
        else:
            self.watched[key] = count

    def watch_changed(self, key: bytes, version: int, expired: bool) -> bool:
        """Whether `key`, watched at `version`, changed since, as Redis's
        EXEC judges (touchWatchedKey, isWatchedKeyExpired): a key whose time
        has come since counts as changed (and stays where it is); for one
        already expired when watched, its removal (the first change: any
        access removes it first) is no change, what follows is."""
        now = self.versions.get(key, 0)
        if expired:
            return now > version + 1
        return now != version or self.is_expired(key)

    # -- active expiry -------------------------------------------------------

    def sweep(self) -> int:
        """Remove up to SWEEP_BATCH keys whose time has come; returns how many."""
        heap, removed, now = self._expiry_heap, 0, now_ms()
        while heap and heap[0][0] <= now and removed < SWEEP_BATCH:
            when, key = heapq.heappop(heap)
            if self.expires.get(key) == when:
                self._remove(key)
                removed += 1
        self.expired += removed
        return removed


def _always() -> bool:
    return True


class LfuSettings:
    """Redis's LFU counter (evict.c): logarithmic, `log_factor` (CONFIG
    lfu-log-factor) slowing its growth, decremented once per `decay_time`
    minutes (lfu-decay-time) without access."""

    def __init__(self, log_factor: int = 10, decay_time: int = 1) -> None:
        self.log_factor = log_factor
        self.decay_time = decay_time

    def decayed(self, field: int) -> int:
        """LFUDecrAndReturn: the counter less one per decay period since the
        field's minute (minutes wrap at 16 bits)."""
        counter, then = field & 255, (field >> 8) & 65535
        if not self.decay_time:
            return counter
        now = lfu_minutes()
        elapsed = now - then if now >= then else 65535 - then + now
        return max(0, counter - elapsed // self.decay_time)

    def counted(self, field: int) -> int:
        """updateLFU: the field after one more access: the decayed counter,
        incremented with a probability that falls as it grows (LFULogIncr)."""
        counter = self.decayed(field)
        if counter < 255:
            base = max(0, counter - LFU_INIT_VAL)
            if random.random() < 1.0 / (base * self.log_factor + 1):
                counter += 1
        return (lfu_minutes() << 8) | counter


class Keyspace:
    """All databases of one server."""

    def __init__(self, databases: int = 16) -> None:
        self.ready: set[tuple[int, bytes]] = set()  # see Database.blocked
        self.databases = [Database(index, self.ready) for index in range(databases)]
        self.lfu: LfuSettings | None = None  # an LFU maxmemory-policy is selected
        self.touching = True  # accesses are recorded (not while a NO-TOUCH client runs)

    def __getitem__(self, index: int) -> Database:
        return self.databases[index]

    # -- expiry ------------------------------------------------------------

    def hold_expiry_while(self, held: Callable[[], bool]) -> None:
        """Keep keys whose time has come while `held()` (CLIENT PAUSE):
        reads miss them, nothing removes them; after, they go as usual."""
        for db in self.databases:
            db.may_expire = lambda: not held()

    @property
    def expired(self) -> int:
        """Keys removed because their time had come: on access or by the sweep."""
        return sum(db.expired for db in self.databases)

    def reset_expired(self) -> None:
        for db in self.databases:
            db.expired = 0

    # -- access times ------------------------------------------------------

    def tick(self) -> None:
        """Advance the LRU clock accesses record (Redis updates its cached
        clock in serverCron; netsvc's sweep does this every 100 ms)."""
        self._sync()

    def use_lfu(self, lfu: LfuSettings | None) -> None:
        """Record accesses as LFU counters (an LFU maxmemory-policy), or as
        LRU times (None). The fields are not converted: as in Redis, each
        key's reads as the other kind until it is accessed again."""
        self.lfu = lfu
        self._sync()

    def set_touching(self, touching: bool) -> None:
        """Record accesses, or not (CLIENT NO-TOUCH: while that client's
        command runs)."""
        if touching != self.touching:
            self.touching = touching
            self._sync()

    def _sync(self) -> None:
        lfu, touching, clock = self.lfu, self.touching, lru_clock()
        stamp = clock if touching and lfu is None else None
        for db in self.databases:
            db.clock = clock
            db.stamp = stamp
            db.counting = touching and lfu is not None
            db.lfu = lfu

    def swap(self, first: int, second: int) -> None:
        a, b = self.databases[first], self.databases[second]
        for db in (a, b):
            for key in list(db.watched):
                db.touch(key)
        a.data, b.data = b.data, a.data
        a.expires, b.expires = b.expires, a.expires
        a.access, b.access = b.access, a.access
        a._expiry_heap, b._expiry_heap = b._expiry_heap, a._expiry_heap
        for db in (a, b):
            for key in db.blocked:
                db.ready.add((db.index, key))

    def sweep(self) -> int:
        return sum(db.sweep() for db in self.databases if db.expires)

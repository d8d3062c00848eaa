# The keyspace: numbered databases of keys with optional expiry times, lazy
# expiry on access plus an active sweep, type checks, and the bookkeeping that
# WATCH needs (every change to a key bumps its version).
from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import deque
from typing import Any, TypeAlias

from ._reply import ErrorReply
from ._stream import Stream
from ._zset import ZSet

__all__ = ["Database", "Keyspace", "Value", "now_ms", "type_name"]

Value: TypeAlias = bytes | deque[bytes] | dict[bytes, bytes] | set[bytes] | ZSet | Stream

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SWEEP_BATCH = 1000  # most expired keys one sweep() removes, so a sweep never stalls the server


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
        self.versions: dict[bytes, int] = {}  # key -> version, only for watched keys
        self.watched: dict[bytes, int] = {}  # key -> number of clients watching it
        # (expiry, key) for the active sweep; entries whose expiry has since
        # changed are stale and skipped, and the heap is rebuilt when mostly stale
        self._expiry_heap: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return len(self.data)

    # -- reading -------------------------------------------------------------

    def get(self, key: bytes) -> Value | None:
        expiry = self.expires.get(key)
        if expiry is not None and expiry <= now_ms():
            self._remove(key)
            return None
        return self.data.get(key)

    def get_typed(self, key: bytes, kind: type[Any]) -> Any:
        """The value at `key` if it is of `kind`, None if missing, else WRONGTYPE."""
        value = self.get(key) if key in self.expires else self.data.get(key)
        if value is not None and type(value) is not kind and not isinstance(value, kind):
            raise ErrorReply(WRONGTYPE)
        return value

    def exists(self, key: bytes) -> bool:
        return self.get(key) is not None

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
            if self.get(key) is not None:
                return key
        return None

    # -- writing -------------------------------------------------------------

    def set(self, key: bytes, value: Value, *, keep_ttl: bool = False) -> None:
        self.data[key] = value
        if not keep_ttl:
            self.expires.pop(key, None)
        self.touch(key)

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
        self._expiry_heap.clear()

    def _remove(self, key: bytes) -> None:
        self.data.pop(key, None)
        self.expires.pop(key, None)
        self.touch(key)

    # -- WATCH ---------------------------------------------------------------

    def watch(self, key: bytes) -> int:
        """Start watching `key`; returns its current version."""
        self.watched[key] = self.watched.get(key, 0) + 1
        self.get(key)  # an already expired key counts as gone now, not later
        return self.versions.get(key, 0)

    def unwatch(self, key: bytes) -> None:
        count = self.watched.get(key, 0) - 1
        if count <= 0:
            self.watched.pop(key, None)
            self.versions.pop(key, None)
        else:
            self.watched[key] = count

    def version(self, key: bytes) -> int:
        self.get(key)  # expiry counts as a change
        return self.versions.get(key, 0)

    # -- active expiry -------------------------------------------------------

    def sweep(self) -> int:
        """Remove up to SWEEP_BATCH keys whose time has come; returns how many."""
        heap, removed, now = self._expiry_heap, 0, now_ms()
        while heap and heap[0][0] <= now and removed < SWEEP_BATCH:
            when, key = heapq.heappop(heap)
            if self.expires.get(key) == when:
                self._remove(key)
                removed += 1
        return removed


class Keyspace:
    """All databases of one server."""

    def __init__(self, databases: int = 16) -> None:
        self.ready: set[tuple[int, bytes]] = set()  # see Database.blocked
        self.databases = [Database(index, self.ready) for index in range(databases)]

    def __getitem__(self, index: int) -> Database:
        return self.databases[index]

    def swap(self, first: int, second: int) -> None:
        a, b = self.databases[first], self.databases[second]
        for db in (a, b):
            for key in list(db.watched):
                db.touch(key)
        a.data, b.data = b.data, a.data
        a.expires, b.expires = b.expires, a.expires
        a._expiry_heap, b._expiry_heap = b._expiry_heap, a._expiry_heap
        for db in (a, b):
            for key in db.blocked:
                db.ready.add((db.index, key))

    def sweep(self) -> int:
        return sum(db.sweep() for db in self.databases if db.expires)

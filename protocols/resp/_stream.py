# Streams, sans-IO: the Stream value type (entries in id order in a SortedDict,
# so a range of ids is found in O(log n)), consumer groups with their pending
# entries lists, and Redis's stream id syntax (parse_id and friends, with
# Redis's own leniencies: ids are read as strtoull reads them).
#
# Trimming with `~` follows Redis's rule: only whole nodes go. Redis keeps a
# stream as a radix tree of listpacks ("nodes"); a node takes entries until it
# holds stream-node-max-entries (100, deleted ones counted) or would pass
# stream-node-max-bytes (4096). Stream keeps a model of those nodes (where
# each begins, how many entries it holds, about how many bytes), not the
# listpacks themselves, so MAXLEN/MINID `~` trim what Redis trims.
from __future__ import annotations

import bisect
import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from sortedcontainers import SortedDict

from ._reply import ErrorReply

__all__ = [
    "INVALID_ID",
    "MAX_ID",
    "U64",
    "ZERO_ID",
    "Consumer",
    "Group",
    "Nack",
    "Stream",
    "StreamID",
    "decr_id",
    "format_id",
    "incr_id",
    "parse_id",
    "parse_interval",
]

StreamID = tuple[int, int]  # (milliseconds, sequence), each an unsigned 64-bit int
U64: Final = 2**64 - 1
ZERO_ID: Final[StreamID] = (0, 0)
MAX_ID: Final[StreamID] = (U64, U64)
INVALID_ID: Final = "ERR Invalid stream ID specified as stream command argument"
INVALID_ENTRIES_READ: Final = -1  # a group's read counter that is not known

NODE_MAX_ENTRIES: Final = 100  # stream-node-max-entries
NODE_MAX_BYTES: Final = 4096  # stream-node-max-bytes

# -- ids ---------------------------------------------------------------------------

_CANONICAL: Final = re.compile(rb"0|-?[1-9][0-9]*")
_STRTOULL: Final = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _string2ull(text: bytes) -> int | None:
    """Redis's string2ull(): a canonical integer (not negative), else what C's
    strtoull() reads of the whole text (spaces, a sign, leading zeros; a minus
    wraps around), None if neither."""
    if _CANONICAL.fullmatch(text) and -(2**63) <= int(text) < 2**63:
        value = int(text)
        return None if value < 0 else value
    match = _STRTOULL.fullmatch(text)
    if match is None:
        return None
    value = int(match.group(2))
    if value > U64:
        return None  # ERANGE
    return (-value) & U64 if match.group(1) == b"-" else value


def parse_id(
    arg: bytes, missing_seq: int = 0, *, strict: bool = False, auto_seq: bool = False
) -> tuple[StreamID, bool]:
    """streamGenericParseIDOrReply: `ms-seq`, `ms` (the sequence is
    `missing_seq`), `-` and `+` (not when `strict`), and with `auto_seq`
    XADD's `ms-*`. Returns the id and whether the sequence was given."""
    if len(arg) > 127:
        raise ErrorReply(INVALID_ID)
    text = arg.split(b"\0", 1)[0]  # a C string
    if text in (b"-", b"+"):
        if strict:
            raise ErrorReply(INVALID_ID)
        return (ZERO_ID if text == b"-" else MAX_ID), True
    ms_text, dash, seq_text = text.partition(b"-")
    ms = _string2ull(ms_text)
    if ms is None:
        raise ErrorReply(INVALID_ID)
    if not dash:
        return (ms, missing_seq), True
    if auto_seq and seq_text == b"*":
        return (ms, 0), False
    seq = _string2ull(seq_text)
    if seq is None:
        raise ErrorReply(INVALID_ID)
    return (ms, seq), True


def parse_interval(arg: bytes, missing_seq: int = 0) -> tuple[StreamID, bool]:
    """A range bound: an id, `-`, `+`, or `(id` (exclusive). Returns the id
    and whether it is exclusive."""
    if len(arg) > 1 and arg[:1] == b"(":
        return parse_id(arg[1:], missing_seq, strict=True)[0], True
    return parse_id(arg, missing_seq)[0], False


def format_id(stream_id: StreamID) -> bytes:
    return b"%d-%d" % stream_id


def incr_id(stream_id: StreamID) -> StreamID | None:
    """The next id; None after the last possible one."""
    ms, seq = stream_id
    if seq < U64:
        return ms, seq + 1
    return None if ms == U64 else (ms + 1, 0)


def decr_id(stream_id: StreamID) -> StreamID | None:
    ms, seq = stream_id
    if seq > 0:
        return ms, seq - 1
    return None if ms == 0 else (ms - 1, U64)


# -- the size model of Redis's nodes -------------------------------------------------

_LP_INTEGER: Final = re.compile(rb"0|-?[1-9][0-9]{0,18}")


def _lp_int_size(value: int) -> int:
    if 0 <= value <= 127:
        size = 1
    elif -4096 <= value <= 4095:
        size = 2
    elif -(2**15) <= value < 2**15:
        size = 3
    elif -(2**23) <= value < 2**23:
        size = 4
    elif -(2**31) <= value < 2**31:
        size = 5
    else:
        size = 9
    return size + 1  # and its back-length


def _lp_size(item: bytes | int) -> int:
    """Bytes an element takes in a listpack (lpEncodeBacklen and friends)."""
    if isinstance(item, int):
        return _lp_int_size(item)
    if _LP_INTEGER.fullmatch(item) and -(2**63) <= int(item) < 2**63:
        return _lp_int_size(int(item))
    length = len(item)
    size = length + (1 if length < 64 else 2 if length < 4096 else 5)
    return size + (1 if size <= 127 else 2 if size < 16383 else 3 if size < 2097151 else 4)


@dataclass(slots=True)
class _Node:
    """One of Redis's listpack nodes, as far as trimming and XINFO see it."""

    first: StreamID  # the master id: the first entry ever put in the node
    last: StreamID  # the last entry put in it (deleted or not)
    master_fields: tuple[bytes, ...]
    slots: int = 0  # entries put in it, deleted ones included
    live: int = 0
    size: int = 0  # listpack bytes, about


# -- consumer groups -----------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Nack:
    """A pending entry: delivered to `consumer`, not acknowledged yet."""

    consumer: Consumer | None
    delivery_time: int
    delivery_count: int = 1


@dataclass(eq=False, slots=True)
class Consumer:
    name: bytes
    seen_time: int
    active_time: int = -1  # Redis 7.2: the last time it read or claimed something
    pel: SortedDict = field(default_factory=SortedDict)  # StreamID -> Nack


@dataclass(eq=False, slots=True)
class Group:
    name: bytes
    last_id: StreamID
    entries_read: int = INVALID_ENTRIES_READ
    pel: SortedDict = field(default_factory=SortedDict)  # StreamID -> Nack
    consumers: dict[bytes, Consumer] = field(default_factory=dict)

    def consumer(self, name: bytes, now: int, *, create: bool = True) -> Consumer | None:
        found = self.consumers.get(name)
        if found is None and create:
            found = self.consumers[name] = Consumer(name, now)
        return found

    def sorted_consumers(self) -> list[Consumer]:
        return [self.consumers[name] for name in sorted(self.consumers)]

    def delete_consumer(self, consumer: Consumer) -> int:
        pending = len(consumer.pel)
        for entry_id in consumer.pel:
            self.pel.pop(entry_id, None)
        del self.consumers[consumer.name]
        return pending

    def acknowledge(self, entry_id: StreamID) -> bool:
        nack = self.pel.pop(entry_id, None)
        if nack is None:
            return False
        if nack.consumer is not None:
            nack.consumer.pel.pop(entry_id, None)
        return True


# -- the stream ------------------------------------------------------------------------

Fields = tuple[bytes, ...]  # field, value, field, value, ...


class Stream:
    """A Redis stream: entries (id -> fields) in id order, the metadata XINFO
    shows, and consumer groups."""

    def __init__(self) -> None:
        self.entries: SortedDict = SortedDict()  # StreamID -> Fields
        self.last_id: StreamID = ZERO_ID
        self.first_id: StreamID = ZERO_ID  # "recorded-first-entry-id"
        self.max_deleted_id: StreamID = ZERO_ID
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}
        self._nodes: list[_Node] = []
        self._node_starts: list[StreamID] = []

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return True  # an empty stream is still a key (drop_if_empty keeps it)

    def __copy__(self) -> Stream:
        twin = Stream()
        twin.entries = SortedDict(self.entries)
        twin.last_id, twin.first_id = self.last_id, self.first_id
        twin.max_deleted_id, twin.entries_added = self.max_deleted_id, self.entries_added
        twin._nodes = [copy.copy(node) for node in self._nodes]
        twin._node_starts = list(self._node_starts)
        for name, group in self.groups.items():
            clone = Group(name, group.last_id, group.entries_read)
            for consumer in group.consumers.values():
                clone.consumers[consumer.name] = Consumer(
                    consumer.name, consumer.seen_time, consumer.active_time
                )
            for entry_id, nack in group.pel.items():
                owner = None if nack.consumer is None else clone.consumers[nack.consumer.name]
                twin_nack = Nack(owner, nack.delivery_time, nack.delivery_count)
                clone.pel[entry_id] = twin_nack
                if owner is not None:
                    owner.pel[entry_id] = twin_nack
            twin.groups[name] = clone
        return twin

    # -- reading ----------------------------------------------------------------

    def range(
        self, start: StreamID, end: StreamID, count: int = 0, *, reverse: bool = False
    ) -> list[tuple[StreamID, Fields]]:
        """Entries with start <= id <= end, in order (or reversed), at most
        `count` of them (0: all)."""
        if start > end:
            return []
        found = []
        entries = self.entries
        for entry_id in entries.irange(start, end, reverse=reverse):
            found.append((entry_id, entries[entry_id]))
            if len(found) == count:
                break
        return found

    def after(self, start: StreamID, count: int = 0) -> list[tuple[StreamID, Fields]]:
        """Entries whose id is greater than `start`."""
        following = incr_id(start)
        return [] if following is None else self.range(following, MAX_ID, count)

    def last_entry_id(self) -> StreamID | None:
        """The last entry's id (streamLastValidID); None when empty."""
        return self.entries.peekitem(-1)[0] if self.entries else None

    def next_auto_id(self, now_ms: int) -> StreamID:
        """streamNextID: the time, or the last id's next if the clock is behind."""
        if now_ms > self.last_id[0]:
            return now_ms, 0
        following = incr_id(self.last_id)
        assert following is not None  # XADD refuses a stream at MAX_ID first
        return following

    # -- writing ----------------------------------------------------------------

    def append(self, entry_id: StreamID, fields: Fields) -> None:
        """Add an entry; the caller checked that `entry_id` > last_id."""
        names = fields[::2]
        node = self._nodes[-1] if self._nodes else None
        if node is not None:
            raw = sum(len(item) for item in fields)
            if node.size + raw >= NODE_MAX_BYTES or node.slots >= NODE_MAX_ENTRIES:
                node = None
        if node is None:
            node = _Node(entry_id, entry_id, names)
            # header and end, count and deleted, the master fields and their terminator
            node.size = 7 + 2 + 2 + _lp_size(len(names)) + sum(map(_lp_size, names)) + 2
            self._nodes.append(node)
            self._node_starts.append(entry_id)
        same = names == node.master_fields
        size = _lp_size(0 if not same else 2)  # flags
        size += _lp_size(entry_id[0] - node.first[0]) + _lp_size(entry_id[1] - node.first[1])
        pieces = 3 + len(names)
        if not same:
            size += _lp_size(len(names)) + sum(map(_lp_size, names))
            pieces += len(names) + 1
        size += sum(map(_lp_size, fields[1::2])) + _lp_size(pieces)
        node.size += size
        node.slots += 1
        node.live += 1
        node.last = entry_id
        if not self.entries:
            self.first_id = entry_id
        self.entries[entry_id] = fields
        self.last_id = entry_id
        self.entries_added += 1

    def _node_index(self, entry_id: StreamID) -> int:
        return bisect.bisect_right(self._node_starts, entry_id) - 1

    def delete(self, entry_id: StreamID) -> bool:
        """XDEL of one id; True if it was there."""
        if self.entries.pop(entry_id, None) is None:
            return False
        index = self._node_index(entry_id)
        node = self._nodes[index]
        if node.live == 1:  # its last entry: the node goes
            del self._nodes[index]
            del self._node_starts[index]
        else:
            node.live -= 1
        if entry_id > self.max_deleted_id:
            self.max_deleted_id = entry_id
        return True

    def update_first_id(self) -> None:
        self.first_id = self.entries.peekitem(0)[0] if self.entries else ZERO_ID

    def trim(
        self,
        *,
        maxlen: int | None = None,
        minid: StreamID | None = None,
        approx: bool = False,
        limit: int = 0,
    ) -> int:
        """streamTrim: remove entries from the head while there are more than
        `maxlen`, or while their ids are below `minid`; with `approx` only
        whole nodes, and at most `limit` entries (0: no limit). Returns how
        many went."""
        deleted = 0
        entries = self.entries
        while self._nodes:
            if maxlen is not None and len(entries) <= maxlen:
                break
            node = self._nodes[0]
            if limit and deleted + node.live > limit:
                break
            if maxlen is not None:
                whole = len(entries) - node.live >= maxlen
            else:
                assert minid is not None
                whole = node.last < minid
            if whole:
                for entry_id in list(entries.irange(node.first, node.last)):
                    del entries[entry_id]
                deleted += node.live
                del self._nodes[0]
                del self._node_starts[0]
                continue
            if approx:
                break
            for entry_id in list(entries.irange(node.first, node.last)):
                if maxlen is not None and len(entries) <= maxlen:
                    break
                if minid is not None and entry_id >= minid:
                    break
                del entries[entry_id]
                node.live -= 1
                deleted += 1
            break
        self.update_first_id()
        return deleted

    # -- XINFO ---------------------------------------------------------------------

    @property
    def radix_tree_keys(self) -> int:
        """Nodes in Redis's radix tree: the nodes modelled here."""
        return len(self._nodes)

    @property
    def radix_tree_nodes(self) -> int:
        """Redis's count of the radix tree's own nodes depends on how the
        keys' bytes branch; this is an estimate (exact for 0 and 1 keys, close
        for more: Redis says 6 for 2 keys, 26 for 10)."""
        keys = len(self._nodes)
        return keys + 1 if keys < 2 else keys * 5 // 2 + 1

    # -- consumer group read counters (lag) ---------------------------------------------

    def has_tombstones(self, start: StreamID | None) -> bool:
        """streamRangeHasTombstones(start, +)."""
        if not self.entries or self.max_deleted_id == ZERO_ID:
            return False
        if self.first_id > self.max_deleted_id:
            return False
        return (start or ZERO_ID) <= self.max_deleted_id

    def estimate_entries_read(self, entry_id: StreamID) -> int:
        """streamEstimateDistanceFromFirstEverEntry: the read counter of an
        id, or INVALID_ENTRIES_READ when it cannot be known."""
        if not self.entries_added:
            return 0
        if not self.entries and entry_id <= self.last_id:
            return self.entries_added
        if entry_id == self.last_id:
            return self.entries_added
        if entry_id > self.last_id:
            return INVALID_ENTRIES_READ
        if self.max_deleted_id == ZERO_ID or self.max_deleted_id < self.first_id:
            if entry_id < self.first_id:
                return self.entries_added - len(self.entries)
            if entry_id == self.first_id:
                return self.entries_added - len(self.entries) + 1
        return INVALID_ENTRIES_READ

    def lag(self, group: Group) -> int | None:
        """streamReplyWithCGLag: entries the group has not read yet; None
        when that cannot be known."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self.has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        entries_read = self.estimate_entries_read(group.last_id)
        if entries_read == INVALID_ENTRIES_READ:
            return None
        return self.entries_added - entries_read

    def deliver(self, group: Group, entry_id: StreamID) -> None:
        """Move a group's last delivered id forward to `entry_id`, keeping
        its read counter (streamReplyWithRange with a group)."""
        if entry_id <= group.last_id:
            return
        if group.entries_read != INVALID_ENTRIES_READ and not self.has_tombstones(entry_id):
            group.entries_read += 1
        elif self.entries_added:
            group.entries_read = self.estimate_entries_read(entry_id)
        group.last_id = entry_id

    def __iter__(self) -> Iterator[StreamID]:
        return iter(self.entries)

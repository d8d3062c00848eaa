# Stream commands on Stream values (see _stream.py), as Redis 7.2 answers
# them: XADD (with MAXLEN/MINID trimming, exact or `~`, LIMIT, NOMKSTREAM),
# XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID; reading with XREAD and, in
# consumer groups, XREADGROUP (both may block), XACK, XPENDING, XCLAIM,
# XAUTOCLAIM; XGROUP and XINFO with their subcommands.
from __future__ import annotations

from typing import Any, Final

from .._app import RespApp, keys_after_keyword, wrong_arity
from .._args import SYNTAX, parse_int
from .._client import Client
from .._keyspace import Database, now_ms
from .._reply import NULL_ARRAY, OK, ErrorReply, Reply, Status
from .._replytypes import PairsMap
from .._stream import (
    INVALID_ENTRIES_READ,
    MAX_ID,
    U64,
    ZERO_ID,
    Consumer,
    Group,
    Nack,
    Stream,
    StreamID,
    decr_id,
    format_id,
    incr_id,
    parse_id,
    parse_interval,
)

__all__ = ["commands"]

commands = RespApp(builtins=False)

LLONG_MAX: Final = 2**63 - 1
NO_SUCH_KEY: Final = "ERR no such key"
ID_TOO_SMALL: Final = (
    "ERR The ID specified in XADD is equal or smaller than the target stream top item"
)
DEFAULT_APPROX_LIMIT: Final = 100 * 100  # 100 * stream-node-max-entries
# XAUTOCLAIM COUNTs for which Redis cannot allocate its list of deleted ids
# (COUNT * 16 bytes): where malloc fails depends on the machine; 2**36 (1 TiB)
# is a made-up threshold that a real server would refuse as well
TOO_MANY_TO_CLAIM: Final = 2**36


def _get(db: Database, key: bytes) -> Stream | None:
    value: Stream | None = db.get_typed(key, Stream)
    return value


def entry_reply(entry_id: StreamID, fields: tuple[bytes, ...]) -> list[Reply]:
    return [format_id(entry_id), list(fields)]


def _subcommand_syntax(argv: list[bytes]) -> ErrorReply:
    """addReplySubcommandSyntaxError."""
    sub = argv[1].decode(errors="replace")[:128]
    return ErrorReply(
        f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
        f"Try {argv[0].decode(errors='replace').upper()} HELP."
    )


def _help(argv: list[bytes], lines: list[str]) -> Reply:
    """addReplyHelp: status lines, the first naming the command as sent."""
    name = argv[0].decode(errors="replace").upper()
    head = f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return [Status(head), *map(Status, lines)]


def _signal_ready(db: Database, key: bytes) -> None:
    """Wake clients blocked on `key` without counting a change for WATCH
    (Redis's signalKeyAsReady without signalModifiedKey)."""
    if key in db.blocked:
        db.ready.add((db.index, key))


def _map(client: Client, pairs: list[tuple[Any, Any]]) -> Reply:
    """A map in RESP3 (maps' keys may repeat here), an array of pairs in RESP2."""
    if client.protocol >= 3:
        return PairsMap(pairs)
    return [[key, value] for key, value in pairs]


# -- XADD, XTRIM ---------------------------------------------------------------------


class _TrimArgs:
    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid: StreamID | None = None
        self.approx = False
        self.limit = 0
        self.no_mkstream = False
        self.id: StreamID | None = None
        self.seq_given = True

    @property
    def trims(self) -> bool:
        return self.maxlen is not None or self.minid is not None

    def trim(self, stream: Stream) -> int:
        if not self.trims:
            return 0
        return stream.trim(
            maxlen=self.maxlen, minid=self.minid, approx=self.approx, limit=self.limit
        )


def _parse_trim(argv: list[bytes], *, xadd: bool) -> tuple[_TrimArgs, int]:
    """streamParseAddOrTrimArgsOrReply: the options, and where XADD's id is."""
    args = _TrimArgs()
    limit_given = False
    index = 2
    while index < len(argv):
        more = len(argv) - 1 - index
        option = argv[index]
        lowered = option.lower()
        if xadd and option == b"*":
            break
        if lowered in (b"maxlen", b"minid") and more:
            if args.trims:
                raise ErrorReply(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
                )
            args.approx = False
            following = argv[index + 1]
            if more >= 2 and following in (b"~", b"="):
                args.approx = following == b"~"
                index += 1
            if lowered == b"maxlen":
                args.maxlen = parse_int(argv[index + 1])
                if args.maxlen < 0:
                    raise ErrorReply("ERR The MAXLEN argument must be >= 0.")
            else:
                args.minid = parse_id(argv[index + 1], strict=True)[0]
            index += 1
        elif lowered == b"limit" and more:
            args.limit = parse_int(argv[index + 1])
            if args.limit < 0:
                raise ErrorReply("ERR The LIMIT argument must be >= 0.")
            limit_given = True
            index += 1
        elif xadd and lowered == b"nomkstream":
            args.no_mkstream = True
        elif xadd:
            args.id, args.seq_given = parse_id(option, strict=True, auto_seq=True)
            break
        else:
            raise ErrorReply(SYNTAX)
        index += 1
    if args.limit and not args.trims:
        raise ErrorReply(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        )
    if not xadd and not args.trims:
        raise ErrorReply("ERR syntax error, XTRIM must be called with a trimming strategy")
    if limit_given:
        if not args.approx:
            raise ErrorReply("ERR syntax error, LIMIT cannot be used without the special ~ option")
    else:
        args.limit = DEFAULT_APPROX_LIMIT if args.approx else 0
    return args, index


@commands.command(
    "xadd", arity=-5, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="stream"
)
def xadd(client: Client, argv: list[bytes]) -> Reply:
    """Appends a new entry to a stream."""
    args, id_at = _parse_trim(argv, xadd=True)
    fields = argv[id_at + 1 :]
    if len(fields) < 2 or len(fields) % 2:
        raise wrong_arity("xadd")
    if args.id == ZERO_ID and args.seq_given:
        raise ErrorReply("ERR The ID specified in XADD must be greater than 0-0")
    db, key = client.db, argv[1]
    stream = _get(db, key)
    if stream is None:
        if args.no_mkstream:
            return None
        stream = Stream()
        db.set(key, stream)
    if stream.last_id == MAX_ID:
        raise ErrorReply(
            "ERR The stream has exhausted the last possible ID, unable to add more items"
        )
    if args.id is None:
        entry_id = stream.next_auto_id(now_ms())
    elif args.seq_given:
        entry_id = args.id
    elif args.id[0] == stream.last_id[0]:
        if stream.last_id[1] == U64:
            raise ErrorReply(ID_TOO_SMALL)
        entry_id = (args.id[0], stream.last_id[1] + 1)
    else:
        entry_id = args.id
    if entry_id <= stream.last_id:
        raise ErrorReply(ID_TOO_SMALL)
    stream.append(entry_id, tuple(fields))
    args.trim(stream)
    db.touch(key)
    return format_id(entry_id)


@commands.command("xtrim", arity=-4, flags=["write"], keys=(1, 1, 1), group="stream")
def xtrim(client: Client, argv: list[bytes]) -> Reply:
    """Deletes messages from the beginning of a stream."""
    args, _ = _parse_trim(argv, xadd=False)
    db, key = client.db, argv[1]
    stream = _get(db, key)
    if stream is None:
        return 0
    deleted = args.trim(stream)
    if deleted:
        db.touch(key)
    return deleted


# -- XLEN, XRANGE, XREVRANGE, XDEL, XSETID ---------------------------------------------


@commands.command("xlen", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="stream")
def xlen(client: Client, argv: list[bytes]) -> Reply:
    """Return the number of messages in a stream."""
    stream = _get(client.db, argv[1])
    return 0 if stream is None else len(stream)


def _bounds(low: bytes, high: bytes) -> tuple[StreamID, StreamID]:
    """A range's first and last ids, `(` bounds made inclusive."""
    start, start_exclusive = parse_interval(low, 0)
    if start_exclusive:
        following = incr_id(start)
        if following is None:
            raise ErrorReply("ERR invalid start ID for the interval")
        start = following
    end, end_exclusive = parse_interval(high, U64)
    if end_exclusive:
        preceding = decr_id(end)
        if preceding is None:
            raise ErrorReply("ERR invalid end ID for the interval")
        end = preceding
    return start, end


def _xrange(client: Client, argv: list[bytes], *, reverse: bool) -> Reply:
    start, end = _bounds(argv[3], argv[2]) if reverse else _bounds(argv[2], argv[3])
    count = -1
    index = 4
    while index < len(argv):
        if argv[index].lower() == b"count" and index + 1 < len(argv):
            count = max(parse_int(argv[index + 1]), 0)
            index += 2
        else:
            raise ErrorReply(SYNTAX)
    stream = _get(client.db, argv[1])
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY
    entries = stream.range(start, end, max(count, 0), reverse=reverse)
    return [entry_reply(entry_id, fields) for entry_id, fields in entries]


@commands.command("xrange", arity=-4, flags=["readonly"], keys=(1, 1, 1), group="stream")
def xrange(client: Client, argv: list[bytes]) -> Reply:
    """Return a range of elements in a stream, with IDs matching the specified IDs interval."""
    return _xrange(client, argv, reverse=False)


@commands.command("xrevrange", arity=-4, flags=["readonly"], keys=(1, 1, 1), group="stream")
def xrevrange(client: Client, argv: list[bytes]) -> Reply:
    """Return a range of elements in a stream, with IDs matching the specified
    IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE."""
    return _xrange(client, argv, reverse=True)


@commands.command("xdel", arity=-3, flags=["write", "fast"], keys=(1, 1, 1), group="stream")
def xdel(client: Client, argv: list[bytes]) -> Reply:
    """Removes the specified entries from the stream. Returns the number of items
    actually deleted, that may be different from the number of IDs passed in case
    certain IDs do not exist."""
    db, key = client.db, argv[1]
    stream = _get(db, key)
    if stream is None:
        return 0
    ids = [parse_id(arg, strict=True)[0] for arg in argv[2:]]
    deleted = sum(1 for entry_id in ids if stream.delete(entry_id))
    if deleted:
        stream.update_first_id()
        db.touch(key)
    return deleted


@commands.command(
    "xsetid", arity=-3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="stream"
)
def xsetid(client: Client, argv: list[bytes]) -> Reply:
    """An internal command for replicating stream values."""
    last_id = parse_id(argv[2], strict=True)[0]
    entries_added = -1
    max_deleted = ZERO_ID
    index = 3
    while index < len(argv):
        option = argv[index].lower()
        if option == b"entriesadded" and index + 1 < len(argv):
            entries_added = parse_int(argv[index + 1])
            if entries_added < 0:
                raise ErrorReply("ERR entries_added must be positive")
        elif option == b"maxdeletedid" and index + 1 < len(argv):
            max_deleted = parse_id(argv[index + 1], strict=True)[0]
            if last_id < max_deleted:
                raise ErrorReply(
                    "ERR The ID specified in XSETID is smaller than the provided "
                    "max_deleted_entry_id"
                )
        else:
            raise ErrorReply(SYNTAX)
        index += 2
    db, key = client.db, argv[1]
    stream = _get(db, key)
    if stream is None:
        raise ErrorReply(NO_SUCH_KEY)
    top = stream.last_entry_id()
    if top is not None:
        if last_id < top:
            raise ErrorReply(
                "ERR The ID specified in XSETID is smaller than the target stream top item"
            )
        if entries_added != -1 and len(stream) > entries_added:
            raise ErrorReply(
                "ERR The entries_added specified in XSETID is smaller than the target stream length"
            )
    stream.last_id = last_id
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_deleted != ZERO_ID:
        stream.max_deleted_id = max_deleted
    return OK


# -- XREAD, XREADGROUP -------------------------------------------------------------------

NEW_ENTRIES: Final[StreamID] = MAX_ID  # XREADGROUP's `>`, as Redis marks it


class _Read:
    """A parsed XREAD or XREADGROUP call."""

    def __init__(self, argv: list[bytes], *, group: bool) -> None:
        self.name = "xreadgroup" if group else "xread"
        self.timeout_ms: int | None = None  # None: no BLOCK
        self.count = 0
        self.noack = False
        self.group: bytes | None = None
        self.consumer = b""
        streams_at = 0
        index = 1
        while index < len(argv):
            more = len(argv) - index - 1
            option = argv[index].lower()
            if option == b"block" and more:
                index += 1
                self.timeout_ms = _block_timeout(argv[index])
            elif option == b"count" and more:
                index += 1
                self.count = max(parse_int(argv[index]), 0)
            elif option == b"streams" and more:
                streams_at = index + 1
                if (len(argv) - streams_at) % 2:
                    symbol = ">" if group else "$"
                    raise ErrorReply(
                        f"ERR Unbalanced '{self.name}' list of streams: for each stream key "
                        f"an ID or '{symbol}' must be specified."
                    )
                break
            elif option == b"group" and more >= 2:
                if not group:
                    raise ErrorReply(
                        "ERR The GROUP option is only supported by XREADGROUP. "
                        "You called XREAD instead."
                    )
                self.group, self.consumer = argv[index + 1], argv[index + 2]
                index += 2
            elif option == b"noack":
                if not group:
                    raise ErrorReply(
                        "ERR The NOACK option is only supported by XREADGROUP. "
                        "You called XREAD instead."
                    )
                self.noack = True
            else:
                raise ErrorReply(SYNTAX)
            index += 1
        if not streams_at:
            raise ErrorReply(SYNTAX)
        if group and self.group is None:
            raise ErrorReply("ERR Missing GROUP option for XREADGROUP")
        half = (len(argv) - streams_at) // 2
        self.keys = argv[streams_at : streams_at + half]
        self.id_args = argv[streams_at + half :]
        self.ids: list[StreamID] = []

    def resolve(self, db: Database) -> None:
        """Check the keys (type, group) and read the ids; `$` becomes the
        stream's last id now, as Redis rewrites it before blocking."""
        self.ids = []
        for key, arg in zip(self.keys, self.id_args, strict=True):
            stream = _get(db, key)
            if self.group is not None:
                self._group_of(key, stream)
            if arg == b"$":
                if self.group is not None:
                    raise ErrorReply(
                        "ERR The $ ID is meaningless in the context of XREADGROUP: you want "
                        "to read the history of this consumer by specifying a proper ID, or "
                        "use the > ID to get new messages. The $ ID would just return an "
                        "empty result set."
                    )
                self.ids.append(ZERO_ID if stream is None else stream.last_id)
            elif arg == b">":
                if self.group is None:
                    raise ErrorReply(
                        "ERR The > ID can be specified only when calling XREADGROUP using "
                        "the GROUP <group> <consumer> option."
                    )
                self.ids.append(NEW_ENTRIES)
            else:
                self.ids.append(parse_id(arg, strict=True)[0])

    def block(self) -> None:
        """Before waiting: as Redis blocks a client on each key once, with
        the first id given for it, a key named twice is served once when
        the call is woken (at once, it is served as often as it is named)."""
        firsts: dict[bytes, StreamID] = {}
        for key, wanted in zip(self.keys, self.ids, strict=True):
            firsts.setdefault(key, wanted)
        self.keys, self.ids = list(firsts), list(firsts.values())

    def _group_of(self, key: bytes, stream: Stream | None) -> Group:
        assert self.group is not None
        found = None if stream is None else stream.groups.get(self.group)
        if found is None:
            raise ErrorReply(
                f"NOGROUP No such key '{key.decode(errors='replace')}' or consumer group "
                f"'{self.group.decode(errors='replace')}' in XREADGROUP with GROUP option"
            )
        return found

    def serve(self, client: Client, db: Database) -> Reply | None:
        """The reply if any stream has something for this call, else None."""
        served: list[tuple[bytes, list[Reply]]] = []
        now = now_ms()
        for key, wanted in zip(self.keys, self.ids, strict=True):
            stream = _get(db, key)
            if self.group is not None:
                group = self._group_of(key, stream)  # 7.2 checks again when woken
            if stream is None:
                continue
            if self.group is None:
                top = stream.last_entry_id()
                if top is not None and top > wanted:
                    entries = stream.after(wanted, self.count)
                    served.append((key, [entry_reply(*entry) for entry in entries]))
                continue
            history = wanted != NEW_ENTRIES
            if not history:
                top = stream.last_entry_id()
                if top is None or top <= group.last_id:
                    continue
            consumer = group.consumer(self.consumer, now)
            assert consumer is not None
            consumer.seen_time = now
            if history:
                replies = _history(stream, consumer, wanted, self.count, now)
            else:
                replies = _deliver(stream, group, consumer, self.count, self.noack, now)
            if replies:
                consumer.active_time = now
            served.append((key, replies))
        if not served:
            return None
        return _map(client, served)


def _block_timeout(arg: bytes) -> int:
    """getTimeoutFromObjectOrReply in milliseconds; 0 is forever."""
    timeout = parse_int(arg, "ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise ErrorReply("ERR timeout is negative")
    return timeout


def _deliver(
    stream: Stream, group: Group, consumer: Consumer, count: int, noack: bool, now: int
) -> list[Reply]:
    """New entries for a group's consumer (`>`): the group's last id moves on,
    each entry goes into the pending lists unless NOACK."""
    replies: list[Reply] = []
    for entry_id, fields in stream.after(group.last_id, count):
        stream.deliver(group, entry_id)
        if not noack:
            nack = group.pel.get(entry_id)
            if nack is None:
                nack = group.pel[entry_id] = Nack(consumer, now)
            else:  # delivered before the group's id was set back: the new reader owns it
                if nack.consumer is not None:
                    nack.consumer.pel.pop(entry_id, None)
                nack.consumer, nack.delivery_time, nack.delivery_count = consumer, now, 1
            consumer.pel[entry_id] = nack
        replies.append(entry_reply(entry_id, fields))
    return replies


def _history(
    stream: Stream, consumer: Consumer, after: StreamID, count: int, now: int
) -> list[Reply]:
    """A consumer's pending entries with ids above `after`; deleted ones with
    null fields (streamReplyWithRangeFromConsumerPEL)."""
    replies: list[Reply] = []
    start = incr_id(after)
    if start is None:
        return replies
    for entry_id in consumer.pel.irange(start, MAX_ID):
        if count and len(replies) == count:
            break
        fields = stream.entries.get(entry_id)
        if fields is None:
            replies.append([format_id(entry_id), NULL_ARRAY])
            continue
        nack = consumer.pel[entry_id]
        nack.delivery_time = now
        nack.delivery_count += 1
        replies.append(entry_reply(entry_id, fields))
    return replies


async def _xread(client: Client, argv: list[bytes], *, group: bool) -> Reply:
    read = _Read(argv, group=group)

    def first(db: Database) -> Reply | None:
        read.resolve(db)
        return read.serve(client, db)

    blocking = client.server.blocking
    result = blocking.take_as(client, client.db, first)
    if result is not None:
        return result
    if read.timeout_ms is None or client.in_exec:
        return NULL_ARRAY
    read.block()

    def take(db: Database) -> Reply | None:
        if read.group is None and not any(
            isinstance(stream := db.peek(key), Stream)  # a look: serve() accesses it
            and (top := stream.last_entry_id()) is not None
            and top > wanted
            for key, wanted in zip(read.keys, read.ids, strict=True)
        ):
            return None  # XREAD waits on while its keys have nothing new
        return read.serve(client, db)

    seconds = None if read.timeout_ms == 0 else read.timeout_ms / 1000
    result = await blocking.wait(client, read.keys, take, seconds, kind=object)
    if isinstance(result, ErrorReply):
        raise result
    return result


@commands.command(
    "xread",
    arity=-4,
    flags=["readonly", "blocking"],
    find_keys=keys_after_keyword("streams", start=1),
    group="stream",
)
async def xread(client: Client, argv: list[bytes]) -> Reply:
    """Return never seen elements in multiple streams, with IDs greater than the
    ones reported by the caller for each stream. Can block."""
    return await _xread(client, argv, group=False)


@commands.command(
    "xreadgroup",
    arity=-7,
    flags=["write", "blocking"],
    find_keys=keys_after_keyword("streams", start=4),  # after GROUP group consumer
    group="stream",
)
async def xreadgroup(client: Client, argv: list[bytes]) -> Reply:
    """Return new entries from a stream using a consumer group, or access the history
    of the pending entries for a given consumer. Can block."""
    return await _xread(client, argv, group=True)


# -- XACK, XPENDING, XCLAIM, XAUTOCLAIM --------------------------------------------------


def _group_or_error(db: Database, key: bytes, name: bytes) -> tuple[Stream, Group]:
    stream = _get(db, key)
    group = None if stream is None else stream.groups.get(name)
    if stream is None or group is None:
        raise ErrorReply(
            f"NOGROUP No such key '{key.decode(errors='replace')}' or consumer group "
            f"'{name.decode(errors='replace')}'"
        )
    return stream, group


@commands.command("xack", arity=-4, flags=["write", "fast"], keys=(1, 1, 1), group="stream")
def xack(client: Client, argv: list[bytes]) -> Reply:
    """Marks a pending message as correctly processed, effectively removing it from the
    pending entries list of the consumer group."""
    db, key = client.db, argv[1]
    stream = _get(db, key)
    group = None if stream is None else stream.groups.get(argv[2])
    if group is None:
        return 0
    ids = [parse_id(arg, strict=True)[0] for arg in argv[3:]]
    acknowledged = sum(1 for entry_id in ids if group.acknowledge(entry_id))
    return acknowledged


@commands.command("xpending", arity=-3, flags=["readonly"], keys=(1, 1, 1), group="stream")
def xpending(client: Client, argv: list[bytes]) -> Reply:
    """Return information and entries from a stream consumer group pending entries list,
    that are messages fetched but never acknowledged."""
    summary = len(argv) == 3
    if not summary and not 6 <= len(argv) <= 9:
        raise ErrorReply(SYNTAX)
    min_idle = 0
    consumer_name = None
    if not summary:
        at = 3
        if argv[3].lower() == b"idle":
            min_idle = parse_int(argv[4])
            if len(argv) < 8:
                raise ErrorReply(SYNTAX)
            at = 5
        count = max(parse_int(argv[at + 2]), 0)
        start, end = _bounds(argv[at], argv[at + 1])
        if at + 3 < len(argv):
            consumer_name = argv[at + 3]
    stream, group = _group_or_error(client.db, argv[1], argv[2])
    del stream
    if summary:
        if not group.pel:
            return [0, None, None, NULL_ARRAY]
        owners = [
            [consumer.name, b"%d" % len(consumer.pel)]
            for consumer in group.sorted_consumers()
            if consumer.pel
        ]
        first, last = group.pel.peekitem(0)[0], group.pel.peekitem(-1)[0]
        return [len(group.pel), format_id(first), format_id(last), owners]
    pel = group.pel
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pel
    now = now_ms()
    found: list[Reply] = []
    for entry_id in pel.irange(start, end):
        if len(found) >= count:
            break
        nack: Nack = pel[entry_id]
        if min_idle and now - nack.delivery_time < min_idle:
            continue
        owner = nack.consumer.name if nack.consumer is not None else b""
        found.append(
            [format_id(entry_id), owner, max(now - nack.delivery_time, 0), nack.delivery_count]
        )
    return found


def _claim(
    stream: Stream,
    group: Group,
    consumer: Consumer,
    entry_id: StreamID,
    nack: Nack,
    delivery_time: int,
    *,
    count_it: bool,
) -> None:
    if nack.consumer is not consumer:
        if nack.consumer is not None:
            nack.consumer.pel.pop(entry_id, None)
        consumer.pel[entry_id] = nack
        nack.consumer = consumer
    nack.delivery_time = delivery_time
    if count_it:
        nack.delivery_count += 1


@commands.command("xclaim", arity=-6, flags=["write", "fast"], keys=(1, 1, 1), group="stream")
def xclaim(client: Client, argv: list[bytes]) -> Reply:
    """Changes (or acquires) ownership of a message in a consumer group, as if the message
    was delivered to the specified consumer."""
    db, key = client.db, argv[1]
    stream, group = _group_or_error(db, key, argv[2])
    min_idle = max(parse_int(argv[4], "ERR Invalid min-idle-time argument for XCLAIM"), 0)
    ids: list[StreamID] = []
    index = 5
    while index < len(argv):
        try:
            ids.append(parse_id(argv[index], strict=True)[0])
        except ErrorReply:
            break
        index += 1
    now = now_ms()
    delivery_time: int | None = None
    retry_count: int | None = None
    force = justid = False
    last_id = ZERO_ID
    while index < len(argv):
        more = len(argv) - 1 - index
        option = argv[index].lower()
        if option == b"force":
            force = True
        elif option == b"justid":
            justid = True
        elif option == b"idle" and more:
            index += 1
            idle = parse_int(argv[index], "ERR Invalid IDLE option argument for XCLAIM")
            delivery_time = now - idle
        elif option == b"time" and more:
            index += 1
            delivery_time = parse_int(argv[index], "ERR Invalid TIME option argument for XCLAIM")
        elif option == b"retrycount" and more:
            index += 1
            retry_count = parse_int(
                argv[index], "ERR Invalid RETRYCOUNT option argument for XCLAIM"
            )
        elif option == b"lastid" and more:
            index += 1
            last_id = parse_id(argv[index], strict=True)[0]
        else:
            option_text = argv[index].split(b"\0", 1)[0].decode(errors="replace")
            raise ErrorReply(f"ERR Unrecognized XCLAIM option '{option_text}'")
        index += 1
    if last_id > group.last_id:
        group.last_id = last_id
    if delivery_time is None or delivery_time < 0 or delivery_time > now:
        delivery_time = now
    claimed: list[Reply] = []
    consumer: Consumer | None = None
    for entry_id in ids:
        nack = group.pel.get(entry_id)
        if entry_id not in stream.entries:
            if nack is not None:  # gone from the stream: out of the pending lists too
                group.acknowledge(entry_id)
            continue
        if force and nack is None:
            nack = group.pel[entry_id] = Nack(None, now)
        if nack is None:
            continue
        if nack.consumer is not None and min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = group.consumer(argv[3], now)
            assert consumer is not None
            consumer.seen_time = now
        _claim(stream, group, consumer, entry_id, nack, delivery_time, count_it=not justid)
        if retry_count is not None and retry_count >= 0:
            nack.delivery_count = retry_count
        consumer.active_time = now
        if justid:
            claimed.append(format_id(entry_id))
        else:
            claimed.append(entry_reply(entry_id, stream.entries[entry_id]))
    return claimed


@commands.command("xautoclaim", arity=-6, flags=["write", "fast"], keys=(1, 1, 1), group="stream")
def xautoclaim(client: Client, argv: list[bytes]) -> Reply:
    """Changes (or acquires) ownership of messages in a consumer group, as if the messages
    were delivered to the specified consumer."""
    min_idle = max(parse_int(argv[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM"), 0)
    start, exclusive = parse_interval(argv[5], 0)
    if exclusive:
        following = incr_id(start)
        if following is None:
            raise ErrorReply("ERR invalid start ID for the interval")
        start = following
    count = 100
    justid = False
    index = 6
    while index < len(argv):
        option = argv[index].lower()
        if option == b"count" and index + 1 < len(argv):
            count = parse_int(argv[index + 1], "ERR COUNT must be > 0")
            if not 1 <= count <= LLONG_MAX // 16:
                raise ErrorReply("ERR COUNT must be > 0")
            if count >= TOO_MANY_TO_CLAIM:  # Redis fails to allocate room for the reply
                raise ErrorReply(
                    "ERR Insufficient memory, failed allocating transient memory, COUNT too high."
                )
            index += 1
        elif option == b"justid":
            justid = True
        else:
            raise ErrorReply(SYNTAX)
        index += 1
    db, key = client.db, argv[1]
    stream, group = _group_or_error(db, key, argv[2])
    now = now_ms()
    attempts = count * 10
    claimed: list[Reply] = []
    deleted: list[Reply] = []
    consumer: Consumer | None = None
    pending = list(group.pel.irange(start, MAX_ID))
    position = 0
    while attempts and count and position < len(pending):
        attempts -= 1
        entry_id = pending[position]
        position += 1
        nack: Nack = group.pel[entry_id]
        if entry_id not in stream.entries:
            group.acknowledge(entry_id)
            deleted.append(format_id(entry_id))
            count -= 1
            continue
        if min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = group.consumer(argv[3], now)
            assert consumer is not None
            consumer.seen_time = now
        _claim(stream, group, consumer, entry_id, nack, now, count_it=not justid)
        consumer.active_time = now
        if justid:
            claimed.append(format_id(entry_id))
        else:
            claimed.append(entry_reply(entry_id, stream.entries[entry_id]))
        count -= 1
    cursor = format_id(pending[position]) if position < len(pending) else b"0-0"
    return [cursor, claimed, deleted]


# -- XGROUP ---------------------------------------------------------------------------

XGROUP_HELP: Final = [
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]

_XGROUP_ARITY: Final = {
    b"create": -5,
    b"setid": -5,
    b"destroy": 4,
    b"createconsumer": 5,
    b"delconsumer": 5,
    b"help": 2,
}


def _check_subcommand_arity(argv: list[bytes], arities: dict[bytes, int], client: Client) -> bytes:
    sub = argv[1].lower()
    arity = arities.get(sub)
    if arity is None:
        raise client.server.unknown_subcommand(argv)
    if (arity > 0 and len(argv) != arity) or (arity < 0 and len(argv) < -arity):
        name = f"{argv[0].lower().decode(errors='replace')}|{sub.decode(errors='replace')}"
        raise ErrorReply(f"ERR wrong number of arguments for '{name}' command")
    return sub


@commands.command("xgroup", arity=-2, group="stream")
def xgroup(client: Client, argv: list[bytes]) -> Reply:
    """A container for consumer groups commands."""
    sub = _check_subcommand_arity(argv, _XGROUP_ARITY, client)
    if sub == b"help":
        return _help(argv, XGROUP_HELP)
    db, key, name = client.db, argv[2], argv[3]
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    index = 5
    while index < len(argv):
        option = argv[index].lower()
        if sub == b"create" and option == b"mkstream":
            mkstream = True
            index += 1
        elif sub in (b"create", b"setid") and option == b"entriesread" and index + 1 < len(argv):
            entries_read = parse_int(argv[index + 1])
            if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                raise ErrorReply("ERR value for ENTRIESREAD must be positive or -1")
            index += 2
        else:
            raise _subcommand_syntax(argv)
    stream = _get(db, key)
    group = None if stream is None else stream.groups.get(name)
    if not mkstream:
        if stream is None:
            raise ErrorReply(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE "
                "you may want to use the MKSTREAM option to create an empty stream "
                "automatically."
            )
        if group is None and sub in (b"setid", b"createconsumer", b"delconsumer"):
            raise ErrorReply(
                f"NOGROUP No such consumer group '{name.decode(errors='replace')}' "
                f"for key name '{key.decode(errors='replace')}'"
            )
    now = now_ms()
    if sub == b"create":
        if len(argv) > 8:
            raise _subcommand_syntax(argv)
        if argv[4] == b"$":
            last_id = ZERO_ID if stream is None else stream.last_id
        else:
            last_id = parse_id(argv[4], strict=True)[0]
        if stream is None:
            stream = Stream()
            db.set(key, stream)
        if name in stream.groups:
            raise ErrorReply("BUSYGROUP Consumer Group name already exists")
        stream.groups[name] = Group(name, last_id, entries_read)
        return OK
    assert stream is not None
    if sub == b"setid":
        if len(argv) not in (5, 7):
            raise _subcommand_syntax(argv)
        assert group is not None
        last_id = stream.last_id if argv[4] == b"$" else parse_id(argv[4])[0]
        group.last_id, group.entries_read = last_id, entries_read
        return OK
    if sub == b"destroy":
        if group is None:
            return 0
        del stream.groups[name]
        _signal_ready(db, key)  # wakes its blocked readers: NOGROUP
        return 1
    assert group is not None
    if sub == b"createconsumer":
        if argv[4] in group.consumers:
            return 0
        group.consumer(argv[4], now)
        return 1
    consumer = group.consumers.get(argv[4])
    if consumer is None:
        return 0
    pending = group.delete_consumer(consumer)
    return pending


# -- XINFO ----------------------------------------------------------------------------

XINFO_HELP: Final = [
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]

_XINFO_ARITY: Final = {b"consumers": 4, b"groups": 3, b"stream": -3, b"help": 2}


def _entry_or_null(stream: Stream, *, last: bool) -> Reply:
    entries = stream.range(ZERO_ID, MAX_ID, 1, reverse=last)
    return entry_reply(*entries[0]) if entries else None


@commands.command("xinfo", arity=-2, group="stream")
def xinfo(client: Client, argv: list[bytes]) -> Reply:
    """A container for stream introspection commands."""
    sub = _check_subcommand_arity(argv, _XINFO_ARITY, client)
    if sub == b"help":
        return _help(argv, XINFO_HELP)
    stream = _get(client.db, argv[2])
    if stream is None:
        raise ErrorReply(NO_SUCH_KEY)
    now = now_ms()
    if sub == b"consumers":
        group = stream.groups.get(argv[3])
        if group is None:
            raise ErrorReply(
                f"NOGROUP No such consumer group '{argv[3].decode(errors='replace')}' "
                f"for key name '{argv[2].decode(errors='replace')}'"
            )
        return [
            {
                b"name": consumer.name,
                b"pending": len(consumer.pel),
                b"idle": max(now - consumer.seen_time, 0),
                b"inactive": (
                    -1 if consumer.active_time == -1 else max(now - consumer.active_time, 0)
                ),
            }
            for consumer in group.sorted_consumers()
        ]
    if sub == b"groups":
        return [
            {
                b"name": group.name,
                b"consumers": len(group.consumers),
                b"pending": len(group.pel),
                b"last-delivered-id": format_id(group.last_id),
                b"entries-read": _entries_read(group),
                b"lag": stream.lag(group),
            }
            for group in _sorted_groups(stream)
        ]
    return _xinfo_stream(argv, stream)


def _entries_read(group: Group) -> int | None:
    return None if group.entries_read == INVALID_ENTRIES_READ else group.entries_read


def _sorted_groups(stream: Stream) -> list[Group]:
    return [stream.groups[name] for name in sorted(stream.groups)]


def _xinfo_stream(argv: list[bytes], stream: Stream) -> Reply:
    options = argv[3:]
    count = 10
    if options:
        if len(options) not in (1, 3) or options[0].lower() != b"full":
            raise _subcommand_syntax(argv)
        if len(options) == 3:
            if options[1].lower() != b"count":
                raise _subcommand_syntax(argv)
            count = max(parse_int(options[2]), 0)
    info: dict[bytes, Reply] = {
        b"length": len(stream),
        b"radix-tree-keys": stream.radix_tree_keys,
        b"radix-tree-nodes": stream.radix_tree_nodes,
        b"last-generated-id": format_id(stream.last_id),
        b"max-deleted-entry-id": format_id(stream.max_deleted_id),
        b"entries-added": stream.entries_added,
        b"recorded-first-entry-id": format_id(stream.first_id),
    }
    if not options:
        info[b"groups"] = len(stream.groups)
        info[b"first-entry"] = _entry_or_null(stream, last=False)
        info[b"last-entry"] = _entry_or_null(stream, last=True)
        return info
    info[b"entries"] = [entry_reply(*entry) for entry in stream.range(ZERO_ID, MAX_ID, count)]
    groups: list[Reply] = []
    for group in _sorted_groups(stream):
        pending = [
            [format_id(entry_id), _owner(nack), nack.delivery_time, nack.delivery_count]
            for entry_id, nack in _first(group.pel, count)
        ]
        consumers = [
            {
                b"name": consumer.name,
                b"seen-time": consumer.seen_time,
                b"active-time": consumer.active_time,
                b"pel-count": len(consumer.pel),
                b"pending": [
                    [format_id(entry_id), nack.delivery_time, nack.delivery_count]
                    for entry_id, nack in _first(consumer.pel, count)
                ],
            }
            for consumer in group.sorted_consumers()
        ]
        groups.append(
            {
                b"name": group.name,
                b"last-delivered-id": format_id(group.last_id),
                b"entries-read": _entries_read(group),
                b"lag": stream.lag(group),
                b"pel-count": len(group.pel),
                b"pending": pending,
                b"consumers": consumers,
            }
        )
    info[b"groups"] = groups
    return info


def _owner(nack: Nack) -> bytes:
    return b"" if nack.consumer is None else nack.consumer.name


def _first(pel: Any, count: int) -> list[tuple[StreamID, Nack]]:
    found: list[tuple[StreamID, Nack]] = []
    for entry_id in pel:
        if count and len(found) >= count:
            break
        found.append((entry_id, pel[entry_id]))
    return found

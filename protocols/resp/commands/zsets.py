# Sorted set commands on ZSet values (see _zset.py): ZADD and ZINCRBY, scores
# and ranks, ranges by rank, score and lex (ZRANGE and its older forms,
# ZRANGESTORE, counts and removals), ZPOPMIN/ZPOPMAX/ZMPOP, the algebra
# (ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD), ZRANDMEMBER, ZSCAN.
# The blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) build on pop_first() and
# pop_reply() here.
from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, cast

from .._app import RespApp, keys_counted, wrong_arity
from .._args import SYNTAX, parse_int, parse_mpop, parse_timeout
from .._blocking import Take
from .._client import Client
from .._keyspace import WRONGTYPE, Database
from .._reply import NULL_ARRAY, ErrorReply, Reply
from .._zset import (
    LexRange,
    Score,
    ScoreRange,
    ZSet,
    parse_lex_range,
    parse_score,
    parse_score_range,
    scan_score,
)
from .keys import _cursor, scan_items

if TYPE_CHECKING:
    pass

__all__ = ["commands", "pairs_reply", "pop_first", "pop_reply"]

commands = RespApp(builtins=False)

Pairs = list[tuple[bytes, float]]  # (member, score)
NAN_SCORE: Final = "ERR resulting score is not a number (NaN)"
MUST_BE_POSITIVE: Final = "ERR value is out of range, must be positive"
LONG_MAX: Final = 2**63 - 1


def _get_zset(db: Database, key: bytes) -> ZSet | None:
    value: ZSet | None = db.get_typed(key, ZSet)
    return value


def _put(db: Database, key: bytes, zset: ZSet) -> None:
    """Store a new sorted set at `key` (replacing any value, and its TTL)."""
    db.set(key, zset)


def pairs_reply(client: Client, pairs: Pairs, withscores: bool) -> list[Reply]:
    """Members, or with scores: RESP2 a flat array member, score, ...;
    RESP3 an array of [member, score] pairs."""
    if not withscores:
        return [member for member, _ in pairs]
    if client.protocol >= 3:
        return [[member, Score(score)] for member, score in pairs]
    flat: list[Reply] = []
    for member, score in pairs:
        flat += (member, Score(score))
    return flat


# -- ZADD, ZINCRBY, ZREM --------------------------------------------------------


def _zadd(client: Client, argv: list[bytes], *, incr: bool) -> Reply:
    """zaddGenericCommand: ZADD's options are read for ZINCRBY too."""
    nx = xx = gt = lt = ch = False
    index = 2
    while index < len(argv):
        option = argv[index].lower()
        if option == b"nx":
            nx = True
        elif option == b"xx":
            xx = True
        elif option == b"ch":
            ch = True
        elif option == b"incr":
            incr = True
        elif option == b"gt":
            gt = True
        elif option == b"lt":
            lt = True
        else:
            break
        index += 1
    elements = len(argv) - index
    if elements % 2 or not elements:
        raise ErrorReply(SYNTAX)
    if nx and xx:
        raise ErrorReply("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise ErrorReply("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and elements > 2:
        raise ErrorReply("ERR INCR option supports a single increment-element pair")
    scores = [parse_score(argv[at]) for at in range(index, len(argv), 2)]
    db, key = client.db, argv[1]
    zset = _get_zset(db, key)
    added = updated = processed = 0
    result = 0.0
    if zset is None and not xx:
        zset = ZSet(len(scores), len(argv[index + 1]))
        _put(db, key, zset)
    elif zset is not None:
        zset.expect(len(scores))
    if zset is not None:
        for score, member in zip(scores, argv[index + 1 :: 2], strict=True):
            current = zset.score(member)
            if current is None:
                if xx:
                    continue
                zset.set(member, score)
                added += 1
            else:
                if nx:
                    continue
                if incr:
                    score += current
                    if math.isnan(score):
                        raise ErrorReply(NAN_SCORE)
                if (lt and score >= current) or (gt and score <= current):
                    continue
                if score != current:
                    zset.set(member, score)
                    updated += 1
            processed += 1
            result = score
        if added or updated:
            db.touch(key)
    if incr:
        return Score(result) if processed else None
    return added + updated if ch else added


@commands.command(
    "zadd", arity=-4, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="sortedset"
)
def zadd(client: Client, argv: list[bytes]) -> Reply:
    """Add one or more members to a sorted set, or update its score if it already exists."""
    return _zadd(client, argv, incr=False)


@commands.command(
    "zincrby", arity=4, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="sortedset"
)
def zincrby(client: Client, argv: list[bytes]) -> Reply:
    """Increment the score of a member in a sorted set."""
    return _zadd(client, argv, incr=True)


@commands.command("zrem", arity=-3, flags=["write", "fast"], keys=(1, 1, 1), group="sortedset")
def zrem(client: Client, argv: list[bytes]) -> Reply:
    """Remove one or more members from a sorted set."""
    db, key = client.db, argv[1]
    zset = _get_zset(db, key)
    if zset is None:
        return 0
    removed = 0
    for member in argv[2:]:
        removed += zset.remove(member)
        if not zset:
            break
    if removed:
        db.touch(key)
        db.drop_if_empty(key)
    return removed


# -- scores and ranks ----------------------------------------------------------


@commands.command("zcard", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="sortedset")
def zcard(client: Client, argv: list[bytes]) -> Reply:
    """Get the number of members in a sorted set."""
    return len(_get_zset(client.db, argv[1]) or ())


@commands.command("zscore", arity=3, flags=["readonly", "fast"], keys=(1, 1, 1), group="sortedset")
def zscore(client: Client, argv: list[bytes]) -> Reply:
    """Get the score associated with the given member in a sorted set."""
    zset = _get_zset(client.db, argv[1])
    score = None if zset is None else zset.score(argv[2])
    return None if score is None else Score(score)


@commands.command(
    "zmscore", arity=-3, flags=["readonly", "fast"], keys=(1, 1, 1), group="sortedset"
)
def zmscore(client: Client, argv: list[bytes]) -> Reply:
    """Get the score associated with the given members in a sorted set."""
    scores = (_get_zset(client.db, argv[1]) or ZSet()).scores
    found = (scores.get(member) for member in argv[2:])
    return [None if score is None else Score(score) for score in found]


def _rank(client: Client, argv: list[bytes], *, reverse: bool) -> Reply:
    if len(argv) > 4:
        raise wrong_arity(argv[0].lower().decode(errors="replace"))
    withscore = False
    if len(argv) == 4:
        if argv[3].lower() != b"withscore":
            raise ErrorReply(SYNTAX)
        withscore = True
    missing = NULL_ARRAY if withscore else None
    zset = _get_zset(client.db, argv[1])
    if zset is None:
        return missing
    rank = zset.rank(argv[2])
    if rank is None:
        return missing
    if reverse:
        rank = len(zset) - 1 - rank
    if withscore:
        return [rank, Score(zset.scores[argv[2]])]
    return rank


# ZRANK and ZREVRANK take WITHSCORE since Redis 7.2 (arity 3 before)
@commands.command("zrank", arity=-3, flags=["readonly", "fast"], keys=(1, 1, 1), group="sortedset")
def zrank(client: Client, argv: list[bytes]) -> Reply:
    """Determine the index of a member in a sorted set."""
    return _rank(client, argv, reverse=False)


@commands.command(
    "zrevrank", arity=-3, flags=["readonly", "fast"], keys=(1, 1, 1), group="sortedset"
)
def zrevrank(client: Client, argv: list[bytes]) -> Reply:
    """Determine the index of a member in a sorted set, with scores ordered from high to low."""
    return _rank(client, argv, reverse=True)


@commands.command("zcount", arity=4, flags=["readonly", "fast"], keys=(1, 1, 1), group="sortedset")
def zcount(client: Client, argv: list[bytes]) -> Reply:
    """Count the members in a sorted set with scores within the given values."""
    spec = parse_score_range(argv[2], argv[3])
    zset = _get_zset(client.db, argv[1])
    if zset is None:
        return 0
    start, stop = zset.score_span(spec)
    return stop - start


@commands.command(
    "zlexcount", arity=4, flags=["readonly", "fast"], keys=(1, 1, 1), group="sortedset"
)
def zlexcount(client: Client, argv: list[bytes]) -> Reply:
    """Count the number of members in a sorted set between a given lexicographical range."""
    spec = parse_lex_range(argv[2], argv[3])
    zset = _get_zset(client.db, argv[1])
    if zset is None:
        return 0
    start, stop = zset.lex_span(spec)
    return stop - start


# -- ranges ------------------------------------------------------------------------

BY_RANK: Final = "rank"
BY_SCORE: Final = "score"
BY_LEX: Final = "lex"


def _select(
    zset: ZSet, by: str, spec: object, reverse: bool, offset: int, limit: int
) -> tuple[Pairs, int]:
    """The members a range selects, in reply order, and a size hint for a
    ZRANGESTORE destination (the rank range's length, else 0)."""
    if by == BY_RANK:
        start, end = cast("tuple[int, int]", spec)
        span = zset.rank_span(start, end)
        if span is None:
            return [], 0
        first, stop = span
        if reverse:
            length = len(zset)
            return zset.items_reversed(length - stop, length - first), stop - first
        return zset.items(first, stop), stop - first
    if offset < 0 or (offset > 0 and offset >= len(zset)):
        return [], 0
    if by == BY_SCORE:
        low, high = zset.score_span(cast("ScoreRange", spec))
    else:
        low, high = zset.lex_span(cast("LexRange", spec), reverse=reverse)
    if reverse:
        top = high - offset
        bottom = low if limit < 0 else max(low, top - limit)
        return (zset.items_reversed(bottom, top) if bottom < top else []), 0
    first = low + offset
    stop = high if limit < 0 else min(high, first + limit)
    return (zset.items(first, stop) if first < stop else []), 0


def _zrange(
    client: Client,
    argv: list[bytes],
    *,
    source: int = 1,
    store: bool = False,
    by: str | None = None,
    reverse: bool | None = None,
) -> Reply:
    """zrangeGenericCommand: ZRANGE, ZRANGESTORE and the older range commands,
    which fix the kind of range (`by`) and the direction (`reverse`)."""
    withscores = False
    offset, limit = 0, -1
    index = source + 3
    while index < len(argv):
        option = argv[index].lower()
        if not store and option == b"withscores":
            withscores = True
        elif option == b"limit" and len(argv) - index - 1 >= 2:
            offset = parse_int(argv[index + 1])
            limit = parse_int(argv[index + 2])
            index += 2
        elif reverse is None and option == b"rev":
            reverse = True
        elif by is None and option == b"bylex":
            by = BY_LEX
        elif by is None and option == b"byscore":
            by = BY_SCORE
        else:
            raise ErrorReply(SYNTAX)
        index += 1
    reverse = bool(reverse)
    by = by or BY_RANK
    if limit != -1 and by == BY_RANK:
        raise ErrorReply(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    if withscores and by == BY_LEX:
        raise ErrorReply("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    low, high = argv[source + 1], argv[source + 2]
    if reverse and by != BY_RANK:
        low, high = high, low  # given as max, min
    spec: object
    if by == BY_RANK:
        spec = (parse_int(low), parse_int(high))
    elif by == BY_SCORE:
        spec = parse_score_range(low, high)
    else:
        spec = parse_lex_range(low, high)
    db = client.db
    zset = _get_zset(db, argv[source])
    pairs, size_hint = ([], 0) if zset is None else _select(zset, by, spec, reverse, offset, limit)
    if not store:
        return pairs_reply(client, pairs, withscores)
    target = argv[1]
    if not pairs:
        db.delete(target)
        return 0
    result = ZSet(size_hint)
    for member, score in pairs:
        result.set(member, score)
    _put(db, target, result)
    return len(result)


@commands.command("zrange", arity=-4, flags=["readonly"], keys=(1, 1, 1), group="sortedset")
def zrange(client: Client, argv: list[bytes]) -> Reply:
    """Return a range of members in a sorted set."""
    return _zrange(client, argv)


@commands.command(
    "zrangestore", arity=-5, flags=["write", "denyoom"], keys=(1, 2, 1), group="sortedset"
)
def zrangestore(client: Client, argv: list[bytes]) -> Reply:
    """Store a range of members from sorted set into another key."""
    return _zrange(client, argv, source=2, store=True)


@commands.command("zrevrange", arity=-4, flags=["readonly"], keys=(1, 1, 1), group="sortedset")
def zrevrange(client: Client, argv: list[bytes]) -> Reply:
    """Return a range of members in a sorted set, by index, with scores ordered from high to low."""
    return _zrange(client, argv, by=BY_RANK, reverse=True)


@commands.command("zrangebyscore", arity=-4, flags=["readonly"], keys=(1, 1, 1), group="sortedset")
def zrangebyscore(client: Client, argv: list[bytes]) -> Reply:
    """Return a range of members in a sorted set, by score."""
    return _zrange(client, argv, by=BY_SCORE, reverse=False)


@commands.command(
    "zrevrangebyscore", arity=-4, flags=["readonly"], keys=(1, 1, 1), group="sortedset"
)
def zrevrangebyscore(client: Client, argv: list[bytes]) -> Reply:
    """Return a range of members in a sorted set, by score, with scores ordered from high to low."""
    return _zrange(client, argv, by=BY_SCORE, reverse=True)


@commands.command("zrangebylex", arity=-4, flags=["readonly"], keys=(1, 1, 1), group="sortedset")
def zrangebylex(client: Client, argv: list[bytes]) -> Reply:
    """Return a range of members in a sorted set, by lexicographical range."""
    return _zrange(client, argv, by=BY_LEX, reverse=False)


@commands.command("zrevrangebylex", arity=-4, flags=["readonly"], keys=(1, 1, 1), group="sortedset")
def zrevrangebylex(client: Client, argv: list[bytes]) -> Reply:
    """Return a range of members in a sorted set, by lexicographical range, ordered from higher
    to lower strings."""
    return _zrange(client, argv, by=BY_LEX, reverse=True)


def _remove_span(client: Client, key: bytes, span: tuple[int, int] | None, zset: ZSet) -> int:
    removed = 0 if span is None else zset.delete_positions(*span)
    if removed:
        client.db.touch(key)
        client.db.drop_if_empty(key)
    return removed


@commands.command("zremrangebyrank", arity=4, flags=["write"], keys=(1, 1, 1), group="sortedset")
def zremrangebyrank(client: Client, argv: list[bytes]) -> Reply:
    """Remove all members in a sorted set within the given indexes."""
    start, end = parse_int(argv[2]), parse_int(argv[3])
    zset = _get_zset(client.db, argv[1])
    if zset is None:
        return 0
    return _remove_span(client, argv[1], zset.rank_span(start, end), zset)


@commands.command("zremrangebyscore", arity=4, flags=["write"], keys=(1, 1, 1), group="sortedset")
def zremrangebyscore(client: Client, argv: list[bytes]) -> Reply:
    """Remove all members in a sorted set within the given scores."""
    spec = parse_score_range(argv[2], argv[3])
    zset = _get_zset(client.db, argv[1])
    if zset is None:
        return 0
    return _remove_span(client, argv[1], zset.score_span(spec), zset)


@commands.command("zremrangebylex", arity=4, flags=["write"], keys=(1, 1, 1), group="sortedset")
def zremrangebylex(client: Client, argv: list[bytes]) -> Reply:
    """Remove all members in a sorted set between the given lexicographical range."""
    spec = parse_lex_range(argv[2], argv[3])
    zset = _get_zset(client.db, argv[1])
    if zset is None:
        return 0
    return _remove_span(client, argv[1], zset.lex_span(spec), zset)


# -- pops ------------------------------------------------------------------------------


def pop_first(
    db: Database, keys: list[bytes], *, highest: bool, count: int
) -> tuple[bytes, Pairs] | None:
    """genericZpopCommand's work: the first of `keys` that exists gives up to
    `count` members, lowest scores first (highest first if `highest`); None
    if no key exists. WRONGTYPE if the first existing key is not a sorted set.
    The blocking pops call this once a key is ready."""
    for key in keys:
        zset = _get_zset(db, key)
        if zset is None:
            continue
        popped = [zset.pop(highest) for _ in range(min(count, len(zset)))]
        if popped:
            db.touch(key)
            db.drop_if_empty(key)
        return key, popped
    return None


def pop_reply(key: bytes | None, popped: Pairs, *, nested: bool) -> list[Reply]:
    """The reply of a pop: with `key` (ZMPOP, BZMPOP when `nested`; BZPOPMIN,
    BZPOPMAX when not) or without (ZPOPMIN, ZPOPMAX); `nested` pairs are
    [member, score] arrays, else the array is flat."""
    if nested:
        pairs: list[Reply] = [[member, Score(score)] for member, score in popped]
        return pairs if key is None else [key, pairs]
    flat: list[Reply] = [] if key is None else [key]
    for member, score in popped:
        flat += (member, Score(score))
    return flat


def _zpop(client: Client, argv: list[bytes], *, highest: bool) -> Reply:
    if len(argv) > 3:
        raise ErrorReply(SYNTAX)
    count = None
    if len(argv) == 3:
        count = parse_int(argv[2], MUST_BE_POSITIVE)
        if count < 0:
            raise ErrorReply(MUST_BE_POSITIVE)
    found = pop_first(client.db, argv[1:2], highest=highest, count=1 if count is None else count)
    if found is None:
        return []
    # RESP3 nests the pairs when a count was given
    return pop_reply(None, found[1], nested=client.protocol >= 3 and count is not None)


@commands.command("zpopmin", arity=-2, flags=["write", "fast"], keys=(1, 1, 1), group="sortedset")
def zpopmin(client: Client, argv: list[bytes]) -> Reply:
    """Remove and return members with the lowest scores in a sorted set."""
    return _zpop(client, argv, highest=False)


@commands.command("zpopmax", arity=-2, flags=["write", "fast"], keys=(1, 1, 1), group="sortedset")
def zpopmax(client: Client, argv: list[bytes]) -> Reply:
    """Remove and return members with the highest scores in a sorted set."""
    return _zpop(client, argv, highest=True)


@commands.command("zmpop", arity=-4, flags=["write"], find_keys=keys_counted(1), group="sortedset")
def zmpop(client: Client, argv: list[bytes]) -> Reply:
    """Remove and return members with scores in a sorted set."""
    keys, highest, count = parse_mpop(argv, 1, (b"min", b"max"))
    found = pop_first(client.db, keys, highest=highest, count=count)
    if found is None:
        return NULL_ARRAY
    return pop_reply(found[0], found[1], nested=True)


# -- union, intersection, difference ------------------------------------------------

UNION: Final = "union"
INTER: Final = "inter"
DIFF: Final = "diff"


def _aggregate(total: float, value: float, how: bytes) -> float:
    if how == b"sum":
        total += value
        return 0.0 if math.isnan(total) else total
    if how == b"min":
        return value if value < total else total
    return value if value > total else total


def _combine(
    client: Client,
    argv: list[bytes],
    *,
    op: str,
    numkeys_index: int,
    store: bool = False,
    cardinality: bool = False,
) -> Reply:
    """zunionInterDiffGenericCommand. Plain sets count as sorted sets whose
    scores are all 1."""
    name = argv[0].lower().decode(errors="replace")
    numkeys = parse_int(argv[numkeys_index])
    if numkeys < 1:
        raise ErrorReply(f"ERR at least 1 input key is needed for '{name}' command")
    first = numkeys_index + 1
    if numkeys > len(argv) - first:
        raise ErrorReply(SYNTAX)
    db = client.db
    sources: list[Mapping[bytes, float]] = []
    for key in argv[first : first + numkeys]:
        stored = db.get(key)
        if stored is None:
            sources.append({})
        elif isinstance(stored, ZSet):
            sources.append(stored.scores)
        elif isinstance(stored, set):
            sources.append(dict.fromkeys(stored, 1.0))
        else:
            raise ErrorReply(WRONGTYPE)
    weights = [1.0] * numkeys
    how, withscores, limit = b"sum", False, 0
    index = first + numkeys
    while index < len(argv):
        remaining = len(argv) - index
        option = argv[index].lower()
        if op != DIFF and not cardinality and remaining > numkeys and option == b"weights":
            weights = [
                parse_score(arg, "ERR weight value is not a float")
                for arg in argv[index + 1 : index + 1 + numkeys]
            ]
            index += 1 + numkeys
        elif op != DIFF and not cardinality and remaining >= 2 and option == b"aggregate":
            how = argv[index + 1].lower()
            if how not in (b"sum", b"min", b"max"):
                raise ErrorReply(SYNTAX)
            index += 2
        elif not store and not cardinality and option == b"withscores":
            withscores = True
            index += 1
        elif cardinality and remaining >= 2 and option == b"limit":
            limit = parse_int(argv[index + 1], "ERR LIMIT can't be negative")
            if limit < 0:
                raise ErrorReply("ERR LIMIT can't be negative")
            index += 2
        else:
            raise ErrorReply(SYNTAX)
    weighted = list(zip(sources, weights, strict=True))
    if op != DIFF:
        weighted.sort(key=lambda source: len(source[0]))  # smallest first, as Redis
    result: dict[bytes, float] = {}
    if op == INTER:
        (smallest, weight), others = weighted[0], weighted[1:]
        found = 0
        for member, score in smallest.items():
            total = weight * score
            if math.isnan(total):
                total = 0.0
            for source, other_weight in others:
                value = source.get(member)
                if value is None:
                    break
                total = _aggregate(total, value * other_weight, how)
            else:
                if cardinality:
                    found += 1
                    if found == limit:
                        break
                else:
                    result[member] = total
        if cardinality:
            return found
    elif op == UNION:
        for source, weight in weighted:
            for member, score in source.items():
                value = weight * score
                if math.isnan(value):
                    value = 0.0
                so_far = result.get(member)
                result[member] = value if so_far is None else _aggregate(so_far, value, how)
    else:
        base, others_only = weighted[0][0], [source for source, _ in weighted[1:]]
        result = {
            member: score
            for member, score in base.items()
            if not any(member in source for source in others_only)
        }
    if store:
        target = argv[1]
        if not result:
            db.delete(target)
            return 0
        _put(db, target, ZSet.from_scores(result))
        return len(result)
    ordered = sorted((score, member) for member, score in result.items())
    return pairs_reply(client, [(member, score) for score, member in ordered], withscores)


@commands.command(
    "zunion", arity=-3, flags=["readonly"], find_keys=keys_counted(1), group="sortedset"
)
def zunion(client: Client, argv: list[bytes]) -> Reply:
    """Add multiple sorted sets."""
    return _combine(client, argv, op=UNION, numkeys_index=1)


@commands.command(
    "zinter", arity=-3, flags=["readonly"], find_keys=keys_counted(1), group="sortedset"
)
def zinter(client: Client, argv: list[bytes]) -> Reply:
    """Intersect multiple sorted sets."""
    return _combine(client, argv, op=INTER, numkeys_index=1)


@commands.command(
    "zdiff", arity=-3, flags=["readonly"], find_keys=keys_counted(1), group="sortedset"
)
def zdiff(client: Client, argv: list[bytes]) -> Reply:
    """Subtract multiple sorted sets."""
    return _combine(client, argv, op=DIFF, numkeys_index=1)


@commands.command(
    "zintercard", arity=-3, flags=["readonly"], find_keys=keys_counted(1), group="sortedset"
)
def zintercard(client: Client, argv: list[bytes]) -> Reply:
    """Intersect multiple sorted sets and return the cardinality of the result."""
    return _combine(client, argv, op=INTER, numkeys_index=1, cardinality=True)


@commands.command(
    "zunionstore",
    arity=-4,
    flags=["write", "denyoom"],
    keys=(1, 1, 1),
    find_keys=keys_counted(2, fixed=(1,)),
    group="sortedset",
)
def zunionstore(client: Client, argv: list[bytes]) -> Reply:
    """Add multiple sorted sets and store the resulting sorted set in a new key."""
    return _combine(client, argv, op=UNION, numkeys_index=2, store=True)


@commands.command(
    "zinterstore",
    arity=-4,
    flags=["write", "denyoom"],
    keys=(1, 1, 1),
    find_keys=keys_counted(2, fixed=(1,)),
    group="sortedset",
)
def zinterstore(client: Client, argv: list[bytes]) -> Reply:
    """Intersect multiple sorted sets and store the resulting sorted set in a new key."""
    return _combine(client, argv, op=INTER, numkeys_index=2, store=True)


@commands.command(
    "zdiffstore",
    arity=-4,
    flags=["write", "denyoom"],
    keys=(1, 1, 1),
    find_keys=keys_counted(2, fixed=(1,)),
    group="sortedset",
)
def zdiffstore(client: Client, argv: list[bytes]) -> Reply:
    """Subtract multiple sorted sets and store the resulting sorted set in a new key."""
    return _combine(client, argv, op=DIFF, numkeys_index=2, store=True)


# -- ZRANDMEMBER, ZSCAN ----------------------------------------------------------------


@commands.command("zrandmember", arity=-2, flags=["readonly"], keys=(1, 1, 1), group="sortedset")
def zrandmember(client: Client, argv: list[bytes]) -> Reply:
    """Get one or multiple random members from a sorted set."""
    if len(argv) < 3:
        zset = _get_zset(client.db, argv[1])
        return None if zset is None else zset.random_member()[0]
    count = parse_int(argv[2])
    if count < -LONG_MAX:
        raise ErrorReply(
            f"ERR value is out of range, value must between {-LONG_MAX} and {LONG_MAX}"
        )
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
        raise ErrorReply(SYNTAX)
    withscores = len(argv) == 4
    if withscores and not -(LONG_MAX // 2) <= count <= LONG_MAX // 2:
        raise ErrorReply("ERR value is out of range")
    zset = _get_zset(client.db, argv[1])
    if zset is None or count == 0:
        return []
    if count < 0 or count == 1:  # repeats allowed, in random order
        pairs = [zset.random_member() for _ in range(-count if count < 0 else 1)]
    elif count >= len(zset):  # all of it, as Redis iterates a sorted set: from the top
        pairs = zset.items_reversed(0, len(zset))
    else:
        positions = random.sample(range(len(zset)), count)
        if zset.listpack:
            positions.sort()  # Redis samples a listpack in its order
        pairs = [zset.at(position) for position in positions]
    return pairs_reply(client, pairs, withscores)


@commands.command("zscan", arity=-3, flags=["readonly"], keys=(1, 1, 1), group="sortedset")
def zscan(client: Client, argv: list[bytes]) -> Reply:
    """Incrementally iterate sorted sets elements and associated scores."""
    _cursor(argv[2])
    zset = _get_zset(client.db, argv[1])
    if zset is None:
        return [b"0", []]
    # a listpack comes in one page, in order (its scores as stored); a
    # skiplist in pages of COUNT
    members = dict.fromkeys(zset) if zset.listpack else zset.scores
    cursor, found = scan_items(client, members, argv[2], argv[3:])
    scores = zset.scores
    flat: list[Reply] = []
    for member in found:
        flat += (member, scan_score(scores[member], zset.listpack))
    return [cursor, flat]


# -- blocking pops ------------------------------------------------------------------


async def _block_for(client: Client, keys: list[bytes], seconds: float | None, take: Take) -> Reply:
    """take's reply now, or once one of `keys` holds members (the null reply
    after `seconds`, or at once inside MULTI, where nothing blocks)."""
    result = client.server.blocking.take_as(client, client.db, take)
    if result is not None:
        return result
    if client.in_exec:
        return NULL_ARRAY
    return await client.server.blocking.wait(client, keys, take, seconds, kind=ZSet)


async def _bzpop(client: Client, argv: list[bytes], *, highest: bool) -> Reply:
    keys = argv[1:-1]
    seconds = parse_timeout(argv[-1])

    def take(db: Database) -> Reply | None:
        found = pop_first(db, keys, highest=highest, count=1)
        return None if found is None else pop_reply(found[0], found[1], nested=False)

    return await _block_for(client, keys, seconds, take)


@commands.command(
    "bzpopmin",
    arity=-3,
    flags=["write", "noscript", "blocking", "fast"],
    keys=(1, -2, 1),
    group="sortedset",
)
async def bzpopmin(client: Client, argv: list[bytes]) -> Reply:
    """Remove and return the member with the lowest score from one of the sorted
    sets, or block until one is available."""
    return await _bzpop(client, argv, highest=False)


@commands.command(
    "bzpopmax",
    arity=-3,
    flags=["write", "noscript", "blocking", "fast"],
    keys=(1, -2, 1),
    group="sortedset",
)
async def bzpopmax(client: Client, argv: list[bytes]) -> Reply:
    """Remove and return the member with the highest score from one of the sorted
    sets, or block until one is available."""
    return await _bzpop(client, argv, highest=True)


@commands.command(
    "bzmpop",
    arity=-5,
    flags=["write", "blocking"],
    find_keys=keys_counted(2),
    group="sortedset",
)
async def bzmpop(client: Client, argv: list[bytes]) -> Reply:
    """Remove and return members with scores in a sorted set, or block until
    one is available."""
    keys, highest, count = parse_mpop(argv, 2, (b"min", b"max"))
    seconds = parse_timeout(argv[1])  # after the other arguments, as Redis reads them

    def take(db: Database) -> Reply | None:
        found = pop_first(db, keys, highest=highest, count=count)
        return None if found is None else pop_reply(found[0], found[1], nested=True)

    return await _block_for(client, keys, seconds, take)

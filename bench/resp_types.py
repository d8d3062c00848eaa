# RESP throughput of commands beyond GET/SET, run by hand from the repository
# root: `.venv/bin/python -m bench.resp_types`.
#
# netsvc's RESP plugin and a real redis-server (Debian), one after the other
# in each round, driven by redis-benchmark's arbitrary-command mode (`-c 50
# -r 100000`, __rand_int__ replaced by a random number) for ZADD,
# ZRANGEBYSCORE (on a sorted set of 10,000 members), XADD, EVALSHA of
# `return 1` and FCALL of a function whose body is the same. Prints
# requests/s, the server's CPU microseconds per request, netsvc/redis for
# each command, and each server's FCALL/EVALSHA: what a function costs
# beside the same script.
#
# `--keyspace` measures in-process instead, no server: what recording each
# key's access time (OBJECT IDLETIME/FREQ) costs the keyspace's hottest
# calls, Database.set and get_typed (best of --repeat timeit runs, ns per
# call, the best of --rounds x --repeat), and 100,000 small keys' memory
# (tracemalloc, bytes per key), beside a Database that records none.
from __future__ import annotations

import argparse
import gc
import os
import timeit
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import redis

from bench._common import add_round_options, chosen_servers, median
from bench.resp import redis_benchmark, running
from protocols.resp._keyspace import WRONGTYPE, Database, Value
from protocols.resp._reply import ErrorReply

BODY = "return 1"
LIBRARY = f"#!lua name=bench\nredis.register_function('trivial', function(keys, args) {BODY} end)"
ZSET_MEMBERS = 10_000


def workloads(sha: str) -> dict[str, list[str]]:
    """Each row's command, as redis-benchmark takes it."""
    return {
        "ZADD": ["ZADD", "myz", "__rand_int__", "m:__rand_int__"],
        "ZRANGEBYSCORE": ["ZRANGEBYSCORE", "zr", "__rand_int__", "+inf", "LIMIT", "0", "10"],
        "XADD": ["XADD", "mystream", "*", "field", "__rand_int__"],
        "EVALSHA": ["EVALSHA", sha, "0"],
        "FCALL": ["FCALL", "trivial", "0"],
    }


def prepare(port: int) -> str:
    """The data and code the rows use: a sorted set, the script, the library."""
    client = redis.Redis(port=port)
    try:
        client.flushall()
        client.function_flush()
        with client.pipeline(transaction=False) as pipe:
            for start in range(0, ZSET_MEMBERS, 1000):
                pipe.zadd("zr", {f"m{i}": i * 10 for i in range(start, start + 1000)})
            pipe.execute()
        client.function_load(LIBRARY)
        sha: Any = client.script_load(BODY)  # bytes: the client does not decode
        return sha.decode() if isinstance(sha, bytes) else str(sha)
    finally:
        client.close()


def benchmark(port: int, pid: int, command: list[str], requests: int) -> tuple[float, float]:
    args = ["-p", str(port), "-n", str(requests), "-r", "100000", *command]
    return redis_benchmark(pid, args, requests)


class Untracked(Database):
    """The floor: Database.get_typed and set as they were before access
    times were recorded (the same work otherwise)."""

    def get_typed(self, key: bytes, kind: type[Any]) -> Any:
        value = self.peek(key) if key in self.expires else self.data.get(key)
        if value is not None and type(value) is not kind and not isinstance(value, kind):
            raise ErrorReply(WRONGTYPE)
        return value

    def set(self, key: bytes, value: Value, *, keep_ttl: bool = False) -> None:
        self.data[key] = value
        if not keep_ttl:
            self.expires.pop(key, None)
        self.touch(key)


KEYS = 100_000


def best_ns(call: Callable[[], object], repeat: int, number: int = 20_000) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e9


def keyspace_costs(kind: type[Database], repeat: int) -> dict[str, float]:
    db = kind(0)
    for i in range(1000):
        db.set(b"key:%d" % i, b"value")
    keys = [b"key:%08d" % i for i in range(KEYS)]

    def load() -> Database:
        fresh = kind(1)
        for key in keys:
            fresh.set(key, b"value")
        return fresh

    costs = {
        "set (replace)": best_ns(lambda: db.set(b"key:500", b"value"), repeat),
        "get_typed": best_ns(lambda: db.get_typed(b"key:500", bytes), repeat),
        "set (new key)": best_ns(load, max(3, repeat // 4), number=1) / KEYS,
    }
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    loaded = load()  # the keys and values are made before: this is the database's own
    costs["B per key"] = (tracemalloc.get_traced_memory()[0] - before) / KEYS
    tracemalloc.stop()
    del loaded
    return costs


def keyspace(repeat: int, rounds: int) -> None:
    """Both kinds in turn, `rounds` times (the machine's speed drifts): the best of all."""
    best: dict[type[Database], dict[str, float]] = {}
    for _ in range(rounds):
        for kind in (Database, Untracked):
            costs = keyspace_costs(kind, repeat)
            seen = best.setdefault(kind, costs)
            for row, value in costs.items():
                seen[row] = min(seen[row], value)
    tracked, untracked = best[Database], best[Untracked]
    print(f"in-process, best of {rounds} x {repeat} timeit runs (ns per call); {KEYS} small keys")
    print(f"{'':16} {'tracked':>9} {'untracked':>10} {'cost':>8}")
    for row, value in tracked.items():
        floor = untracked[row]
        print(f"{row:16} {value:9.0f} {floor:10.0f} {value - floor:+8.0f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="RESP throughput of more commands vs redis")
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument(
        "--keyspace",
        action="store_true",
        help="measure in-process what recording access times costs the keyspace instead",
    )
    parser.add_argument("--repeat", type=int, default=40, help="timeit runs for --keyspace")
    add_round_options(parser, ["netsvc resp", "redis-server"])
    args = parser.parse_args(argv)
    if args.keyspace:
        keyspace(args.repeat, args.rounds)
        return
    names = chosen_servers(args, "netsvc resp")
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for name in names:
            with running(name) as (port, pid):
                sha = prepare(port)
                for row, command in workloads(sha).items():
                    runs.setdefault((name, row), []).append(
                        benchmark(port, pid, command, args.requests)
                    )
    print(
        f"redis-benchmark -c 50 -r 100000, {args.requests} requests per run, "
        f"{os.cpu_count()} cpus, median of {args.rounds} interleaved rounds "
        "(ratios: median of each round's ratio)"
    )
    print(f"{'server':14} {'command':14} {'req/s':>10} {'cpu us/req':>11} {'netsvc/this':>12}")
    for (name, row), values in runs.items():
        ours = runs[("netsvc resp", row)]
        rps = median([r for r, _ in values])
        cpu = median([c for _, c in values])
        ratio = median([o[0] / v[0] for o, v in zip(ours, values, strict=True)])
        print(f"{name:14} {row:14} {rps:10.0f} {cpu:11.1f} {ratio:12.2f}")
    print()
    print(f"{'server':14} {'FCALL/EVALSHA req/s':>20} {'cpu us/req':>11}")
    for name in names:
        fcall, evalsha = runs[(name, "FCALL")], runs[(name, "EVALSHA")]
        rate = median([f[0] / e[0] for f, e in zip(fcall, evalsha, strict=True)])
        cpu = median([f[1] / e[1] for f, e in zip(fcall, evalsha, strict=True)])
        print(f"{name:14} {rate:20.2f} {cpu:11.2f}")


if __name__ == "__main__":
    main()

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
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import redis

from bench._common import add_round_options, chosen_servers, median
from bench.resp import redis_benchmark, running

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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="RESP throughput of more commands vs redis")
    parser.add_argument("--requests", type=int, default=50_000)
    add_round_options(parser, ["netsvc resp", "redis-server"])
    args = parser.parse_args(argv)
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

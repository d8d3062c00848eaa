# What the benchmark scripts share: a free loopback port, the CPU time a
# server process (with its children) has used, and interleaved rounds: this
# machine's speed drifts, so every server runs in each round and a ratio is
# taken within a round.
from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_round_options", "chosen_servers", "cpu_seconds", "free_port", "median"]

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used by `pid` and its living descendants."""
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def add_round_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="run every server this many times, interleaved; the median is printed",
    )
    parser.add_argument(
        "--servers",
        default=",".join(names),
        help="comma-separated subset of: " + ", ".join(names),
    )


def chosen_servers(args: argparse.Namespace, ours: str) -> list[str]:
    """The servers of --servers, with `ours` (what ratios are against) first."""
    names = [name.strip() for name in args.servers.split(",")]
    return [ours, *(name for name in names if name != ours)]


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]

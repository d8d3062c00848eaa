# The long fuzz run: mutated RESP, HTTP and XMPP inputs (the generators of
# tests/fuzzing.py, which the suite's shorter runs use too) thrown at a real
# `netsvc serve` subprocess, and a report of the distinct errors in its log.
"""Fuzz a real `netsvc serve` over sockets with mutated protocol inputs.

Usage, from the repository root:

    .venv/bin/python -m tools.fuzz --protocol resp|http|xmpp|all --inputs N --seed S
        [--concurrency C] [--read-timeout SECONDS] [--no-replay] [--app MODULE:ATTRIBUTE]
    .venv/bin/python -m tools.fuzz --protocol resp --seed S --replay I [--replay J ...]

For each protocol it starts `netsvc serve --protocol X --port 0` (with the
arguments in tests/fuzzing.py SERVE_ARGS; --app serves another application,
such as tests.fuzzing:http_app or tests.fuzzing:asgi_app for HTTP, whose routes
read, stream and echo bodies where the default app has two GET routes), sends N
mutated inputs over C concurrent connections (each: connect, send, read for up
to the read timeout, close gracefully, half-closed or with a reset), printing
progress and inputs/s; then checks that the server still answers a well-formed
request on a fresh connection, stops it (SIGTERM) and prints the distinct ERROR
lines and tracebacks of its log, deduplicated by their first line and innermost
frame.

Input I of seed S is the same on every machine (tests/fuzzing.py make_input).
For each distinct error the inputs that may have caused it (the client port its
log line names, at the time it was logged) are replayed one at a time against a
fresh server, and the first that reproduces the error alone is printed in full
(--no-replay skips this). --replay I sends input I alone and prints its bytes
and the server's whole log.

Exits 1 if any error was logged, a server stopped answering or did not exit
cleanly; 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import trio

from netsvc.testing import ServerError
from tests.fuzzing import (
    PROTOCOLS,
    FuzzInput,
    Outcome,
    distinct_errors,
    error_key,
    healthy,
    inputs,
    line_time,
    make_input,
    run_inputs,
    serve_args,
    suspects,
    throw,
)
from tests.serveprocess import ServeProcess, host_port

MAX_REPLAYS = 8  # candidate inputs replayed per distinct error
SHOWN_BYTES = 4000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fuzz", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--protocol", choices=[*PROTOCOLS, "all"], default="all")
    parser.add_argument("--inputs", type=int, default=20_000, help="inputs per protocol")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=48, help="connections at once")
    parser.add_argument("--read-timeout", type=float, default=0.2, help="seconds, per input")
    parser.add_argument("--no-replay", action="store_true", help="do not look for reproducers")
    parser.add_argument("--replay", type=int, action="append", help="send only input I")
    parser.add_argument("--app", help="the server's --app (with one --protocol)")
    args = parser.parse_args(argv)
    protocols = PROTOCOLS if args.protocol == "all" else (args.protocol,)
    if args.app and len(protocols) > 1:
        parser.error("--app needs a single --protocol")
    if args.replay:
        for protocol in protocols:
            for index in args.replay:
                replay_one(protocol, args.seed, index, args.app, show=True)
        return 0
    failed = False
    summary = []
    for protocol in protocols:
        ok, line = fuzz(protocol, args)
        failed = failed or not ok
        summary.append(line)
    print("\n".join(["", "summary:", *summary]))
    return 1 if failed else 0


def fuzz(protocol: str, args: argparse.Namespace) -> tuple[bool, str]:
    """One protocol's run; (no problem found, a summary line)."""
    count, seed = args.inputs, args.seed
    app = f", app {args.app}" if args.app else ""
    print(f"== {protocol}: {count} inputs, seed {seed}, concurrency {args.concurrency}{app}")
    with ServeProcess(serve_args(protocol, args.app)) as server:
        host, port = host_port(server.urls[0])
        started = time.monotonic()
        outcomes = trio.run(_run_with_progress, protocol, host, port, args)
        seconds = time.monotonic() - started
        rate = count / seconds
        print(f"{protocol}: {count} inputs in {seconds:.1f}s, {rate:.0f} inputs/s")
        sick = trio.run(healthy, protocol, host, port)
        print(f"{protocol}: well-formed request afterwards: {sick or 'answered'}")
        code = server.stop()
    ends: dict[str, int] = {}
    for outcome in outcomes:
        ends[outcome.end] = ends.get(outcome.end, 0) + 1
    print(f"{protocol}: connection endings {dict(sorted(ends.items()))}; server exit {code}")
    groups = distinct_errors(server.lines, f"netsvc serve --protocol {protocol}")
    report(protocol, seed, args.app, groups, server.lines, outcomes, replay=not args.no_replay)
    problems = len(groups) + (sick is not None) + (code != 0)
    line = (
        f"{protocol}{app}: {count} inputs, {rate:.0f} inputs/s, "
        f"{sum(map(len, groups.values()))} error(s), {len(groups)} distinct"
        + (f", NOT ANSWERING: {sick}" if sick else "")
        + (f", exit status {code}" if code else "")
    )
    return problems == 0, line


async def _run_with_progress(
    protocol: str, host: str, port: int, args: argparse.Namespace
) -> list[Outcome]:
    done = 0
    started = trio.current_time()

    def count(outcome: Outcome) -> None:
        nonlocal done
        done += 1

    async def progress() -> None:
        while True:
            await trio.sleep(10)
            rate = done / (trio.current_time() - started)
            print(f"{protocol}: {done}/{args.inputs} inputs, {rate:.0f}/s", flush=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(progress)
        outcomes = await run_inputs(
            host,
            port,
            inputs(protocol, args.seed, args.inputs),
            concurrency=args.concurrency,
            read_timeout=args.read_timeout,
            done=count,
        )
        nursery.cancel_scope.cancel()
    return outcomes


def report(
    protocol: str,
    seed: int,
    app: str | None,
    groups: dict[tuple[str, str], list[ServerError]],
    lines: list[str],
    outcomes: list[Outcome],
    *,
    replay: bool,
) -> None:
    if not groups:
        print(f"{protocol}: no ERROR lines, no tracebacks")
        return
    print(f"{protocol}: {len(groups)} distinct error(s):")
    for number, ((first, frame), errors) in enumerate(groups.items(), 1):
        print(f"\n--- {protocol} error {number}: {len(errors)} time(s)")
        print(f"first line:      {first}")
        print(f"innermost frame: {frame or '(no traceback)'}")
        print(errors[0].describe())
        if not replay:
            continue
        candidates: list[int] = []
        for error in errors[:5]:
            when = next((line_time(line) for line in lines if error.message in line), None)
            candidates += [i for i in suspects(error, outcomes, when) if i not in candidates]
        if not candidates:
            print("no input to suspect: the log line names no client")
            continue
        print(f"suspected inputs: {candidates[:20]}")
        for index in candidates[:MAX_REPLAYS]:
            found = replay_one(protocol, seed, index, app, show=False)
            if (first, frame) in found:
                print(f"input {index} (seed {seed}) reproduces it alone:")
                show_input(make_input(protocol, seed, index))
                break
        else:
            print(f"none of the first {MAX_REPLAYS} suspects reproduces it alone")


def replay_one(
    protocol: str, seed: int, index: int, app: str | None, *, show: bool
) -> set[tuple[str, str]]:
    """Send one input alone to a fresh server; the keys of the errors it logged."""
    item = make_input(protocol, seed, index)
    with ServeProcess(serve_args(protocol, app)) as server:
        host, port = host_port(server.urls[0])
        outcome = trio.run(_throw_and_settle, host, port, item)
        server.stop()
    errors = distinct_errors(server.lines, f"replay {index}")
    if show:
        show_input(item)
        print(f"ending: {outcome.end}, {outcome.received} bytes received; server log:")
        print("\n".join(f"    {line}" for line in server.lines))
    return {error_key(error) for group in errors.values() for error in group}


async def _throw_and_settle(host: str, port: int, item: FuzzInput) -> Outcome:
    outcome = await throw(host, port, item, read_timeout=1.0)
    await trio.sleep(0.3)  # the server logs what it does after the client left
    return outcome


def show_input(item: FuzzInput) -> None:
    print(f"close: {item.close}; steps (pause before, bytes):")
    for pause, data in item.steps:
        text = repr(data[:SHOWN_BYTES]) + (
            f" ... ({len(data)} bytes)" if len(data) > SHOWN_BYTES else ""
        )
        print(f"    {pause}: {text}")


if __name__ == "__main__":
    sys.exit(main())

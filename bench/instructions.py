# Instructions per request, counted by callgrind, run by hand from the
# repository root: `.venv/bin/python -m bench.instructions`.
#
# Throughput on a shared 2-core machine drifts by tens of percent from one run
# to the next; the instructions a server executes per request do not, so they
# are the repeatable measure of what the core and the plugins cost. Each server
# of bench.resp runs under `valgrind --tool=callgrind`; redis-benchmark
# (--clients connections, default 1) warms it up, then the counters are zeroed (callgrind_control
# -z), REQUESTS requests are sent and the counters dumped (-d): the dump's
# total over REQUESTS is the server's instructions per request, the event
# loop, the kernel interface in user space and the interpreter included.
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench._common import free_port
from bench.resp import commands, wait_for

WARM_UP = 2_000


def instructions(
    name: str, tests: Sequence[tuple[str, int]], requests: int, clients: int
) -> dict[str, float]:
    """Instructions per request of server `name` for each (test, pipeline),
    with `clients` connections."""
    valgrind = shutil.which("valgrind")
    if valgrind is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is missing: apt-get install -y valgrind")
    port = free_port()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        proc = subprocess.Popen(
            [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", *commands(port)[name]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(port, timeout=120)
            for test, pipeline in tests:
                bench = ["redis-benchmark", "-p", str(port), "-c", str(clients), "-q", "-t", test]
                bench += ["-P", str(pipeline)]
                subprocess.run([*bench, "-n", str(WARM_UP)], capture_output=True, check=True)
                control = ["callgrind_control", str(proc.pid)]
                subprocess.run([*control, "-z"], capture_output=True, check=True)
                subprocess.run([*bench, "-n", str(requests)], capture_output=True, check=True)
                for old in Path(folder).glob("callgrind.out.*"):
                    old.unlink()
                subprocess.run([*control, "-d"], capture_output=True, check=True)
                (dump,) = Path(folder).glob("callgrind.out.*")
                match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
                if match is None:
                    raise RuntimeError(f"no total in {dump}")
                results[f"{test} -P {pipeline}"] = int(match.group(1)) / requests
        finally:
            proc.terminate()
            proc.wait(60)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    names = list(commands(0))
    parser = argparse.ArgumentParser(description="instructions per request, by callgrind")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=1, help="redis-benchmark -c")
    parser.add_argument(
        "--servers",
        default=",".join(name for name in names if name != "redis-server"),
        help="comma-separated subset of: " + ", ".join(names),
    )
    args = parser.parse_args(argv)
    tests = [("get", 1), ("get", 16), ("set", 1)]
    print(
        f"instructions per request (callgrind), {args.requests} requests, "
        f"{args.clients} connection(s)"
    )
    print(f"{'server':24} " + " ".join(f"{f'{t} -P {p}':>12}" for t, p in tests))
    for name in args.servers.split(","):
        counts = instructions(name.strip(), tests, args.requests, args.clients)
        print(f"{name:24} " + " ".join(f"{counts[f'{t} -P {p}']:12,.0f}" for t, p in tests))


if __name__ == "__main__":
    main()

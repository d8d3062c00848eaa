# Mutation testing of the core package netsvc/ with mutmut: the run (with the
# environment that lets `netsvc serve` subprocesses see the mutants) and a
# report per module. The configuration is [tool.mutmut] in pyproject.toml; this
# module is also the pytest plugin that configuration loads (-p tools.mutation).
"""Mutation testing of netsvc/ with mutmut (see docs/testing.md).

Usage, from the repository root:

    .venv/bin/python -m tools.mutation run [--max-children N] [--sample N] [MODULE ...]
    .venv/bin/python -m tools.mutation report [--all]

`run` mutates netsvc/ (mutmut copies it and the tests into mutants/), filters
out the mutants `mypy --strict` rejects, maps each function to the tests of the
selection that call it, then runs those tests against each mutant. MODULE
(`_connection`, `_server`, ...) limits the run to those modules' mutants.
Mutants with a result from an earlier run are not run again, so a run stopped
with Ctrl-C resumes where it stopped (`--rerun MODULE ...` runs them again;
delete mutants/ to start afresh).

`--sample N` runs, of each module, N mutants drawn at random (seeded) from
those without a result, instead of all of them: a run of the whole core takes
hours on two cores, because a mutant that survives runs every test that
reaches its function (the CLI's reach ~100 `netsvc serve` subprocesses). The
draw is kept in mutants/.mutation-sample.json, so a stopped sampled run
resumes; delete it to draw again. `report` then estimates each sampled
module's score: exact for the mutants run before the draw, and from the
sample for the rest, with a 95% interval.

`report` prints killed / survived / timeout / no tests / type check per module
and names the surviving mutants (`--all`: timeouts and no tests too). Show one
with `.venv/bin/mutmut show NAME`.

Many tests reach the code through a `netsvc serve` subprocess. For it to run
the mutants, `run` puts mutants/ first on PYTHONPATH (every test's subprocess
inherits it, and MUTANT_UNDER_TEST with it). For mutmut to know which tests
reach a function that way, a sitecustomize.py in mutants/.mutation-site makes
each Python subprocess of the stats run write the functions it called to
mutants/.mutation-hits when it exits, and this plugin gives them to the tests
that ran while it lived. At the end `run` kills what its tests left running
(a server whose test was killed as a timeout), found by a variable of the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
SITE = MUTANTS / ".mutation-site"
HITS = MUTANTS / ".mutation-hits"
MUTMUT = str(Path(sys.executable).with_name("mutmut"))
# variables a subprocess inherits (no NETSVC_ prefix: the tests strip those)
HITS_VARIABLE = "MUTATION_HITS_DIR"
RUN_VARIABLE = "MUTATION_RUN"
REAP_INTERVAL = 10.0  # seconds between two looks for left-over servers during a run
# a test's own orphans (workers whose supervisor a test killed) exit within
# seconds (test_workers waits 15 s for them); a server this old without its
# parent was left by a test that failed or was killed: each idles at ~2% CPU
# and a run leaves dozens
ORPHAN_AGE = 60.0
SAMPLE = MUTANTS / ".mutation-sample.json"
SAMPLE_SEED = 14  # the number: the same draw on every machine
STATUSES = ("killed", "survived", "timeout", "no tests", "type check", "not checked", "other")

SITECUSTOMIZE = """\
# Written by tools/mutation.py for mutmut's stats run: a Python process started
# by a test (a `netsvc serve` subprocess, or a worker it forks) writes the
# mutated functions it called to $MUTATION_HITS_DIR when it exits.
import atexit
import json
import os
import time


def _record_hits():
    hits_dir = os.environ.get("MUTATION_HITS_DIR")
    if not hits_dir or os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return
    started = time.time()
    from mutmut.configuration import config

    cwd = os.getcwd()
    os.chdir(os.path.dirname(hits_dir))  # mutants/: its pyproject.toml configures mutmut
    try:
        config()
    finally:
        os.chdir(cwd)

    def write():
        from mutmut.state import state

        hits = sorted(state()._stats)
        if not hits:
            return
        name = os.path.join(hits_dir, f"{os.getpid()}-{time.time_ns()}")
        with open(name + ".tmp", "w") as file:
            json.dump({"started": started, "ended": time.time(), "hits": hits}, file)
        os.replace(name + ".tmp", name + ".json")

    atexit.register(write)
    real_exit = os._exit

    def exit_after_writing(status):  # a forked worker ends with os._exit: no atexit
        write()
        real_exit(status)

    os._exit = exit_after_writing


_record_hits()
"""


# -- the run ------------------------------------------------------------------


def module_names(modules: Sequence[str]) -> list[str]:
    return [m.removeprefix("netsvc.").removesuffix(".py") for m in modules]


def results_of(module: str) -> dict[str, int | None] | None:
    """mutmut's exit code per mutant of `module` (None: not run yet), or None
    before mutmut has generated its mutants."""
    meta = MUTANTS / "netsvc" / f"{module}.py.meta"
    if not meta.exists():
        return None
    results: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return results


def function_hashes(module: str) -> dict[str, str]:
    """mutmut's hash of each function of `module` as its mutants were made:
    an edit changes the function's, renumbering its mutants and dropping
    their results."""
    meta = MUTANTS / "netsvc" / f"{module}.py.meta"
    hashes: dict[str, str] = json.loads(meta.read_text()).get("hash_by_function_name", {})
    return hashes


def draw_problem(module: str, sample: dict[str, Any] | None) -> str | None:
    """Why `module`'s draw (or a new one) would not be a sample of its
    mutants as they are: its source changed since mutmut made them, or
    since the draw."""
    source, copy = ROOT / "netsvc" / f"{module}.py", MUTANTS / "netsvc" / f"{module}.py"
    if source.exists() and copy.exists() and source.stat().st_mtime > copy.stat().st_mtime:
        return (
            f"netsvc/{module}.py changed since its mutants were made: run it once without --sample"
        )
    if sample is not None and sample.get("hashes", {}) not in ({}, function_hashes(module)):
        return (
            f"netsvc/{module}.py changed since the draw: delete its entry in {SAMPLE.name} "
            "to draw again"
        )
    return None


def mutant_args(modules: Sequence[str], rerun: bool) -> list[str]:
    """What to ask mutmut for: the modules' mutants that have no result yet
    (mutmut reruns every mutant it is given by name or pattern), or with
    `rerun` (or before the first run) all of them."""
    args: list[str] = []
    for module in module_names(modules):
        results = results_of(module)
        if rerun or results is None:
            args.append(f"netsvc.{module}.*")
            continue
        args += sorted(name for name, exit_code in results.items() if exit_code is None)
    return args


def load_samples() -> dict[str, dict[str, Any]]:
    """The draws of earlier sampled runs, by module: `unrun`, the mutants
    without a result at the draw, and `sample`, the names drawn from them."""
    if not SAMPLE.exists():
        return {}
    samples: dict[str, dict[str, Any]] = json.loads(SAMPLE.read_text())
    return samples


def sampled_args(modules: Sequence[str], size: int) -> list[str]:
    """The mutants of a sampled run: per module, `size` drawn at random from
    those without a result (all of them if there are no more), or the draw
    an earlier sampled run made; those that have a result are left out."""
    samples = load_samples()
    args: list[str] = []
    for module in module_names(modules):
        results = results_of(module)
        if results is None:
            raise SystemExit(f"no mutants of {module} yet: run it once without --sample")
        problem = draw_problem(module, samples.get(module))
        if problem is not None:
            raise SystemExit(problem)
        if module not in samples:
            unrun = sorted(name for name, exit_code in results.items() if exit_code is None)
            drawn = random.Random(f"{SAMPLE_SEED}-{module}").sample(unrun, min(size, len(unrun)))
            hashes = function_hashes(module)
            samples[module] = {"unrun": unrun, "sample": sorted(drawn), "hashes": hashes}
        args += [name for name in samples[module]["sample"] if results.get(name) is None]
    SAMPLE.write_text(json.dumps(samples, indent=1) + "\n")
    return args


def compiled_modules() -> list[Path]:
    """The compiled build's extension modules in the tree (setup.py): mutmut
    would copy them into mutants/, where Python would import them instead of
    the sources beside them, and they would go stale there."""
    return sorted(
        path for folder in ("netsvc", "protocols") for path in (ROOT / folder).rglob("*.so")
    )


def run(
    modules: Sequence[str], max_children: int | None, rerun: bool = False, sample: int = 0
) -> int:
    compiled = compiled_modules()
    if compiled:
        print(
            f"refusing to run: {len(compiled)} compiled module(s) in the tree, such as "
            f"{compiled[0].relative_to(ROOT)}; mutation testing runs the sources. Delete them "
            "first (`find netsvc protocols -name '*.so' -delete`; `./dev test` rebuilds them).",
            file=sys.stderr,
        )
        return 2
    if sample and not modules:
        raise SystemExit("--sample needs the modules to sample (all: list them)")
    chosen = sampled_args(modules, sample) if sample else mutant_args(modules, rerun)
    if modules and not chosen:
        print("every mutant asked for has a result (--rerun runs them again)")
        return 0
    SITE.mkdir(parents=True, exist_ok=True)
    (SITE / "sitecustomize.py").write_text(SITECUSTOMIZE)
    shutil.rmtree(HITS, ignore_errors=True)
    HITS.mkdir()
    run_id = uuid.uuid4().hex
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SITE), str(MUTANTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    # mutmut runs `mypy` (type_check_command) by name: the one beside this Python
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env[HITS_VARIABLE] = str(HITS)
    env[RUN_VARIABLE] = run_id
    command = [MUTMUT, "run"]
    if max_children is not None:
        command += ["--max-children", str(max_children)]
    command += chosen
    started = time.monotonic()
    with subprocess.Popen(command, cwd=ROOT, env=env) as mutmut:
        try:
            while True:
                try:
                    code = mutmut.wait(timeout=REAP_INTERVAL)
                    break
                except subprocess.TimeoutExpired:
                    kill_leftovers(run_id, orphaned_for=ORPHAN_AGE)
        finally:
            mutmut.terminate()
            left = kill_leftovers(run_id)
            if left:
                print(f"killed {left} process(es) the run's tests left running", file=sys.stderr)
    print(f"mutation run took {time.monotonic() - started:.0f}s", file=sys.stderr)
    return code


def kill_leftovers(run_id: str, orphaned_for: float | None = None) -> int:
    """Kill the processes started under this run (found by its variable) that
    outlived their test: a server whose test was killed as a timeout, or
    failed before it could stop it. With `orphaned_for`, only those whose
    parent is gone (adopted by init) and that are older than that."""
    marker = f"{RUN_VARIABLE}={run_id}".encode()
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            if orphaned_for is not None:
                fields = (proc / "stat").read_text().rpartition(")")[2].split()
                age = time.monotonic() - int(fields[19]) / os.sysconf("SC_CLK_TCK")
                if fields[1] != "1" or age < orphaned_for:
                    continue
        except (OSError, ValueError, IndexError):
            continue
        if marker in environ:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


# -- the pytest plugin: subprocess hits for the stats run ----------------------

_spans: list[tuple[str, float, float]] = []  # (test id, started, ended)


def _collecting() -> bool:
    return os.environ.get("MUTANT_UNDER_TEST") == "stats" and HITS_VARIABLE in os.environ


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    started = time.time()
    try:
        return (yield)
    finally:
        if _collecting():
            _spans.append((item.nodeid.removeprefix("mutants/"), started, time.time()))
            _take_hits()


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish() -> Generator[None, object, object]:
    try:
        return (yield)
    finally:
        if _collecting():
            _take_hits()


def _take_hits() -> None:
    """Give the functions each finished subprocess called to every test that
    ran while it lived (a module-scoped server serves several)."""
    from mutmut.state import state

    tests_by_function = state().tests_by_mangled_function_name
    for path in sorted(Path(os.environ[HITS_VARIABLE]).glob("*.json")):
        record = json.loads(path.read_text())
        tests = [
            test
            for test, started, ended in _spans
            if started <= record["ended"] and record["started"] <= ended
        ] or [test for test, _, _ in _spans[-1:]]
        for function in record["hits"]:
            tests_by_function[function].update(tests)
        path.unlink()


# -- the report ---------------------------------------------------------------


def status_of(exit_code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    status = status_by_exit_code[exit_code]
    if status == "caught by type check":
        return "type check"
    return status if status in STATUSES else "other"


def report(show_all: bool) -> int:
    rows: list[tuple[str, Counter[str]]] = []
    total: Counter[str] = Counter()
    listed: list[tuple[str, str]] = []
    samples = load_samples()
    estimates: list[tuple[str, Estimate]] = []
    for meta in sorted((MUTANTS / "netsvc").glob("*.py.meta")):
        results: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        if not results:
            continue
        counts: Counter[str] = Counter()
        for name, exit_code in sorted(results.items()):
            status = status_of(exit_code)
            counts[status] += 1
            if status == "survived" or (show_all and status in ("timeout", "no tests", "other")):
                listed.append((status, name))
        module = meta.name.removesuffix(".meta")
        rows.append((module, counts))
        total += counts
        name = module.removesuffix(".py")
        if name in samples:
            problem = draw_problem(name, samples[name])
            estimate = estimate_score(results, samples[name]) if problem is None else None
            if problem is not None:
                print(f"{module}: no estimate: {problem}", file=sys.stderr)
            elif estimate is not None:
                estimates.append((module, estimate))
    if not rows:
        print("no results: run `python -m tools.mutation run` first", file=sys.stderr)
        return 1
    print(f"{'module':<18}" + "".join(f"{h:>12}" for h in (*STATUSES, "score")))
    for module, counts in [*rows, ("total", total)]:
        cells = (*(counts[s] for s in STATUSES), score(counts))
        print(f"{module:<18}" + "".join(f"{c:>12}" for c in cells))
    print("\nscore: (killed + timeout + type check) / (those + survived)")
    if estimates:
        print("\nestimated scores of sampled modules (95% interval; the table scores run mutants):")
        for module, est in estimates:
            print(f"  {module:<16} {est}")
        print(f"  {'all of them':<16} {Estimate.combine([e for _, e in estimates])}")
    for status, name in listed:
        print(f"{status}: {name}")
    return 0


def caught_and_tested(counts: Counter[str]) -> tuple[int, int]:
    caught = counts["killed"] + counts["timeout"] + counts["type check"]
    return caught, caught + counts["survived"]


def score(counts: Counter[str]) -> str:
    caught, tested = caught_and_tested(counts)
    return f"{100 * caught / tested:.1f}%" if tested else "-"


@dataclasses.dataclass
class Estimate:
    """A score from exact results plus strata estimated from random samples:
    each stratum is its size and, per sampled mutant, whether it was caught
    and whether it counts (1/0). The estimate is a ratio estimate, unbiased
    to within a small term once the whole draw has run; the interval is its
    linearised one, with the finite population correction."""

    caught: int = 0
    tested: int = 0
    drawn: int = 0  # until all drawn have run, the estimate leans to the quick ones
    strata: list[tuple[int, list[tuple[int, int]]]] = dataclasses.field(default_factory=list)

    @classmethod
    def combine(cls, parts: list[Estimate]) -> Estimate:
        return cls(
            sum(p.caught for p in parts),
            sum(p.tested for p in parts),
            sum(p.drawn for p in parts),
            [stratum for p in parts for stratum in p.strata],
        )

    def totals(self) -> tuple[float, float]:
        caught, tested = float(self.caught), float(self.tested)
        for size, sample in self.strata:
            caught += size * sum(c for c, _ in sample) / len(sample)
            tested += size * sum(t for _, t in sample) / len(sample)
        return caught, tested

    def __str__(self) -> str:
        caught, tested = self.totals()
        if not tested:
            return "-"
        ratio = caught / tested
        variance = 0.0
        for size, sample in self.strata:
            n = len(sample)
            # the spread of the residuals, with two caught and two surviving
            # pseudo-mutants added (Agresti-Coull): a sample that caught every
            # mutant, or has one, would otherwise claim no uncertainty at all
            padded = [*sample, (1, 1), (1, 1), (0, 1), (0, 1)]
            residuals = [c - ratio * t for c, t in padded]
            mean = sum(residuals) / len(padded)
            spread = sum((r - mean) ** 2 for r in residuals) / (len(padded) - 1)
            variance += size**2 * (1 - n / size) * spread / n
        half = 1.96 * math.sqrt(variance) / tested
        low, high = max(0.0, ratio - half), min(1.0, ratio + half)
        ran = sum(len(sample) for _, sample in self.strata)
        population = sum(size for size, _ in self.strata)
        text = (
            f"{100 * ratio:.1f}% ({100 * low:.1f}-{100 * high:.1f}%): {ran} run of "
            f"{self.drawn} drawn from {population} mutants without a result"
        )
        if ran < self.drawn:
            text += " (partial: mutmut runs the quick ones first, so this leans to them)"
        return text


def estimate_score(results: dict[str, int | None], sample: dict[str, Any]) -> Estimate | None:
    """The score of a module with a sampled run: the mutants run before the
    draw count as they are; those without a result then (the stratum) count
    as the drawn ones that have run now, scaled to the stratum's size."""
    stratum = set(sample["unrun"])
    exact: Counter[str] = Counter(
        status_of(code) for name, code in results.items() if name not in stratum
    )
    caught, tested = caught_and_tested(exact)
    ran = [code for name in sample["sample"] if (code := results.get(name)) is not None]
    if not ran:
        return None
    indicators = []
    for code in ran:
        one_caught, one_tested = caught_and_tested(Counter([status_of(code)]))
        indicators.append((one_caught, one_tested))
    return Estimate(caught, tested, len(sample["sample"]), [(len(stratum), indicators)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run mutmut on netsvc/ (or some modules)")
    run_parser.add_argument("--max-children", type=int, help="parallel mutants (default: CPUs)")
    run_parser.add_argument(
        "--rerun", action="store_true", help="run the modules' mutants that have a result too"
    )
    run_parser.add_argument(
        "--sample",
        type=int,
        default=0,
        metavar="N",
        help="run N mutants per module drawn at random from those without a result",
    )
    run_parser.add_argument("modules", nargs="*", help="e.g. _connection _server (default: all)")
    report_parser = commands.add_parser("report", help="the score per module and the survivors")
    report_parser.add_argument(
        "--all", action="store_true", help="list timeouts and mutants without tests too"
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.modules, args.max_children, args.rerun, args.sample)
    return report(args.all)


if __name__ == "__main__":
    sys.exit(main())

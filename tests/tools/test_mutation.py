# tools.mutation's sampled runs: the draw (seeded, kept, resumed, leaving out
# mutants with a result) and the score it estimates (exact where everything
# was run, an interval that holds the true score in repeated draws).
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tools import mutation

KILLED, SURVIVED, NO_TESTS, TYPE_CHECK = 1, 0, 33, 37


@pytest.fixture
def mutants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(mutation, "MUTANTS", tmp_path)
    monkeypatch.setattr(mutation, "SAMPLE", tmp_path / ".mutation-sample.json")
    (tmp_path / "netsvc").mkdir()
    return tmp_path


def write_results(
    mutants: Path, module: str, results: dict[str, int | None], hashes: dict[str, str] | None = None
) -> None:
    meta = mutants / "netsvc" / f"{module}.py.meta"
    meta.write_text(
        json.dumps({"exit_code_by_key": results, "hash_by_function_name": hashes or {"f": "1"}})
    )


def names(count: int) -> list[str]:
    return [f"netsvc._m.x_f__mutmut_{i}" for i in range(count)]


def test_a_draw_is_seeded_kept_and_resumed(mutants: Path) -> None:
    results: dict[str, int | None] = dict.fromkeys(names(50))
    results["netsvc._m.x_f__mutmut_0"] = KILLED  # has a result: never drawn
    write_results(mutants, "_m", results)
    first = mutation.sampled_args(["_m"], 10)
    assert len(first) == len(set(first)) == 10
    assert "netsvc._m.x_f__mutmut_0" not in first
    (mutants / ".mutation-sample.json").unlink()
    assert mutation.sampled_args(["_m"], 10) == first  # the same draw on any machine
    # a resumed run asks only for the drawn mutants still without a result
    results[first[0]] = SURVIVED
    write_results(mutants, "_m", results)
    assert mutation.sampled_args(["_m"], 99) == first[1:]  # the kept draw, not a new one
    saved = json.loads((mutants / ".mutation-sample.json").read_text())["_m"]
    assert len(saved["unrun"]) == 49 and saved["sample"] == sorted(first)


def test_a_draw_larger_than_what_is_left_takes_it_all(mutants: Path) -> None:
    write_results(mutants, "_m", dict.fromkeys(names(5)))
    assert sorted(mutation.sampled_args(["netsvc._m.py"], 10)) == sorted(names(5))


def test_sampling_a_module_never_run_is_refused(mutants: Path) -> None:
    with pytest.raises(SystemExit, match="no mutants of _never yet"):
        mutation.sampled_args(["_never"], 3)


def test_the_estimate_is_exact_when_every_unrun_mutant_was_drawn(mutants: Path) -> None:
    results: dict[str, int | None] = dict.fromkeys(names(6))
    write_results(mutants, "_m", results)
    mutation.sampled_args(["_m"], 4)  # draws 4 of the 6
    sample = mutation.load_samples()["_m"]
    for name, code in zip(sample["sample"], [KILLED, SURVIVED, TYPE_CHECK, NO_TESTS], strict=True):
        results[name] = code
    estimate = mutation.estimate_score(results, sample)
    assert estimate is not None
    caught, tested = estimate.totals()
    # 2 caught of 3 that count (no tests does not), scaled from 4 drawn to 6
    assert (caught, tested) == (pytest.approx(3.0), pytest.approx(4.5))
    assert str(estimate).startswith("66.7% (")
    sample["sample"] = sample["unrun"]  # all 6 drawn and run: no interval left
    for name in sample["unrun"]:
        results[name] = results[name] if results[name] is not None else KILLED
    exact = mutation.estimate_score(results, sample)
    assert exact is not None
    assert str(exact).startswith("80.0% (80.0-80.0%)")


def test_mutants_run_before_the_draw_count_exactly(mutants: Path) -> None:
    results: dict[str, int | None] = {name: KILLED for name in names(10)}
    results.update(dict.fromkeys(f"netsvc._m.x_g__mutmut_{i}" for i in range(10)))
    write_results(mutants, "_m", results)
    mutation.sampled_args(["_m"], 10)  # draws all 10 unrun
    sample = mutation.load_samples()["_m"]
    for name in sample["sample"]:
        results[name] = SURVIVED
    estimate = mutation.estimate_score(results, sample)
    assert estimate is not None
    assert estimate.totals() == (10.0, 20.0)


def test_a_draw_is_refused_once_the_module_changed(mutants: Path) -> None:
    results: dict[str, int | None] = dict.fromkeys(names(20))
    write_results(mutants, "_m", results, {"f": "1"})
    mutation.sampled_args(["_m"], 5)
    write_results(mutants, "_m", results, {"f": "2"})  # f edited: mutants renumbered
    with pytest.raises(SystemExit, match="changed since the draw"):
        mutation.sampled_args(["_m"], 5)


def coverage(true_share: float, drawn: int, draws: int = 300) -> float:
    """How often the interval of a draw of `drawn` holds the true score."""
    rng = random.Random(1)
    truth = {name: (KILLED if rng.random() < true_share else SURVIVED) for name in names(400)}
    true_score = sum(code == KILLED for code in truth.values()) / len(truth)
    held = 0
    for seed in range(draws):
        drawn_names = random.Random(seed).sample(sorted(truth), drawn)
        results = {name: truth[name] if name in drawn_names else None for name in truth}
        estimate = mutation.estimate_score(results, {"unrun": sorted(truth), "sample": drawn_names})
        assert estimate is not None
        text = str(estimate)
        low, high = (float(x) for x in text[text.index("(") + 1 : text.index("%)")].split("-"))
        held += low <= 100 * true_score <= high
    return held / draws


@pytest.mark.parametrize("true_share", [0.7, 0.97])
def test_the_interval_holds_the_true_score_in_most_draws(true_share: float) -> None:
    # a 95% interval, at a middling score and at one near 100%, where draws
    # that caught every mutant are common
    assert coverage(true_share, 40) >= 0.9


def test_one_mutant_run_claims_no_certainty(mutants: Path) -> None:
    estimate = mutation.estimate_score(
        {"a": KILLED, "b": None, "c": None}, {"unrun": ["a", "b", "c"], "sample": ["a"]}
    )
    assert estimate is not None
    assert str(estimate).startswith("100.0% (") and "(100.0-100.0%)" not in str(estimate)


def test_a_partial_draw_says_so(mutants: Path) -> None:
    estimate = mutation.estimate_score(
        {"a": KILLED, "b": None, "c": None}, {"unrun": ["a", "b", "c"], "sample": ["a", "b"]}
    )
    assert estimate is not None and "partial" in str(estimate)

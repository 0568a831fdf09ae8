"""`--matrix each-choice`: the upgrade paths .ci/test runs in its further cells (Helm 3; an older Kubernetes).

The selection is a greedy cover (`upgrade.each_choice`) over what each path chooses; these tests check it on made-up
cases and on the suite's own collection (pytest --collect-only in a process of its own: no cluster), where every
chart's start versions and values scenarios and every upgrade mode of the full matrix must still be run.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from meshcharts.upgrade import MODES, UpgradePath, each_choice
from tests import REPO
from tests.upgrade.conftest import cross_minor_moves, path_choices, published_matrix

# The cases of the two upgrade tests, built as their modules build them (a test file imports no other test file);
# they must be exactly the collected ones, so a module that builds them otherwise fails this test.
SAME_LINE = {
    f"test_upgrade_path[{path.id}-{scenario}-{mode}]": {"path": path, "scenario": scenario, "mode": mode}
    for path in published_matrix()
    for scenario in sorted(p.stem for p in (REPO / "ci" / "values" / path.chart).glob("*.yaml"))
    for mode in MODES
}
CROSS_MINOR = {
    f"test_cross_minor_upgrade[{path.id}-{mode}]": {"path": path, "mode": mode}
    for move in cross_minor_moves()
    for path in move.paths
    for mode in ("same-values", "reuse-values")
}


def test_a_product_of_choices_is_covered_by_as_many_cases_as_its_widest_axis() -> None:
    cases = [{("from", f), ("scenario", s), ("mode", m)} for f, s, m in itertools.product("ab", "xyz", "123")]
    kept = each_choice(cases)
    assert len(kept) == 3
    assert set().union(*(cases[i] for i in kept)) == set().union(*cases)


def test_a_case_that_alone_makes_a_choice_is_always_kept_and_the_order_decides_ties() -> None:
    cases = [{"a", "b"}, {"a"}, {"b"}, {"c"}, {"a", "b"}]
    assert each_choice(cases) == [0, 3]
    assert each_choice([{"a"}, {"a"}]) == [0]
    assert each_choice([]) == []


def test_what_a_path_chooses_is_its_charts_line_start_and_scenario_and_a_mode_shared_by_all_charts() -> None:
    path = UpgradePath("istiod", "1.12.0", "1.12.2")
    assert path_choices({"path": path, "scenario": "tuned", "mode": "reuse-values"}) == {
        ("istiod", "line", ""),
        ("istiod", "from", "1.12.0"),
        ("istiod", "scenario", "tuned"),
        ("mode", "reuse-values"),
    }
    assert path_choices({"removed_apis": True}) is None


def collected(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only", "tests/upgrade", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line}


@pytest.mark.slow
def test_each_choice_runs_every_chart_start_scenario_and_mode_of_the_full_matrix_and_every_other_test() -> None:
    full, few = collected(), collected("--matrix", "each-choice")
    assert few < full
    for test, by_id in (("test_upgrade_path", SAME_LINE), ("test_cross_minor_upgrade", CROSS_MINOR)):
        assert {name for name in full if name.startswith(f"{test}[")} == set(by_id)
        kept = [by_id[name] for name in few if name in by_id]
        assert 0 < len(kept) < len(by_id)
        wanted = set().union(*(path_choices(params) or set() for params in by_id.values()))
        assert set().union(*(path_choices(params) or set() for params in kept)) == wanted
    # What is not an upgrade path runs in every cell.
    assert full - set(SAME_LINE) - set(CROSS_MINOR) <= few

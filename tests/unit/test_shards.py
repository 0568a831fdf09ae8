"""A run split with pytest-split and merged with `meshcharts merge-results` reports what the unsharded run reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshcharts import cli, shards
from meshcharts.errors import UsageError
from meshcharts.upgrade import PathResult, write_report
from tests.shard_reports import report_of

pytest_plugins = ["pytester"]

# A matrix of paths like the upgrade layer's: each test records its path; one of them fails.
ROWS = """
import pytest
from meshcharts.upgrade import PathResult


@pytest.mark.parametrize("chart", ["base", "istiod", "gateway"])
@pytest.mark.parametrize("old", ["1.12.0", "1.12.1"])
@pytest.mark.parametrize("mode", ["same-values", "reuse-values"])
def test_path(upgrade_results, chart, old, mode):
    outcome = "failed" if (chart, old, mode) == ("istiod", "1.12.0", "reuse-values") else "passed"
    upgrade_results.append(PathResult(chart, old, "1.12.2", "default", mode, "4", outcome, 1.0))
    assert outcome == "passed"


def test_not_a_path():
    pass
"""


@pytest.mark.parametrize("splits", [3])
def test_shards_merged_equal_the_unsharded_run(pytester: pytest.Pytester, splits: int) -> None:
    pytester.makepyfile(test_rows=ROWS)
    whole = pytester.path / "whole"
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--upgrade-report", str(whole), "--junitxml", str(whole / "junit.xml")
    ).assert_outcomes(passed=12, failed=1)  # fmt: skip
    parts = []
    selected = 0
    for group in range(1, splits + 1):
        part = pytester.path / f"shard-{group}"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-n", "2", "--splits", str(splits), "--group", str(group),
            "--upgrade-report", str(part), "--junitxml", str(part / "junit.xml"),
        )  # fmt: skip
        outcomes = result.parseoutcomes()
        selected += outcomes.get("passed", 0) + outcomes.get("failed", 0)
        assert 0 < outcomes.get("passed", 0) + outcomes.get("failed", 0) < 13, outcomes
        parts.append(part)
    assert selected == 13, "every test runs in exactly one shard"
    merged = pytester.path / "merged"
    assert cli.main(["merge-results", "--out", str(merged), *map(str, parts)]) == 0
    assert report_of(merged) == report_of(whole)
    assert "11/12 paths passed" in (merged / "upgrade-report.md").read_text()


def _shard(directory: Path, rows: list[PathResult]) -> Path:
    write_report(rows, directory)
    return directory


def test_a_path_in_two_shards_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    row = PathResult("base", "1.12.0", "1.12.2", "default", "same-values", "4", "passed", 1.0)
    other = PathResult("base", "1.12.1", "1.12.2", "default", "same-values", "4", "passed", 1.0)
    a = _shard(tmp_path / "a", [row])
    b = _shard(tmp_path / "b", [other, row])
    out = tmp_path / "out"
    out.mkdir()
    (out / "upgrade-report.md").write_text("earlier\n")
    with pytest.raises(UsageError, match=r"base 1\.12\.0 1\.12\.2 default same-values 4 is in both .*/a and .*/b"):
        shards.merge([a, b], out)
    assert (out / "upgrade-report.md").read_text() == "earlier\n"
    assert sorted(p.name for p in out.iterdir()) == ["upgrade-report.md"]


def test_a_shard_without_a_report_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"empty has no upgrade-report\.json: run each shard with --upgrade-report"):
        shards.merge([tmp_path / "empty"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_shard_that_ran_no_path_still_merges(pytester: pytest.Pytester) -> None:
    """The plugin writes an empty report with --upgrade-report when no path ran, so such a shard merges."""
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    empty = pytester.path / "empty"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--upgrade-report", str(empty)).assert_outcomes(passed=1)
    assert json.loads((empty / "upgrade-report.json").read_text()) == []
    row = PathResult("gateway", "1.12.1", "1.12.2", "default", "same-values", "4", "passed", 1.0)
    merged = shards.merge([empty, _shard(pytester.path / "full", [row])], pytester.path / "out")
    assert merged.paths == [row]

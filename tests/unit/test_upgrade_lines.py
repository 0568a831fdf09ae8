"""The cross-minor paths come from the release lines, not from a test: each line is reached from the line one
minor below it (Istio upgrades in place one minor at a time); a line that skips minors gets no path, and the
upgrade report says why. Pure functions over a made-up index and line list: no cluster, no folder of the repo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshcharts.upgrade import NO_PATH_MODE, PathResult, UpgradePath, cross_minor, write_report

CHARTS = ("base", "istiod", "gateway")


def index_of(*versions: str) -> dict[str, Any]:
    return {"entries": {chart: [{"version": v} for v in versions] for chart in CHARTS}}


def tree(version: str) -> dict[str, str]:
    return dict.fromkeys(CHARTS, version)


# Published: the 1.12 line's patches (and a 1.12 release candidate), 1.13.0; the trees are at 1.12.3, 1.13.1 and
# a hypothetical 1.31.0 line.
INDEX = index_of("1.12.0", "1.12.2", "1.12.1", "1.12.4-rc.1", "1.13.0")
LINES = {"1.12": tree("1.12.3"), "1.13": tree("1.13.1"), "1.31": tree("1.31.0")}


def test_a_line_one_minor_up_is_reached_from_the_newest_patch_below_and_a_line_skipping_minors_is_not() -> None:
    first, second = cross_minor(INDEX, LINES, base_line="1.12")
    assert (first.id, first.reason) == ("1.12-to-1.13", "")
    assert first.paths == tuple(UpgradePath(chart, "1.12.2", "1.13.1", "1.13") for chart in CHARTS)
    assert [p.id for p in first.paths] == [f"{c}-1.12.2-to-1.13.1" for c in CHARTS]
    # 1.13.0 is the newest 1.13 patch, but 1.31 is no minor after 1.13: nothing goes there.
    assert (second.from_line, second.to_line, second.paths) == ("1.13", "1.31", ())
    assert second.reason == (
        "no cross-minor path from 1.13 to 1.31: 1.31 skips minors (1.14 to 1.30 not declared), "
        "and Istio upgrades in place one minor at a time"
    )


def test_lines_are_taken_in_minor_order_not_in_the_order_given() -> None:
    lines = {"1.31": tree("1.31.0"), "1.9": tree("1.9.0"), "1.13": tree("1.13.1"), "1.12": tree("1.12.3")}
    moves = cross_minor(index_of("1.9.0", "1.12.2", "1.13.0"), lines)
    assert [(m.id, len(m.paths)) for m in moves] == [("1.9-to-1.12", 0), ("1.12-to-1.13", 3), ("1.13-to-1.31", 0)]
    assert "1.12 skips minors (1.10 to 1.11 not declared)" in moves[0].reason
    assert "1.31 skips minors" in moves[2].reason


def test_one_line_gives_no_move_and_a_path_into_the_base_line_targets_charts() -> None:
    assert cross_minor(INDEX, {"1.12": tree("1.12.3")}) == []
    (move,) = cross_minor(INDEX, {"1.12": tree("1.12.3"), "1.13": tree("1.13.1")}, base_line="1.13")
    assert {p.line for p in move.paths} == {None}  # were 1.13 the base line, its tree would be charts/


def test_a_move_from_a_line_nothing_of_which_is_published_has_no_path_and_says_so() -> None:
    (move,) = cross_minor(index_of("1.13.0"), {"1.12": tree("1.12.0"), "1.13": tree("1.13.1")})
    assert move.paths == ()
    assert move.reason == "no cross-minor path from 1.12 to 1.13: nothing of 1.12 is published yet"
    (one,) = cross_minor(
        {"entries": {"istiod": [{"version": "1.12.2"}]}}, {"1.12": tree("1.12.2"), "1.13": tree("1.13.0")}
    )
    assert [p.chart for p in one.paths] == ["istiod"] and one.reason == ""


def test_a_new_major_is_no_minor_step_either() -> None:
    (move,) = cross_minor(index_of("1.31.0"), {"1.31": tree("1.31.0"), "2.0": tree("2.0.0")})
    assert move.paths == () and "2.0 moves from major 1 to major 2" in move.reason


def test_the_report_shows_a_move_without_a_path_as_skipped_with_its_reason(tmp_path: Path) -> None:
    first, second = cross_minor(INDEX, LINES, base_line="1.12")
    assert first.skipped_results("helm4") == []
    rows = second.skipped_results("helm4")
    assert [(r.chart, r.from_version, r.to_version, r.mode, r.outcome, r.detail) for r in rows] == [
        (chart, "1.13.x", "1.31.0", NO_PATH_MODE, "skipped", second.reason) for chart in CHARTS
    ]
    ran = [
        PathResult(p.chart, p.from_version, p.to_version, "default", "same-values", "helm4", "passed", 1.0)
        for p in first.paths
    ]
    md, page, _ = write_report(ran + rows, tmp_path)
    text = md.read_text()
    assert text.startswith("**Upgrade matrix**: 3/3 paths passed in 3.0 s; 3 without a path (their rows say why)\n")
    assert f"| base | 1.13.x | 1.31.0 | default | no-path | helm4 | **skipped**: {second.reason} | 0.0 |" in text
    assert "<td>skipped: no cross-minor path from 1.13 to 1.31: 1.31 skips minors" in page.read_text()


def test_a_report_of_paths_only_reads_as_before(tmp_path: Path) -> None:
    rows = [PathResult("base", "1.12.2", "1.13.0", "default", "same-values", "helm4", "failed", 1.0)]
    md, page, _ = write_report(rows, tmp_path)
    assert md.read_text().startswith("**Upgrade matrix**: 0/1 paths passed in 1.0 s\n")
    assert "| base | 1.12.2 | 1.13.0 | default | same-values | helm4 | **failed** | 1.0 |" in md.read_text()
    assert "<p>0/1 paths passed in 1.0 s</p>" in page.read_text()

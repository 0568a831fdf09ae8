"""The upgrade matrix: which published versions to upgrade from, and the report of how each path went.

Paths come from index.yaml, never from git history: for each chart, every published patch of the
working tree's minor version and the newest patch of each earlier minor, each upgraded to charts/. A later
release line's tree (lines/<line>/) is the target of its own line's published patches; the moves to it from
the line one minor below are the cross-minor paths (`cross_minor`), derived from the release lines the
repository declares. No path goes from a newer line down to an older one.
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import semver

MODES = ("same-values", "reuse-values", "reset-then-reuse-values")


@dataclass(frozen=True)
class UpgradePath:
    chart: str
    from_version: str
    to_version: str
    line: str | None = None  # the release line whose tree is the target; None: the base line, charts/

    @property
    def id(self) -> str:
        return f"{self.chart}-{self.from_version}-to-{self.to_version}"


def select_versions(published: Iterable[str], current: str) -> list[str]:
    """All patches of `current`'s minor below it, plus the newest patch of each earlier minor.

    Pre-releases are left out: users upgrade from what `helm install` picks by default. `current` itself
    is left out when it is published: a tree at a published version packs byte-for-byte to that archive
    (the release check refuses anything else), so "upgrading" it would apply the same bytes again.
    """
    now = semver.Version.parse(current)
    parsed = sorted({semver.Version.parse(v) for v in published}, reverse=True)
    picked: list[semver.Version] = []
    newest_of_minor: set[tuple[int, int]] = set()
    for v in parsed:
        if v.prerelease or v >= now:
            continue
        if (v.major, v.minor) == (now.major, now.minor):
            picked.append(v)
        elif (v.major, v.minor) not in newest_of_minor:
            newest_of_minor.add((v.major, v.minor))
            picked.append(v)
    return [str(v) for v in picked]


def matrix(
    index: Mapping[str, Any], current: Mapping[str, str], *, line: str | None = None, within_line: bool = False
) -> list[UpgradePath]:
    """Upgrade paths for every chart in `current` (name -> working-tree version) from the index's entries.

    `line` names the release line whose tree `current` describes; `within_line` keeps only the paths from
    that line's own published patches (a later line's cross-minor paths are tested on their own)."""
    paths = []
    for chart, version in sorted(current.items()):
        published = [str(e["version"]) for e in index.get("entries", {}).get(chart, [])]
        minor = semver.Version.parse(version).replace(patch=0, prerelease=None, build=None)
        for old in select_versions(published, version):
            if within_line and semver.Version.parse(old).replace(patch=0, prerelease=None, build=None) != minor:
                continue
            paths.append(UpgradePath(chart, old, version, line))
    return paths


def each_choice(cases: Sequence[Collection[Hashable]]) -> list[int]:
    """The indexes of a subset of `cases` in which every choice any case makes appears at least once.

    A case is the set of choices it makes (for an upgrade path: its chart's start version, values scenario and
    upgrade mode). Greedy set cover, deterministic: each round keeps the first case, in the given order, that
    adds the most choices not yet kept. A matrix of 2 start versions x 3 scenarios x 3 modes (18 cases) gives 3;
    every case that alone makes some choice is kept.
    """
    left: set[Hashable] = set().union(*cases) if cases else set()
    kept: list[int] = []
    while left:
        best = max(range(len(cases)), key=lambda i: (len(left.intersection(cases[i])), -i))
        kept.append(best)
        left.difference_update(cases[best])
    return sorted(kept)


def _minor(version: str) -> tuple[int, int]:
    """(major, minor) of a version (`1.13.0`) or of a release line's name (`1.13`)."""
    v = semver.Version.parse(version if version.count(".") >= 2 else f"{version}.0")
    return v.major, v.minor


NO_PATH_MODE = "no-path"
"""The upgrade mode of a report row that stands for a move no path tests (`LineMove.skipped_results`)."""


@dataclass(frozen=True)
class LineMove:
    """The in-place move from one release line to the next by minor order: its cross-minor paths (one per chart
    of `to_line`, from `from_line`'s newest published patch to `to_line`'s working tree), or, when there are none,
    `reason` saying why."""

    from_line: str
    to_line: str
    targets: tuple[tuple[str, str], ...]  # (chart, version of to_line's working tree), in the line's chart order
    paths: tuple[UpgradePath, ...] = ()
    reason: str = ""  # "" when the move has paths

    @property
    def id(self) -> str:
        return f"{self.from_line}-to-{self.to_line}"

    def skipped_results(self, helm: str) -> list[PathResult]:
        """The report's rows for a move without a path: one per chart, outcome `skipped`, `reason` as detail.
        From `<from_line>.x`: no version of that line is upgraded."""
        if self.paths:
            return []
        return [
            PathResult(
                chart, f"{self.from_line}.x", version, "default", NO_PATH_MODE, helm, "skipped", 0.0, self.reason
            )
            for chart, version in self.targets
        ]


def _skipped_minors(older: tuple[int, int], newer: tuple[int, int]) -> str:
    """Why `newer` is not the line one minor after `older`, or "" when it is."""
    if newer[0] != older[0]:
        return f"moves from major {older[0]} to major {newer[0]}"
    first, last = older[1] + 1, newer[1] - 1
    if last < first:
        return ""
    between = f"{older[0]}.{first}" if first == last else f"{older[0]}.{first} to {older[0]}.{last}"
    return f"skips minors ({between} not declared)"


def cross_minor(
    index: Mapping[str, Any], lines: Mapping[str, Mapping[str, str]], *, base_line: str | None = None
) -> list[LineMove]:
    """The move into each release line from the line just below it by minor order, and its paths.

    `lines` maps each line's name (`1.13`) to its working tree's charts (name -> version), in the order the
    paths should list them; `base_line` names the line whose tree is charts/ (its paths' `line` is None). Istio
    upgrades in place one minor at a time, so a line reached from the line below it by exactly one minor gets,
    for each of its charts, the path from that line's newest published patch (pre-releases left out, as in
    `select_versions`) to its tree; a line that skips minors, or starts a major, gets no path, and its move says
    why. A chart the line below never published has no path either; a move left with none says so."""
    names = sorted(lines, key=_minor)
    moves = []
    for older, newer in itertools.pairwise(names):
        targets = tuple((chart, str(version)) for chart, version in lines[newer].items())
        gap = _skipped_minors(_minor(older), _minor(newer))
        if not targets:
            moves.append(LineMove(older, newer, targets, reason=f"{newer}'s working tree has no chart"))
            continue
        if gap:
            reason = (
                f"no cross-minor path from {older} to {newer}: {newer} {gap}, and Istio upgrades in place one minor "
                "at a time"
            )
            moves.append(LineMove(older, newer, targets, reason=reason))
            continue
        paths = []
        for chart, version in targets:
            published = [semver.Version.parse(str(e["version"])) for e in index.get("entries", {}).get(chart, [])]
            of_older = [v for v in published if not v.prerelease and (v.major, v.minor) == _minor(older)]
            if of_older:
                line = None if newer == base_line else newer
                paths.append(UpgradePath(chart, str(max(of_older)), version, line))
        reason = "" if paths else f"no cross-minor path from {older} to {newer}: nothing of {older} is published yet"
        moves.append(LineMove(older, newer, targets, tuple(paths), reason))
    return moves


@dataclass(frozen=True)
class PathResult:
    chart: str
    from_version: str
    to_version: str
    scenario: str
    mode: str
    helm: str
    outcome: str  # passed, failed, skipped
    seconds: float
    detail: str = ""


def _version_key(version: str) -> Any:
    try:
        return (0, semver.Version.parse(version))
    except ValueError:
        return (1, version)  # a working tree's label sorts after every version


@dataclass(frozen=True)
class _Cell:
    """One values scenario on one path: its runs (upgrade mode x Helm) that passed, and those that did not."""

    passed: int
    total: int
    bad: tuple[str, ...]

    def text(self, bold: bool = False) -> str:
        if not self.bad:
            return f"{self.passed}/{self.total}"
        named = "; ".join(self.bad)
        return f"{self.passed}/{self.total} ({f'**{named}**' if bold else named})"


_Table = tuple[str, list[str], list[tuple[str, list["_Cell | None"]]]]


def _matrices(rows: list[PathResult]) -> list[_Table]:
    """One from-version x to-version table per chart and values scenario: (title, to-versions, rows of cells).
    A cell is that scenario on that path, so a cross-minor move or one failing upgrade mode stands out."""
    tables: list[_Table] = []
    for chart, scenario in sorted({(r.chart, r.scenario) for r in rows}):
        mine = [r for r in rows if (r.chart, r.scenario) == (chart, scenario)]
        froms = sorted({r.from_version for r in mine}, key=_version_key)
        tos = sorted({r.to_version for r in mine}, key=_version_key)
        body: list[tuple[str, list[_Cell | None]]] = []
        for old in froms:
            cells: list[_Cell | None] = []
            for new in tos:
                runs = [r for r in mine if (r.from_version, r.to_version) == (old, new)]
                bad = tuple(f"{r.mode}/{r.helm} {r.outcome}" for r in runs if r.outcome != "passed")
                cells.append(_Cell(len(runs) - len(bad), len(runs), bad) if runs else None)
            body.append((old, cells))
        tables.append((f"{chart}, values {scenario}", tos, body))
    return tables


def matrix_markdown(results: Iterable[PathResult]) -> list[str]:
    """The paths as from-version x to-version tables, one per chart and values scenario (see `_matrices`)."""
    lines: list[str] = []
    for title, tos, body in _matrices(list(results)):
        lines += ["", f"**{title}** (rows: from, columns: to; a cell: runs passed)", ""]
        lines += ["| from \\ to | " + " | ".join(tos) + " |", "|---|" + "---|" * len(tos)]
        for old, cells in body:
            lines.append(f"| {old} | " + " | ".join(c.text(bold=True) if c else "" for c in cells) + " |")
    return lines


def _matrix_html(results: list[PathResult]) -> str:
    parts = []
    for title, tos, body in _matrices(results):
        head = "".join(f"<th>{html.escape(t)}</th>" for t in tos)
        rows = "".join(
            f"<tr><th>{html.escape(old)}</th>"
            + "".join(
                f"<td class='{'failed' if c.bad else 'passed'}'>{html.escape(c.text())}</td>" if c else "<td></td>"
                for c in cells
            )
            + "</tr>"
            for old, cells in body
        )
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr><th>from \\ to</th>{head}</tr>{rows}</table>")
    return "".join(parts)


def write_report(results: Iterable[PathResult], directory: Path) -> tuple[Path, Path, Path]:
    """upgrade-report.md (README, CI summary), upgrade-report.html and upgrade-report.json in `directory`."""
    rows = sorted(results, key=lambda r: (r.chart, r.from_version, r.scenario, r.mode, r.helm))
    directory.mkdir(parents=True, exist_ok=True)
    passed = sum(r.outcome == "passed" for r in rows)
    no_path = sum(r.mode == NO_PATH_MODE for r in rows)
    total = sum(r.seconds for r in rows)
    summary = f"{passed}/{len(rows) - no_path} paths passed in {total:.1f} s"
    if no_path:
        summary += f"; {no_path} without a path (their rows say why)"
    header = ("chart", "from", "to", "values", "upgrade", "helm", "result", "seconds")
    md = [
        f"**Upgrade matrix**: {summary}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    matrix_lines = matrix_markdown(rows)
    for r in rows:
        outcome = (r.outcome if r.outcome == "passed" else f"**{r.outcome}**") + (f": {r.detail}" if r.detail else "")
        md.append(
            f"| {r.chart} | {r.from_version} | {r.to_version} | {r.scenario} | {r.mode} | {r.helm} | "
            f"{outcome} | {r.seconds:.1f} |"
        )
    md_path = directory / "upgrade-report.md"
    md_path.write_text("\n".join(md[:2] + matrix_lines[1:] + [""] + md[2:]) + "\n")
    cells = "".join(
        "<tr class='{}'>{}</tr>".format(
            html.escape(r.outcome),
            "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    r.chart,
                    r.from_version,
                    r.to_version,
                    r.scenario,
                    r.mode,
                    r.helm,
                    r.outcome + (f": {r.detail}" if r.detail else ""),
                    f"{r.seconds:.1f}",
                )
            ),
        )
        for r in rows
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>meshcharts upgrade matrix</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 8px}tr.failed{background:#fdd}tr.passed{background:#efe}"
        "td.failed{background:#fdd}td.passed{background:#efe}</style></head><body>"
        f"<h1>Upgrade matrix</h1><p>{html.escape(summary)}</p>"
        + _matrix_html(rows)
        + "<h2>Every path</h2><table><tr>"
        + "".join(f"<th>{h}</th>" for h in header)
        + f"</tr>{cells}</table></body></html>\n"
    )
    html_path = directory / "upgrade-report.html"
    html_path.write_text(page)
    json_path = directory / "upgrade-report.json"
    json_path.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    return md_path, html_path, json_path

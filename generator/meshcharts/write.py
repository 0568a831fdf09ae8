"""The only I/O of generation: render the specs and bring charts/ in line, or diff it.

Each release line is generated on its own (`Layout.line`); `generate_all` and `check_all` cover the
base line (charts/) and every line of generator/lines (lines/<line>/).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from meshcharts import render, spec
from meshcharts._files import atomic_write
from meshcharts.paths import Layout


def rendered(layout: Layout) -> dict[str, str]:
    """Load, validate and render; raises SpecError before anything could be written."""
    return render.render_all(spec.load(layout))


def _previous_manifest(charts: Path) -> list[str]:
    path = charts / render.MANIFEST
    if not path.is_file():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def generate(layout: Layout) -> list[str]:
    """Write every rendered file that differs; delete files an earlier run generated and this one does not."""
    files = rendered(layout)
    previous = _previous_manifest(layout.charts)
    changed = []
    for rel, text in files.items():
        path = layout.charts / rel
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        atomic_write(path, text)
        changed.append(rel)
    for rel in previous:
        if rel not in files:
            stale = layout.charts / rel
            if stale.is_file():
                stale.unlink()
                changed.append(f"{rel} (deleted)")
            parent = stale.parent
            while parent != layout.charts and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    return changed


def check(layout: Layout) -> str:
    """A unified diff from charts/ to a fresh render; empty when they match."""
    return diff(layout, rendered(layout))


def diff(layout: Layout, files: dict[str, str]) -> str:
    """A unified diff from charts/ to `files` (paths relative to charts/); empty when they match."""
    chunks: list[str] = []
    label = layout.charts_label
    expected = set(files) | set(_previous_manifest(layout.charts))
    for rel in sorted(expected):
        path = layout.charts / rel
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        new = files.get(rel, "")
        if old != new:
            chunks.extend(
                difflib.unified_diff(
                    old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{label}{rel}", f"b/{label}{rel}"
                )
            )
    return "".join(chunks)


def generate_all(layout: Layout) -> dict[str, list[str]]:
    """`generate` for every release line, keyed by the generated tree (charts/, lines/<line>/)."""
    return {line.charts_label: generate(line) for line in layout.every_line()}


def check_all(layout: Layout) -> str:
    """`check` for every release line: one diff, empty when every generated tree matches its specs."""
    return "".join(check(line) for line in layout.every_line())

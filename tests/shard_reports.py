"""What a run's merged or unsharded results say, in a form two runs can be compared by: the paths with their
outcomes, the matrix tables of the Markdown report, and the JUnit test cases with their results
(none for a pass, else Failure, Error or Skipped)."""

from __future__ import annotations

import json
from pathlib import Path

from junitparser import JUnitXml

PATH_KEYS = ("chart", "from_version", "to_version", "scenario", "mode", "helm", "outcome")


def report_of(directory: Path) -> tuple[list[tuple[str, ...]], list[str], list[tuple[str, str, tuple[str, ...]]]]:
    rows = json.loads((directory / "upgrade-report.json").read_text())
    paths = sorted(tuple(str(row[k]) for k in PATH_KEYS) for row in rows)
    markdown = (directory / "upgrade-report.md").read_text()
    # The from x to tables come before the table of every path (whose seconds differ from run to run).
    matrix = [line for line in markdown.split("| chart |")[0].splitlines() if line.startswith("|")]
    assert matrix, f"{directory}/upgrade-report.md has no matrix table"
    xml = JUnitXml.fromfile(str(directory / "junit.xml"))
    cases = sorted(
        (case.classname, case.name, tuple(type(result).__name__ for result in case.result))
        for suite in xml
        for case in suite
    )
    return paths, matrix, cases

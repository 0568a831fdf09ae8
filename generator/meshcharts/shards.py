"""One report from a suite run in shards: the shards' upgrade reports and JUnit XML merged into what an unsharded run
writes.

The suite is split with pytest-split (`--splits N --group K`, a dependency of this package): it partitions the
collected tests deterministically (by the durations in `.test_durations` where there are any, else by count), so
every shard of a run selects its own tests and no test is in two. Each shard runs with `--upgrade-report DIR`
and `--junitxml DIR/junit.xml`; `meshcharts merge-results --out OUT DIR...` writes OUT/upgrade-report.{md,html,json}
and OUT/junit.xml. A path or test case found in two shards is an error naming both, and nothing is written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from junitparser import JUnitXml, TestSuite

from meshcharts.errors import UsageError
from meshcharts.upgrade import PathResult, write_report

REPORT = "upgrade-report.json"
JUNIT = "junit.xml"


@dataclass(frozen=True)
class Merged:
    paths: list[PathResult]
    testcases: int
    written: list[Path]


def path_key(result: PathResult) -> tuple[str, ...]:
    return (result.chart, result.from_version, result.to_version, result.scenario, result.mode, result.helm)


def read_report(directory: Path) -> list[PathResult]:
    """The paths of one shard's upgrade-report.json, or UsageError naming the file and what is wrong."""
    path = directory / REPORT
    try:
        rows = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise UsageError(f"{directory} has no {REPORT}: run each shard with --upgrade-report {directory}") from err
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path}: {err}") from err
    known = {f.name for f in fields(PathResult)}
    if not isinstance(rows, list) or not all(isinstance(r, dict) and set(r) <= known for r in rows):
        raise UsageError(f"{path}: expected a list of upgrade paths with the keys {sorted(known)}")
    try:
        return [PathResult(**row) for row in rows]
    except TypeError as err:
        raise UsageError(f"{path}: {err}") from err


def merge(shards: Sequence[Path], out: Path) -> Merged:
    """Merge the shards' reports into `out`; refuse a path or test case two shards both ran."""
    if not shards:
        raise UsageError("merge-results needs at least one shard directory")
    seen: dict[tuple[str, ...], Path] = {}
    paths: list[PathResult] = []
    for shard in shards:
        for result in read_report(shard):
            key = path_key(result)
            if key in seen:
                raise UsageError(f"the upgrade path {' '.join(key)} is in both {seen[key]} and {shard}: shards overlap")
            seen[key] = shard
            paths.append(result)

    junit_files = [shard / JUNIT for shard in shards]
    present = [f for f in junit_files if f.is_file()]
    if present and len(present) != len(junit_files):
        missing = [str(f) for f in junit_files if not f.is_file()]
        raise UsageError(f"some shards wrote JUnit XML and these did not: {', '.join(missing)}")
    merged_xml = JUnitXml(name="meshcharts")
    cases: dict[tuple[str, str], Path] = {}
    for file in present:
        try:
            xml = JUnitXml.fromfile(str(file))
        except Exception as err:  # junitparser raises lxml's or ElementTree's own errors
            raise UsageError(f"cannot read {file}: {err}") from err
        suites = [xml] if isinstance(xml, TestSuite) else list(xml)
        for suite in suites:
            for case in suite:
                key = (case.classname or "", case.name or "")
                if key in cases:
                    raise UsageError(f"the test {'::'.join(key)} is in both {cases[key]} and {file}: shards overlap")
                cases[key] = file
            merged_xml.add_testsuite(suite)

    # Everything is written into a directory beside `out` first, then moved into place file by file: a merge that
    # fails leaves `out` as it was.
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".merge-", dir=out))
    try:
        staged = list(write_report(paths, staging))
        if present:
            merged_xml.update_statistics()  # type: ignore[no-untyped-call]
            merged_xml.write(str(staging / JUNIT), pretty=True)
            staged.append(staging / JUNIT)
        written = []
        for file in staged:
            os.replace(file, out / file.name)
            written.append(out / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Merged(paths, len(cases), written)

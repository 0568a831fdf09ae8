"""A security scan of what the charts render: checkov over `helm template` of every chart, in charts/ and in
each release line's lines/<line>/, with its default values and with each `ci/values/<chart>/*.yaml`.

Every failed check is a finding unless `ci/checkov-suppressions.yaml` names its check id, the objects it is
accepted for, and why. An object named there that no finding of that check matches is a finding too, so the
file cannot keep excuses for weaknesses that are gone, nor cover an object it does not name.

checkov runs from a virtualenv of its own (see `checkov_binary`): it pins exact versions of boto3,
packaging, networkx and others that would otherwise downgrade the project's environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts import _yaml, lint, spec, tools
from meshcharts.errors import Problem, SpecError, ToolError
from meshcharts.helm import Helm
from meshcharts.paths import Layout, find_root

SUPPRESSIONS = "ci/checkov-suppressions.yaml"
# Kinds checkov always has checks for: an object of these kinds that no check looked at was not read.
MUST_CHECK = frozenset(
    {"Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod", "Service", "ServiceAccount"}
    | {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
)
CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = f"checkov-{CHECKOV_VERSION}"


@dataclass(frozen=True)
class Finding:
    """One failed check on one object of one render."""

    check_id: str
    check_name: str
    resource: str  # as checkov names it: Kind.namespace.name
    render: str  # chart and values case, e.g. "gateway (values ci/values/gateway/daemonset.yaml)"

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} in {self.render}: {self.check_name}"

    def problem(self) -> Problem:
        return Problem(f"{self.resource} in {self.render}", f"{self.check_id} {self.check_name}")


@dataclass(frozen=True)
class Suppression:
    check_id: str
    reason: str
    resources: tuple[str, ...]  # the objects it covers, as checkov names them

    def covers(self, finding: Finding) -> bool:
        return finding.check_id == self.check_id and finding.resource in self.resources


@dataclass
class Report:
    renders: list[str] = field(default_factory=list)
    passed: int = 0
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[tuple[Finding, Suppression]] = field(default_factory=list)
    unused: list[Problem] = field(default_factory=list)
    unchecked: Counter[str] = field(default_factory=Counter)  # kind -> objects no check looked at

    def summary(self) -> str:
        return (
            f"checkov {CHECKOV_VERSION} over {len(self.renders)} renders: {self.passed} passed, "
            f"{len(self.findings) + len(self.suppressed)} failed, {len(self.suppressed)} suppressed in "
            f"{SUPPRESSIONS}, {len(self.findings)} unsuppressed"
        )

    def unchecked_note(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.unchecked.items()))
        return f"no checkov check applies to (or checkov could not read): {kinds}" if kinds else ""


def pinned_requirement(pyproject: Path | None = None) -> str:
    """The `checkov==...` requirement of pyproject's `scan` extra, which .ci/setup installs; it must match
    CHECKOV_VERSION, which names the virtualenv."""
    path = pyproject or find_root().root / "pyproject.toml"
    extras = tomllib.loads(path.read_text())["project"]["optional-dependencies"]
    pins = [r for r in extras.get("scan", []) if r.replace(" ", "").startswith("checkov==")]
    if pins != [f"checkov=={CHECKOV_VERSION}"]:
        raise ToolError(
            f"{path}: the scan extra must pin checkov=={CHECKOV_VERSION} (scan.CHECKOV_VERSION); found {pins}"
        )
    return str(pins[0])


def checkov_binary(env: Mapping[str, str] | None = None) -> Path:
    """$MESHCHARTS_CHECKOV, else the virtualenv `.ci/setup` makes in the toolchain cache, else PATH."""
    env = os.environ if env is None else env
    candidates = [Path(env["MESHCHARTS_CHECKOV"])] if env.get("MESHCHARTS_CHECKOV") else []
    venv = tools.cache_root(env) / CHECKOV_VENV
    if (venv / "installed").is_file():
        candidates.append(venv / "bin" / "checkov")
    found = shutil.which("checkov")
    candidates += [Path(found)] if found else []
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ToolError(
        f"checkov is not installed: `python3 -m venv {venv} && {venv}/bin/pip install checkov=={CHECKOV_VERSION}` "
        "(.ci/setup does this), or point MESHCHARTS_CHECKOV at a checkov binary"
    )


def load_suppressions(path: Path, shown_as: str = SUPPRESSIONS) -> list[Suppression]:
    """The accepted findings, `CHECK_ID: {reason, resources: [Kind.namespace.name]}`; every problem at once."""
    data, problems = _yaml.load_file(path, shown_as) if path.exists() else ({}, [])
    if problems:  # not YAML, or a check id given twice (PyYAML alone would keep the last one silently)
        raise SpecError(problems)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError([Problem(shown_as, "must be a mapping of check ids to {reason, resources}")])
    problems, found = [], []
    for check_id, entry in data.items():
        where = f"{shown_as}:{check_id}"
        if not isinstance(entry, dict) or set(entry) != {"reason", "resources"}:
            problems.append(Problem(where, "must be a mapping with reason and resources"))
            continue
        reason, resources = entry.get("reason"), entry.get("resources")
        if not isinstance(reason, str) or len(reason.split()) < 4:
            problems.append(Problem(f"{where}.reason", "must say, in a sentence, why the finding is accepted"))
        if (
            not isinstance(resources, list)
            or not resources
            or not all(isinstance(r, str) and r.count(".") >= 2 for r in resources)
        ):
            problems.append(Problem(f"{where}.resources", "must be a non-empty list of Kind.namespace.name"))
            continue
        found.append(Suppression(str(check_id), str(reason), tuple(resources)))
    if problems:
        raise SpecError(problems)
    return found


def sort_findings(
    findings: Sequence[Finding], suppressions: Sequence[Suppression]
) -> tuple[list[Finding], list[tuple[Finding, Suppression]], list[Problem]]:
    """(unsuppressed, suppressed with what covers each, stale): a (check, object) a suppression names that no
    finding matched is stale, named at `file:CHECK.resources`."""
    unsuppressed, suppressed, matched = [], [], set()
    for finding in findings:
        match = next((s for s in suppressions if s.covers(finding)), None)
        if match is None:
            unsuppressed.append(finding)
        else:
            suppressed.append((finding, match))
            matched.add((match.check_id, finding.resource))
    stale = [
        Problem(f"{SUPPRESSIONS}:{s.check_id}.resources", f"{resource}: no finding any more; remove it")
        for s in suppressions
        for resource in s.resources
        if (s.check_id, resource) not in matched
    ]
    return unsuppressed, suppressed, stale


def render_cases(layout: Layout, helm: Helm, charts: Sequence[str] = spec.CHART_NAMES) -> dict[str, str]:
    """`{chart [tree] (case): manifest stream}` for each chart's default values and each ci/values case, in
    charts/ and in every release line's tree (`gateway lines/1.13/ (default values)`): every line ships."""
    rendered = {}
    for line in layout.every_line():
        tree = "" if line.line is None else f" {line.charts_label}"
        for chart in charts:
            for case, values in lint.scenarios(line, chart).items():
                rendered[f"{chart}{tree} ({case})"] = helm.template(
                    lint.RELEASES.get(chart, chart),
                    line.charts / chart,
                    namespace=lint.NAMESPACE,
                    values=[values] if values else [],
                )
    return rendered


def _checkov_results(checkov: Path, directory: Path) -> list[dict[str, Any]]:
    argv = [
        str(checkov),
        "--directory",
        str(directory),
        "--framework",
        "kubernetes",
        "--output",
        "json",
        "--skip-download",
        "--compact",
    ]
    # No downloads: no policy mappings from the vendor's platform, no PyPI query for a newer checkov.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, stdin=subprocess.DEVNULL)
    if done.returncode not in (0, 1):
        raise ToolError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.strip()}")
    try:
        data = json.loads(done.stdout)
    except ValueError as err:
        raise ToolError(f"checkov printed no JSON report: {err}\n{done.stdout[:2000]}\n{done.stderr.strip()}") from err
    return data if isinstance(data, list) else [data]


def scan(
    layout: Layout,
    helm: Helm,
    *,
    charts: Sequence[str] = spec.CHART_NAMES,
    checkov: Path | None = None,
    suppressions: Sequence[Suppression] | None = None,
) -> Report:
    """Render every case, run checkov once over all of them, and sort each failure into suppressed or not."""
    checkov = checkov or checkov_binary()
    if suppressions is None:
        suppressions = load_suppressions(layout.root / SUPPRESSIONS)
    rendered = render_cases(layout, helm, charts)
    report = Report(renders=sorted(rendered))
    with tempfile.TemporaryDirectory(prefix="meshcharts-scan-") as tmp:
        # One object per file: checkov drops a whole multi-document file, silently, when one document in
        # it does not parse as it expects (istiod's injector ConfigMap did), so nothing of that render
        # would be checked at all.
        names: dict[str, tuple[str, str]] = {}
        for i, (case, text) in enumerate(sorted(rendered.items())):
            for j, obj in enumerate(lint.parse_manifests(text)):
                name = f"render-{i:02d}-{j:03d}.yaml"
                (Path(tmp) / name).write_text(yaml.safe_dump(obj, sort_keys=False))
                names[name] = (case, f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}")
        results = _checkov_results(checkov, Path(tmp))
        seen = {
            Path(str(c.get("file_path", ""))).name
            for r in results
            for c in (*r.get("results", {}).get("passed_checks", []), *r.get("results", {}).get("failed_checks", []))
        }
        missed = sorted(
            f"{obj} in {case}" for n, (case, obj) in names.items() if n not in seen and obj.split()[0] in MUST_CHECK
        )
        if missed:
            raise ToolError(
                "checkov checked nothing on " + "; ".join(missed) + ": a scan that misses objects would pass on "
                "what it never saw"
            )
        report.unchecked = Counter(obj.split()[0] for n, (_, obj) in names.items() if n not in seen)
        found = []
        for result in results:
            report.passed += int(result.get("summary", {}).get("passed", 0))
            for failed in result.get("results", {}).get("failed_checks", []):
                file = Path(str(failed.get("file_path", ""))).name
                found.append(
                    Finding(
                        check_id=str(failed["check_id"]),
                        check_name=str(failed.get("check_name", "")),
                        resource=str(failed.get("resource", "")),
                        render=names[file][0] if file in names else file,
                    )
                )
    report.findings, report.suppressed, report.unused = sort_findings(found, suppressions)
    return report

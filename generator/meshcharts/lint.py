"""`meshcharts lint`: the one static gate, no cluster.

It holds the working tree to what was published: every version listed in index.yaml is rendered from
its archive and compared with charts/ under the same values (a version of a later line: with that line's
lines/<line>/, under that line's values scenarios), for the changes that break `helm upgrade`
or the users' values (a workload or Service selector, a CRD version or schema field, a values key, a
Service port). It also reports values declared but unread or read but undeclared, and charts/ that
no longer matches generator/specs.

The comparisons are meshcharts.compat's pure functions over parsed objects; here `snapshot_*` and `run` gather
and report.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts import artifacthub, index, package, render, spec, write
from meshcharts._files import atomic_write
from meshcharts._yaml import parse, parse_all
from meshcharts.compat import (
    DEFAULT_SCENARIO,
    WORKING_TREE,
    WORKLOAD_KINDS,
    Obj,
    Snapshot,
    ValuesSurface,
    compare,
    compare_crds,
    compare_schema,
    compare_selectors,
    compare_service_ports,
    compare_values,
    flow,
    object_name,
    values_surface,
)
from meshcharts.errors import HelmError, Problem, RepoError
from meshcharts.helm import Helm
from meshcharts.paths import Layout

NAMESPACE = "istio-system"
# The release names users of Istio 1.12 install these charts under; the gateway's name feeds its selector.
RELEASES = {"base": "istio-base", "istiod": "istiod", "gateway": "istio-ingressgateway"}


# ---------------------------------------------------------------------------------------------
# Gathering (the only I/O): helm template of archives and charts/, values files, the specs


@dataclass(frozen=True)
class Report:
    findings: list[Problem]
    compared: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def scenarios(layout: Layout, chart: str) -> dict[str, Path | None]:
    """Default values, then each `ci/values/<chart>/*.yaml` (a line with specs of its own, whose values differ:
    `ci/lines/<line>/values/<chart>/*.yaml`), keyed by how messages name them."""
    found: dict[str, Path | None] = {DEFAULT_SCENARIO: None}
    folder = layout.ci / "lines" / str(layout.line) / "values" if layout.own_specs else layout.ci / "values"
    for path in sorted((folder / chart).glob("*.yaml")):
        found[f"values {path.relative_to(layout.root).as_posix()}"] = path
    return found


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """The objects of a `helm template` stream, empty documents dropped."""
    return [doc for doc in parse_all(text) if isinstance(doc, dict)]


def _template(helm: Helm, chart: str, source: Path, values: Path | None) -> str | HelmError:
    """`helm template` of `source` for lint: its text, or the HelmError of a render the chart refuses."""
    try:
        return helm.template(RELEASES.get(chart, chart), source, namespace=NAMESPACE, values=[values] if values else [])
    except HelmError as err:
        if err.returncode < 0:
            raise  # helm did not run at all: not a property of the chart
        return err


def _render(helm: Helm, chart: str, source: Path, values: Path | None) -> list[dict[str, Any]] | HelmError:
    text = _template(helm, chart, source, values)
    return text if isinstance(text, HelmError) else parse_manifests(text)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def helm_identity(helm: Helm) -> str:
    """What of `helm` a render depends on: its binary (resolved path, size, modification time) and HELM_* env."""
    binary = Path(helm.binary).resolve()
    stat = binary.stat()
    helm_env = sorted((k, v) for k, v in helm.env.items() if k.startswith("HELM_"))
    return f"{binary}:{stat.st_size}:{stat.st_mtime_ns}:{json.dumps(helm_env)}"


def archive_render_key(helm_id: str, chart: str, archive_sha256: str, values: Path | None) -> str:
    """What a published archive's render depends on: the archive's bytes (`archive_sha256`), the values file's
    bytes, the release name and namespace, and Helm (`helm_identity`)."""
    parts = (archive_sha256, _sha256(values) if values else "-", RELEASES.get(chart, chart), NAMESPACE, helm_id)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _render_cached(
    helm: Helm, chart: str, archive: Path, values: Path | None, entry: Path
) -> list[dict[str, Any]] | HelmError:
    """`_render` of a published archive whose successful output is kept in `entry`: a published archive never
    changes, so a later lint reads the same render instead of running Helm again."""
    try:
        return parse_manifests(entry.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        pass  # none kept yet, or damaged outside meshcharts (entries are written whole): rendered again below
    text = _template(helm, chart, archive, values)
    if isinstance(text, HelmError):
        return text
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next lint a render
        atomic_write(entry, text)
    return parse_manifests(text)


def _load_json(data: bytes | None, where: str) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as err:
        raise RepoError(f"{where}: not valid JSON: {err}") from err


def _load_yaml(data: bytes | None, where: str) -> Any:
    if data is None:
        return None
    try:
        return parse(data)
    except yaml.YAMLError as err:
        raise RepoError(f"{where}: not valid YAML: {err}") from err


def snapshot_archive(
    layout: Layout, helm: Helm, archive: Path, chart: str, version: str, *, cache: Path | None = None
) -> Snapshot:
    """A published archive rendered under the values scenarios of `layout`, the line it belongs to; with `cache`,
    renders made before are read from there (`_render_cached`)."""
    renders: dict[str, list[dict[str, Any]] | HelmError]
    if cache is None:
        renders = {name: _render(helm, chart, archive, path) for name, path in scenarios(layout, chart).items()}
    else:
        # The archive is read and hashed, and Helm identified, once for all of its scenarios.
        archive_sha256, helm_id = _sha256(archive), helm_identity(helm)
        renders = {
            name: _render_cached(
                helm, chart, archive, path, cache / f"{archive_render_key(helm_id, chart, archive_sha256, path)}.yaml"
            )
            for name, path in scenarios(layout, chart).items()
        }
    surface = values_surface(
        _load_yaml(package.archive_file(archive, "values.yaml"), f"{archive}:values.yaml"),
        _load_json(package.archive_file(archive, "values.schema.json"), f"{archive}:values.schema.json"),
    )
    return Snapshot(chart, version, renders, surface)


def snapshot_tree(layout: Layout, helm: Helm, chart: str) -> Snapshot:
    directory = layout.charts / chart
    renders = {name: _render(helm, chart, directory, path) for name, path in scenarios(layout, chart).items()}
    values_path, schema_path = directory / "values.yaml", directory / "values.schema.json"
    surface = values_surface(
        _load_yaml(values_path.read_bytes() if values_path.is_file() else None, str(values_path)),
        _load_json(schema_path.read_bytes() if schema_path.is_file() else None, str(schema_path)),
    )
    return Snapshot(chart, WORKING_TREE, renders, surface)


def published(layout: Layout, chart: str) -> list[tuple[str, Path]]:
    """(version, archive) of every published version of `chart`, as index.yaml lists them."""
    entries = index.load(layout.index)["entries"].get(chart, [])
    found = []
    for entry in entries:
        urls = entry.get("urls") or []
        local = [u for u in urls if "://" not in u]
        if not local:
            raise RepoError(
                f"index.yaml: {chart} {entry.get('version')} has no archive inside the repository ({urls}); "
                "lint reads published archives from packages/"
            )
        path = layout.root / local[0]
        if not path.is_file():
            raise RepoError(f"index.yaml: {chart} {entry.get('version')} lists {local[0]}, which does not exist")
        found.append((str(entry.get("version")), path))
    return found


def _declared_in(line: Layout, chart: spec.ChartSpec) -> str:
    """Where a later line declares `chart`'s values, as messages name it: its own specs file for a line with specs
    of its own, else its overlay, line.yaml (the base line's spec file holds only what the line did not change)."""
    if line.own_specs or line.overlay is None:
        return chart.source
    return line.overlay.relative_to(line.root).as_posix()


def _in_charts(rel: str, charts: Sequence[str]) -> bool:
    """A path below charts/ belongs to a selected chart, or to the whole tree (the manifest)."""
    top, _, rest = rel.partition("/")
    return top in charts or not rest


def check_tree(layout: Layout, model: spec.Model, charts: Sequence[str]) -> list[Problem]:
    """Value usage (declared but unread, read but undeclared) and charts/ against a fresh render."""
    files, usage = render.render_tree(model)
    sources = {model.chart(name).source for name in charts}
    problems = [p for p in usage if p.where.split(":", 1)[0] in sources]
    drift = write.diff(layout, files)
    changed = sorted(
        {
            line[len("+++ b/") :]
            for line in drift.splitlines()
            if line.startswith("+++ b/charts/") and _in_charts(line[len("+++ b/charts/") :], charts)
        }
    )
    if changed:
        problems.append(
            Problem(
                "charts/",
                "differs from what generator/specs renders in "
                + ", ".join(changed)
                + " (`meshcharts generate --check` shows the diff, `meshcharts generate` fixes it)",
            )
        )
    return problems


def run(
    layout: Layout,
    *,
    charts: Sequence[str] = spec.CHART_NAMES,
    helm: Helm | None = None,
    render_cache: Path | None = None,
) -> Report:
    """Every check for `charts`; SpecError, RepoError and a helm that does not run are raised, not findings.
    `render_cache`: where renders of published archives are kept between runs (None: rendered every time)."""
    model = spec.load(layout)
    findings = check_tree(layout, model, charts)
    findings.extend(artifacthub.check_repository_file(layout.root / "artifacthub-repo.yml"))
    helm = helm or Helm(major=4)
    compared: list[str] = []
    notes: list[str] = []
    lines = {line.line: line for line in layout.every_line()[1:]}
    line_models: dict[str, spec.Model] = {}
    for chart in charts:
        source = model.chart(chart).source
        deprecated = {v.path: v.deprecated for v in model.chart(chart).values if v.deprecated}
        current = snapshot_tree(layout, helm, chart)
        line_trees: dict[str, Snapshot] = {}
        for version, archive in published(layout, chart):
            # A version of a later line is held to that line's tree (its patch releases come from there), rendered
            # under that line's values scenarios; any other, of the base line or an older one, to charts/.
            minor = ".".join(version.split(".")[:2])
            target, label = current, WORKING_TREE
            chart_source, chart_deprecated = source, deprecated
            line = lines.get(minor) if minor != model.suite.line else None
            scenario_layout = layout
            if line is not None:
                if minor not in line_models:
                    line_models[minor] = spec.load(line)
                if minor not in line_trees:
                    tree = snapshot_tree(line, helm, chart)
                    line_trees[minor] = Snapshot(chart, line.charts_label, tree.renders, tree.values)
                target, label = line_trees[minor], line.charts_label
                line_chart = line_models[minor].chart(chart)
                chart_source = _declared_in(line, line_chart)
                chart_deprecated = {v.path: v.deprecated for v in line_chart.values if v.deprecated}
                scenario_layout = line
            old = snapshot_archive(scenario_layout, helm, archive, chart, version, cache=render_cache)
            problems, more_notes = compare(old, target, chart_deprecated, source=chart_source)
            findings.extend(problems)
            notes.extend(more_notes)
            compared.append(f"{chart} {version} -> {label} ({', '.join(old.renders)})")
    previous = layout
    for line in layout.every_line()[1:]:
        # A problem of the shared specs shows in every line; it is reported once.
        seen = {(p.where, p.message) for p in findings}
        before = previous.line or model.suite.line
        more = check_line(previous, line, charts, helm, compared, notes, previous_line=before)
        findings.extend(p for p in more if (p.where, p.message) not in seen)
        previous = line
    return Report(findings, compared, notes)


def _minor(line: str) -> int:
    """The minor of a line within its major (`1.31` -> 31; a new major starts far away)."""
    major, minor = (int(x) for x in line.split(".")[:2])
    return major * 1000 + minor


def check_line(
    previous: Layout,
    line: Layout,
    charts: Sequence[str],
    helm: Helm,
    compared: list[str],
    notes: list[str],
    *,
    previous_line: str,
) -> list[Problem]:
    """A release line after `previous`: its specs load, its tree matches them, its values are all read, and
    upgrading each chart from the previous line's tree to this one breaks nothing `compare` checks
    (selectors, Service ports, CRD versions and fields, values keys), as `helm upgrade` across minors needs."""
    model = spec.load(line)
    files, usage = render.render_tree(model)
    present = {c.name for c in model.charts}
    sources = {model.chart(name).source for name in charts if name in present}
    findings = [p for p in usage if p.where.split(":", 1)[0] in sources]
    overlay = line.overlay.relative_to(line.root).as_posix() if line.overlay else "the line's overlay"
    marker = f"+++ b/{line.charts_label}"
    changed = sorted(
        {
            text[len("+++ b/") :]
            for text in write.diff(line, files).splitlines()
            if text.startswith(marker) and _in_charts(text[len(marker) :], charts)
        }
    )
    if changed:
        findings.append(
            Problem(
                line.charts_label,
                (
                    f"differs from what {line.specs.relative_to(line.root).as_posix()} renders in "
                    if line.own_specs
                    else f"differs from what generator/specs with {overlay} renders in "
                )
                + ", ".join(changed)
                + " (`meshcharts generate --check` shows the diff, `meshcharts generate` fixes it)",
            )
        )
    before = previous_line
    if _minor(model.suite.line) - _minor(before) > 1:
        notes.append(
            f"no upgrade check {previous.charts_label} -> {line.charts_label}: {model.suite.line} skips minors after "
            f"{before}, and Istio upgrades in place one minor at a time"
        )
        return findings
    for chart in charts:
        if chart not in present:
            continue
        deprecated = {v.path: v.deprecated for v in model.chart(chart).values if v.deprecated}
        old = snapshot_tree(previous, helm, chart)
        new = snapshot_tree(line, helm, chart)
        old = Snapshot(chart, previous.charts_label, old.renders, old.values)
        new = Snapshot(chart, line.charts_label, new.renders, new.values)
        problems, more_notes = compare(old, new, deprecated, source=_declared_in(line, model.chart(chart)))
        findings.extend(problems)
        notes.extend(more_notes)
        compared.append(f"{chart} {previous.charts_label} -> {line.charts_label} ({', '.join(old.renders)})")
    return findings


# The rules live in meshcharts.compat; these names stay reachable as lint.<name> for callers and tests.
__all__ = [
    "DEFAULT_SCENARIO",
    "NAMESPACE",
    "RELEASES",
    "WORKING_TREE",
    "WORKLOAD_KINDS",
    "Obj",
    "Report",
    "Snapshot",
    "ValuesSurface",
    "check_line",
    "check_tree",
    "compare",
    "compare_crds",
    "compare_schema",
    "compare_selectors",
    "compare_service_ports",
    "compare_values",
    "flow",
    "object_name",
    "parse_manifests",
    "published",
    "run",
    "scenarios",
    "snapshot_archive",
    "snapshot_tree",
    "values_surface",
]

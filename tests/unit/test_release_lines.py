"""Release lines: generator/lines/<line>/line.yaml over generator/specs, generated into lines/<line>/.

A line says only what it changes; its mistakes are reported at the overlay's key; a value is deprecated
in one line before a later line removes it; the base line is untouched by its lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from meshcharts import render, spec, write
from meshcharts.errors import SpecError
from meshcharts.paths import Layout
from tests.unit.trees import make_tree

CHART = """\
apiVersion: meshcharts/v1alpha1
kind: ChartSpec
chart: {name: gateway, description: A test chart, changes: [{kind: added, description: The base line.}]}
values:
  replicaCount: {type: integer, default: 1, minimum: 0, doc: Replicas.}
  service.type: {type: string, enum: [ClusterIP, LoadBalancer], default: ClusterIP, doc: Service type.}
  legacy: {type: boolean, default: false, doc: An old switch., deprecated: Use nothing., readBy: nothing}
"""

TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: x-[[ suite.line ]]}
data:
  replicas: "{{ .Values.replicaCount }}"
  type: {{ .Values.service.type }}
[% if 'zone' in features %]
  zone: {{ .Values.zone | quote }}
[% endif %]
"""

LINE = """\
apiVersion: meshcharts/v1alpha1
kind: Line
line: "{line}"
basedOn: "1.12"
suite: {{version: {version}}}
features:
  zone: The ConfigMap says the zone.
charts:
  gateway:
    changes: [{{kind: added, description: The zone.}}]
    values:
{values}
"""

GOOD_VALUES = """\
      add:
        zone: {type: string, default: east, doc: The zone.}
      change:
        replicaCount: {default: 2}
      remove: [legacy]
"""


def make_line(tmp_path: Path, values: str = GOOD_VALUES, line: str = "1.13", version: str = "1.13.0") -> Layout:
    layout = make_tree(tmp_path, CHART, TEMPLATE)
    folder = tmp_path / "generator" / "lines" / line
    folder.mkdir(parents=True)
    (folder / "line.yaml").write_text(LINE.format(line=line, version=version, values=values))
    return layout


def load_problems(layout: Layout) -> list[str]:
    with pytest.raises(SpecError) as caught:
        render.render_all(spec.load(layout))
    return [str(p) for p in caught.value.problems]


def test_a_line_renders_its_changes_and_leaves_the_base_line_alone(tmp_path: Path) -> None:
    layout = make_line(tmp_path)
    assert layout.lines() == ["1.13"]
    written = write.generate_all(layout)
    assert set(written) == {"charts/", "lines/1.13/"}
    base = yaml.safe_load((tmp_path / "charts/gateway/values.yaml").read_text())
    line = yaml.safe_load((tmp_path / "lines/1.13/gateway/values.yaml").read_text())
    assert base == {"replicaCount": 1, "service": {"type": "ClusterIP"}, "legacy": False}
    assert line == {"replicaCount": 2, "service": {"type": "ClusterIP"}, "zone": "east"}
    assert "x-1.12" in (tmp_path / "charts/gateway/templates/configmap.yaml").read_text()
    text = (tmp_path / "lines/1.13/gateway/templates/configmap.yaml").read_text()
    assert "x-1.13" in text and ".Values.zone" in text
    chart = yaml.safe_load((tmp_path / "lines/1.13/gateway/Chart.yaml").read_text())
    assert chart["version"] == "1.13.0" and "The zone." in chart["annotations"]["artifacthub.io/changes"]
    assert write.check_all(layout) == ""


def test_check_all_names_the_line_tree_that_drifted(tmp_path: Path) -> None:
    layout = make_line(tmp_path)
    write.generate_all(layout)
    (tmp_path / "lines/1.13/gateway/values.yaml").write_text("zone: west\n")
    diff = write.check_all(layout)
    assert "+++ b/lines/1.13/gateway/values.yaml" in diff and "charts/gateway" not in diff


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            "      add:\n        replicaCount: {type: integer, default: 3, doc: Again.}\n",
            "generator/lines/1.13/line.yaml:charts.gateway.values.add.replicaCount: already declared in "
            "generator/specs/gateway.yaml; use change",
        ),
        (
            "      change:\n        replicas: {default: 3}\n",
            "generator/lines/1.13/line.yaml:charts.gateway.values.change.replicas: not declared in "
            "generator/specs/gateway.yaml (or not a mapping); use add",
        ),
        (
            "      remove: [replicaCount]\n",
            "generator/lines/1.13/line.yaml:charts.gateway.values.remove: 'replicaCount' is not deprecated in "
            "generator/specs/gateway.yaml: deprecate a value in one line before removing it",
        ),
        (
            "      change:\n        replicaCount: {default: -1}\n",
            "generator/lines/1.13/line.yaml:charts.gateway.values.change.replicaCount.default: default -1 is below "
            "the minimum 0",
        ),
        (
            "      rename: {}\n",
            "generator/lines/1.13/line.yaml:charts.gateway.values.rename: unknown key",
        ),
    ],
    ids=["add-existing", "change-unknown", "remove-undeprecated", "changed-default-invalid", "unknown-op"],
)
def test_a_bad_line_is_refused_at_the_overlay_key(tmp_path: Path, values: str, expected: str) -> None:
    problems = load_problems(make_line(tmp_path, values).for_line("1.13"))
    assert any(p.startswith(expected) for p in problems), problems


def test_deprecating_and_removing_in_the_same_line_is_refused(tmp_path: Path) -> None:
    values = "      deprecate: {replicaCount: Use autoscaling.}\n      remove: [replicaCount]\n"
    problems = load_problems(make_line(tmp_path, values).for_line("1.13"))
    assert any("'replicaCount' is not deprecated in generator/specs/gateway.yaml" in p for p in problems)


def test_a_line_version_must_belong_to_the_line(tmp_path: Path) -> None:
    problems = load_problems(make_line(tmp_path, version="1.14.0").for_line("1.13"))
    assert "generator/lines/1.13/line.yaml:suite.version: '1.14.0' is not a version of line 1.13" in problems


def test_a_line_names_its_own_signing_key_and_the_base_line_keeps_its_own(tmp_path: Path) -> None:
    """After a key rotation the next line's releases name the new key while the published base line's tree
    still names the key that signed it (its Chart.yaml must pack to the published archive)."""
    layout = make_line(tmp_path)
    suite = yaml.safe_load((tmp_path / "generator" / "specs" / "suite.yaml").read_text())
    overlay = tmp_path / "generator" / "lines" / "1.13" / "line.yaml"
    text = overlay.read_text()
    overlay.write_text(text.replace("suite: {version: 1.13.0}", "suite: {version: 1.13.0, signKey: {fingerprint: "
                                    + "B" * 40 + ", url: https://example.invalid/k.asc}}"))  # fmt: skip
    assert spec.load(layout).suite.sign_key == suite["signKey"]
    assert spec.load(layout.for_line("1.13")).suite.sign_key == {
        "fingerprint": "B" * 40,
        "url": "https://example.invalid/k.asc",
    }
    overlay.write_text(text.replace("suite: {version: 1.13.0}", "suite: {version: 1.13.0, signKey: {fingerprint: x}}"))
    problems = load_problems(layout.for_line("1.13"))
    assert "generator/lines/1.13/line.yaml:suite.signKey: missing required key 'url'" in problems


def test_the_repository_lines_are_ordered_and_1_13_changes_the_suite() -> None:
    root = Path(__file__).resolve().parents[2]
    layout = Layout(root)
    assert layout.lines() == ["1.13", "1.31"]
    assert [line.charts_label for line in layout.every_line()] == ["charts/", "lines/1.13/", "lines/1.31/"]
    model = spec.load(layout.for_line("1.13"))
    assert (model.suite.version, model.suite.line) == ("1.13.0", "1.13")
    assert "mcsApiGroupFromEnv" in model.features and not spec.load(layout).features


def test_the_1_31_line_has_specs_of_its_own_and_is_released() -> None:
    root = Path(__file__).resolve().parents[2]
    line = Layout(root, "1.31")
    assert line.own_specs and not Layout(root, "1.13").own_specs and not Layout(root).own_specs
    assert line.specs == root / "generator" / "lines" / "1.31" / "specs"
    assert line.templates == root / "generator" / "lines" / "1.31" / "templates"
    assert line.suite_file == Layout(root).suite_file
    model = spec.load(line)
    assert (model.suite.version, model.suite.line) == ("1.31.0-rc.0", "1.31")
    # Refusing a line with `release: false` is tests/unit/test_unreleased_line.py's, on a line made for it.
    assert spec.line_released(line) and spec.line_released(Layout(root, "1.13")) and spec.line_released(Layout(root))


def test_a_line_with_specs_of_its_own_refuses_changes_in_its_line_yaml(tmp_path: Path) -> None:
    layout = make_line(tmp_path)
    own = layout.lines_dir / "1.13" / "specs"
    own.mkdir()
    shutil.copy(layout.specs / "gateway.yaml", own / "gateway.yaml")
    problems = load_problems(layout.for_line("1.13"))
    assert any(
        p.startswith("generator/lines/1.13/line.yaml:charts: this line has specs of its own") for p in problems
    ), problems


def test_the_upgrade_report_shows_paths_as_a_from_to_matrix() -> None:
    from meshcharts.upgrade import PathResult, matrix_markdown

    results = [
        PathResult("gateway", "1.12.0", "1.12.2", "default", "same-values", "helm4", "passed", 1.0),
        PathResult("gateway", "1.12.1", "1.12.2", "default", "same-values", "helm4", "passed", 1.0),
        PathResult("gateway", "1.12.1", "1.13.0", "default", "same-values", "helm4", "passed", 1.0),
        PathResult("gateway", "1.12.1", "1.13.0", "default", "reuse-values", "helm4", "failed", 1.0),
    ]
    results += [
        PathResult("gateway", "1.13.0", "1.13.0", "default", "same-values", "helm4", "passed", 1.0),
        PathResult("gateway", "1.12.1", "1.12.2", "daemonset", "same-values", "helm4", "passed", 1.0),
        PathResult("gateway", "1.12.1", "1.12.2", "daemonset", "same-values", "helm3", "failed", 1.0),
    ]
    table = matrix_markdown(results)
    # One table per chart and values scenario, so each cell is one scenario on one path.
    default = table[table.index("**gateway, values default** (rows: from, columns: to; a cell: runs passed)") :]
    assert default[2] == "| from \\ to | 1.12.2 | 1.13.0 |"
    assert "| 1.12.0 | 1/1 |  |" in default
    assert "| 1.12.1 | 1/1 | 1/2 (**reuse-values/helm4 failed**) |" in default
    assert "| 1.13.0 |  | 1/1 |" in default
    daemonset = table[table.index("**gateway, values daemonset** (rows: from, columns: to; a cell: runs passed)") :]
    assert daemonset[2:5] == ["| from \\ to | 1.12.2 |", "|---|---|", "| 1.12.1 | 1/2 (**same-values/helm3 failed**) |"]
    assert table.index("**gateway, values daemonset** (rows: from, columns: to; a cell: runs passed)") < table.index(
        "**gateway, values default** (rows: from, columns: to; a cell: runs passed)"
    )


def test_the_html_report_carries_the_matrix_too(tmp_path: Path) -> None:
    from meshcharts.upgrade import PathResult, write_report

    results = [
        PathResult("base", "1.12.2", "1.13.0", "default", "same-values", "helm4", "passed", 1.0),
        PathResult("base", "1.13.0", "1.13.0", "default", "reuse-values", "helm4", "failed", 1.0),
    ]
    md, page, _ = write_report(results, tmp_path)
    text = page.read_text()
    assert "<h2>base, values default</h2>" in text
    assert "<tr><th>from \\ to</th><th>1.13.0</th></tr>" in text
    assert "<tr><th>1.12.2</th><td class='passed'>1/1</td></tr>" in text
    assert "<tr><th>1.13.0</th><td class='failed'>0/1 (reuse-values/helm4 failed)</td></tr>" in text
    assert "| 1.13.0 | 0/1 (**reuse-values/helm4 failed**) |" in md.read_text()

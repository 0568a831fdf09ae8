"""Spec loading reports every problem at once, each located as file:key, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcharts import render, spec, write
from meshcharts.errors import SpecError
from tests.unit.trees import GOOD_CHART, GOOD_TEMPLATE, make_tree, problems_of


def test_a_good_tree_renders_and_its_charts_are_written(tmp_path: Path) -> None:
    layout = make_tree(tmp_path)
    changed = write.generate(layout)
    assert "gateway/values.yaml" in changed
    assert (tmp_path / "charts" / "gateway" / "templates" / "configmap.yaml").is_file()
    assert write.check(layout) == ""


def test_every_load_problem_is_reported_in_one_run_with_file_and_key(tmp_path: Path) -> None:
    chart = """\
apiVersion: meshcharts/v1beta9
kind: ChartSpec
colour: blue
chart: {name: gateway, description: A test chart}
values:
  replicaCount: {type: integer, default: "one", doc: Replicas.}
  replicaCount: {type: integer, default: 2, doc: Replicas again.}
  service.type: {type: string, enum: [ClusterIP, LoadBalancer], default: NodePort, doc: Service type.}
  service.port: {type: integer, default: 80}
  service.name: {type: text, default: x, doc: A name.}
  service.size: {type: integer, default: -1, minimum: 0, doc: A size.}
  service.color: {type: string, default: red, doc: A colour., sort: true}
  service: {type: object, default: {}, doc: Whole service.}
"""
    problems = problems_of(make_tree(tmp_path, chart=chart))
    expected = [
        ("generator/specs/gateway.yaml:7", "duplicate key 'replicaCount'"),
        ("generator/specs/gateway.yaml:apiVersion", "must be 'meshcharts/v1alpha1'"),
        ("generator/specs/gateway.yaml:colour", "unknown key"),
        ("generator/specs/gateway.yaml:values.service.type.default", "not one of the enum"),
        ("generator/specs/gateway.yaml:values.service.port.doc", "missing description"),
        ("generator/specs/gateway.yaml:values.service.name.type", "unknown type 'text'"),
        ("generator/specs/gateway.yaml:values.service.size.default", "below the minimum"),
        ("generator/specs/gateway.yaml:values.service.color.sort", "unknown key"),
        ("generator/specs/gateway.yaml:values.service.type", "declared as a value of its own"),
    ]
    for where, message in expected:
        assert any(p.startswith(where) and message in p for p in problems), (where, message, problems)


def test_a_default_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    chart = GOOD_CHART.replace("default: 1,", 'default: "1",')
    problems = problems_of(make_tree(tmp_path, chart=chart))
    assert problems == ["generator/specs/gateway.yaml:values.replicaCount.default: default '1' is not of type integer"]


def test_template_reading_an_undeclared_value_and_an_unread_declared_value_are_both_reported(
    tmp_path: Path,
) -> None:
    template = GOOD_TEMPLATE.replace(".Values.service.type", ".Values.service.kind")
    problems = problems_of(make_tree(tmp_path, template=template))
    assert (
        "generator/specs/gateway.yaml:values.service.kind: a template reads this value but the spec does not declare it"
        in problems
    )
    assert "generator/specs/gateway.yaml:values.service.type: declared but no template reads it" in problems


def test_reading_inside_a_declared_map_is_allowed_but_not_inside_a_scalar(tmp_path: Path) -> None:
    chart = GOOD_CHART + "  labels: {type: 'map[string]string', default: {}, doc: Labels.}\n"
    template = GOOD_TEMPLATE + "  app: {{ .Values.labels.app }}\n  bad: {{ .Values.replicaCount.value }}\n"
    problems = problems_of(make_tree(tmp_path, chart=chart, template=template))
    assert problems == [
        "generator/specs/gateway.yaml:values.replicaCount.value: "
        "a template reads this value but the spec does not declare it"
    ]


def test_a_template_error_is_reported_with_its_source(tmp_path: Path) -> None:
    problems = problems_of(make_tree(tmp_path, template=GOOD_TEMPLATE + "[[ undefined_name ]]\n"))
    assert len(problems) == 1 and "generator/templates/gateway/templates/configmap.yaml.j2" in problems[0]
    assert "undefined_name" in problems[0]


def test_a_bad_spec_writes_nothing_and_keeps_existing_charts(tmp_path: Path) -> None:
    layout = make_tree(tmp_path)
    write.generate(layout)
    before = {p: p.read_bytes() for p in (tmp_path / "charts").rglob("*") if p.is_file()}
    (tmp_path / "generator" / "specs" / "gateway.yaml").write_text(GOOD_CHART.replace("doc: Replicas.", ""))
    with pytest.raises(SpecError):
        write.generate(layout)
    after = {p: p.read_bytes() for p in (tmp_path / "charts").rglob("*") if p.is_file()}
    assert after == before


def test_files_no_longer_generated_are_deleted_and_others_kept(tmp_path: Path) -> None:
    layout = make_tree(tmp_path)
    extra = tmp_path / "generator" / "templates" / "gateway" / "templates" / "extra.yaml.j2"
    extra.write_text("# {{ .Values.replicaCount }}\n")
    write.generate(layout)
    user_file = tmp_path / "charts" / "gateway" / "ci-values.yaml"
    user_file.write_text("mine: true\n")
    assert (tmp_path / "charts" / "gateway" / "templates" / "extra.yaml").exists()
    extra.unlink()
    changed = write.generate(layout)
    assert "gateway/templates/extra.yaml (deleted)" in changed
    assert not (tmp_path / "charts" / "gateway" / "templates" / "extra.yaml").exists()
    assert user_file.read_text() == "mine: true\n"


def test_check_reports_drift_as_a_diff_naming_the_file(tmp_path: Path) -> None:
    layout = make_tree(tmp_path)
    write.generate(layout)
    values = tmp_path / "charts" / "gateway" / "values.yaml"
    values.write_text(values.read_text().replace("replicaCount: 1", "replicaCount: 3"))
    diff = write.check(layout)
    assert "a/charts/gateway/values.yaml" in diff
    assert "-replicaCount: 3" in diff and "+replicaCount: 1" in diff


def test_a_value_read_only_outside_the_templates_says_who_reads_it_and_its_docs_say_so(tmp_path: Path) -> None:
    chart = GOOD_CHART + (
        "  legacy: {type: boolean, default: false, doc: Old switch., readBy: 'nothing; kept for old values files'}\n"
    )
    model = spec.load(make_tree(tmp_path, chart=chart))
    files = render.render_all(model)
    assert "Not read by this chart's templates: nothing; kept for old values files." in files["gateway/values.yaml"]


def test_a_value_that_says_readBy_but_is_read_by_a_template_is_reported(tmp_path: Path) -> None:
    chart = GOOD_CHART.replace("doc: Replicas.}", "doc: Replicas., readBy: istiod}")
    problems = problems_of(make_tree(tmp_path, chart=chart))
    assert problems == ["generator/specs/gateway.yaml:values.replicaCount: says readBy but a template reads it"]


def test_values_read_by_embedded_files_count_as_read(tmp_path: Path) -> None:
    chart = GOOD_CHART + "  proxyImage: {type: string, default: proxyv2, doc: Image the injector uses.}\n"
    layout = make_tree(tmp_path, chart=chart)
    fdir = layout.templates / "gateway" / "files"
    fdir.mkdir()
    (fdir / "inject.yaml.j2").write_text('image: "{{ .Values.proxyImage }}"\n')
    files = render.render_all(spec.load(layout))
    assert 'image: "{{ .Values.proxyImage }}"' in files["gateway/files/inject.yaml"]
    (fdir / "inject.yaml.j2").write_text('image: "{{ .Values.proxyImage2 }}"\n')
    problems = problems_of(layout)
    assert "generator/specs/gateway.yaml:values.proxyImage: declared but no template reads it" in problems

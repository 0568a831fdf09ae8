"""Small spec trees the unit tests build in a temporary directory, and the problems a load of one reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshcharts import render, spec
from meshcharts.errors import SpecError
from meshcharts.paths import Layout
from tests import REPO

GOOD_CHART = """\
apiVersion: meshcharts/v1alpha1
kind: ChartSpec
chart: {name: gateway, description: A test chart}
values:
  replicaCount: {type: integer, default: 1, minimum: 0, doc: Replicas.}
  service.type: {type: string, enum: [ClusterIP, LoadBalancer], default: ClusterIP, doc: Service type.}
"""


GOOD_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data:
  replicas: "{{ .Values.replicaCount }}"
  type: {{ .Values.service.type }}
"""


def make_tree(tmp_path: Path, chart: str = GOOD_CHART, template: str = GOOD_TEMPLATE) -> Layout:
    (tmp_path / "generator" / "specs").mkdir(parents=True)
    shutil.copy(REPO / "generator" / "specs" / "suite.yaml", tmp_path / "generator" / "specs" / "suite.yaml")
    (tmp_path / "generator" / "specs" / "gateway.yaml").write_text(chart)
    tdir = tmp_path / "generator" / "templates" / "gateway" / "templates"
    tdir.mkdir(parents=True)
    (tdir / "configmap.yaml.j2").write_text(template)
    return Layout(tmp_path)


def problems_of(layout: Layout) -> list[str]:
    with pytest.raises(SpecError) as caught:
        render.render_all(spec.load(layout))
    return [str(p) for p in caught.value.problems]

"""`meshcharts scan`: checkov over real `helm template` renders; each failed check is a finding unless
ci/checkov-suppressions.yaml accepts it with a reason, and a suppression that matches nothing is a finding.

The charts' own scan is the `meshcharts scan` step of .ci/test; these tests show on a small chart of their
own that the scan sees a weakness, that a suppression moves exactly what it names, and that hardening the
object makes the finding go away.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcharts import scan
from meshcharts.errors import ToolError
from meshcharts.helm import Helm
from meshcharts.paths import Layout

RESOURCE = "Deployment.istio-system.istio-ingressgateway"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
        - name: proxy
          image: docker.io/istio/proxyv2:1.12.1
          securityContext:
            privileged: {{ .Values.privileged }}
"""


@pytest.fixture(scope="module")
def checkov() -> Path:
    try:
        return scan.checkov_binary()
    except ToolError as err:
        pytest.skip(f"requires checkov: {err}")


@pytest.fixture(scope="module")
def helm() -> Helm:
    try:
        return Helm(major=4)
    except ToolError as err:
        pytest.skip(f"requires Helm 4: {err}")


def tree(root: Path, *, privileged: bool) -> Layout:
    chart = root / "charts" / "gateway"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: gateway\nversion: 0.0.1\n")
    (chart / "values.yaml").write_text(f"privileged: {str(privileged).lower()}\n")
    (chart / "templates" / "deployment.yaml").write_text(DEPLOYMENT)
    (root / "ci" / "values" / "gateway").mkdir(parents=True)
    (root / "ci" / "values" / "gateway" / "unprivileged.yaml").write_text("privileged: false\n")
    return Layout(root)


def test_a_privileged_container_is_a_finding_in_the_render_that_has_it(
    checkov: Path, helm: Helm, tmp_path: Path
) -> None:
    report = scan.scan(tree(tmp_path, privileged=True), helm, charts=["gateway"], checkov=checkov, suppressions=[])
    assert report.renders == ["gateway (default values)", "gateway (values ci/values/gateway/unprivileged.yaml)"]
    privileged = [f for f in report.findings if f.check_id == "CKV_K8S_16"]
    assert [(f.resource, f.render) for f in privileged] == [(RESOURCE, "gateway (default values)")], report.findings
    assert report.passed > 0
    assert "0 suppressed in ci/checkov-suppressions.yaml" in report.summary()


def test_a_suppression_moves_exactly_the_findings_it_names_and_an_unmatched_one_is_reported(
    checkov: Path, helm: Helm, tmp_path: Path
) -> None:
    accepted = scan.Suppression("CKV_K8S_16", "this test's proxy runs privileged on purpose", (RESOURCE,))
    stale = scan.Suppression("CKV_K8S_16", "an object that is not rendered at all", ("Deployment.x.gone",))
    layout = tree(tmp_path, privileged=True)
    report = scan.scan(layout, helm, charts=["gateway"], checkov=checkov, suppressions=[accepted, stale])
    assert not [f for f in report.findings if f.check_id == "CKV_K8S_16"]
    assert [(f.resource, s) for f, s in report.suppressed] == [(RESOURCE, accepted)]
    assert [str(p) for p in report.unused] == [
        "ci/checkov-suppressions.yaml:CKV_K8S_16.resources: Deployment.x.gone: no finding any more; remove it"
    ]


def test_the_hardened_render_has_no_such_finding(checkov: Path, helm: Helm, tmp_path: Path) -> None:
    """The control: the same chart without the weakness."""
    report = scan.scan(tree(tmp_path, privileged=False), helm, charts=["gateway"], checkov=checkov, suppressions=[])
    assert not [f for f in report.findings if f.check_id == "CKV_K8S_16"], report.findings


def test_a_release_lines_tree_is_scanned_too(checkov: Path, helm: Helm, tmp_path: Path) -> None:
    """lines/<line>/ ships like charts/: a weakness only the 1.13 line's tree has is a finding named for it."""
    layout = tree(tmp_path, privileged=False)
    line_chart = tmp_path / "lines" / "1.13" / "gateway"
    (line_chart / "templates").mkdir(parents=True)
    (line_chart / "Chart.yaml").write_text("apiVersion: v2\nname: gateway\nversion: 0.0.2\n")
    (line_chart / "values.yaml").write_text("privileged: true\n")
    (line_chart / "templates" / "deployment.yaml").write_text(DEPLOYMENT)
    overlay = tmp_path / "generator" / "lines" / "1.13" / "line.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text("line: '1.13'\n")  # what makes 1.13 a line of this tree; the scan reads only lines/1.13/
    report = scan.scan(layout, helm, charts=["gateway"], checkov=checkov, suppressions=[])
    assert report.renders == [
        "gateway (default values)",
        "gateway (values ci/values/gateway/unprivileged.yaml)",
        "gateway lines/1.13/ (default values)",
        "gateway lines/1.13/ (values ci/values/gateway/unprivileged.yaml)",
    ]
    privileged = {f.render for f in report.findings if f.check_id == "CKV_K8S_16"}
    assert privileged == {"gateway lines/1.13/ (default values)"}, report.findings

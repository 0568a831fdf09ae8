"""`meshcharts lint` as CI runs it: clean on this repository, and naming every break in a deliberately broken copy.

The broken copy changes the generator the way a careless branch would (the gateway selector helper, a CRD
field, a Service port name, a values key), regenerates charts/ with `meshcharts generate`, then declares a
value no template reads without regenerating. Run with `-s` to see the output a maintainer gets.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshcharts import lint
from meshcharts.errors import HelmError
from meshcharts.helm import Helm as MeshHelm
from meshcharts.paths import Layout
from tests.render.conftest import REPO, Helm, edit, meshcharts, scratch_copy

PUBLISHED = sorted({str(e["version"]) for e in json.loads((REPO / "index.yaml").read_text())["entries"]["gateway"]})
# The broken copy breaks the base line's specs: they make charts/ and every line without specs of its own
# (lines/1.13), so lint finds the breaks against the versions published from those, not against a line such as
# 1.31 whose specs are its own.
FROM_BASE_SPECS = [v for v in PUBLISHED if not Layout(REPO, ".".join(v.split(".")[:2])).own_specs]


def test_lint_of_the_repository_compares_every_published_chart_and_is_clean(helm4: Helm) -> None:
    result = meshcharts(REPO, "lint")
    assert result.returncode == 0, result.stderr
    for chart in ("base", "istiod", "gateway"):
        assert f"compared {chart} 1.12.0 -> working tree (default values" in result.stderr
    assert "values ci/values/gateway/daemonset.yaml" in result.stderr
    assert "values ci/values/istiod/revision-canary.yaml" in result.stderr
    assert "lint: no findings in base, istiod, gateway" in result.stderr


def test_lint_with_an_unknown_chart_is_bad_usage() -> None:
    result = meshcharts(REPO, "lint", "--chart", "ingress")
    assert result.returncode == 2
    assert "invalid choice: 'ingress'" in result.stderr


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, helm4: Helm) -> Path:
    root = scratch_copy(tmp_path_factory.mktemp("broken") / "meshcharts")
    templates, specs = root / "generator" / "templates", root / "generator" / "specs"
    # The selector helper drops trimPrefix: istio=istio-ingressgateway instead of ingressgateway.
    edit(templates / "gateway/templates/_helpers.tpl.j2", '| trimPrefix "istio-" }}', "}}")
    # WasmPlugin loses spec.sha256.
    edit(specs / "crds/wasmplugin.yaml", "  sha256: string\n", "")
    # The http2 port becomes http.
    edit(specs / "gateway.yaml", "{name: http2, port: 80,", "{name: http, port: 80,")
    # podDisruptionBudget.unhealthyPodEvictionPolicy goes, from the spec and the template, with no deprecation.
    edit(
        specs / "gateway.yaml",
        "  podDisruptionBudget.unhealthyPodEvictionPolicy:\n"
        "    type: string\n"
        '    enum: ["", IfHealthyBudget, AlwaysAllow]\n'
        '    default: ""\n'
        "    doc: Whether unhealthy pods may be evicted regardless of the budget (policy/v1 only)."
        " Empty leaves the Kubernetes default.\n",
        "",
    )
    edit(
        templates / "gateway/templates/poddisruptionbudget.yaml.j2",
        "  {{- with .Values.podDisruptionBudget.unhealthyPodEvictionPolicy }}\n"
        '  {{- if eq $apiVersion "policy/v1beta1" }}\n'
        '  {{- fail "podDisruptionBudget.unhealthyPodEvictionPolicy needs policy/v1 PodDisruptionBudgets; this cluster'
        ' serves only policy/v1beta1" }}\n'
        "  {{- end }}\n"
        "  unhealthyPodEvictionPolicy: {{ . }}\n"
        "  {{- end }}\n",
        "",
    )
    generated = meshcharts(root, "generate")
    assert generated.returncode == 0, generated.stderr
    # After generating: a value declared that no template reads, and charts/ now behind the spec.
    edit(
        specs / "gateway.yaml",
        "  service.loadBalancerIP:\n",
        "  service.sessionAffinity:\n"
        "    type: string\n"
        '    default: ""\n'
        "    doc: Declared by the broken tree and read by no template.\n"
        "  service.loadBalancerIP:\n",
    )
    return root


@pytest.fixture(scope="module")
def broken_lint(broken: Path) -> subprocess.CompletedProcess[str]:
    return meshcharts(broken, "lint")


def test_broken_tree_fails_lint_with_every_finding_printed(broken_lint: subprocess.CompletedProcess[str]) -> None:
    print(f"\n$ meshcharts lint   # exit {broken_lint.returncode}\n{broken_lint.stderr}")
    assert broken_lint.returncode == 1
    # Six comparison findings against every version published from the base line's specs, plus the unused
    # value and the drift of charts/ and of lines/1.13/ (the 1.13 line is generated from the same broken
    # specs, so going from charts/ to lines/1.13/ breaks nothing more).
    assert f"meshcharts lint: {6 * len(FROM_BASE_SPECS) + 3} finding(s):" in broken_lint.stderr


@pytest.mark.parametrize(
    "finding",
    [
        pytest.param(
            "gateway 1.12.0 -> working tree: Deployment istio-system/istio-ingressgateway spec.selector.matchLabels "
            "changed: {app: istio-ingressgateway, istio: ingressgateway} -> "
            "{app: istio-ingressgateway, istio: istio-ingressgateway} "
            '(immutable: helm upgrade fails with "field is immutable")',
            id="deployment-selector",
        ),
        pytest.param(
            "gateway 1.12.0 -> working tree [values ci/values/gateway/daemonset.yaml]: "
            "DaemonSet istio-system/istio-ingressgateway spec.selector.matchLabels changed: "
            "{app: istio-ingressgateway, istio: ingressgateway} -> "
            "{app: istio-ingressgateway, istio: istio-ingressgateway}",
            id="daemonset-selector",
        ),
        pytest.param(
            "gateway 1.12.0 -> working tree: Service istio-system/istio-ingressgateway spec.selector changed: "
            "{app: istio-ingressgateway, istio: ingressgateway} -> "
            "{app: istio-ingressgateway, istio: istio-ingressgateway}",
            id="service-selector",
        ),
        pytest.param(
            "base 1.12.0 -> working tree: CustomResourceDefinition wasmplugins.extensions.istio.io v1alpha1 "
            "spec.sha256 removed from the schema",
            id="crd-field",
        ),
        pytest.param(
            "gateway 1.12.0 -> working tree: Service istio-system/istio-ingressgateway "
            "spec.ports[port=80].name renamed: http2 -> http",
            id="service-port",
        ),
        pytest.param(
            "gateway 1.12.0 -> working tree: values key podDisruptionBudget.unhealthyPodEvictionPolicy removed or "
            "renamed without a declared deprecation",
            id="values-key",
        ),
        pytest.param(
            "generator/specs/gateway.yaml:values.service.sessionAffinity: declared but no template reads it",
            id="unused-value",
        ),
        pytest.param(
            "charts/: differs from what generator/specs renders in charts/gateway/README.md, "
            "charts/gateway/values.schema.json, charts/gateway/values.yaml",
            id="drift",
        ),
    ],
)
def test_broken_tree_finding_names_chart_object_and_field(
    broken_lint: subprocess.CompletedProcess[str], finding: str
) -> None:
    assert f"\n  {finding}" in broken_lint.stderr, broken_lint.stderr


def test_lint_of_one_chart_reports_only_that_chart(broken: Path) -> None:
    result = meshcharts(broken, "lint", "--chart", "base")
    assert result.returncode == 1
    assert f"meshcharts lint: {len(FROM_BASE_SPECS)} finding(s):\n" in result.stderr
    assert "\n  base 1.12.0 -> working tree: CustomResourceDefinition" in result.stderr
    assert "gateway" not in result.stderr.split("finding(s):", 1)[1]


def test_deprecating_the_removed_key_in_the_spec_clears_that_finding(broken: Path, tmp_path: Path) -> None:
    root = tmp_path / "meshcharts"
    shutil.copytree(broken, root)
    edit(
        root / "generator/specs/gateway.yaml",
        "  service.sessionAffinity:\n",
        "  podDisruptionBudget.unhealthyPodEvictionPolicy:\n"
        "    type: string\n"
        '    default: ""\n'
        "    doc: Whether unhealthy pods may be evicted regardless of the budget.\n"
        "    deprecated: Ignored since the broken tree; set it on the PodDisruptionBudget yourself.\n"
        '    readBy: "nothing; kept so values files that set it still install"\n'
        "  service.sessionAffinity:\n",
    )
    result = meshcharts(root, "lint", "--chart", "gateway")
    assert result.returncode == 1
    assert "Service istio-system/istio-ingressgateway spec.selector changed" in result.stderr
    assert "values key podDisruptionBudget.unhealthyPodEvictionPolicy" not in result.stderr


class CountingHelm(MeshHelm):
    """The toolchain's Helm 4, counting the renders it runs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(major=4, **kwargs)
        self.templates = 0

    def template(self, *args: Any, **kwargs: Any) -> str:
        self.templates += 1
        return super().template(*args, **kwargs)


def test_a_published_archives_renders_are_read_from_the_render_cache_the_second_time(tmp_path: Path) -> None:
    layout = Layout(REPO)
    version, archive = next((v, a) for v, a in lint.published(layout, "gateway") if v.startswith("1.12."))
    scenarios = len(lint.scenarios(layout, "gateway"))
    helm = CountingHelm()
    cache = tmp_path / "renders"
    fresh = lint.snapshot_archive(layout, helm, archive, "gateway", version)
    first = lint.snapshot_archive(layout, helm, archive, "gateway", version, cache=cache)
    assert helm.templates == 2 * scenarios
    assert all(isinstance(render, list) for render in fresh.renders.values()), fresh.renders
    assert len(list(cache.glob("*.yaml"))) == scenarios
    again = lint.snapshot_archive(layout, helm, archive, "gateway", version, cache=cache)
    assert helm.templates == 2 * scenarios, "the second snapshot with the cache ran helm again"
    assert again.renders == first.renders == fresh.renders
    damaged = sorted(cache.glob("*.yaml"))[0]
    damaged.write_text("kind: [unclosed\n")
    mended = lint.snapshot_archive(layout, helm, archive, "gateway", version, cache=cache)
    assert helm.templates == 2 * scenarios + 1, "a damaged entry was not rendered again"
    assert mended.renders == fresh.renders
    assert "unclosed" not in damaged.read_text()


def test_the_render_key_changes_with_the_archive_the_values_and_helm_and_a_failed_render_is_not_kept(
    tmp_path: Path,
) -> None:
    layout = Layout(REPO)
    _, archive = next((v, a) for v, a in lint.published(layout, "gateway") if v.startswith("1.12."))
    values = tmp_path / "values.yaml"
    values.write_text("labels:\n  team: edge\n")
    helm = MeshHelm(major=4)
    helm_id = lint.helm_identity(helm)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    key = lint.archive_render_key(helm_id, "gateway", digest, values)
    assert key == lint.archive_render_key(lint.helm_identity(MeshHelm(major=4)), "gateway", digest, values)
    assert key != lint.archive_render_key(helm_id, "gateway", digest, None)
    values.write_text("labels:\n  team: core\n")
    assert key != lint.archive_render_key(helm_id, "gateway", digest, values)
    values.write_text("labels:\n  team: edge\n")
    other = hashlib.sha256(archive.read_bytes() + b"\0").hexdigest()
    assert key != lint.archive_render_key(helm_id, "gateway", other, values)
    assert key != lint.archive_render_key(lint.helm_identity(MeshHelm(major=3)), "gateway", digest, values)
    homed = lint.helm_identity(helm.with_home(tmp_path / "home"))
    assert key != lint.archive_render_key(homed, "gateway", digest, values)

    cache = tmp_path / "renders"
    values.write_text("labels: [unclosed\n")
    failed = lint._render_cached(helm, "gateway", archive, values, cache / "entry.yaml")
    assert isinstance(failed, HelmError), failed
    assert not cache.exists() or not list(cache.iterdir()), "a failed render was kept"

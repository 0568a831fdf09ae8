"""`meshcharts lint` across release lines: a deliberate break in the 1.13 overlay alone (a changed gateway
selector, a CRD version taken away, a CRD field the published 1.13.0 has removed) fails lint, naming the object
and the two trees. Run with `-s` to see the output a maintainer gets."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.render.conftest import Helm, edit, meshcharts, scratch_copy

SELECTOR = (
    "{app: istio-ingressgateway, istio: ingressgateway} -> {app: istio-ingressgateway, istio: istio-ingressgateway}"
)


@pytest.fixture(scope="module")
def broken_line(tmp_path_factory: pytest.TempPathFactory, helm4: Helm) -> subprocess.CompletedProcess[str]:
    root = scratch_copy(tmp_path_factory.mktemp("broken-line") / "meshcharts")
    line = root / "generator" / "lines" / "1.13"
    # 1.13 alone gets its own gateway helpers, which drop trimPrefix from the selector.
    own = line / "templates" / "gateway" / "templates" / "_helpers.tpl.j2"
    own.parent.mkdir(parents=True)
    shutil.copy2(root / "generator" / "templates" / "gateway" / "templates" / "_helpers.tpl.j2", own)
    edit(own, '| trimPrefix "istio-" }}', "}}")
    # 1.13 alone drops WorkloadGroup v1alpha3, the version 1.12 stored objects in.
    edit(
        line / "line.yaml",
        "      - {name: v1alpha3, served: true, storage: true}\n"
        "      - {name: v1beta1, served: true, storage: false}\n",
        "      - {name: v1beta1, served: true, storage: true}\n",
    )
    # 1.13 alone drops a field it added to Telemetry, which the published 1.13.0 has.
    edit(line / "line.yaml", "      tracing[].useRequestIdForTraceSampling: boolean?\n", "")
    generated = meshcharts(root, "generate")
    assert generated.returncode == 0, generated.stderr
    assert "generated charts/: 0 file(s) changed" in generated.stderr
    return meshcharts(root, "lint")


def test_a_break_in_the_1_13_overlay_fails_lint_naming_the_object(
    broken_line: subprocess.CompletedProcess[str],
) -> None:
    print(f"\n$ meshcharts lint   # exit {broken_line.returncode}\n{broken_line.stderr}")
    assert broken_line.returncode == 1
    err = broken_line.stderr
    assert (
        f"gateway charts/ -> lines/1.13/: Deployment istio-system/istio-ingressgateway spec.selector.matchLabels "
        f"changed: {SELECTOR}" in err
    )
    assert (
        f"gateway charts/ -> lines/1.13/: Service istio-system/istio-ingressgateway spec.selector changed: {SELECTOR}"
        in err
    )
    assert "base charts/ -> lines/1.13/" in err and "workloadgroups.networking.istio.io" in err and "v1alpha3" in err
    # Against the published 1.13.0 (held to lines/1.13/), the removed Telemetry field and the selector are named.
    assert (
        "base 1.13.0 -> lines/1.13/: CustomResourceDefinition telemetries.telemetry.istio.io v1alpha1 "
        "spec.tracing[].useRequestIdForTraceSampling removed from the schema" in err
    )
    assert (
        f"gateway 1.13.0 -> lines/1.13/: Deployment istio-system/istio-ingressgateway spec.selector.matchLabels "
        f"changed: {SELECTOR}" in err
    )
    # A field 1.12 never had is no break of the 1.12 -> 1.13 upgrade: it is named once, against 1.13.0.
    assert err.count("useRequestIdForTraceSampling") == 1
    # The 1.12 line's own checks against its published versions stay clean.
    assert "1.12.0 -> working tree" not in err.split("finding(s):", 1)[-1]

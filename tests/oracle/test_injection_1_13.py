"""The 1.13 line's istiod (lines/1.13/istiod) against Istio 1.13.0's injection, through the same istioctl.

The workloads and variants are the 1.12 oracle's (tests/data/istio-1.12-injection), all of which apply to
1.13; what Istio 1.13.0's own chart made of them is tests/data/istio-1.13-injection/expected (its README
says how). A difference passes only where deviations-1.13.yaml names exactly that field and both values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import REPO
from tests.oracle import cases
from tests.oracle.conftest import Injected
from tests.oracle.injection import OracleError, inject, load_deviations, render_injector, unexplained, unneeded

CHART = REPO / "lines" / "1.13" / "istiod"
DATA = REPO / "tests" / "data" / "istio-1.13-injection"
PINNED = {"global": {"hub": "docker.io/istio", "tag": "1.13.0"}}
DEVIATIONS = load_deviations(Path(__file__).resolve().parent / "deviations-1.13.yaml")
VARIANTS = cases.variants()
WORKLOADS = cases.workloads()
CASES = [pytest.param(v, w, id=f"{v.name}-{w}") for v in VARIANTS for w in WORKLOADS]


@pytest.fixture(scope="session")
def injected_by_1_13(helm_binary: Path, istioctl: Path) -> Callable[[cases.Variant], Injected]:
    """The 1.13 chart's injection of every workload under one variant (one helm, one istioctl run each)."""
    cache: dict[str, Injected] = {}
    text = cases.workloads_text()

    def get(variant: cases.Variant) -> Injected:
        if variant.name not in cache:
            try:
                injector = render_injector(
                    helm_binary,
                    CHART,
                    variant.chart_values(PINNED),
                    estimated_concurrency=variant.estimated_concurrency,
                )
                cache[variant.name] = inject(istioctl, injector, text, env=variant.env)
            except OracleError as err:
                raise OracleError(f"variant {variant.name}: {err}") from err
        return cache[variant.name]

    return get


def test_every_variant_and_workload_has_its_istio_1_13_pod() -> None:
    missing = [
        f"{v.name}/{w}" for v in VARIANTS for w in WORKLOADS if not cases.expected_path(v.name, w, DATA).is_file()
    ]
    assert not missing, f"no Istio 1.13 expectation for {missing}"
    stale = sorted(
        str(path.relative_to(DATA))
        for path in (DATA / "expected").glob("*/*.yaml")
        if path.parent.name not in {v.name for v in VARIANTS} or path.stem not in WORKLOADS
    )
    assert not stale, f"expectations for no variant or workload: {stale}"
    assert len(VARIANTS) * len(WORKLOADS) >= 160


@pytest.mark.parametrize(("variant", "workload"), CASES)
def test_injected_pod_equals_istio_1_13(
    injected_by_1_13: Callable[[cases.Variant], Injected], variant: cases.Variant, workload: str
) -> None:
    ours = injected_by_1_13(variant).get(workload)
    assert ours is not None, f"istioctl kube-inject returned no object named {workload}"
    left, _ = unexplained(
        cases.expected(variant.name, workload, DATA), ours, DEVIATIONS, variant=variant.name, workload=workload
    )
    assert not left, f"{variant.name}/{workload} differs from Istio 1.13's injection:\n" + "\n".join(
        f"  {d}" for d in left
    )


def test_every_1_13_deviation_is_needed_and_in_the_readme(
    injected_by_1_13: Callable[[cases.Variant], Injected],
) -> None:
    used: set[str] = set()
    compared = 0
    for variant in VARIANTS:
        injected = injected_by_1_13(variant)
        for workload in WORKLOADS:
            _, accepted = unexplained(
                cases.expected(variant.name, workload, DATA),
                injected[workload],
                DEVIATIONS,
                variant=variant.name,
                workload=workload,
            )
            used |= accepted
            compared += 1
    assert not unneeded(DEVIATIONS, used), f"deviation entries no difference needs: {unneeded(DEVIATIONS, used)}"
    names = {d.name for d in DEVIATIONS}
    text = (REPO / "README.md").read_text()
    body = text.split("## Deviations from Istio 1.12", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `([a-z0-9-]+)` \|", body, flags=re.MULTILINE))
    assert names <= table, f"deviations missing from the README table: {sorted(names - table)}"
    print(f"\n1.13 oracle: {compared} injected pods compared with Istio 1.13.0's, {len(names)} documented deviations")

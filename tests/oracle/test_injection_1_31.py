"""The 1.31 line's istiod (lines/1.31/istiod) against Istio 1.31.0-rc.0's injection, through the same istioctl.

The workloads are the 1.12 oracle's; the variants are those of tests/data/istio-1.31-injection (the 1.12 oracle's
mapped to 1.31's values, and three only 1.31 has), and what Istio 1.31.0-rc.0's own chart made of them, injected
by the toolchain's istioctl of that same version, is its expected/ (its README says how). A difference passes
only where deviations-1.31.yaml names exactly that field and both values.
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

CHART = REPO / "lines" / "1.31" / "istiod"
DATA = REPO / "tests" / "data" / "istio-1.31-injection"
PINNED = {"global": {"hub": "docker.io/istio", "tag": "1.31.0-rc.0"}}
DEVIATIONS = load_deviations(Path(__file__).resolve().parent / "deviations-1.31.yaml")
VARIANTS = cases.variants(DATA)
WORKLOADS = cases.workloads()
CASES = [pytest.param(v, w, id=f"{v.name}-{w}") for v in VARIANTS for w in WORKLOADS]


@pytest.fixture(scope="session")
def injected_by_1_31(helm_binary: Path, istioctl: Path) -> Callable[[cases.Variant], Injected]:
    """The 1.31 chart's injection of every workload under one variant (one helm, one istioctl run each)."""
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


def test_every_variant_and_workload_has_its_istio_1_31_pod() -> None:
    missing = [
        f"{v.name}/{w}" for v in VARIANTS for w in WORKLOADS if not cases.expected_path(v.name, w, DATA).is_file()
    ]
    assert not missing, f"no Istio 1.31 injected object for {missing}"
    stale = sorted(
        str(path.relative_to(DATA))
        for path in (DATA / "expected").glob("*/*.yaml")
        if path.parent.name not in {v.name for v in VARIANTS} or path.stem not in WORKLOADS
    )
    assert not stale, f"expectations for no variant or workload: {stale}"
    assert len(VARIANTS) * len(WORKLOADS) >= 160


@pytest.mark.parametrize(("variant", "workload"), CASES)
def test_injected_pod_equals_istio_1_31(
    injected_by_1_31: Callable[[cases.Variant], Injected], variant: cases.Variant, workload: str
) -> None:
    ours = injected_by_1_31(variant).get(workload)
    assert ours is not None, f"istioctl kube-inject returned no object named {workload}"
    left, _ = unexplained(
        cases.expected(variant.name, workload, DATA), ours, DEVIATIONS, variant=variant.name, workload=workload
    )
    assert not left, f"{variant.name}/{workload} differs from Istio 1.31's injection:\n" + "\n".join(
        f"  {d}" for d in left
    )


def _section(text: str, heading: str) -> str:
    parts = text.split(f"\n{heading}\n", 1)
    assert len(parts) == 2, f"README.md has no {heading!r} section"
    return parts[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def test_every_1_31_deviation_is_needed_and_in_the_readme(
    injected_by_1_31: Callable[[cases.Variant], Injected],
) -> None:
    """Prints the line's fidelity: pods compared, equal, differing only in named deviations, unexplained."""
    used: set[int] = set()
    compared, equal, explained = 0, 0, 0
    differing: list[str] = []
    for variant in VARIANTS:
        injected = injected_by_1_31(variant)
        for workload in WORKLOADS:
            left, accepted = unexplained(
                cases.expected(variant.name, workload, DATA),
                injected[workload],
                DEVIATIONS,
                variant=variant.name,
                workload=workload,
            )
            used |= accepted
            compared += 1
            if left:
                differing.append(f"{variant.name}/{workload}")
            elif accepted:
                explained += 1
            else:
                equal += 1
    names = {d.name for d in DEVIATIONS}
    print(
        f"\n1.31 oracle: {compared} injected pods compared with Istio 1.31.0-rc.0's: {equal} equal,"
        f" {explained} differing only in {len(names)} named deviations ({len(used)} of {len(DEVIATIONS)} entries"
        f" used), {len(differing)} unexplained"
    )
    assert not differing, f"pods with differences no deviation explains: {differing}"
    assert not unneeded(DEVIATIONS, used), f"deviation entries no difference needs: {unneeded(DEVIATIONS, used)}"
    text = (REPO / "README.md").read_text()
    injection = _section(text, "### Injection")
    table = set(re.findall(r"^\| `([a-z0-9-]+)` \|", injection, flags=re.MULTILINE))
    assert names <= table, f"deviations missing from the README's injection table: {sorted(names - table)}"
    line = _section(text, "### Deviations of the 1.31 line from Istio 1.31.0-rc.0")
    unnamed = sorted(name for name in names if f"`{name}`" not in line)
    assert not unnamed, f"deviations the README's 1.31 deviations table does not name: {unnamed}"

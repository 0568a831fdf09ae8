"""The 1.13 line's istiod (lines/1.13/istiod) against Istio 1.13.0's injection, through the same istioctl.

The workloads and variants are the 1.12 oracle's (tests/data/istio-1.12-injection), all of which apply to
1.13; what Istio 1.13.0's own chart made of them is tests/data/istio-1.13-injection/expected (its README
says how). A difference passes only where deviations-1.13.yaml names exactly that field and both values.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import REPO
from tests.oracle import cases
from tests.oracle.injection import load_deviations, unneeded
from tests.oracle.lines import InjectedBy, LineOracle

DATA = REPO / "tests" / "data" / "istio-1.13-injection"
ORACLE = LineOracle(
    chart=REPO / "lines" / "1.13" / "istiod",
    data=DATA,
    pinned={"global": {"hub": "docker.io/istio", "tag": "1.13.0"}},
    deviations=load_deviations(Path(__file__).resolve().parent / "deviations-1.13.yaml"),
    variants=cases.variants(),
    workloads=cases.workloads(),
)
DEVIATIONS = ORACLE.deviations
CASES = [pytest.param(v, w, id=f"{v.name}-{w}") for v in ORACLE.variants for w in ORACLE.workloads]


@pytest.fixture(scope="session")
def injected_by_1_13(helm_binary: Path, istioctl: Path) -> InjectedBy:
    """The 1.13 chart's injection of every workload under one variant (one helm, one istioctl run each)."""
    return ORACLE.injected_by(helm_binary, istioctl)


def test_every_variant_and_workload_has_its_istio_1_13_pod() -> None:
    missing, stale = ORACLE.missing_and_stale()
    assert not missing, f"no Istio 1.13 injected object for {missing}"
    assert not stale, f"expectations for no variant or workload: {stale}"
    assert len(ORACLE.variants) * len(ORACLE.workloads) >= 160


@pytest.mark.parametrize(("variant", "workload"), CASES)
def test_injected_pod_equals_istio_1_13(injected_by_1_13: InjectedBy, variant: cases.Variant, workload: str) -> None:
    left, _ = ORACLE.differences(injected_by_1_13(variant), variant, workload)
    assert not left, f"{variant.name}/{workload} differs from Istio 1.13's injection:\n" + "\n".join(
        f"  {d}" for d in left
    )


def test_every_1_13_deviation_is_needed_and_in_the_readme(injected_by_1_13: InjectedBy) -> None:
    tally = ORACLE.tally(injected_by_1_13)
    assert not unneeded(DEVIATIONS, tally.used), (
        f"deviation entries no difference needs: {unneeded(DEVIATIONS, tally.used)}"
    )
    names = {d.name for d in DEVIATIONS}
    text = (REPO / "README.md").read_text()
    body = text.split("## Deviations from Istio 1.12", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `([a-z0-9-]+)` \|", body, flags=re.MULTILINE))
    assert names <= table, f"deviations missing from the README table: {sorted(names - table)}"
    print(
        f"\n1.13 oracle: {tally.compared} injected pods compared with Istio 1.13.0's,"
        f" {len(names)} documented deviations"
    )

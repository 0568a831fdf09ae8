"""The 1.31 line's istiod (lines/1.31/istiod) against Istio 1.31.0-rc.0's injection, through the same istioctl.

The workloads are the 1.12 oracle's; the variants are those of tests/data/istio-1.31-injection (the 1.12 oracle's
mapped to 1.31's values, and three only 1.31 has), and what Istio 1.31.0-rc.0's own chart made of them, injected
by the toolchain's istioctl of that same version, is its expected/ (its README says how). A difference passes
only where deviations-1.31.yaml names exactly that field and both values.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import REPO
from tests.oracle import cases
from tests.oracle.injection import load_deviations, unneeded
from tests.oracle.lines import InjectedBy, LineOracle

DATA = REPO / "tests" / "data" / "istio-1.31-injection"
ORACLE = LineOracle(
    chart=REPO / "lines" / "1.31" / "istiod",
    data=DATA,
    pinned={"global": {"hub": "docker.io/istio", "tag": "1.31.0-rc.0"}},
    deviations=load_deviations(Path(__file__).resolve().parent / "deviations-1.31.yaml"),
    variants=cases.variants(DATA),
    workloads=cases.workloads(),
)
DEVIATIONS = ORACLE.deviations
CASES = [pytest.param(v, w, id=f"{v.name}-{w}") for v in ORACLE.variants for w in ORACLE.workloads]


@pytest.fixture(scope="session")
def injected_by_1_31(helm_binary: Path, istioctl: Path) -> InjectedBy:
    """The 1.31 chart's injection of every workload under one variant (one helm, one istioctl run each)."""
    return ORACLE.injected_by(helm_binary, istioctl)


def test_every_variant_and_workload_has_its_istio_1_31_pod() -> None:
    missing, stale = ORACLE.missing_and_stale()
    assert not missing, f"no Istio 1.31 injected object for {missing}"
    assert not stale, f"expectations for no variant or workload: {stale}"
    assert len(ORACLE.variants) * len(ORACLE.workloads) >= 160


@pytest.mark.parametrize(("variant", "workload"), CASES)
def test_injected_pod_equals_istio_1_31(injected_by_1_31: InjectedBy, variant: cases.Variant, workload: str) -> None:
    left, _ = ORACLE.differences(injected_by_1_31(variant), variant, workload)
    assert not left, f"{variant.name}/{workload} differs from Istio 1.31's injection:\n" + "\n".join(
        f"  {d}" for d in left
    )


def _section(text: str, heading: str) -> str:
    parts = text.split(f"\n{heading}\n", 1)
    assert len(parts) == 2, f"README.md has no {heading!r} section"
    return parts[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def test_every_1_31_deviation_is_needed_and_in_the_readme(injected_by_1_31: InjectedBy) -> None:
    """Prints the line's fidelity: pods compared, equal, differing only in named deviations, unexplained."""
    tally = ORACLE.tally(injected_by_1_31)
    names = {d.name for d in DEVIATIONS}
    print(
        f"\n1.31 oracle: {tally.compared} injected pods compared with Istio 1.31.0-rc.0's: {tally.equal} equal,"
        f" {tally.explained} differing only in {len(names)} named deviations ({len(tally.used)} of"
        f" {len(DEVIATIONS)} entries used), {len(tally.differing)} unexplained"
    )
    assert not tally.differing, f"pods with differences no deviation explains: {tally.differing}"
    assert not unneeded(DEVIATIONS, tally.used), (
        f"deviation entries no difference needs: {unneeded(DEVIATIONS, tally.used)}"
    )
    text = (REPO / "README.md").read_text()
    injection = _section(text, "### Injection")
    table = set(re.findall(r"^\| `([a-z0-9-]+)` \|", injection, flags=re.MULTILINE))
    assert names <= table, f"deviations missing from the README's injection table: {sorted(names - table)}"
    line = _section(text, "### Deviations of the 1.31 line from Istio 1.31.0-rc.0")
    unnamed = sorted(name for name in names if f"`{name}`" not in line)
    assert not unnamed, f"deviations the README's 1.31 deviations table does not name: {unnamed}"

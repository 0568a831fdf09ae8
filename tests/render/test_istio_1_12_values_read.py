"""Values Istio 1.12's templates read but its values.yaml never declared: accepted, with 1.12's effect.

A 1.12 user's values file carries these keys, so a strict schema that refused them would fail `helm upgrade`.
tests/data/istio-1.12-values-read.tsv lists them (with pilot.enabled and istiodRemote.enabled, which 1.12
users pass); each has one case (tests/render/values_read.py) that sets it and asserts what 1.12 did with it.
The injection keys are also judged pod by pod by the oracle layer (tests/oracle, variants cni, cni-multus and
hardened).
"""

from __future__ import annotations

import csv

import pytest

from tests.render.conftest import REPO, Helm
from tests.render.values_read import Case, cases, merge, no_effect

VALUES_READ = REPO / "tests" / "data" / "istio-1.12-values-read.tsv"
CASES: dict[tuple[str, str], Case] = {
    **cases("1.12"),
    # Passed by 1.12 users, read by no 1.12 template: accepted and without effect.
    ("istiod", "pilot.enabled"): Case(False, no_effect),
    ("istiod", "istiodRemote.enabled"): Case(True, no_effect),
}
PASSED_BY_1_12_USERS = [("istiod", "pilot.enabled"), ("istiod", "istiodRemote.enabled")]


def _rows() -> list[tuple[str, str]]:
    lines = [line for line in VALUES_READ.read_text().splitlines() if not line.startswith("#")]
    return [(row["chart"], row["key"]) for row in csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)]


def test_every_value_1_12_read_without_declaring_has_a_case() -> None:
    assert set(_rows()) | set(PASSED_BY_1_12_USERS) == set(CASES)


@pytest.mark.parametrize(("chart", "key"), sorted(CASES), ids=[f"{c}-{k}" for c, k in sorted(CASES)])
def test_a_value_1_12_read_is_accepted_with_its_1_12_effect(helm4: Helm, chart: str, key: str) -> None:
    case = CASES[(chart, key)]
    release = "istiod" if chart == "istiod" else "ingress"
    base = dict(case.extra or {})
    default = helm4.template(chart, base, release=release)
    objects = helm4.template(chart, merge(base, key, case.value), release=release)
    case.check(objects, default)

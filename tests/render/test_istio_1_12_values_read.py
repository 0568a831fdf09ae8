"""Values Istio 1.12's templates read but its values.yaml never declared: accepted, with 1.12's effect.

A 1.12 user's values file carries these keys, so a strict schema that refused them would fail `helm upgrade`.
tests/data/istio-1.12-values-read.tsv lists them (with pilot.enabled and istiodRemote.enabled, which 1.12
users pass); each has one case here that sets it and asserts what 1.12 did with it. The injection keys are
also judged pod by pod by the oracle layer (tests/oracle, variants cni, cni-multus and hardened).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.render.conftest import REPO, Helm, find

Objects = list[dict[str, Any]]
VALUES_READ = REPO / "tests" / "data" / "istio-1.12-values-read.tsv"
PASSED_BY_1_12_USERS = [("istiod", "pilot.enabled"), ("istiod", "istiodRemote.enabled")]


def _rows() -> list[tuple[str, str]]:
    lines = [line for line in VALUES_READ.read_text().splitlines() if not line.startswith("#")]
    return [(row["chart"], row["key"]) for row in csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)]


def _injector_values(objects: Objects) -> dict[str, Any]:
    data = find(objects, "ConfigMap", "istio-sidecar-injector")["data"]
    return dict(json.loads(data["values"]))


def _mesh(objects: Objects) -> dict[str, Any]:
    return dict(yaml.safe_load(find(objects, "ConfigMap", "istio")["data"]["mesh"]))


def _stackdriver_configs(objects: Objects, name: str) -> dict[str, str]:
    """context -> access_logging of each patch of one Stackdriver EnvoyFilter."""
    result = {}
    for patch in find(objects, "EnvoyFilter", name)["spec"]["configPatches"]:
        typed = patch["patch"]["value"]["typed_config"]["value"]["config"]["configuration"]["value"]
        result[patch["match"]["context"]] = json.loads(typed)["access_logging"]
    return result


@dataclass(frozen=True)
class Case:
    value: Any
    check: Callable[[Objects, Objects], None]
    extra: dict[str, Any] | None = None


def _validator_url(objects: Objects, _: Objects) -> None:
    hook = find(objects, "ValidatingWebhookConfiguration", "istio-validator-istio-system")["webhooks"][0]
    assert hook["clientConfig"]["url"] == "https://istiod.example.com:15017/validate"


def _no_revision_validator(objects: Objects, default: Objects) -> None:
    assert any(o["kind"] == "ValidatingWebhookConfiguration" for o in default)
    assert not any(o["kind"] == "ValidatingWebhookConfiguration" for o in objects)


def _in_injector_values(key: str, value: Any) -> Callable[[Objects, Objects], None]:
    def check(objects: Objects, _: Objects) -> None:
        found: Any = _injector_values(objects)
        for part in key.split("."):
            found = found[part]
        assert found == value, f"{key} reaches the injection templates as {found!r}"

    return check


def _reaches_injector(key: str, value: Any) -> Case:
    """Read by the injection templates: the effect is in the values JSON istiod hands them (and in tests/oracle)."""
    return Case(value, _in_injector_values(key, value))


def _tracing(objects: Objects, _: Objects) -> None:
    # 1.12 merges meshConfig over its tracer-derived defaults: the user's keys win, zipkin's address stays.
    tracing = _mesh(objects)["defaultConfig"]["tracing"]
    assert tracing["sampling"] == 5.0
    assert tracing["zipkin"] == {"address": "zipkin.istio-system:9411"}


def _inbound_logging(objects: Objects, _: Objects) -> None:
    for name in ("stackdriver-filter-1.12", "tcp-stackdriver-filter-1.12"):
        assert _stackdriver_configs(objects, name)["SIDECAR_INBOUND"] == "ERRORS_ONLY"


def _outbound_logging(objects: Objects, _: Objects) -> None:
    configs = _stackdriver_configs(objects, "stackdriver-filter-1.12")
    assert (configs["SIDECAR_OUTBOUND"], configs["GATEWAY"], configs["SIDECAR_INBOUND"]) == ("FULL", "FULL", "NONE")


def _gateway_pull_secrets(objects: Objects, _: Objects) -> None:
    spec = find(objects, "Deployment")["spec"]["template"]["spec"]
    assert spec["imagePullSecrets"] == [{"name": "mirror-credentials"}]


def _no_effect(objects: Objects, default: Objects) -> None:
    assert objects == default


STACKDRIVER = {"telemetry": {"v2": {"stackdriver": {"enabled": True}}}}
CASES: dict[tuple[str, str], Case] = {
    ("istiod", "base.validationURL"): Case("https://istiod.example.com:15017/validate", _validator_url),
    ("istiod", "global.configValidation"): Case(False, _no_revision_validator),
    ("istiod", "global.proxy.capNetBindService"): Case(
        True, _in_injector_values("global.proxy.capNetBindService", True)
    ),
    ("istiod", "global.proxy.lifecycle"): _reaches_injector(
        "global.proxy.lifecycle", {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    ),
    ("istiod", "global.trustDomain"): Case(
        "legacy.example", _in_injector_values("global.trustDomain", "legacy.example")
    ),
    ("istiod", "istio_cni.chained"): _reaches_injector("istio_cni.chained", True),
    ("istiod", "istio_cni.enabled"): _reaches_injector("istio_cni.enabled", True),
    ("istiod", "meshConfig.defaultConfig.tracing"): Case({"sampling": 5.0}, _tracing),
    ("istiod", "telemetry.v2.stackdriver.inboundAccessLogging"): Case("ERRORS_ONLY", _inbound_logging, STACKDRIVER),
    ("istiod", "telemetry.v2.stackdriver.outboundAccessLogging"): Case("FULL", _outbound_logging, STACKDRIVER),
    ("gateway", "imagePullSecrets"): Case([{"name": "mirror-credentials"}], _gateway_pull_secrets),
    ("istiod", "pilot.enabled"): Case(False, _no_effect),
    ("istiod", "istiodRemote.enabled"): Case(True, _no_effect),
}


def test_every_value_1_12_read_without_declaring_has_a_case() -> None:
    assert set(_rows()) | set(PASSED_BY_1_12_USERS) == set(CASES)


@pytest.mark.parametrize(("chart", "key"), sorted(CASES), ids=[f"{c}-{k}" for c, k in sorted(CASES)])
def test_a_value_1_12_read_is_accepted_with_its_1_12_effect(helm4: Helm, chart: str, key: str) -> None:
    case = CASES[(chart, key)]
    release = "istiod" if chart == "istiod" else "ingress"
    base = dict(case.extra or {})
    default = helm4.template(chart, base, release=release)
    objects = helm4.template(chart, _merge(base, key, case.value), release=release)
    case.check(objects, default)


def _merge(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    merged = json.loads(json.dumps(base))
    node = merged
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return merged

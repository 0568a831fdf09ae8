"""The cases of "values a line's Istio read without declaring them": each sets one such value and asserts the
effect that Istio release gave it. Shared by the 1.12 line's test and the 1.13 line's (a library module, not a
test file)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from tests.render.conftest import find

Objects = list[dict[str, Any]]


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


def _inbound_logging(line: str) -> Callable[[Objects, Objects], None]:
    def check(objects: Objects, _: Objects) -> None:
        for name in (f"stackdriver-filter-{line}", f"tcp-stackdriver-filter-{line}"):
            assert _stackdriver_configs(objects, name)["SIDECAR_INBOUND"] == "ERRORS_ONLY"

    return check


def _outbound_logging(line: str) -> Callable[[Objects, Objects], None]:
    def check(objects: Objects, _: Objects) -> None:
        configs = _stackdriver_configs(objects, f"stackdriver-filter-{line}")
        got = (configs["SIDECAR_OUTBOUND"], configs["GATEWAY"], configs["SIDECAR_INBOUND"])
        assert got == ("FULL", "FULL", "NONE")

    return check


def _gateway_pull_secrets(objects: Objects, _: Objects) -> None:
    spec = find(objects, "Deployment")["spec"]["template"]["spec"]
    assert spec["imagePullSecrets"] == [{"name": "mirror-credentials"}]


def no_effect(objects: Objects, default: Objects) -> None:
    assert objects == default


STACKDRIVER = {"telemetry": {"v2": {"stackdriver": {"enabled": True}}}}


def cases(line: str) -> dict[tuple[str, str], Case]:
    """What Istio `line` ("1.12", "1.13") did with each value its templates read undeclared (the 1.12 keys;
    `cases_1_13` adds what 1.13 read besides)."""
    return {
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
        ("istiod", "telemetry.v2.stackdriver.inboundAccessLogging"): Case(
            "ERRORS_ONLY", _inbound_logging(line), STACKDRIVER
        ),
        ("istiod", "telemetry.v2.stackdriver.outboundAccessLogging"): Case(
            "FULL", _outbound_logging(line), STACKDRIVER
        ),
        ("gateway", "imagePullSecrets"): Case([{"name": "mirror-credentials"}], _gateway_pull_secrets),
    }


REMOTE = {"global": {"remotePilotAddress": "10.1.2.3"}}


def _remote_control_plane_named(kind_names: tuple[str, ...], name: str) -> Callable[[Objects, Objects], None]:
    def check(objects: Objects, default: Objects) -> None:
        found = {o["metadata"]["name"] for o in objects if o["kind"] in kind_names}
        before = {o["metadata"]["name"] for o in default if o["kind"] in kind_names}
        assert (before, found) == ({"istiod-remote"}, {name})

    return check


def _discovery_address(name: str) -> Callable[[Objects, Objects], None]:
    def check(objects: Objects, default: Objects) -> None:
        assert _mesh(default)["defaultConfig"]["discoveryAddress"] == "istiod-remote.istio-system.svc:15012"
        assert _mesh(objects)["defaultConfig"]["discoveryAddress"] == f"{name}.istio-system.svc:15012"

    return check


def _mcs_group(objects: Objects, default: Objects) -> None:
    roles = json.dumps([o for o in objects if o["kind"] == "ClusterRole"])
    assert "mcs.example.io" in roles and "multicluster.x-k8s.io" not in roles
    assert "multicluster.x-k8s.io" in json.dumps([o for o in default if o["kind"] == "ClusterRole"])


def cases_1_13() -> dict[tuple[str, str], Case]:
    """Istio 1.13's: the 1.12 keys (with 1.13's filter names), pilot.enabled and the MCS API group."""
    return {
        **cases("1.13"),
        ("base", "pilot.enabled"): Case(False, _remote_control_plane_named(("Service", "Endpoints"), "istiod"), REMOTE),
        ("istiod", "pilot.enabled"): Case(False, _discovery_address("istiod"), REMOTE),
        ("istiod", "pilot.env.MCS_API_GROUP"): Case("mcs.example.io", _mcs_group),
    }


def merge(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`base` with the dotted `key` set to `value`."""
    merged = json.loads(json.dumps(base))
    node = merged
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return merged

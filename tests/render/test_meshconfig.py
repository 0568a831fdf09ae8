"""Each line's istiod `meshConfig` checked by the chart's schema with the real Helm 4 and 3: that Istio minor's
MeshConfig fields and types are accepted and reach the mesh ConfigMap; a wrong type, enum value or field name is
refused, naming it. The 1.31 line's own defaults, and what each of its profiles, compatibility versions and
platforms lays into the mesh config, pass the same schema.

The cases are tests/data/istio-<minor>-meshconfig (valid.yaml, bad.yaml; tests/meshconfig_lines.py lists the
lines); tests/oracle/test_mesh_config.py puts the same cases through Istio's own mesh-config loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.meshconfig_lines import MeshConfigLine, bad_params, by_minor, line_params, valid_params
from tests.render.conftest import REPO, Helm, find

CI_VALUES = sorted((REPO / "ci" / "values" / "istiod").glob("*.yaml"))
LINE_1_31 = by_minor("1.31")
# What the 1.31 chart lays under the values besides the user's own: every profile, compatibility version and
# platform of its files/profiles.yaml, and tracers that make the chart derive more of the mesh config.
PROFILES: dict[str, Any] = yaml.safe_load((LINE_1_31.chart / "files" / "profiles.yaml").read_text())
KEYS = {"profiles": "profile", "compatibilityVersions": "compatibilityVersion", "platforms": "platform"}
VARIANTS_1_31 = [
    {},
    *({KEYS[section]: name} for section in KEYS for name in PROFILES[section]),
    {"global": {"proxy": {"tracer": "zipkin"}, "meshID": "mesh1", "variant": "distroless"}},
    {"global": {"proxy": {"tracer": "datadog"}}, "revision": "canary"},
]


def mesh(helm: Helm, values: dict[str, Any] | None = None, chart: Path = REPO / "charts" / "istiod") -> Any:
    """The mesh config `chart` (default: the base line's istiod) renders with `values` (ConfigMap istio, or
    istio-<revision>); None when the chart renders no mesh ConfigMap (the 1.31 remote profile)."""
    revision = (values or {}).get("revision") or ""
    objects = helm.template(str(chart), values, release="istiod")
    name = f"istio-{revision}" if revision else "istio"
    if not any(o["kind"] == "ConfigMap" and o["metadata"]["name"] == name for o in objects):
        return None
    loaded: dict[str, Any] = yaml.safe_load(find(objects, "ConfigMap", name)["data"]["mesh"])
    return loaded


def contains(whole: Any, part: Any) -> bool:
    """Whether every key of `part` is in `whole` with the same value (mappings compared key by key); a null in
    `part` means unset, so the key may also be absent (Helm drops a null that removes nothing)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            (v is None and whole.get(key) is None) or (key in whole and contains(whole[key], v))
            for key, v in part.items()
        )
    return bool(whole == part)


@pytest.mark.parametrize("line", line_params())
def test_the_cases_cover_the_kinds_of_mistake(line: MeshConfigLine) -> None:
    assert len(line.valid) >= 10
    assert {case["istio"] for case in line.bad} == {"refused", "ignored", "taken"}
    assert any("defaultConfig" in case["meshConfig"] for case in line.bad if case["istio"] == "ignored")


@pytest.mark.parametrize(("line", "name"), valid_params())
def test_valid_mesh_config_passes_the_schema_and_reaches_the_mesh_configmap(
    helm: Helm, line: MeshConfigLine, name: str
) -> None:
    rendered = mesh(helm, {"meshConfig": line.valid[name]}, line.chart)
    assert contains(rendered, line.valid[name]), yaml.safe_dump(rendered)


def test_the_charts_own_default_mesh_config_given_back_as_values_passes_the_schema(helm: Helm) -> None:
    default = mesh(helm)
    assert default["defaultConfig"]["discoveryAddress"] == "istiod.istio-system.svc:15012"
    assert mesh(helm, {"meshConfig": default}) == default


@pytest.mark.parametrize("values", VARIANTS_1_31, ids=lambda v: yaml.safe_dump(v, default_flow_style=True).strip())
def test_the_1_31_mesh_config_of_each_profile_given_back_as_values_passes_the_schema(
    helm4: Helm, values: dict[str, Any]
) -> None:
    """The chart's derived mesh config with the profile's meshConfig under it: all of it is valid user input."""
    rendered = mesh(helm4, values, LINE_1_31.chart)
    if rendered is None:
        assert values == {"profile": "remote"}, "only the remote profile renders no mesh ConfigMap"
        return
    assert rendered["rootNamespace"] == "istio-system"
    assert mesh(helm4, {**values, "meshConfig": rendered}, LINE_1_31.chart) == rendered


@pytest.mark.parametrize("values_file", CI_VALUES, ids=[path.stem for path in CI_VALUES])
def test_each_ci_values_case_passes_the_schema(helm: Helm, values_file: Path) -> None:
    values = yaml.safe_load(values_file.read_text()) or {}
    assert contains(mesh(helm, values), values.get("meshConfig") or {})


@pytest.mark.parametrize(("line", "case"), bad_params())
def test_bad_mesh_config_is_refused_naming_the_key(helm: Helm, line: MeshConfigLine, case: dict[str, Any]) -> None:
    error = helm.template_error(str(line.chart), {"meshConfig": case["meshConfig"]})
    assert "schema" in error.lower(), error
    assert case["key"] in error, error
    assert "/meshConfig" in error, error


@pytest.mark.parametrize("line", line_params())
def test_a_set_flag_with_a_number_for_a_string_field_is_refused(helm: Helm, line: MeshConfigLine) -> None:
    """The issue's example: `--set meshConfig.accessLogFile=5` installed and broke istiod 1.12."""
    done = helm.run("template", "istiod", str(line.chart), "--set", "meshConfig.accessLogFile=5", check=False)
    assert done.returncode != 0
    assert "/meshConfig/accessLogFile" in done.stderr, done.stderr

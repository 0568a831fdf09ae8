"""istiod's `meshConfig` checked by the chart's schema with the real Helm 4 and 3: Istio 1.12's MeshConfig fields
and types are accepted and reach the mesh ConfigMap; a wrong type, enum value or field name is refused, naming it.

The cases are tests/data/istio-1.12-meshconfig (valid.yaml, bad.yaml); tests/oracle/test_mesh_config.py puts the
same cases through Istio's own mesh-config loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.render.conftest import REPO, Helm, find

DATA = REPO / "tests" / "data" / "istio-1.12-meshconfig"
VALID: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "valid.yaml").read_text())
BAD: list[dict[str, Any]] = yaml.safe_load((DATA / "bad.yaml").read_text())
CI_VALUES = sorted((REPO / "ci" / "values" / "istiod").glob("*.yaml"))


def mesh(helm: Helm, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The mesh config the chart renders with `values` (ConfigMap istio, or istio-<revision>)."""
    revision = (values or {}).get("revision") or ""
    objects = helm.template("istiod", values, release="istiod")
    name = f"istio-{revision}" if revision else "istio"
    loaded: dict[str, Any] = yaml.safe_load(find(objects, "ConfigMap", name)["data"]["mesh"])
    return loaded


def contains(whole: Any, part: Any) -> bool:
    """Whether every key of `part` is in `whole` with the same value (mappings compared key by key)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(key in whole and contains(whole[key], v) for key, v in part.items())
    return bool(whole == part)


def test_the_cases_cover_the_kinds_of_mistake() -> None:
    assert len(VALID) >= 10
    assert {case["istio"] for case in BAD} == {"refused", "ignored", "taken"}
    assert any("defaultConfig" in case["meshConfig"] for case in BAD if case["istio"] == "ignored")


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_mesh_config_passes_the_schema_and_reaches_the_mesh_configmap(helm: Helm, name: str) -> None:
    rendered = mesh(helm, {"meshConfig": VALID[name]})
    assert contains(rendered, VALID[name]), yaml.safe_dump(rendered)


def test_the_charts_own_default_mesh_config_given_back_as_values_passes_the_schema(helm: Helm) -> None:
    default = mesh(helm)
    assert default["defaultConfig"]["discoveryAddress"] == "istiod.istio-system.svc:15012"
    assert mesh(helm, {"meshConfig": default}) == default


@pytest.mark.parametrize("values_file", CI_VALUES, ids=[path.stem for path in CI_VALUES])
def test_each_ci_values_case_passes_the_schema(helm: Helm, values_file: Path) -> None:
    values = yaml.safe_load(values_file.read_text()) or {}
    assert contains(mesh(helm, values), values.get("meshConfig") or {})


@pytest.mark.parametrize("case", BAD, ids=[case["name"] for case in BAD])
def test_bad_mesh_config_is_refused_naming_the_key(helm: Helm, case: dict[str, Any]) -> None:
    error = helm.template_error("istiod", {"meshConfig": case["meshConfig"]})
    assert "schema" in error.lower(), error
    assert case["key"] in error, error
    assert "/meshConfig" in error, error


def test_a_set_flag_with_a_number_for_a_string_field_is_refused(helm: Helm) -> None:
    """The issue's example: `--set meshConfig.accessLogFile=5` installed and broke istiod 1.12."""
    done = helm.run(
        "template", "istiod", str(REPO / "charts" / "istiod"), "--set", "meshConfig.accessLogFile=5", check=False
    )
    assert done.returncode != 0
    assert "/meshConfig/accessLogFile" in done.stderr, done.stderr

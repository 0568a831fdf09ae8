"""Fixtures of the oracle layer: the pinned helm and istioctl, and each variant injected once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.oracle import cases
from tests.oracle.injection import Injector, OracleError, inject, render_injector

CHART = Path(__file__).resolve().parents[2] / "charts" / "istiod"


def _tool(name: str) -> Path:
    from meshcharts import tools
    from meshcharts.errors import ToolError

    try:
        return tools.path(name)
    except ToolError as err:
        pytest.skip(f"requires {name} from the toolchain: {err}")


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    return _tool("helm")


@pytest.fixture(scope="session")
def istioctl() -> Path:
    return _tool("istioctl")


Injected = dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def injected_by_chart(helm_binary: Path, istioctl: Path) -> Callable[[cases.Variant], Injected]:
    """The chart's injection of every workload under one variant; one helm and one istioctl run per variant."""
    cache: dict[str, Injected] = {}
    text = cases.workloads_text()

    def get(variant: cases.Variant) -> Injected:
        if variant.name not in cache:
            try:
                injector: Injector = render_injector(
                    helm_binary, CHART, variant.chart_values(), estimated_concurrency=variant.estimated_concurrency
                )
                cache[variant.name] = inject(istioctl, injector, text, env=variant.env)
            except OracleError as err:
                raise OracleError(f"variant {variant.name}: {err}") from err
        return cache[variant.name]

    return get

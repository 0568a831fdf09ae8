"""Which skew adaptations the host istiod applies is read from the chart's version on its Deployment."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from meshcharts.cluster.local import istiod as host_istiod


def _deployment(chart_label: str | None, image: str = "docker.io/istio/pilot:1.12.2") -> SimpleNamespace:
    labels = {} if chart_label is None else {"helm.sh/chart": chart_label}
    container = SimpleNamespace(image=image)
    return SimpleNamespace(
        metadata=SimpleNamespace(labels=labels),
        spec=SimpleNamespace(template=SimpleNamespace(spec=SimpleNamespace(containers=[container]))),
    )


@pytest.mark.parametrize(
    ("label", "version"),
    [
        ("istiod-1.12.2", "1.12.2"),
        ("istiod-1.13.0", "1.13.0"),
        # A pre-release has a `-` of its own: the version is not what follows the last one.
        ("istiod-1.31.0-rc.0", "1.31.0-rc.0"),
        ("istiod-remote-1.31.0-alpha.1", "1.31.0-alpha.1"),
    ],
)
def test_the_chart_version_is_read_whole_from_the_helm_chart_label(label: str, version: str) -> None:
    assert host_istiod._chart_version(_deployment(label)) == version


def test_without_the_label_the_image_tag_is_the_version() -> None:
    assert host_istiod._chart_version(_deployment(None, "docker.io/istio/pilot:1.13.0")) == "1.13.0"


def test_the_base_lines_charts_get_the_skew_and_the_1_31_pre_release_none() -> None:
    assert host_istiod.skew_for(host_istiod._chart_version(_deployment("istiod-1.12.2"))) == host_istiod.SKEW_1_12
    assert host_istiod.skew_for(host_istiod._chart_version(_deployment("istiod-1.13.0"))) == host_istiod.SKEW_1_12
    assert host_istiod.skew_for(host_istiod._chart_version(_deployment("istiod-1.31.0-rc.0"))) == ()

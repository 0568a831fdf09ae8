"""A pod whose `image: auto` no injector replaced does not pass for running on the local cluster.

On a real cluster such a pod's kubelet fails to pull the image `auto` and the pod never becomes Ready.
kwok would make it Ready; the local provider's stage (meshcharts/data/kwok/uninjected-pod-stage.yaml) keeps it Pending
with the container waiting in ErrImagePull unless an injector handled it: istiod replaces the image; the
admission recorder (which still stands in where a test needs to see admission requests themselves) marks it.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from meshcharts import waits
from meshcharts.testing.admission import INJECTED_BY
from meshcharts.testing.plugin import Kube

pytestmark = pytest.mark.local_only("tests the local provider's kwok stage for pods no injector handled")


def _pod(name: str, image: str, annotations: dict[str, str] | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="istio-proxy", image=image)],
            tolerations=[client.V1Toleration(operator="Exists")],
        ),
    )


def _waiting(kube: Kube, namespace: str, name: str) -> Any:
    statuses = kube.core.read_namespaced_pod(name, namespace).status.container_statuses or []
    return next((s.state.waiting for s in statuses if s.state and s.state.waiting), None)


def test_an_uninjected_auto_image_fails_to_pull_while_a_marked_one_and_a_real_image_run(
    kube: Kube, mesh_namespace: str
) -> None:
    kube.core.create_namespaced_pod(mesh_namespace, _pod("plain", "auto"))
    kube.core.create_namespaced_pod(mesh_namespace, _pod("marked", "auto", {INJECTED_BY: "/inject"}))
    kube.core.create_namespaced_pod(mesh_namespace, _pod("real", "registry.example/proxy:1.12.2"))
    waiting = waits.wait_until(
        lambda: _waiting(kube, mesh_namespace, "plain"),
        condition="pod plain's container waiting",
        timeout=30,
    )
    assert waiting.reason == "ErrImagePull"
    assert "no injector handled this pod" in waiting.message
    for name in ("marked", "real"):
        waits.wait_until(
            lambda name=name: kube.core.read_namespaced_pod(name, mesh_namespace).status.phase == "Running",
            condition=f"pod {name} Running",
            timeout=30,
        )
    plain = kube.core.read_namespaced_pod("plain", mesh_namespace)
    assert plain.status.phase == "Pending"
    assert {c.type: c.status for c in plain.status.conditions}["Ready"] == "False"

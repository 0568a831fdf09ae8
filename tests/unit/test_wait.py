"""The one polling loop and the cluster waits built on it: what they return, and what their errors say."""

from __future__ import annotations

import itertools

import pytest
from kubernetes.client.exceptions import ApiException

from meshcharts import waits
from meshcharts.errors import ClusterError, MeshchartsError, WaitTimeout
from meshcharts.kube import KubeApiError
from meshcharts.waits import wait_for


def test_wait_for_returns_the_first_truthy_value_of_the_condition() -> None:
    calls = itertools.count(1)

    def third() -> str | None:
        n = next(calls)
        return f"ready after {n}" if n >= 3 else None

    assert wait_for(third, what="three calls", timeout=30, interval=0) == "ready after 3"


def test_a_condition_that_never_holds_times_out_naming_it_and_the_last_state() -> None:
    with pytest.raises(WaitTimeout, match=r"timed out after 0\.2s waiting for the moon; phase: new") as caught:
        wait_for(lambda: None, what="the moon", timeout=0.2, interval=0.05, describe=lambda: "phase: new")
    assert isinstance(caught.value, MeshchartsError)


def test_a_condition_that_raises_ends_the_wait_at_once() -> None:
    calls: list[int] = []

    def exited() -> bool:
        calls.append(1)
        raise ClusterError("the process exited 3")

    with pytest.raises(ClusterError, match="exited 3"):
        wait_for(exited, what="never", timeout=30)
    assert len(calls) == 1


def test_a_cluster_wait_that_times_out_raises_the_one_timeout_error() -> None:
    with pytest.raises(WaitTimeout) as caught:
        waits.wait_until(lambda: None, condition="Deployment a/b to be Available", timeout=0, interval=0)
    assert type(caught.value) is WaitTimeout
    assert "waiting for Deployment a/b to be Available" in str(caught.value)


def test_an_api_error_while_waiting_is_a_cluster_error_naming_the_condition_and_the_object() -> None:
    body = '{"kind": "Status", "message": "deployments.apps \\"istiod\\" not found", "code": 404}'

    def check() -> None:
        raise _api_exception(404, "Not Found", body)

    with pytest.raises(KubeApiError) as caught:
        waits.wait_until(check, condition="Deployment istio-system/istiod to be Available", timeout=30)
    err = caught.value
    assert isinstance(err, ClusterError) and err.status == 404
    assert str(err) == (
        "while waiting for Deployment istio-system/istiod to be Available: the API server answered 404 Not Found: "
        'deployments.apps "istiod" not found'
    )


def _api_exception(status: int, reason: str, body: str) -> ApiException:
    err = ApiException(status=status, reason=reason)
    err.body = body
    return err

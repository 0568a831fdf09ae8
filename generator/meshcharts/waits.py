"""Waits with a wall-clock deadline and a named condition, that fail fast when the cluster dies.

Loop counts hide how long a test really waited (a lesson from pytest-helm-charts); every wait here
takes seconds, says what it waited for, shows the last state it saw, and stops with ClusterError
as soon as the API server has stopped answering instead of spinning until the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from meshcharts import errors
from meshcharts._wait import wait_for
from meshcharts.errors import ClusterError
from meshcharts.kube import KubeApiError, is_api_error

T = TypeVar("T")

# The API server may blink during a restart; it is dead once it has not answered for this long.
UNREACHABLE_GRACE = 10.0


class WaitTimeout(ClusterError, errors.WaitTimeout):
    """A cluster condition did not hold before its deadline (a ClusterError, and a WaitTimeout like every deadline)."""


def _is_connection_error(err: BaseException) -> bool:
    try:
        import urllib3.exceptions
    except ImportError:  # pragma: no cover - urllib3 comes with the kubernetes client
        return isinstance(err, ConnectionError)
    return isinstance(err, ConnectionError | urllib3.exceptions.MaxRetryError | urllib3.exceptions.ProtocolError)


def wait_until(
    check: Callable[[], T | None],
    *,
    condition: str,
    timeout: float,
    interval: float = 0.2,
    describe: Callable[[], str] | None = None,
    on_unreachable: Callable[[], str] | None = None,
) -> T:
    """Call `check` until it returns something truthy; WaitTimeout after `timeout` seconds of wall clock.

    `describe` renders the last observed state for the error; `on_unreachable` adds context (such as
    the control-plane log tails) when the cluster stops answering. An error status from the API
    server ends the wait as a KubeApiError naming `condition`.
    """
    unreachable_since: float | None = None
    last_error: BaseException | None = None

    def attempt() -> T | None:
        nonlocal unreachable_since, last_error
        try:
            result = check()
        except Exception as err:
            if is_api_error(err):
                raise KubeApiError(f"while waiting for {condition}", err) from err
            if not _is_connection_error(err):
                raise
            last_error = err
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since >= UNREACHABLE_GRACE:
                extra = on_unreachable() if on_unreachable else ""
                raise ClusterError(
                    f"the cluster stopped answering while waiting for {condition} "
                    f"({now - unreachable_since:.0f}s without a response: {err})" + (f"\n{extra}" if extra else "")
                ) from err
            return None
        unreachable_since = None
        return result

    def state() -> str:
        if describe is not None:
            return describe()
        return f"last error: {last_error}" if last_error else ""

    return wait_for(attempt, what=condition, timeout=timeout, interval=interval, describe=state, error=WaitTimeout)


def _conditions(obj: Any) -> dict[str, str]:
    status = getattr(obj, "status", None)
    return {c.type: c.status for c in (getattr(status, "conditions", None) or [])}


def deployment_available(apps: Any, namespace: str, name: str, *, timeout: float = 120.0) -> Any:
    """The Deployment rolled out its current generation and reports condition Available=True."""
    last: list[Any] = [None]

    def check() -> Any:
        d = apps.read_namespaced_deployment(name, namespace)
        last[0] = d
        s = d.status
        rolled = (s.observed_generation or 0) >= (d.metadata.generation or 0) and (s.updated_replicas or 0) >= (
            d.spec.replicas or 0
        )
        return d if rolled and _conditions(d).get("Available") == "True" else None

    return wait_until(
        check,
        condition=f"Deployment {namespace}/{name} to be Available",
        timeout=timeout,
        describe=lambda: f"status: {last[0].status.to_dict() if last[0] else 'not found'}",
    )


def daemonset_ready(apps: Any, namespace: str, name: str, *, timeout: float = 120.0) -> Any:
    """Every scheduled DaemonSet pod is updated and ready."""
    last: list[Any] = [None]

    def check() -> Any:
        d = apps.read_namespaced_daemon_set(name, namespace)
        last[0] = d
        s = d.status
        desired = s.desired_number_scheduled or 0
        done = (s.observed_generation or 0) >= (d.metadata.generation or 0)
        return (
            d
            if done
            and desired > 0
            and (s.number_ready or 0) == desired
            and (s.updated_number_scheduled or 0) == desired
            else None
        )

    return wait_until(
        check,
        condition=f"DaemonSet {namespace}/{name} to have every pod ready",
        timeout=timeout,
        describe=lambda: f"status: {last[0].status.to_dict() if last[0] else 'not found'}",
    )


def crd_established(ext: Any, name: str, *, timeout: float = 30.0) -> Any:
    """The CustomResourceDefinition is Established (its API is served)."""
    return wait_until(
        lambda: (lambda c: c if _conditions(c).get("Established") == "True" else None)(
            ext.read_custom_resource_definition(name)
        ),
        condition=f"CRD {name} to be Established",
        timeout=timeout,
    )


def service_address(core: Any, namespace: str, name: str, *, timeout: float = 30.0) -> str:
    """The LoadBalancer Service has an ingress IP or hostname; returns it."""

    def check() -> str | None:
        svc = core.read_namespaced_service(name, namespace)
        ingress = (svc.status.load_balancer and svc.status.load_balancer.ingress) or []
        return (ingress[0].ip or ingress[0].hostname) if ingress else None

    return wait_until(check, condition=f"Service {namespace}/{name} to get a load balancer address", timeout=timeout)


def namespace_gone(core: Any, name: str, *, timeout: float = 60.0) -> None:
    """The namespace is deleted and the namespace controller has finished it."""

    def check() -> bool:
        try:
            core.read_namespace(name)
        except Exception as err:
            if is_api_error(err) and getattr(err, "status", None) == 404:
                return True
            raise
        return False

    wait_until(check, condition=f"namespace {name} to be deleted", timeout=timeout)

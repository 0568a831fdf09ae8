"""The one wait module: a condition polled until a wall-clock deadline, and one timeout error (WaitTimeout).

`wait_for` is the polling loop every wait of meshcharts goes through; `wait_until` adds what waiting on a
cluster needs (an error status of the API server ends the wait, a cluster that stopped answering fails fast
with ClusterError instead of spinning until the deadline); the named waits (`deployment_available`, ...) are
built on it. Loop counts hide how long a test really waited (a lesson from pytest-helm-charts): every wait
takes seconds, says what it waited for and shows the last state it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from meshcharts.errors import ClusterError, WaitTimeout
from meshcharts.kube import KubeApiError, is_api_error

T = TypeVar("T")

# The API server may blink during a restart; it is dead once it has not answered for this long.
UNREACHABLE_GRACE = 10.0


def wait_for(
    condition: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call `condition` every `interval` seconds until it returns something truthy, and return that.

    After `timeout` seconds of wall clock, raise WaitTimeout (the one timeout error of meshcharts) saying
    "timed out after Ns waiting for WHAT" and, from `describe`, the last state seen. `condition` ends
    the wait early by raising: a process that exited will not start answering later.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            state = describe() if describe else ""
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}" + (f"; {state}" if state else ""))
        time.sleep(interval)


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

    return wait_for(attempt, what=condition, timeout=timeout, interval=interval, describe=state)


def _conditions(obj: Any) -> dict[str, str]:
    status = getattr(obj, "status", None)
    return {c.type: c.status for c in (getattr(status, "conditions", None) or [])}


def _object_ready(read: Callable[[], Any], ready: Callable[[Any], bool], *, condition: str, timeout: float) -> Any:
    """Wait until `ready` holds for the object `read` returns; the error shows the object's last status."""
    last: list[Any] = [None]

    def check() -> Any:
        obj = last[0] = read()
        return obj if ready(obj) else None

    return wait_until(
        check,
        condition=condition,
        timeout=timeout,
        describe=lambda: f"status: {last[0].status.to_dict() if last[0] else 'not found'}",
    )


def _observed(obj: Any) -> bool:
    """The controller has seen the object's current generation."""
    return (obj.status.observed_generation or 0) >= (obj.metadata.generation or 0)


def _deployment_available(d: Any) -> bool:
    rolled = _observed(d) and (d.status.updated_replicas or 0) >= (d.spec.replicas or 0)
    return rolled and _conditions(d).get("Available") == "True"


def _daemonset_ready(d: Any) -> bool:
    s = d.status
    desired = s.desired_number_scheduled or 0
    return _observed(d) and desired > 0 and (s.number_ready or 0) == (s.updated_number_scheduled or 0) == desired


def deployment_available(apps: Any, namespace: str, name: str, *, timeout: float = 120.0) -> Any:
    """The Deployment rolled out its current generation and reports condition Available=True."""
    return _object_ready(
        lambda: apps.read_namespaced_deployment(name, namespace),
        _deployment_available,
        condition=f"Deployment {namespace}/{name} to be Available",
        timeout=timeout,
    )


def daemonset_ready(apps: Any, namespace: str, name: str, *, timeout: float = 120.0) -> Any:
    """Every scheduled DaemonSet pod is updated and ready."""
    return _object_ready(
        lambda: apps.read_namespaced_daemon_set(name, namespace),
        _daemonset_ready,
        condition=f"DaemonSet {namespace}/{name} to have every pod ready",
        timeout=timeout,
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


__all__ = [
    "UNREACHABLE_GRACE",
    "WaitTimeout",
    "crd_established",
    "daemonset_ready",
    "deployment_available",
    "namespace_gone",
    "service_address",
    "wait_for",
    "wait_until",
]

"""The waits, where the plugin's users import them (`from meshcharts.testing import waits`): meshcharts.waits."""

from meshcharts.waits import (
    UNREACHABLE_GRACE,
    WaitTimeout,
    crd_established,
    daemonset_ready,
    deployment_available,
    namespace_gone,
    service_address,
    wait_until,
)

__all__ = [
    "UNREACHABLE_GRACE",
    "WaitTimeout",
    "crd_established",
    "daemonset_ready",
    "deployment_available",
    "namespace_gone",
    "service_address",
    "wait_until",
]

"""Base and istiod for a test run, where the plugin's users import them: meshcharts.controlplane."""

from meshcharts.controlplane import (
    BASE_RELEASE,
    INJECTED,
    ISTIOD_RELEASE,
    NAMESPACE,
    ControlPlane,
    chart_ref,
    install,
    uninstall,
    wait_webhooks_trusted,
    webhooks_trusted,
)

__all__ = [
    "BASE_RELEASE",
    "INJECTED",
    "ISTIOD_RELEASE",
    "NAMESPACE",
    "ControlPlane",
    "chart_ref",
    "install",
    "uninstall",
    "wait_webhooks_trusted",
    "webhooks_trusted",
]

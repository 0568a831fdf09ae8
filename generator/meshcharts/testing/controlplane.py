"""Base and istiod for a test run, where the plugin's users import them: meshcharts.controlplane."""

from meshcharts import controlplane as _product
from meshcharts.controlplane import *  # noqa: F403  (the product module's public names, re-exported)

__all__ = list(_product.__all__)

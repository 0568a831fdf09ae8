"""The waits, where the plugin's users import them (`from meshcharts.testing import waits`): meshcharts.waits."""

from meshcharts import waits as _product
from meshcharts.waits import *  # noqa: F403  (the product module's public names, re-exported)

__all__ = list(_product.__all__)

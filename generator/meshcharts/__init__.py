"""meshcharts: Istio 1.12 Helm charts generated from specs, published as a repository, tested on clusters."""

from meshcharts.errors import MeshchartsError

__all__ = ["MeshchartsError"]

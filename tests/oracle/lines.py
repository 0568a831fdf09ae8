"""The injection oracle of a later release line (its istiod chart against Istio's injection of that release): what
the 1.13 and 1.31 tests share, so a new line's oracle is its data, not a copy of another line's test file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.oracle import cases
from tests.oracle.conftest import Injected
from tests.oracle.injection import Deviation, OracleError, inject, render_injector, unexplained

InjectedBy = Callable[[cases.Variant], Injected]


@dataclass
class Tally:
    """How a line's injected pods compare with Istio's: equal, explained only by named deviations, or not."""

    compared: int = 0
    equal: int = 0
    explained: int = 0
    differing: list[str] = field(default_factory=list)
    used: set[Any] = field(default_factory=set)


@dataclass(frozen=True)
class LineOracle:
    chart: Path
    data: Path
    pinned: Mapping[str, Any]
    deviations: list[Deviation]
    variants: list[cases.Variant]
    workloads: list[str]

    def injected_by(self, helm_binary: Path, istioctl: Path) -> InjectedBy:
        """The chart's injection of every workload under one variant (one helm, one istioctl run each, cached)."""
        cache: dict[str, Injected] = {}
        text = cases.workloads_text()

        def get(variant: cases.Variant) -> Injected:
            if variant.name not in cache:
                try:
                    injector = render_injector(
                        helm_binary,
                        self.chart,
                        variant.chart_values(dict(self.pinned)),
                        estimated_concurrency=variant.estimated_concurrency,
                    )
                    cache[variant.name] = inject(istioctl, injector, text, env=variant.env)
                except OracleError as err:
                    raise OracleError(f"variant {variant.name}: {err}") from err
            return cache[variant.name]

        return get

    def missing_and_stale(self) -> tuple[list[str], list[str]]:
        """Variant/workload pairs with no expected object, and expected objects of no variant or workload."""
        missing = [
            f"{v.name}/{w}"
            for v in self.variants
            for w in self.workloads
            if not cases.expected_path(v.name, w, self.data).is_file()
        ]
        names = {v.name for v in self.variants}
        stale = sorted(
            str(path.relative_to(self.data))
            for path in (self.data / "expected").glob("*/*.yaml")
            if path.parent.name not in names or path.stem not in self.workloads
        )
        return missing, stale

    def differences(self, injected: Injected, variant: cases.Variant, workload: str) -> tuple[list[Any], set[Any]]:
        """What no deviation explains, and which deviation entries explained the rest."""
        ours = injected.get(workload)
        assert ours is not None, f"istioctl kube-inject returned no object named {workload}"
        expected = cases.expected(variant.name, workload, self.data)
        return unexplained(expected, ours, self.deviations, variant=variant.name, workload=workload)

    def tally(self, injected_by: InjectedBy) -> Tally:
        tally = Tally()
        for variant in self.variants:
            injected = injected_by(variant)
            for workload in self.workloads:
                left, accepted = self.differences(injected, variant, workload)
                tally.used |= accepted
                tally.compared += 1
                if left:
                    tally.differing.append(f"{variant.name}/{workload}")
                elif accepted:
                    tally.explained += 1
                else:
                    tally.equal += 1
        return tally

"""The release lines whose istiod chart types `meshConfig`, with each line's facts and cases
(tests/data/istio-<minor>-meshconfig: fields.tsv, valid.yaml, bad.yaml), for the unit, render and oracle tests
of the typed meshConfig."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts.paths import Layout
from tests import REPO


@dataclass(frozen=True)
class MeshConfigLine:
    """One line: `minor` names its facts (istio-<minor>-meshconfig), `line` its release line (None: the base line)."""

    minor: str
    line: str | None

    @property
    def layout(self) -> Layout:
        return Layout(REPO, self.line)

    @property
    def specs(self) -> Path:
        """Where the line's type specs live: meshconfig/ (the types) and crds/ (the shared types they use)."""
        return self.layout.specs

    @property
    def chart(self) -> Path:
        """The line's generated istiod chart."""
        return self.layout.charts / "istiod"

    @property
    def data(self) -> Path:
        return REPO / "tests" / "data" / f"istio-{self.minor}-meshconfig"

    @cached_property
    def valid(self) -> dict[str, dict[str, Any]]:
        """Mesh configs Istio's loader accepts, by name."""
        loaded: dict[str, dict[str, Any]] = yaml.safe_load((self.data / "valid.yaml").read_text())
        return loaded

    @cached_property
    def bad(self) -> list[dict[str, Any]]:
        """Mesh configs the schema refuses: name, key (the error names it), istio (what the loader does)."""
        loaded: list[dict[str, Any]] = yaml.safe_load((self.data / "bad.yaml").read_text())
        return loaded


LINES = (MeshConfigLine("1.12", None), MeshConfigLine("1.31", "1.31"))


def by_minor(minor: str) -> MeshConfigLine:
    return next(line for line in LINES if line.minor == minor)


def line_params() -> list[Any]:
    return [pytest.param(line, id=line.minor) for line in LINES]


def valid_params() -> list[Any]:
    """(line, name) of every valid case of every line."""
    return [pytest.param(line, name, id=f"{line.minor}-{name}") for line in LINES for name in sorted(line.valid)]


def bad_params() -> list[Any]:
    """(line, case) of every refused case of every line."""
    return [pytest.param(line, case, id=f"{line.minor}-{case['name']}") for line in LINES for case in line.bad]

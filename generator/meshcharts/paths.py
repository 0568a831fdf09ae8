"""Where the suite's files live: found from the working directory, else from this package."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from meshcharts.errors import UsageError


@dataclass(frozen=True)
class Layout:
    """The fixed layout of a meshcharts tree (see ARCHITECTURE.md)."""

    root: Path

    @property
    def specs(self) -> Path:
        return self.root / "generator" / "specs"

    @property
    def templates(self) -> Path:
        return self.root / "generator" / "templates"

    @property
    def charts(self) -> Path:
        return self.root / "charts"

    @property
    def packages(self) -> Path:
        return self.root / "packages"

    @property
    def index(self) -> Path:
        return self.root / "index.yaml"

    @property
    def ci(self) -> Path:
        return self.root / "ci"


def _is_root(path: Path) -> bool:
    return (path / "generator" / "specs" / "suite.yaml").is_file()


def find_root(start: Path | None = None) -> Layout:
    """The nearest meshcharts tree at or above `start` (default: cwd), else the one holding this package."""
    env = os.environ.get("MESHCHARTS_ROOT")
    if env:
        root = Path(env).resolve()
        if not _is_root(root):
            raise UsageError(f"MESHCHARTS_ROOT={env} has no generator/specs/suite.yaml")
        return Layout(root)
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if _is_root(candidate):
            return Layout(candidate)
    packaged = Path(__file__).resolve().parents[2]
    if _is_root(packaged):
        return Layout(packaged)
    raise UsageError(
        f"no meshcharts tree (generator/specs/suite.yaml) at or above {here}; run from a checkout "
        "or set MESHCHARTS_ROOT"
    )

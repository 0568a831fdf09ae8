"""Where the suite's files live: the tree (specs, charts, packages) found from the working directory, else from
this package; the files the installed package itself reads at run time (toolchain wrapper modules, kwok stages,
kind configuration) are package data, found through the package wherever it is installed."""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

from meshcharts.errors import UsageError


@dataclass(frozen=True)
class Layout:
    """The fixed layout of a meshcharts tree (see ARCHITECTURE.md).

    `line` selects a release line other than the base one: its specs are generator/specs with the
    overlay generator/lines/<line>/line.yaml applied, or, for a line with specs of its own
    (generator/lines/<line>/specs/ and templates/, see generator/lines/README.md), those; its charts are
    generated into lines/<line>/ instead of charts/. Packages, index.yaml and the key are shared by every line.
    """

    root: Path
    line: str | None = None

    @property
    def own_specs(self) -> bool:
        """Whether this line declares its charts in specs/ and templates/ of its own instead of overlaying the
        base line's (a line far from the base line: 1.31)."""
        return self.line is not None and (self.lines_dir / self.line / "specs").is_dir()

    @property
    def specs(self) -> Path:
        if self.own_specs:
            return self.lines_dir / str(self.line) / "specs"
        return self.root / "generator" / "specs"

    @property
    def suite_file(self) -> Path:
        """generator/specs/suite.yaml: every line's suite, each line's line.yaml overriding what it changes."""
        return self.root / "generator" / "specs" / "suite.yaml"

    @property
    def templates(self) -> Path:
        if self.own_specs:
            return self.lines_dir / str(self.line) / "templates"
        return self.root / "generator" / "templates"

    @property
    def charts(self) -> Path:
        return self.root / "charts" if self.line is None else self.root / "lines" / self.line

    @property
    def charts_label(self) -> str:
        """charts/ or lines/<line>/, as messages name the generated tree."""
        return self.charts.relative_to(self.root).as_posix() + "/"

    @property
    def lines_dir(self) -> Path:
        return self.root / "generator" / "lines"

    @property
    def overlay(self) -> Path | None:
        """The line's overlay spec, None for the base line."""
        return None if self.line is None else self.lines_dir / self.line / "line.yaml"

    def lines(self) -> list[str]:
        """Every release line with an overlay, oldest first (the base line, generator/specs, is not listed)."""
        names = [p.parent.name for p in self.lines_dir.glob("*/line.yaml")]
        return sorted(names, key=lambda n: tuple(int(x) if x.isdigit() else 0 for x in n.split(".")))

    def for_line(self, line: str | None) -> Layout:
        return Layout(self.root, line)

    def every_line(self) -> list[Layout]:
        """The base line first, then each overlay line."""
        return [Layout(self.root), *(Layout(self.root, name) for name in self.lines())]

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


def package_data(*parts: str) -> Path:
    """A file or directory under meshcharts/data, the package's own files (a wheel ships them; a checkout has them
    under generator/meshcharts/data). Installed packages live on disk, so the resource is a real path."""
    resource = importlib.resources.files("meshcharts").joinpath("data", *parts)
    path = Path(str(resource))
    if not path.exists():
        where = "/".join(("data", *parts))
        raise UsageError(f"the installed meshcharts package lacks {where} (looked at {path}); reinstall meshcharts")
    return path

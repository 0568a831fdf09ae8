"""One exception root; only cli.py turns these into messages and exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class MeshchartsError(Exception):
    """Root of every error meshcharts raises on purpose."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One finding, located as `file:key` so a maintainer can jump to it."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class SpecError(MeshchartsError):
    """The specs are invalid; carries every problem found in one pass."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the specs:\n{lines}")


class UsageError(MeshchartsError):
    """The command line asked for something that cannot be done as asked."""


class HelmError(MeshchartsError):
    """A helm invocation failed; keeps argv, exit code and stderr for the report."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, stdout: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        super().__init__(f"helm exited {returncode}: {' '.join(self.argv)}\n{stderr.strip()}")


class WaitTimeout(MeshchartsError):
    """A condition did not hold before its deadline; the message names the condition and the last state seen."""


class ToolError(MeshchartsError):
    """A pinned tool is missing, failed to build, or does not report its version."""


class ClusterError(MeshchartsError):
    """A cluster could not be brought up, reached, or taken down."""


class RepoError(MeshchartsError):
    """The chart repository (archives, provenance, index) is inconsistent or a change was refused."""


class SignatureError(RepoError):
    """A chart in a registry does not carry a valid signature: a finding (exit 1), like a lint finding."""

    exit_code = 1


class LintError(MeshchartsError):
    """Static checks found problems; exit code 1 like a drift."""

    exit_code = 1

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} finding(s):\n{lines}")


class ReleaseError(MeshchartsError):
    """A Helm release's stored record is not what an operation expects; nothing was changed."""

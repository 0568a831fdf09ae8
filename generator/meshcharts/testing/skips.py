"""Skips a CI run allows (`pytest --allowed-skips FILE`): every other skip fails its test, naming the reason.

A CI job that lacks a tool or a service the suite needs would otherwise pass with the tests that need it skipped.
The file is a YAML list; each entry allows the skips whose reason matches it:

    - reason: "^requires ah \\(artifacthub/hub cmd/ah\\)"   # a regular expression, searched in the reason
      why: the Go module proxy refuses github.com/artifacthub/hub   # required: why the skip is acceptable
      providers: [kind, existing]                          # optional: only with these --cluster-provider values

Skips of tests (markers, `pytest.skip` in a test or fixture) and of whole modules at collection are both gated;
an expected failure (xfail) is not a skip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshcharts.errors import UsageError

KEYS = {"reason", "why", "providers"}


@dataclass(frozen=True)
class AllowedSkip:
    reason: re.Pattern[str]
    why: str
    providers: frozenset[str] | None


def load(path: Path) -> list[AllowedSkip]:
    """The file's entries, or UsageError naming the file, the entry and what is wrong with it."""
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UsageError(f"--allowed-skips {path}: cannot read it: {err}") from err
    if not isinstance(data, list):
        raise UsageError(f"--allowed-skips {path}: expected a list of entries (reason, why, providers)")
    allowed = []
    for index, entry in enumerate(data):
        where = f"--allowed-skips {path}: entry {index + 1}"
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: expected a mapping with reason and why")
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise UsageError(f"{where}: unknown keys {unknown} (known: {sorted(KEYS)})")
        reason, why, providers = entry.get("reason"), entry.get("why"), entry.get("providers")
        if not isinstance(reason, str) or not reason:
            raise UsageError(f"{where}: `reason` must be a regular expression")
        if not isinstance(why, str) or not why.strip():
            raise UsageError(f"{where}: `why` must say why this skip is acceptable")
        if providers is not None and (
            not isinstance(providers, list) or not providers or not all(isinstance(p, str) for p in providers)
        ):
            raise UsageError(f"{where}: `providers` must be a non-empty list of provider names")
        try:
            pattern = re.compile(reason)
        except re.error as err:
            raise UsageError(f"{where}: `reason` is not a regular expression: {err}") from err
        allowed.append(AllowedSkip(pattern, why.strip(), frozenset(providers) if providers else None))
    return allowed


def allows(allowed: list[AllowedSkip], reason: str, provider: str) -> bool:
    return any(
        entry.reason.search(reason) and (entry.providers is None or provider in entry.providers) for entry in allowed
    )


def reason_of(longrepr: Any) -> str:
    """The reason of a skip report's `longrepr` (a (path, line, "Skipped: reason") tuple, or text)."""
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def refusal(reason: str, path: Path, provider: str) -> str:
    return (
        f"skipped ({reason}), and {path} allows no such skip with --cluster-provider {provider}: "
        "this run is meant to have what the test needs. Install it, or add an entry saying why the skip is fine."
    )

"""ArtifactHub's rules for a chart's `artifacthub.io/*` annotations and for artifacthub-repo.yml.

`ah lint` cannot be built here (the Go module proxy refuses github.com/artifacthub/hub), so these are the
checks it applies to a Helm chart, written from its documented rules: change kinds and descriptions,
image references that parse (with docker-image-py, a port of the distribution reference grammar), a
category from ArtifactHub's list, a signKey with a url, booleans Go's ParseBool reads, YAML lists where a
list is expected. Where ArtifactHub's documentation asks more than the linter enforces (an SPDX license
identifier, an OpenPGP fingerprint) it is checked too, since ArtifactHub shows those values to users. An
unknown `artifacthub.io/` key is reported: ArtifactHub ignores it silently, which hides a typo.
The lint workflow still runs the real `ah lint`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from docker_image import reference
from license_expression import get_spdx_licensing

from meshcharts.errors import Problem

PREFIX = "artifacthub.io/"
CATEGORIES = (
    "ai-machine-learning",
    "database",
    "integration-delivery",
    "monitoring-logging",
    "networking",
    "security",
    "storage",
    "streaming-messaging",
    "skip-prediction",
)
CHANGE_KINDS = ("added", "changed", "deprecated", "removed", "fixed", "security")
OPERATOR_CAPABILITIES = ("basic install", "seamless upgrades", "full lifecycle", "deep insights", "auto pilot")
# strconv.ParseBool, which ArtifactHub reads these with.
GO_BOOLEANS = ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False")
_BOOLEAN_KEYS = ("operator", "prerelease", "containsSecurityUpdates")
_LIST_KEYS = ("crds", "crdsExamples", "recommendations", "screenshots", "maintainers")
KNOWN_KEYS = frozenset(
    {
        "alternativeName",
        "category",
        "changes",
        "images",
        "license",
        "links",
        "operatorCapabilities",
        "signKey",
        *_BOOLEAN_KEYS,
        *_LIST_KEYS,
    }
)
_FINGERPRINT = re.compile(r"[0-9A-F]{40}")

Locate = Callable[[str, str], str]
"""Where a problem is: (annotation key without the prefix, path inside its value) -> `file:key`."""


def image_reference_problem(ref: str) -> str | None:
    """Why `ref` is not a valid image reference, or None."""
    try:
        reference.Reference.parse_normalized_named(ref)
    except reference.InvalidReference as err:
        return str(err) or type(err).__name__
    return None


def license_problem(expression: str) -> str | None:
    """Why `expression` is not an SPDX license expression as SPDX spells it, or None."""
    info = get_spdx_licensing().validate(expression)
    if info.errors:
        return "; ".join(str(e) for e in info.errors)
    if info.normalized_expression != expression:
        return f"write it as SPDX spells it: {info.normalized_expression}"
    return None


def _yaml_list(text: str, key: str, locate: Locate, problems: list[Problem]) -> list[Any] | None:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        problems.append(Problem(locate(key, ""), f"is not valid YAML: {err}"))
        return None
    if not isinstance(value, list):
        problems.append(Problem(locate(key, ""), f"must be a YAML list, found {type(value).__name__}"))
        return None
    return value


def _named_urls(items: list[Any], key: str, locate: Locate, problems: list[Problem], path: str = "") -> None:
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(locate(key, at), "must be a mapping with name and url"))
            continue
        for field in ("name", "url"):
            if not isinstance(item.get(field), str) or not item[field].strip():
                problems.append(Problem(locate(key, f"{at}.{field}"), "must be a non-empty string"))


def _check_changes(text: str, locate: Locate, problems: list[Problem]) -> None:
    changes = _yaml_list(text, "changes", locate, problems)
    for i, change in enumerate(changes or []):
        at = f"[{i}]"
        if isinstance(change, str):  # the plain form: a list of descriptions
            if not change.strip():
                problems.append(Problem(locate("changes", at), "description must not be empty"))
            continue
        if not isinstance(change, dict):
            problems.append(
                Problem(locate("changes", at), "must be a description or a mapping of kind and description")
            )
            continue
        kind = change.get("kind")
        if kind is not None and (not isinstance(kind, str) or kind.lower() not in CHANGE_KINDS):
            problems.append(
                Problem(locate("changes", f"{at}.kind"), f"{kind!r} is not one of {', '.join(CHANGE_KINDS)}")
            )
        description = change.get("description")
        if not isinstance(description, str) or not description.strip():
            problems.append(Problem(locate("changes", f"{at}.description"), "must be a non-empty string"))
        links = change.get("links", [])
        if not isinstance(links, list):
            problems.append(Problem(locate("changes", f"{at}.links"), "must be a list of name and url"))
        else:
            _named_urls(links, "changes", locate, problems, f"{at}.links")


def _check_images(text: str, locate: Locate, problems: list[Problem]) -> None:
    images = _yaml_list(text, "images", locate, problems)
    for i, image in enumerate(images or []):
        at = f"[{i}]"
        if not isinstance(image, dict):
            problems.append(Problem(locate("images", at), "must be a mapping with name and image"))
            continue
        ref = image.get("image")
        why = image_reference_problem(ref) if isinstance(ref, str) else "must be a string"
        if why:
            problems.append(Problem(locate("images", f"{at}.image"), f"{ref!r} is not an image reference: {why}"))
        if "whitelisted" in image and not isinstance(image["whitelisted"], bool):
            problems.append(Problem(locate("images", f"{at}.whitelisted"), "must be true or false"))


def _check_sign_key(text: str, locate: Locate, problems: list[Problem]) -> None:
    try:
        key = yaml.safe_load(text)
    except yaml.YAMLError as err:
        problems.append(Problem(locate("signKey", ""), f"is not valid YAML: {err}"))
        return
    if not isinstance(key, dict):
        problems.append(Problem(locate("signKey", ""), "must be a mapping with url (and fingerprint)"))
        return
    url = key.get("url")
    if not isinstance(url, str) or not re.match(r"https?://[^/\s]+/\S*$", url):
        problems.append(Problem(locate("signKey", ".url"), f"must be the http(s) URL of the public key, found {url!r}"))
    fingerprint = key.get("fingerprint")
    if fingerprint is not None and not (isinstance(fingerprint, str) and _FINGERPRINT.fullmatch(fingerprint)):
        problems.append(
            Problem(locate("signKey", ".fingerprint"), f"must be 40 upper-case hex digits, found {fingerprint!r}")
        )


def check_annotations(annotations: Mapping[str, Any], locate: Locate) -> list[Problem]:
    """Every problem ArtifactHub would have with these Chart.yaml annotations, each located by `locate`."""
    problems: list[Problem] = []
    for full_key, value in sorted(annotations.items()):
        if not full_key.startswith(PREFIX):
            continue
        key = full_key[len(PREFIX) :]
        if key not in KNOWN_KEYS:
            problems.append(
                Problem(locate(key, ""), f"is not an ArtifactHub annotation ({', '.join(sorted(KNOWN_KEYS))})")
            )
            continue
        if not isinstance(value, str):
            problems.append(Problem(locate(key, ""), "must be a string (a YAML document for lists and mappings)"))
            continue
        if key == "category" and value not in CATEGORIES:
            problems.append(Problem(locate(key, ""), f"{value!r} is not one of {', '.join(CATEGORIES)}"))
        elif key == "changes":
            _check_changes(value, locate, problems)
        elif key == "images":
            _check_images(value, locate, problems)
        elif key == "license":
            why = license_problem(value)
            if why:
                problems.append(Problem(locate(key, ""), f"{value!r} is not an SPDX license identifier: {why}"))
        elif key == "links":
            _named_urls(_yaml_list(value, key, locate, problems) or [], key, locate, problems)
        elif key == "signKey":
            _check_sign_key(value, locate, problems)
        elif key in _BOOLEAN_KEYS and value not in GO_BOOLEANS:
            problems.append(Problem(locate(key, ""), f"{value!r} is not a boolean (write true or false)"))
        elif key == "operatorCapabilities" and value.lower() not in OPERATOR_CAPABILITIES:
            problems.append(Problem(locate(key, ""), f"{value!r} is not one of {', '.join(OPERATOR_CAPABILITIES)}"))
        elif key in _LIST_KEYS:
            _yaml_list(value, key, locate, problems)
    return problems


def in_file(path: str) -> Locate:
    """Locate problems inside a Chart.yaml: `charts/istiod/Chart.yaml:annotations.artifacthub.io/changes[0].kind`."""
    return lambda key, at: f"{path}:annotations.{PREFIX}{key}{at}"


def check_chart_file(chart_yaml: Path, shown_as: str) -> list[Problem]:
    """The annotations of one Chart.yaml on disk."""
    data = yaml.safe_load(chart_yaml.read_text())
    annotations = data.get("annotations") if isinstance(data, dict) else None
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [Problem(f"{shown_as}:annotations", "must be a mapping of strings")]
    return check_annotations(annotations, in_file(shown_as))


def check_repository_metadata(data: Any, where: str) -> list[Problem]:
    """artifacthub-repo.yml: a UUID repositoryID, owners with name and email, ignore entries with a name."""
    if not isinstance(data, dict):
        return [Problem(where, "must be a mapping (repositoryID, owners, ignore)")]
    problems = [
        Problem(f"{where}:{key}", "is not an ArtifactHub repository metadata key (repositoryID, owners, ignore)")
        for key in sorted(data)
        if key not in ("repositoryID", "owners", "ignore")
    ]
    repository_id = data.get("repositoryID")
    if repository_id is not None:
        try:
            uuid.UUID(str(repository_id))
        except ValueError:
            problems.append(Problem(f"{where}:repositoryID", f"must be a UUID, found {repository_id!r}"))
    for field, required in (("owners", ("name", "email")), ("ignore", ("name",))):
        entries = data.get(field, [])
        if not isinstance(entries, list):
            problems.append(Problem(f"{where}:{field}", "must be a list"))
            continue
        for i, entry in enumerate(entries):
            for name in required:
                if not isinstance(entry, dict) or not isinstance(entry.get(name), str) or not entry[name].strip():
                    problems.append(Problem(f"{where}:{field}[{i}].{name}", "must be a non-empty string"))
            if field == "ignore" and isinstance(entry, dict) and "version" in entry:
                try:
                    re.compile(str(entry["version"]))
                except re.error as err:
                    problems.append(Problem(f"{where}:ignore[{i}].version", f"is not a regular expression: {err}"))
    return problems


def check_repository_file(path: Path, shown_as: str = "artifacthub-repo.yml") -> list[Problem]:
    """artifacthub-repo.yml on disk; a repository without one has nothing to check."""
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        return [Problem(shown_as, f"is not valid YAML: {err}")]
    return check_repository_metadata(data, shown_as)

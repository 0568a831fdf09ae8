"""index.yaml: merged from packages/ without ever rewriting what is already published.

Helm loads index.yaml strictly (an unknown key breaks `helm repo add`), so we check every key
against the ones Helm knows before accepting a file, and write only those. Existing entries are
never changed: `created` stays, bytes stay, and `generated` moves only when an entry is added.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semver
import yaml

from meshcharts._files import atomic_write
from meshcharts._yaml import SafeDumper, SafeLoader
from meshcharts.errors import Problem, RepoError
from meshcharts.package import read_archive

INDEX_KEYS = {"apiVersion", "entries", "generated", "serverInfo", "publicKeys", "annotations"}
METADATA_KEYS = {
    "name", "home", "sources", "version", "description", "keywords", "maintainers", "icon", "apiVersion",
    "condition", "tags", "appVersion", "deprecated", "annotations", "kubeVersion", "dependencies", "type",
}  # fmt: skip
VERSION_KEYS = METADATA_KEYS | {"urls", "created", "removed", "digest"}
MAINTAINER_KEYS = {"name", "email", "url"}
DEPENDENCY_KEYS = {"name", "version", "repository", "condition", "tags", "enabled", "import-values", "alias"}


class _Loader(SafeLoader):  # type: ignore[misc]
    """Safe loading that keeps timestamps as the strings they were written as."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Dumper(SafeDumper):  # type: ignore[misc]
    """Helm's layout: keys sorted at every level (Go marshals maps sorted), multi-line strings as blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and all(line == line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.cache
def _parse_version(version: str) -> semver.Version | None:
    try:
        return semver.Version.parse(version)
    except ValueError:
        return None


def _version_key(entry: dict[str, Any]) -> Any:
    parsed = _parse_version(str(entry.get("version", "")))
    return (1, parsed) if parsed is not None else (0, str(entry.get("version", "")))


def check_index(data: Any, where: str = "index.yaml") -> list[Problem]:
    """Everything Helm would refuse, or that would make the repository lie, as located problems."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return [Problem(where, "not a mapping with apiVersion and entries")]
    for key in sorted(set(data) - INDEX_KEYS):
        problems.append(Problem(f"{where}:{key}", f"key Helm does not know (allowed: {', '.join(sorted(INDEX_KEYS))})"))
    if data.get("apiVersion") != "v1":
        problems.append(Problem(f"{where}:apiVersion", f"must be v1, found {data.get('apiVersion')!r}"))
    entries = data.get("entries")
    if not isinstance(entries, dict):
        problems.append(Problem(f"{where}:entries", "must be a mapping of chart name to versions"))
        return problems
    for name, versions in entries.items():
        if not isinstance(versions, list):
            problems.append(Problem(f"{where}:entries.{name}", "must be a list of chart versions"))
            continue
        seen: set[str] = set()
        for i, entry in enumerate(versions):
            ew = f"{where}:entries.{name}[{i}]"
            if not isinstance(entry, dict):
                problems.append(Problem(ew, "must be a mapping"))
                continue
            for key in sorted(set(entry) - VERSION_KEYS):
                problems.append(Problem(f"{ew}.{key}", "key Helm does not know"))
            for key in ("name", "version", "urls", "digest", "created"):
                if key not in entry:
                    problems.append(Problem(ew, f"missing {key}"))
            if entry.get("name", name) != name:
                problems.append(Problem(f"{ew}.name", f"{entry.get('name')!r} listed under {name!r}"))
            version = str(entry.get("version", ""))
            if version in seen:
                problems.append(Problem(f"{ew}.version", f"version {version} listed twice"))
            seen.add(version)
            if _parse_version(version) is None:
                problems.append(Problem(f"{ew}.version", f"{version!r} is not SemVer 2"))
            for j, m in enumerate(entry.get("maintainers") or []):
                for key in sorted(set(m) - MAINTAINER_KEYS if isinstance(m, dict) else []):
                    problems.append(Problem(f"{ew}.maintainers[{j}].{key}", "key Helm does not know"))
            for j, d in enumerate(entry.get("dependencies") or []):
                for key in sorted(set(d) - DEPENDENCY_KEYS if isinstance(d, dict) else []):
                    problems.append(Problem(f"{ew}.dependencies[{j}].{key}", "key Helm does not know"))
            urls = entry.get("urls")
            if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
                problems.append(Problem(f"{ew}.urls", "must be a non-empty list of URLs"))
            digest = entry.get("digest")
            if digest is not None and (not isinstance(digest, str) or len(digest) != 64):
                problems.append(Problem(f"{ew}.digest", "must be the plain hex sha256 of the archive"))
    return problems


def load(path: Path) -> dict[str, Any]:
    """Parse and check an index; a missing file is an empty repository."""
    if not path.exists():
        return {"apiVersion": "v1", "entries": {}}
    return parse(path.read_bytes(), str(path), path.name)


def parse(raw: bytes, where: str, name: str = "index.yaml") -> dict[str, Any]:
    """Parse and check the bytes of an index (a file's, or what a repository served); `where` names it in errors,
    `name` in the problems found."""
    try:
        data = json.loads(raw) if raw.lstrip().startswith(b"{") else yaml.load(raw, Loader=_Loader)
    except (yaml.YAMLError, ValueError) as err:
        raise RepoError(f"{where}: not valid YAML or JSON, nothing was written: {err}") from err
    problems = check_index(data, name)
    if problems:
        raise RepoError(
            f"{where} would not load in Helm; nothing was written:\n" + "\n".join(f"  {p}" for p in problems)
        )
    return data  # type: ignore[no-any-return]


def file_format(path: Path) -> str:
    """`json` or `yaml`: what an existing index is written in; a new index is JSON."""
    if not path.exists():
        return "json"
    with path.open("rb") as handle:
        return "json" if handle.read(64).lstrip().startswith(b"{") else "yaml"


def dump(data: dict[str, Any], fmt: str = "yaml") -> str:
    ordered: dict[str, Any] = {"apiVersion": data["apiVersion"], "entries": {}}
    for name in sorted(data["entries"]):
        ordered["entries"][name] = [_sorted(e) for e in data["entries"][name]]
    for key in ("generated", "serverInfo", "publicKeys", "annotations"):
        if key in data:
            ordered[key] = data[key]
    if fmt == "json":
        return json.dumps(ordered, indent=1, ensure_ascii=False) + "\n"
    return yaml.dump(
        ordered, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1_000_000, allow_unicode=True
    )


def _entry(metadata: dict[str, Any], digest: str, url: str, created: str) -> dict[str, Any]:
    entry = {k: v for k, v in metadata.items() if k in METADATA_KEYS}
    entry.update(created=created, digest=digest, urls=[url])
    return entry


@dataclass(frozen=True)
class IndexResult:
    added: list[str]
    written: bool


def merge(
    root: Path,
    archives: Iterable[Path],
    *,
    index_path: Path | None = None,
    clock: Callable[[], str] = now_rfc3339,
    fmt: str | None = None,
) -> IndexResult:
    """Add archives the index lacks (URLs relative to root); leave every existing entry as it is.

    The index keeps the format it has; a new one is JSON, which Helm reads as YAML and parses far faster
    (helm/helm#9931), as do Argo CD and our own merge.
    """
    index_path = index_path or root / "index.yaml"
    fmt = fmt or file_format(index_path)
    if fmt not in ("json", "yaml"):
        raise RepoError(f"unknown index format {fmt!r}: json or yaml")
    data = load(index_path)
    entries: dict[str, list[dict[str, Any]]] = data["entries"]
    known_urls = {u for versions in entries.values() for e in versions for u in e.get("urls", [])}
    known = {(name, str(e["version"])): e for name, versions in entries.items() for e in versions}
    added = []
    created = clock()
    root_resolved = root.resolve()
    parents: dict[Path, str] = {}
    for path in sorted(archives):
        if path.parent not in parents:
            parents[path.parent] = path.parent.resolve().relative_to(root_resolved).as_posix()
        url = path.name if parents[path.parent] == "." else f"{parents[path.parent]}/{path.name}"
        if url in known_urls:
            continue
        archive = read_archive(path)
        existing = known.get((archive.name, archive.version))
        if existing is not None:
            if existing.get("digest") != archive.digest:
                raise RepoError(
                    f"{path.name}: {archive.name} {archive.version} is already published with digest "
                    f"{existing.get('digest')} at {existing.get('urls')}; this archive's digest is {archive.digest}. "
                    "Nothing was written."
                )
            continue
        entry = _entry(archive.metadata, archive.digest, url, created)
        entries.setdefault(archive.name, []).append(entry)
        known[(archive.name, archive.version)] = entry
        added.append(f"{archive.name}-{archive.version}")
    if not added:
        return IndexResult([], written=False)
    for name in entries:
        entries[name].sort(key=_version_key, reverse=True)
    data["generated"] = created
    check = check_index(data)  # never write what Helm would refuse
    if check:
        raise RepoError("internal: the merged index would not load in Helm: " + "; ".join(map(str, check)))
    atomic_write(index_path, dump(data, fmt))
    return IndexResult(added, written=True)


def verify(root: Path, index_path: Path | None = None, fetch: Callable[[str], bytes] | None = None) -> list[Problem]:
    """Every URL resolves (a file below root, or through `fetch`) and its bytes match the digest."""
    index_path = index_path or root / "index.yaml"
    data = load(index_path)
    problems = []
    for name, versions in data["entries"].items():
        for i, entry in enumerate(versions):
            where = f"{index_path.name}:entries.{name}[{i}] ({entry.get('version')})"
            for url in entry.get("urls", []):
                try:
                    if fetch is not None:
                        blob = fetch(url)
                    elif "://" in url:
                        problems.append(Problem(where, f"{url} is absolute; pass --url to fetch it"))
                        continue
                    else:
                        blob = (root / url).read_bytes()
                except (OSError, ValueError) as err:
                    problems.append(Problem(where, f"{url} does not resolve: {err}"))
                    continue
                digest = hashlib.sha256(blob).hexdigest()
                if digest != entry.get("digest"):
                    problems.append(Problem(where, f"{url} has sha256 {digest}, the index says {entry.get('digest')}"))
    return problems

"""Reproducible chart archives: the same chart files give the same bytes on any machine, every time.

Helm 3 stamps the current time into every tar header and Helm 4 uses file mtimes, so neither gives a
stable digest from a fresh checkout. We write the archive ourselves in Helm's layout (regular files
under `<chart>/`, mode 0644, no directory entries) with fixed times, owners and gzip header.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshcharts._files import atomic_write
from meshcharts.errors import RepoError

# 2021-11-18T00:00:00Z, the day Istio 1.12.0 shipped: a fixed, meaningful mtime for every entry.
FIXED_MTIME = 1637193600


@dataclass(frozen=True)
class Archive:
    path: Path
    name: str
    version: str
    digest: str  # plain hex sha256, as index.yaml wants it
    metadata: dict[str, Any]


def _chart_files(chart_dir: Path) -> list[Path]:
    ignored = _helmignore(chart_dir)
    files = []
    for path in sorted(chart_dir.rglob("*")):
        rel = path.relative_to(chart_dir).as_posix()
        if path.is_file() and not any(rel == pat or rel.startswith(pat.rstrip("/") + "/") for pat in ignored):
            files.append(path)
    return files


def _helmignore(chart_dir: Path) -> list[str]:
    path = chart_dir / ".helmignore"
    if not path.is_file():
        return []
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def load_metadata(chart_dir: Path) -> dict[str, Any]:
    path = chart_dir / "Chart.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise RepoError(f"{path}: cannot read chart metadata: {err}") from err
    if not isinstance(data, dict) or not data.get("name") or not data.get("version"):
        raise RepoError(f"{path}: Chart.yaml needs name and version")
    return data


def archive_bytes(chart_dir: Path) -> bytes:
    """The deterministic .tgz of a chart directory."""
    metadata = load_metadata(chart_dir)
    name = str(metadata["name"])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _chart_files(chart_dir):
            data = path.read_bytes()
            info = tarfile.TarInfo(f"{name}/{path.relative_to(chart_dir).as_posix()}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def archive_name(metadata: dict[str, Any]) -> str:
    return f"{metadata['name']}-{metadata['version']}.tgz"


def read_archive(path: Path) -> Archive:
    """Metadata and digest of a published archive (reads Chart.yaml from inside it)."""
    try:
        data = path.read_bytes()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            member = next(
                (m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")), None
            )
            if member is None:
                raise RepoError(f"{path}: no <chart>/Chart.yaml inside the archive")
            handle = tar.extractfile(member)
            assert handle is not None
            metadata = yaml.safe_load(handle.read())
    except (OSError, tarfile.TarError, EOFError, yaml.YAMLError) as err:
        raise RepoError(f"{path}: not a readable chart archive: {err}") from err
    if not isinstance(metadata, dict):
        raise RepoError(f"{path}: Chart.yaml inside the archive is not a mapping")
    return Archive(path, str(metadata["name"]), str(metadata["version"]), hashlib.sha256(data).hexdigest(), metadata)


def archive_file(path: Path, rel: str) -> bytes | None:
    """The bytes of `<chart>/<rel>` inside a chart archive, or None when the archive has no such file."""
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.count("/") >= 1 and member.name.split("/", 1)[1] == rel:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    return handle.read()
    except (OSError, tarfile.TarError, EOFError) as err:
        raise RepoError(f"{path}: not a readable chart archive: {err}") from err
    return None


@dataclass(frozen=True)
class PackageResult:
    archive: Path
    created: bool  # False when the identical archive was already there


def package(chart_dir: Path, out_dir: Path) -> PackageResult:
    """Write `<name>-<version>.tgz` into out_dir; refuse to change an archive that already exists."""
    data = archive_bytes(chart_dir)
    target = out_dir / archive_name(load_metadata(chart_dir))
    if target.exists():
        old = target.read_bytes()
        if old == data:
            return PackageResult(target, created=False)
        raise RepoError(
            f"{target.name} is already published (sha256 {hashlib.sha256(old).hexdigest()}) and {chart_dir} now "
            f"packs to different bytes (sha256 {hashlib.sha256(data).hexdigest()}). A published archive never "
            "changes: bump `version` in generator/specs/suite.yaml, run `meshcharts generate`, then package."
        )
    atomic_write(target, data)
    return PackageResult(target, created=True)

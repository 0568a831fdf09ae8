"""Rewrite removed API versions in a Helm release's stored manifest, as the helm-mapkubeapis plugin does.

Helm decodes the previous release's manifest before every upgrade. A release stored on Kubernetes 1.19-1.24
holds `policy/v1beta1` PodDisruptionBudgets and `autoscaling/v2beta1` HorizontalPodAutoscalers, which a
1.25+ API server no longer maps, so `helm upgrade` fails before it changes anything. The objects in the
cluster were converted by the API server long ago; only Helm's record is stale.

Like the plugin, this writes a new revision (the old one becomes `superseded`, so it stays for the record)
and only touches the objects whose new API version the cluster serves. Unlike the plugin, which only
replaces the `apiVersion` line, an `autoscaling/v2beta1` HPA's metrics are converted to the `v2` shape
(`targetAverageUtilization` -> `target: {type: Utilization, averageUtilization}`), so the record is an
object the API server would accept as written and Helm's three-way merge compares like with like.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from meshcharts.errors import ReleaseError

SECRET_TYPE = "helm.sh/release.v1"
DESCRIPTION = "meshcharts mapkubeapis: removed API versions rewritten; do not roll back past this revision"
Converter = Callable[[dict[str, Any], str], dict[str, Any]]


@dataclass(frozen=True)
class ApiMapping:
    """One removed API version of one kind and its replacement."""

    old: str
    kind: str
    new: str
    removed_in: str
    convert: Converter | None = None


@dataclass(frozen=True)
class Mapped:
    """One object of the manifest whose API version changed (or would change, on a dry run)."""

    kind: str
    name: str
    old: str
    new: str
    fields_converted: bool

    def __str__(self) -> str:
        extra = " (metrics converted to the new fields)" if self.fields_converted else ""
        return f"{self.kind} {self.name}: {self.old} -> {self.new}{extra}"


@dataclass(frozen=True)
class Kept:
    """An object on a removed API whose replacement the cluster does not serve yet."""

    kind: str
    name: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: kept {self.old}; the cluster does not serve {self.new} yet"


@dataclass
class Result:
    release: str
    namespace: str
    revision: int
    new_revision: int | None
    mapped: list[Mapped] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)


# --- HPA autoscaling/v2beta1 -> v2 ------------------------------------------------------------------


def _target(where: str, *, utilization: Any = None, average: Any = None, value: Any = None) -> dict[str, Any]:
    given = [
        (k, v) for k, v in (("Utilization", utilization), ("AverageValue", average), ("Value", value)) if v is not None
    ]
    if len(given) != 1:
        raise ReleaseError(f"{where}: expected exactly one target in a v2beta1 metric, found {len(given)}")
    kind, amount = given[0]
    key = {"Utilization": "averageUtilization", "AverageValue": "averageValue", "Value": "value"}[kind]
    return {"type": kind, key: amount}


def _metric_id(name: Any, selector: Any) -> dict[str, Any]:
    metric = {"name": name}
    if selector is not None:
        metric["selector"] = selector
    return metric


def _hpa_metric_v2beta1_to_v2(metric: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = metric.get("type")
    if kind in ("Resource", "ContainerResource"):
        key = "resource" if kind == "Resource" else "containerResource"
        src = dict(metric.get(key) or {})
        out: dict[str, Any] = {"name": src.pop("name", None)}
        if kind == "ContainerResource":
            out["container"] = src.pop("container", None)
        out["target"] = _target(
            where, utilization=src.pop("targetAverageUtilization", None), average=src.pop("targetAverageValue", None)
        )
        leftover = src
    elif kind == "Pods":
        key = "pods"
        src = dict(metric.get(key) or {})
        out = {
            "metric": _metric_id(src.pop("metricName", None), src.pop("selector", None)),
            "target": _target(where, average=src.pop("targetAverageValue", None)),
        }
        leftover = src
    elif kind == "Object":
        key = "object"
        src = dict(metric.get(key) or {})
        out = {
            "describedObject": src.pop("target", None),
            "metric": _metric_id(src.pop("metricName", None), src.pop("selector", None)),
            "target": _target(where, value=src.pop("targetValue", None), average=src.pop("averageValue", None)),
        }
        leftover = src
    elif kind == "External":
        key = "external"
        src = dict(metric.get(key) or {})
        out = {
            "metric": _metric_id(src.pop("metricName", None), src.pop("metricSelector", None)),
            "target": _target(where, value=src.pop("targetValue", None), average=src.pop("targetAverageValue", None)),
        }
        leftover = src
    else:
        raise ReleaseError(f"{where}: unknown autoscaling/v2beta1 metric type {kind!r}")
    if leftover:
        raise ReleaseError(f"{where}: unknown autoscaling/v2beta1 {kind} metric fields {sorted(leftover)}")
    return {"type": kind, key: out}


def hpa_v2beta1_to_v2(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """An autoscaling/v2beta1 HPA as autoscaling/v2 spells it: only the metrics' fields differ."""
    new = copy.deepcopy(obj)
    new["apiVersion"] = "autoscaling/v2"
    spec = new.get("spec") or {}
    metrics = spec.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, list):
            raise ReleaseError(f"{where}: spec.metrics is not a list")
        spec["metrics"] = [_hpa_metric_v2beta1_to_v2(m, f"{where} spec.metrics[{i}]") for i, m in enumerate(metrics)]
    return new


MAPPINGS: tuple[ApiMapping, ...] = (
    ApiMapping("policy/v1beta1", "PodDisruptionBudget", "policy/v1", removed_in="1.25"),
    ApiMapping(
        "autoscaling/v2beta1", "HorizontalPodAutoscaler", "autoscaling/v2", removed_in="1.25", convert=hpa_v2beta1_to_v2
    ),
    ApiMapping("autoscaling/v2beta2", "HorizontalPodAutoscaler", "autoscaling/v2", removed_in="1.26"),
)


# --- the manifest (pure) ----------------------------------------------------------------------------

_SEPARATOR = re.compile(r"(^---[ \t]*\n)", re.MULTILINE)


def _source(text: str) -> str:
    match = re.search(r"^# Source: (.+)$", text, re.MULTILINE)
    return match.group(1) if match else "(no # Source line)"


def map_manifest(manifest: str, serves: Callable[[str], bool]) -> tuple[str, list[Mapped], list[Kept]]:
    """The manifest with every removed API version the cluster can replace rewritten, and what changed.

    `serves(group_version)` says whether the cluster serves a group version. Documents that need no change
    keep their text byte for byte; a manifest that does not parse raises, naming the document.
    """
    parts = _SEPARATOR.split(manifest)
    mapped: list[Mapped] = []
    kept: list[Kept] = []
    for index, text in enumerate(parts):
        if _SEPARATOR.fullmatch(text):
            continue
        where = f"manifest document from {_source(text)}"
        try:
            obj = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ReleaseError(f"{where} does not parse as YAML: {err}") from err
        if obj is None:
            continue
        if not isinstance(obj, dict):
            raise ReleaseError(f"{where} is not a Kubernetes object (a {type(obj).__name__})")
        rule = next((m for m in MAPPINGS if m.old == obj.get("apiVersion") and m.kind == obj.get("kind")), None)
        if rule is None:
            continue
        name = str((obj.get("metadata") or {}).get("name", "?"))
        if not serves(rule.new):
            kept.append(Kept(rule.kind, name, rule.old, rule.new))
            continue
        if rule.convert is None:
            parts[index] = re.sub(
                rf"^apiVersion:[ \t]*[\"']?{re.escape(rule.old)}[\"']?[ \t]*$",
                f"apiVersion: {rule.new}",
                text,
                count=1,
                flags=re.MULTILINE,
            )
        else:
            comments = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
            body = yaml.safe_dump(rule.convert(obj, f"{rule.kind} {name}"), sort_keys=False, default_flow_style=False)
            parts[index] = comments + body
        mapped.append(Mapped(rule.kind, name, rule.old, rule.new, fields_converted=rule.convert is not None))
    return "".join(parts), mapped, kept


# --- Helm's storage record (pure) -------------------------------------------------------------------


def decode_release(data: bytes, where: str) -> dict[str, Any]:
    """Helm's stored release: base64 of gzip of JSON (plain JSON is accepted, as Helm does)."""
    try:
        raw = base64.b64decode(data, validate=True)
        if raw[:3] == b"\x1f\x8b\x08":
            raw = gzip.decompress(raw)
        record = json.loads(raw)
    except (ValueError, OSError, EOFError) as err:
        raise ReleaseError(f"{where}: not a Helm release record (base64 of gzipped JSON): {err}") from err
    if not isinstance(record, dict) or not isinstance(record.get("manifest"), str) or "info" not in record:
        raise ReleaseError(f"{where}: the release record has no manifest or info")
    return record


def encode_release(record: Mapping[str, Any]) -> bytes:
    return base64.b64encode(gzip.compress(json.dumps(record, separators=(",", ":")).encode(), mtime=0))


# --- the cluster --------------------------------------------------------------------------------------


def _served_group_versions(api_client: Any) -> set[str]:
    from kubernetes import client

    served = {v for v in client.CoreApi(api_client).get_api_versions().versions}
    for group in client.ApisApi(api_client).get_api_versions().groups:
        served |= {v.group_version for v in group.versions}
    return served


def _secret_data(secret: Any) -> bytes:
    value = (secret.data or {}).get("release")
    if value is None:
        raise ReleaseError(f"Secret {secret.metadata.name} has no data.release")
    return base64.b64decode(value)


def map_release(api_client: Any, release: str, namespace: str, *, dry_run: bool) -> Result:
    """Write revision N+1 of `release` with removed API versions rewritten; N becomes superseded.

    Refuses, with nothing changed, a release that is missing, stored other than in Helm's Secrets, whose
    latest revision is not deployed or does not decode, or that has nothing to map.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api_client)
    selector = f"owner=helm,name={release}"
    secrets = core.list_namespaced_secret(namespace, label_selector=selector).items
    if not secrets:
        if core.list_namespaced_config_map(namespace, label_selector=selector).items:
            raise ReleaseError(
                f"release {namespace}/{release} is stored in ConfigMaps (HELM_DRIVER=configmap); "
                "only Helm's default Secret storage is supported"
            )
        raise ReleaseError(f"no Helm release {release!r} in namespace {namespace!r} (no Secret labelled {selector})")

    def revision(secret: Any) -> int:
        label = (secret.metadata.labels or {}).get("version", "")
        if not label.isdigit():
            raise ReleaseError(f"Secret {namespace}/{secret.metadata.name} has no numeric version label")
        return int(label)

    latest: Any = max(secrets, key=revision)
    number = revision(latest)
    name = latest.metadata.name
    where = f"Secret {namespace}/{name}"
    if latest.type != SECRET_TYPE or name != f"sh.helm.release.v1.{release}.v{number}":
        raise ReleaseError(f"{where}: unknown release storage (type {latest.type!r}); expected {SECRET_TYPE}")
    record = decode_release(_secret_data(latest), where)
    status = (record.get("info") or {}).get("status")
    if status != "deployed":
        raise ReleaseError(
            f"release {namespace}/{release} revision {number} is {status!r}, not 'deployed': "
            "finish or roll back the pending operation first"
        )
    served = _served_group_versions(api_client)
    manifest, mapped, kept = map_manifest(record["manifest"], served.__contains__)
    result = Result(release, namespace, number, None, mapped, kept)
    if not mapped:
        why = "; ".join(str(k) for k in kept) or "it holds no removed API version"
        raise ReleaseError(f"release {namespace}/{release} revision {number}: nothing to map ({why})")
    if dry_run:
        return result

    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    new_record = copy.deepcopy(record)
    new_record["manifest"] = manifest
    new_record["version"] = number + 1
    new_record["info"] = {**record["info"], "status": "deployed", "description": DESCRIPTION, "last_deployed": now}
    labels = {**(latest.metadata.labels or {}), "status": "deployed", "version": str(number + 1)}
    if "modifiedAt" in labels:
        labels["modifiedAt"] = str(int(datetime.now(UTC).timestamp()))
    new_name = f"sh.helm.release.v1.{release}.v{number + 1}"
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=new_name, namespace=namespace, labels=labels),
        type=SECRET_TYPE,
        data={"release": base64.b64encode(encode_release(new_record)).decode()},
    )
    try:
        core.create_namespaced_secret(namespace, body)
    except ApiException as err:
        raise ReleaseError(f"cannot create Secret {namespace}/{new_name}: {err.status} {err.reason}") from err

    old_record = {**record, "info": {**record["info"], "status": "superseded"}}
    latest.metadata.labels = {**(latest.metadata.labels or {}), "status": "superseded"}
    latest.data = {"release": base64.b64encode(encode_release(old_record)).decode()}
    try:
        core.replace_namespaced_secret(name, namespace, latest)  # carries resourceVersion: no lost update
    except ApiException as err:
        core.delete_namespaced_secret(new_name, namespace)
        raise ReleaseError(
            f"cannot mark {where} superseded ({err.status} {err.reason}); removed {new_name} again"
        ) from err
    result.new_revision = number + 1
    return result

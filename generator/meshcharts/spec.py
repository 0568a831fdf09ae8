"""Load and validate the hand-edited specs under generator/specs into an immutable model.

Every problem is collected before anything is raised, so one run reports all of them, each as
`file:key`. Nothing here renders or writes; see render.py and write.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshcharts import _yaml
from meshcharts import crds as crd_module
from meshcharts.errors import Problem, SpecError
from meshcharts.paths import Layout

API_VERSION = "meshcharts/v1alpha1"
CHART_NAMES = ("base", "istiod", "gateway")

_SCALARS = ("string", "integer", "number", "boolean")
# camelCase, except names Istio 1.12 gave with underscores (istio_cni, global.proxy_init), which carry over.
_KEY_RE = re.compile(r"^[a-z][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CHANGE_KINDS = ("added", "changed", "deprecated", "removed", "fixed", "security")


@dataclass(frozen=True)
class TypeSpec:
    """A value's type: scalars, free-form `object`, `map[string]T`, `list[T]`, unions `A|B`, `?` nullable."""

    text: str
    kinds: tuple[str, ...]  # "string", "integer", "number", "boolean", "object", "map", "list"
    element: TypeSpec | None = None  # element of map[] / list[]
    nullable: bool = False

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        for kind in self.kinds:
            if kind == "string" and isinstance(value, str):
                return True
            if kind == "boolean" and isinstance(value, bool):
                return True
            if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
                return True
            if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
                return True
            if kind == "object" and isinstance(value, dict):
                return True
            if kind == "map" and isinstance(value, dict):
                assert self.element is not None
                if all(isinstance(k, str) and self.element.accepts(v) for k, v in value.items()):
                    return True
            if kind == "list" and isinstance(value, list):
                assert self.element is not None
                if all(self.element.accepts(v) for v in value):
                    return True
        return False

    @property
    def is_container(self) -> bool:
        """Free-form or keyed values: a template may read below them."""
        return any(k in ("object", "map", "list") for k in self.kinds)


def parse_type(text: str) -> TypeSpec:
    """Parse the compact type syntax; raises ValueError naming what is wrong."""
    raw = text.strip()
    nullable = raw.endswith("?")
    if nullable:
        raw = raw[:-1].strip()
    for prefix, kind in (("map[string]", "map"), ("list[", "list")):
        if raw.startswith(prefix):
            inner = raw[len(prefix) :]
            if kind == "list":
                if not inner.endswith("]"):
                    raise ValueError(f"unclosed list type {text!r}")
                inner = inner[:-1]
            element = parse_type(inner)
            return TypeSpec(text, (kind,), element, nullable)
    kinds = tuple(part.strip() for part in raw.split("|"))
    for kind in kinds:
        if kind not in (*_SCALARS, "object"):
            raise ValueError(
                f"unknown type {kind!r} (known: {', '.join(_SCALARS)}, object, map[string]T, list[T], A|B, T?)"
            )
    return TypeSpec(text, kinds, None, nullable)


@dataclass(frozen=True)
class Value:
    """One declared values key: the single source of values.yaml, the schema, README and lint."""

    path: str
    type: TypeSpec
    default: Any
    doc: str
    enum: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    deprecated: str | None = None
    schema: Mapping[str, Any] | None = None  # extra JSON-schema keywords merged over the derived ones
    where: str = ""
    read_by: str | None = None  # who reads it when no chart template does (istiod at runtime, nothing at all)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))


@dataclass(frozen=True)
class Group:
    """Documentation and openness of an intermediate object such as `service` or `meshConfig`."""

    path: str
    doc: str
    open: bool = False  # accept keys that are not declared (free-form maps with some typed keys)
    type: str | None = None  # a type of generator/specs/meshconfig whose fields the group accepts


@dataclass(frozen=True)
class Change:
    kind: str
    description: str
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Image:
    name: str
    repository: str  # relative to the suite hub


@dataclass(frozen=True)
class ChartSpec:
    name: str
    description: str
    keywords: tuple[str, ...]
    values: tuple[Value, ...]
    groups: tuple[Group, ...]
    changes: tuple[Change, ...]
    images: tuple[Image, ...]
    source: str
    templates: Mapping[str, str] = field(default_factory=dict)  # path below generator/templates/<chart>

    def value(self, path: str) -> Value:
        for value in self.values:
            if value.path == path:
                return value
        raise KeyError(path)


@dataclass(frozen=True)
class Maintainer:
    name: str
    email: str
    url: str = ""


@dataclass(frozen=True)
class Suite:
    version: str
    hub: str
    kube_version: str
    repository_url: str
    home: str
    sources: tuple[str, ...]
    license: str
    maintainers: tuple[Maintainer, ...]
    sign_key: Mapping[str, str] | None = None

    @property
    def line(self) -> str:
        """The release line, `major.minor` of the version: names that Istio versions per line use it."""
        return ".".join(self.version.split(".")[:2])


@dataclass(frozen=True)
class Model:
    suite: Suite
    charts: tuple[ChartSpec, ...]
    shared_templates: Mapping[str, str]  # name -> jinja source, rendered into every chart
    crds: tuple[Mapping[str, Any], ...] = ()
    crd_examples: tuple[Mapping[str, Any], ...] = ()
    crd_descriptions: tuple[str, ...] = ()
    value_types: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # JSON schema by type name
    # Behaviours a release line turns on in the shared templates (generator/lines/<line>/line.yaml features)
    features: frozenset[str] = frozenset()

    def chart(self, name: str) -> ChartSpec:
        for chart in self.charts:
            if chart.name == name:
                return chart
        raise KeyError(name)


class _Collector:
    """Accumulates problems so that loading reports everything at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def mapping(self, data: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.add(where, f"must be a mapping, not {type(data).__name__}")
            return {}
        for key in data:
            if key not in allowed:
                self.add(
                    f"{where}.{key}" if where.count(":") else f"{where}:{key}",
                    f"unknown key (allowed: {', '.join(sorted(allowed))})",
                )
        for key in sorted(required - set(data)):
            self.add(where, f"missing required key {key!r}")
        return data

    def string(self, data: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
        value = data.get(key, default)
        if not isinstance(value, str):
            self.add(f"{where}.{key}" if ":" in where else f"{where}:{key}", "must be a string")
            return default
        return value

    def strings(self, data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(f"{where}.{key}" if ":" in where else f"{where}:{key}", "must be a list of strings")
            return ()
        return tuple(value)


def _header(c: _Collector, data: Any, where: str, kind: str) -> None:
    if not isinstance(data, dict):
        return
    if data.get("apiVersion") != API_VERSION:
        c.add(f"{where}:apiVersion", f"must be {API_VERSION!r}, found {data.get('apiVersion')!r}")
    if data.get("kind") != kind:
        c.add(f"{where}:kind", f"must be {kind!r}, found {data.get('kind')!r}")


def _load_suite(c: _Collector, data: Any, where: str) -> Suite:
    _header(c, data, where, "Suite")
    d = c.mapping(
        data,
        where,
        {"apiVersion", "kind", "version", "hub", "kubeVersion", "repository", "license", "maintainers", "signKey"},
        {"version", "hub", "kubeVersion", "repository", "license", "maintainers"},
    )
    version = str(d.get("version", "0.0.0"))
    if not re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", version):
        c.add(f"{where}:version", f"must be a SemVer 2 version, found {version!r}")
    repo = c.mapping(d.get("repository", {}), f"{where}:repository", {"url", "home", "sources"}, {"url", "home"})
    maintainers = []
    for i, m in enumerate(d.get("maintainers") or []):
        mw = f"{where}:maintainers[{i}]"
        md = c.mapping(m, mw, {"name", "email", "url"}, {"name", "email"})
        maintainers.append(Maintainer(c.string(md, "name", mw), c.string(md, "email", mw), c.string(md, "url", mw)))
    sign_key = d.get("signKey")
    if sign_key is not None:
        sign_key = c.mapping(sign_key, f"{where}:signKey", {"fingerprint", "url"}, {"fingerprint", "url"})
    return Suite(
        version=version,
        hub=c.string(d, "hub", where),
        kube_version=c.string(d, "kubeVersion", where),
        repository_url=c.string(repo, "url", f"{where}:repository"),
        home=c.string(repo, "home", f"{where}:repository"),
        sources=c.strings(repo, "sources", f"{where}:repository"),
        license=c.string(d, "license", where),
        maintainers=tuple(maintainers),
        sign_key=sign_key,
    )


_VALUE_KEYS = {"type", "default", "doc", "enum", "minimum", "maximum", "pattern", "deprecated", "schema", "readBy"}


def _suite_default(value: Any, suite: Suite | None) -> Any:
    """`$suite.version` / `$suite.hub` as a default: the images a release points at follow the suite."""
    if suite is not None and value == "$suite.version":
        return suite.version
    if suite is not None and value == "$suite.hub":
        return suite.hub
    return value


def _load_value(c: _Collector, path: str, data: Any, where: str, suite: Suite | None = None) -> Value | None:
    # A value a line's overlay declared is located at its key there (`line.yaml:charts.x.values.add`).
    vw = f"{where}.{path}" if ":" in where else f"{where}:values.{path}"
    if isinstance(data, dict) and "default" in data:
        data = {**data, "default": _suite_default(data["default"], suite)}
    if not _KEY_RE.match(path):
        c.add(vw, "key must be dotted camelCase identifiers (a declared map holds other keys)")
    d = c.mapping(data, vw, _VALUE_KEYS, {"type", "default", "doc"})
    if not d:
        return None
    ok = True
    try:
        vtype = parse_type(str(d.get("type", "")))
    except ValueError as err:
        c.add(f"{vw}.type", str(err))
        return None
    doc = d.get("doc")
    if not isinstance(doc, str) or not doc.strip():
        c.add(f"{vw}.doc", "missing description: every value says what it does and what it feeds")
        ok = False
    default = d.get("default")
    if "default" in d and not vtype.accepts(default):
        c.add(f"{vw}.default", f"default {default!r} is not of type {vtype.text}")
        ok = False
    enum = d.get("enum", [])
    if not isinstance(enum, list) or not enum:
        if "enum" in d:
            c.add(f"{vw}.enum", "must be a non-empty list")
            ok = False
        enum = []
    else:
        for item in enum:
            if not vtype.accepts(item):
                c.add(f"{vw}.enum", f"enum member {item!r} is not of type {vtype.text}")
                ok = False
        if "default" in d and default not in enum and default is not None:
            c.add(f"{vw}.default", f"default {default!r} is not one of the enum {enum}")
            ok = False
    bounds: dict[str, float | None] = {}
    for key in ("minimum", "maximum"):
        bound = d.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            c.add(f"{vw}.{key}", "must be a number")
            ok = False
            bound = None
        if bound is not None and not any(k in ("integer", "number") for k in vtype.kinds):
            c.add(f"{vw}.{key}", f"only numeric values take a {key}")
            ok = False
        bounds[key] = bound
    if isinstance(default, int | float) and not isinstance(default, bool):
        if bounds["minimum"] is not None and default < bounds["minimum"]:
            c.add(f"{vw}.default", f"default {default} is below the minimum {bounds['minimum']}")
            ok = False
        if bounds["maximum"] is not None and default > bounds["maximum"]:
            c.add(f"{vw}.default", f"default {default} is above the maximum {bounds['maximum']}")
            ok = False
    pattern = d.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as err:
            c.add(f"{vw}.pattern", f"not a valid regular expression: {err}")
            ok = False
    deprecated = d.get("deprecated")
    if deprecated is not None and not isinstance(deprecated, str):
        c.add(f"{vw}.deprecated", "must be a string saying what to use instead")
        ok = False
    schema = d.get("schema")
    if schema is not None and not isinstance(schema, dict):
        c.add(f"{vw}.schema", "must be a mapping of JSON-schema keywords")
        ok = False
    read_by = d.get("readBy")
    if read_by is not None and (not isinstance(read_by, str) or not read_by.strip()):
        c.add(f"{vw}.readBy", "must say who reads the value, since no template does")
        ok = False
    if not ok:
        return None
    return Value(
        path,
        vtype,
        default,
        str(doc).strip(),
        tuple(enum),
        bounds["minimum"],
        bounds["maximum"],
        pattern,
        deprecated,
        schema,
        vw,
        read_by.strip() if isinstance(read_by, str) else None,
    )


def _check_tree(c: _Collector, declared: list[str], groups: list[Group], where: str) -> None:
    """A key cannot be both a leaf and a parent; groups must be parents of declared values."""
    paths = set(declared)
    for path in declared:
        parts = path.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix in paths:
                c.add(
                    f"{where}:values.{path}",
                    f"{prefix!r} is declared as a value of its own; a value cannot also hold declared keys",
                )
    for g in groups:
        if not any(p.startswith(g.path + ".") for p in paths):
            c.add(f"{where}:groups.{g.path}", "documents a group that holds no declared value")


def _load_chart(
    c: _Collector, data: Any, where: str, suite: Suite | None = None, sources: Mapping[str, str] | None = None
) -> ChartSpec | None:
    """One chart's spec; `sources` names the file a value's declaration came from when a line's overlay
    added or changed it, so its problems point there."""
    sources = sources or {}
    _header(c, data, where, "ChartSpec")
    d = c.mapping(data, where, {"apiVersion", "kind", "chart", "values", "groups"}, {"chart", "values"})
    if not d:
        return None
    meta = c.mapping(
        d.get("chart", {}),
        f"{where}:chart",
        {"name", "description", "keywords", "changes", "images"},
        {"name", "description"},
    )
    name = c.string(meta, "name", f"{where}:chart")
    changes = []
    for i, ch in enumerate(meta.get("changes") or []):
        cw = f"{where}:chart.changes[{i}]"
        cd = c.mapping(ch, cw, {"kind", "description", "links"}, {"kind", "description"})
        kind = c.string(cd, "kind", cw)
        if cd and kind not in _CHANGE_KINDS:
            c.add(f"{cw}.kind", f"must be one of {', '.join(_CHANGE_KINDS)}")
        links = tuple(
            (str(ln.get("name", "")), str(ln.get("url", ""))) for ln in cd.get("links") or [] if isinstance(ln, dict)
        )
        changes.append(Change(kind, c.string(cd, "description", cw), links))
    images = []
    for i, im in enumerate(meta.get("images") or []):
        iw = f"{where}:chart.images[{i}]"
        idata = c.mapping(im, iw, {"name", "repository"}, {"name", "repository"})
        images.append(Image(c.string(idata, "name", iw), c.string(idata, "repository", iw)))
    raw_values = d.get("values", {})
    values: list[Value] = []
    if not isinstance(raw_values, dict):
        c.add(f"{where}:values", "must be a mapping of dotted keys to declarations")
    else:
        for path, decl in raw_values.items():
            value = _load_value(c, str(path), decl, sources.get(str(path), where), suite)
            if value is not None:
                values.append(value)
    groups = []
    raw_groups = d.get("groups", {}) or {}
    if not isinstance(raw_groups, dict):
        c.add(f"{where}:groups", "must be a mapping of dotted keys to {doc, open}")
    else:
        for path, decl in raw_groups.items():
            gw = f"{where}:groups.{path}"
            if isinstance(decl, str):
                decl = {"doc": decl}  # shorthand: a group's doc alone
            gd = c.mapping(decl, gw, {"doc", "open", "type"}, {"doc"})
            type_name = gd.get("type")
            if type_name is not None and (not isinstance(type_name, str) or gd.get("open")):
                c.add(f"{gw}.type", "must be a type name, and a typed group cannot also be open")
                type_name = None
            groups.append(Group(str(path), c.string(gd, "doc", gw), bool(gd.get("open", False)), type_name))
    _check_tree(c, [str(p) for p in raw_values] if isinstance(raw_values, dict) else [], groups, where)
    return ChartSpec(
        name,
        c.string(meta, "description", f"{where}:chart"),
        c.strings(meta, "keywords", f"{where}:chart"),
        tuple(values),
        tuple(groups),
        tuple(changes),
        tuple(images),
        where,
    )


def _read_templates(root: Path) -> dict[str, str]:
    """Jinja sources below `root` keyed by relative path, sorted. `*.j2` files are outputs (their path
    in the chart, less `.j2`); any other file (`*.jinja`) is only there to be included."""
    if not root.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix in (".j2", ".jinja")
    }


# ---------------------------------------------------------------------------------------------
# Release lines: generator/lines/<line>/line.yaml declares what a line changes from generator/specs


# signKey: the key that signs the line's releases. A published chart's Chart.yaml names its signer, so when the
# key rotates, the new key is named by the line that releases next; the base line's suite.yaml keeps the key of
# its published version until its next patch (generator/lines/README.md).
_LINE_SUITE_KEYS = {"version", "kubeVersion", "hub", "signKey"}
_LINE_KEYS = {"apiVersion", "kind", "line", "basedOn", "suite", "features", "crds", "charts", "release"}
_LINE_CHART_KEYS = {"changes", "values", "groups", "templates"}
_LINE_VALUE_OPS = {"add", "change", "deprecate", "remove"}


@dataclass(frozen=True)
class _Overlay:
    where: str
    suite: Mapping[str, Any]
    charts: Mapping[str, Mapping[str, Any]]
    features: tuple[str, ...] = ()
    crds: crd_module.LinePatch | None = None
    release: bool = True


def _load_overlay(c: _Collector, path: Path, where: str, line: str) -> _Overlay:
    data, problems = _yaml.load_file(path, where)
    c.problems.extend(problems)
    _header(c, data, where, "Line")
    d = c.mapping(data, where, _LINE_KEYS, {"line", "suite"})
    if d and str(d.get("line")) != line:
        c.add(f"{where}:line", f"must be {line!r}, the name of its folder")
    suite = c.mapping(d.get("suite", {}), f"{where}:suite", _LINE_SUITE_KEYS, {"version"})
    version = str(suite.get("version", ""))
    if suite and ".".join(version.split(".")[:2]) != line:
        c.add(f"{where}:suite.version", f"{version!r} is not a version of line {line}")
    if "signKey" in suite:
        c.mapping(suite["signKey"], f"{where}:suite.signKey", {"fingerprint", "url"}, {"fingerprint", "url"})
    charts = c.mapping(d.get("charts", {}) or {}, f"{where}:charts", set(CHART_NAMES), set())
    sections = {}
    for name, section in charts.items():
        sections[name] = c.mapping(section or {}, f"{where}:charts.{name}", _LINE_CHART_KEYS, set())
    features = d.get("features", {}) or {}
    if not isinstance(features, dict) or not all(isinstance(v, str) and v.strip() for v in features.values()):
        c.add(f"{where}:features", "must map each feature name to what it changes")
        features = {}
    crds = c.mapping(d.get("crds", {}) or {}, f"{where}:crds", {"versions", "fields"}, set())
    patch = crd_module.LinePatch(
        f"{where}:crds",
        tuple(sorted((path.parent / "crds").glob("*.yaml"))),
        c.mapping(crds.get("versions", {}) or {}, f"{where}:crds.versions", set(crds.get("versions") or {}), set()),
        c.mapping(crds.get("fields", {}) or {}, f"{where}:crds.fields", set(crds.get("fields") or {}), set()),
    )
    release = d.get("release", True)
    if not isinstance(release, bool):
        c.add(f"{where}:release", f"must be true or false, found {release!r}")
        release = True
    return _Overlay(where, suite, sections, tuple(str(k) for k in features), patch, release)


def _line_overlay(layout: Layout) -> _Overlay | None:
    """`layout`'s line.yaml, read (None for the base line); SpecError if it is bad."""
    if layout.line is None or layout.overlay is None:
        return None
    c = _Collector()
    overlay = _load_overlay(c, layout.overlay, layout.overlay.relative_to(layout.root).as_posix(), layout.line)
    if c.problems:
        raise SpecError(c.problems)
    return overlay


def line_released(layout: Layout) -> bool:
    """Whether `layout`'s line is released (packaged, signed, indexed, upgrade-checked against the previous line):
    the base line always; a line whose line.yaml says `release: false` is generated and tested, not published."""
    overlay = _line_overlay(layout)
    return overlay is None or overlay.release


def line_crd_patch(layout: Layout) -> crd_module.LinePatch | None:
    """The API-type changes of `layout`'s release line (None for the base line); SpecError if its overlay is bad."""
    overlay = _line_overlay(layout)
    return None if overlay is None else overlay.crds


def _overlay_chart(
    c: _Collector, data: Any, section: Mapping[str, Any], where: str, base_where: str
) -> tuple[Any, dict[str, str]]:
    """The chart's spec data with the line's changes applied, and which values the overlay declared.

    add: new keys; change: declaration keys replaced (a new default, doc, type; null drops one); deprecate:
    key -> what to use instead; remove: keys the base line already deprecated (a value is deprecated for a line before
    any later line removes it). groups take add and remove the same way; changes replace the list, since
    a line's Chart.yaml tells what that line changed.
    """
    if not isinstance(data, dict):
        return data, {}
    out = dict(data)
    sources: dict[str, str] = {}
    ops = c.mapping(section.get("values", {}) or {}, f"{where}.values", _LINE_VALUE_OPS, set())
    values = dict(out.get("values") or {})
    for path, decl in (ops.get("add") or {}).items():
        if path in values:
            c.add(f"{where}.values.add.{path}", f"already declared in {base_where}; use change")
            continue
        values[path] = decl
        sources[path] = f"{where}.values.add"
    for path, decl in (ops.get("change") or {}).items():
        if path not in values or not isinstance(values[path], dict) or not isinstance(decl, dict):
            c.add(f"{where}.values.change.{path}", f"not declared in {base_where} (or not a mapping); use add")
            continue
        # `key: null` drops a declaration key (a readBy once a template reads the value); a null default stays.
        merged = {**values[path], **decl}
        values[path] = {k: v for k, v in merged.items() if v is not None or k == "default"}
        sources[path] = f"{where}.values.change"
    for path, text in (ops.get("deprecate") or {}).items():
        if path not in values or not isinstance(values[path], dict):
            c.add(f"{where}.values.deprecate.{path}", f"not declared in {base_where}")
            continue
        values[path] = {**values[path], "deprecated": text}
        sources[path] = f"{where}.values.deprecate"
    for path in ops.get("remove") or []:
        decl = values.get(path)
        if not isinstance(decl, dict):
            c.add(f"{where}.values.remove", f"{path!r} is not declared in {base_where}")
        elif not decl.get("deprecated") or path in sources:
            c.add(
                f"{where}.values.remove",
                f"{path!r} is not deprecated in {base_where}: deprecate a value in one line before removing it",
            )
        else:
            del values[path]
    out["values"] = values
    gops = c.mapping(section.get("groups", {}) or {}, f"{where}.groups", {"add", "remove"}, set())
    groups = dict(out.get("groups") or {})
    groups.update(gops.get("add") or {})
    for path in gops.get("remove") or []:
        if groups.pop(path, None) is None:
            c.add(f"{where}.groups.remove", f"{path!r} is not a group of {base_where}")
    out["groups"] = groups
    if "changes" in section:
        out["chart"] = {**(out.get("chart") or {}), "changes": section["changes"]}
    return out, sources


def _overlay_templates(
    c: _Collector, templates: dict[str, str], section: Mapping[str, Any], own: Path, where: str
) -> dict[str, str]:
    """The base templates, with the line's own files (generator/lines/<line>/templates/<chart>/) added or
    replacing those of the same path, and `templates.remove` dropped."""
    merged = {**templates, **_read_templates(own)}
    tops = c.mapping(section.get("templates", {}) or {}, f"{where}.templates", {"remove"}, set())
    for rel in tops.get("remove") or []:
        if merged.pop(str(rel), None) is None:
            c.add(f"{where}.templates.remove", f"{rel!r} is not a template of the chart")
    return dict(sorted(merged.items()))


def load(layout: Layout) -> Model:
    """Read every spec and template source; raise SpecError listing every problem found."""
    c = _Collector()
    rel = layout.root

    def where(path: Path) -> str:
        return path.relative_to(rel).as_posix()

    overlay = None
    if layout.line is not None and layout.overlay is not None:
        if not layout.overlay.is_file():
            raise SpecError([Problem(where(layout.overlay), f"no overlay for release line {layout.line}")])
        overlay = _load_overlay(c, layout.overlay, where(layout.overlay), layout.line)
        if layout.own_specs:
            # A line with specs of its own declares its charts and API types there, not as changes.
            patch = overlay.crds
            for key, present in (
                ("charts", bool(overlay.charts)),
                ("crds", patch is not None and bool(patch.files or patch.versions or patch.fields)),
            ):
                if present:
                    c.add(
                        f"{overlay.where}:{key}",
                        f"this line has specs of its own ({where(layout.specs)}): declare it there, not as changes",
                    )

    suite_path = layout.suite_file
    data, problems = _yaml.load_file(suite_path, where(suite_path))
    c.problems.extend(problems)
    if overlay is not None and isinstance(data, dict):
        data = {**data, **overlay.suite}
    suite = _load_suite(c, data, where(suite_path))

    charts: list[ChartSpec] = []
    for name in CHART_NAMES:
        path = layout.specs / f"{name}.yaml"
        if not path.exists():
            continue
        data, problems = _yaml.load_file(path, where(path))
        c.problems.extend(problems)
        if data is None and problems:
            continue
        sources: dict[str, str] = {}
        section = overlay.charts.get(name) if overlay is not None else None
        if overlay is not None and section is not None:
            data, sources = _overlay_chart(c, data, section, f"{overlay.where}:charts.{name}", where(path))
        chart = _load_chart(c, data, where(path), suite, sources)
        if chart is None:
            continue
        if chart.name != name:
            c.add(f"{where(path)}:chart.name", f"must be {name!r} to match the file name")
        templates = _read_templates(layout.templates / name)
        if overlay is not None and layout.overlay is not None and not layout.own_specs:
            templates = _overlay_templates(
                c,
                templates,
                section or {},
                layout.overlay.parent / "templates" / name,
                f"{overlay.where}:charts.{name}",
            )
        if not any(t.endswith(".j2") for t in templates):
            c.add(where(layout.templates / name), f"no jinja sources (*.j2) for chart {name!r}")
        charts.append(
            ChartSpec(
                chart.name,
                chart.description,
                chart.keywords,
                chart.values,
                chart.groups,
                chart.changes,
                chart.images,
                chart.source,
                templates,
            )
        )
    for path in sorted(layout.specs.glob("*.yaml")):
        if path.stem not in (*CHART_NAMES, "suite") or (path.stem == "suite" and layout.own_specs):
            c.add(where(path), f"unexpected spec file (known: suite.yaml, {', '.join(CHART_NAMES)}.yaml)")

    crds: tuple[Mapping[str, Any], ...] = ()
    examples: tuple[Mapping[str, Any], ...] = ()
    descriptions: tuple[str, ...] = ()
    crd_dir = layout.specs / "crds"
    if any(crd_dir.glob("*.yaml")):
        try:
            patch = overlay.crds if overlay is not None and not layout.own_specs else None
            types = crd_module.load_api_types(crd_dir, patch)
            crds = tuple(crd_module.render_crd(t) for t in types)
            examples = tuple(crd_module.examples(t) for t in types)
            descriptions = tuple(t.description for t in types)
        except SpecError as err:
            c.problems.extend(err.problems)

    value_types: dict[str, dict[str, Any]] = {}
    types_dir = layout.specs / "meshconfig"
    types_loaded = True  # when the type specs are broken, their problems say so; a group naming one is no news
    if any(types_dir.glob("*.yaml")):
        from meshcharts import meshconfig

        try:
            value_types = meshconfig.load_value_types(types_dir, crd_dir)
        except SpecError as err:
            c.problems.extend(err.problems)
            types_loaded = False
    for chart in charts:
        for g in chart.groups:
            if g.type is None or not types_loaded:
                continue
            if g.type not in value_types:
                known = ", ".join(sorted(value_types)) or "none"
                c.add(f"{chart.source}:groups.{g.path}.type", f"unknown type {g.type!r} (known: {known})")
                continue
            fields = value_types[g.type].get("properties", {})
            for value in chart.values:
                field_name = value.path[len(g.path) + 1 :].split(".")[0]
                if value.path.startswith(g.path + ".") and field_name not in fields:
                    c.add(f"{chart.source}:values.{value.path}", f"{field_name!r} is not a field of {g.type}")

    if c.problems:
        raise SpecError(c.problems)
    return Model(
        suite,
        tuple(charts),
        _read_templates(layout.templates / "_shared"),
        crds,
        examples,
        descriptions,
        value_types,
        frozenset(overlay.features) if overlay is not None else frozenset(),
    )

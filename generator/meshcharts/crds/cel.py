"""CEL validation rules (`$rules`, rendered as x-kubernetes-validations), checked with cel-python (celpy) in place
of the API server's cel-go.

When the specs are loaded: a rule's syntax; the functions it calls (those of CEL and the Kubernetes extensions
below); that every `self.a.b` it names is a field of the type the rule is written on; no `oldSelf` (transition
rules need an old object, which an example is not); and the sizes its cost depends on. The API server estimates
each rule's cost from the maximum sizes in the schema (maxItems, maxProperties, maxLength; without one, as
much as a request can hold), times how often the rule's node can occur, and refuses a CRD over its limits.
`_costly` approximates that estimate (see there); the API server's own check runs in tests through
ci/crdcheck and is the authority.

When an example is checked: each rule, evaluated on the example's value at the rule's node, must give true.
Values are converted as the API server does: integer -> int, number -> double, date-time -> timestamp,
byte -> bytes. The Kubernetes extension functions are implemented here as far as examples need them:
strings (charAt, indexOf, lastIndexOf, lowerAscii, upperAscii, replace, split, substring, trim, join), regex
(find, findAll) and URLs (isURL, url, getScheme, getHost, getHostname, getPort, getEscapedPath, getQuery; parsed
with Python's urllib, close to Go's net/url). celpy compares an int with a double only after a conversion
(cel-go in the API server also compares them directly): write `self >= 0.0` for a number.
"""

from __future__ import annotations

import base64
import difflib
import functools
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from meshcharts.crds.expressions import Problems, compile_re2
from meshcharts.crds.model import Map, Object, Rule, TypeExpr, kind, resolved

if TYPE_CHECKING:
    import lark

# celpy (cel-python) and lark, its parser, take most of a second to import: they are imported where a rule is
# first parsed or evaluated, so loading specs without rules does not pay for them.

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
# CEL's own functions (as celpy has them) and the macro `has`.
STANDARD = frozenset(
    {
        "has", "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string",
        "bytes", "bool", "duration", "timestamp", "type", "dyn", "getDate", "getDayOfMonth", "getDayOfWeek",
        "getDayOfYear", "getFullYear", "getHours", "getMilliseconds", "getMinutes", "getMonth", "getSeconds",
    }
)  # fmt: skip
KUBERNETES = (
    "charAt", "indexOf", "lastIndexOf", "lowerAscii", "upperAscii", "replace", "split", "substring", "trim",
    "join", "find", "findAll", "isURL", "url", "getScheme", "getHost", "getHostname", "getPort", "getEscapedPath",
    "getQuery",
)  # fmt: skip


class RuleError(Exception):
    """A rule that cannot be parsed or evaluated; the message says why."""


@functools.cache
def _parse(rule: str) -> lark.Tree[Any]:
    from celpy.celparser import CELParseError, CELParser

    try:
        return CELParser().parse(rule)
    except CELParseError as exc:
        raise RuleError(f"not a valid CEL expression: {' '.join(str(exc).split())}") from None


def _self_path(tree: lark.Tree[Any] | lark.Token) -> tuple[str, ...] | None:
    """The fields of `self.a.b` that `tree` (a `member` of the CEL grammar) selects, () for `self` itself, or
    None when it is anything else."""
    import lark

    if not isinstance(tree, lark.Tree):
        return None
    if tree.data in ("member", "primary") and len(tree.children) == 1:
        return _self_path(tree.children[0])
    if tree.data == "ident":
        return () if str(tree.children[0]) == "self" else None
    if tree.data == "member_dot":
        inner = _self_path(tree.children[0])
        return None if inner is None else (*inner, str(tree.children[1]))
    return None


def _calls(tree: lark.Tree[Any]) -> Iterator[tuple[str, lark.Tree[Any] | None]]:
    """Each function, method or macro called in `tree`, with the receiver of a method (None for a function)."""
    for sub in tree.iter_subtrees():
        if sub.data == "ident_arg":
            yield str(sub.children[0]), None
        elif sub.data == "member_dot_arg":
            import lark

            receiver = sub.children[0]
            yield str(sub.children[1]), receiver if isinstance(receiver, lark.Tree) else None


def _paths(tree: lark.Tree[Any]) -> Iterator[tuple[str, ...]]:
    for sub in tree.iter_subtrees():
        if sub.data == "member_dot":
            path = _self_path(sub)
            if path is not None:
                yield path


def _follow(expr: TypeExpr, path: Sequence[str], types: Mapping[str, TypeExpr]) -> TypeExpr | str | None:
    """The type that `self.<path>` selects from `expr`; a message if a step selects nothing; None when a step
    enters an object whose fields are not all known (free-form or keeping unknown fields)."""
    node = resolved(expr, types)
    for index, step in enumerate(path):
        shown = ".".join(("self", *path[: index + 1]))
        if isinstance(node, Object):
            fields = dict(node.fields)
            if step not in fields:
                if node.keep_unknown:
                    return None
                hint = difflib.get_close_matches(step, list(fields), n=1)
                return f"{shown}: no field {step!r} here" + (f"; did you mean {hint[0]!r}?" if hint else "")
            node = resolved(fields[step], types)
        elif isinstance(node, Map):
            node = resolved(node.value, types)
        elif kind(node) in ("object", "intOrString"):
            return None
        else:
            return f"{shown}: a value of kind {kind(node)} has no fields"
    return node


def check_rules(
    rules: Sequence[Rule],
    target: TypeExpr,
    types: Mapping[str, TypeExpr],
    where: str,
    problems: Problems,
    enclosing: int = 0,
) -> None:
    """Report what the API server would refuse in `rules`, written on a node of type `target` (references in it
    are resolved with `types`) that is inside `enclosing` lists or maps, or what examples cannot be checked
    with; `where` locates the `$rules` key."""
    for index, rule in enumerate(rules):
        at = f"{where}[{index}].rule"
        try:
            tree = _parse(rule.rule)
        except RuleError as exc:
            problems.add(at, str(exc))
            continue
        for sub in tree.iter_subtrees():
            if sub.data == "ident" and str(sub.children[0]) == "oldSelf":
                problems.add(at, "transition rules (oldSelf) are not supported: an example has no old object")
                break
        known = {*STANDARD, *MACROS, *KUBERNETES}
        for name, _ in _calls(tree):
            if name not in known:
                problems.add(
                    at,
                    f"{name}() is neither a CEL function nor one of the Kubernetes extensions examples are "
                    f"checked with ({', '.join(KUBERNETES)})",
                )
        for path in _paths(tree):
            found = _follow(target, path, types)
            if isinstance(found, str):
                problems.add(at, found)
        for message in _costly(tree, target, types, enclosing):
            problems.add(at, message)


# String functions whose cost grows with the length of the string they read.
SCANS = frozenset(
    {
        "contains", "startsWith", "endsWith", "matches", "find", "findAll", "indexOf", "lastIndexOf", "split",
        "replace", "lowerAscii", "upperAscii", "trim", "substring", "charAt", "url", "isURL", "join",
    }
)  # fmt: skip


def _costly(tree: lark.Tree[Any], target: TypeExpr, types: Mapping[str, TypeExpr], enclosing: int) -> Iterator[str]:
    """Why the API server's cost estimate would refuse the rule `tree`, approximately: it iterates over (a macro)
    or scans (a string function) a list, map or string without a maximum size, and either the rule's node is
    inside a list or map (evaluated once per item, each time over an unbounded size), or that iteration has
    more iteration or string work inside it. Rules that only compare values cost little anywhere. (Checked
    against the API server: it accepts all of Istio 1.31's rules as placed there, and refuses these cases.)"""
    for name, receiver, body in _heavy(tree):
        for shown, node in _targets(receiver, target, types):
            if _bounded(node):
                continue
            fix = f"give {shown} a maximum size (e.g. {_EXAMPLE_BOUND[kind(node)]})"
            if enclosing:
                yield (
                    f"{name}() reads {shown}, which has no maximum size, and the rule is inside a list or map: "
                    f"the API server would estimate its cost over the limit; {fix}"
                )
            elif body is not None and any(True for _ in _heavy(body)):
                yield (
                    f"{name}() iterates over {shown}, which has no maximum size, with more iteration or string "
                    f"work for each item: the API server would estimate its cost over the limit; {fix}"
                )
        if body is not None and name in MACROS:
            for inner, inner_receiver, _ in _heavy(body):
                for shown, node in _targets(inner_receiver, target, types):
                    if not _bounded(node):
                        yield (
                            f"{inner}() inside {name}() reads {shown}, which has no maximum size: the API server "
                            f"would estimate its cost over the limit; give {shown} a maximum size "
                            f"(e.g. {_EXAMPLE_BOUND[kind(node)]})"
                        )


_EXAMPLE_BOUND = {"array": "[T](..64)", "map": "{string: T}(..64)", "object": "object(..64)", "string": "string(..253)"}


def _heavy(tree: lark.Tree[Any]) -> Iterator[tuple[str, lark.Tree[Any], lark.Tree[Any] | None]]:
    """Each iteration (macro) and string scan in `tree`: its name, what it reads (a method's receiver, a
    function's arguments) and a macro's body."""
    import lark

    for sub in tree.iter_subtrees():
        if sub.data == "member_dot_arg" and str(sub.children[1]) in MACROS | SCANS:
            receiver = sub.children[0]
            body = sub.children[2] if len(sub.children) > 2 else None
            if isinstance(receiver, lark.Tree):
                yield str(sub.children[1]), receiver, body if isinstance(body, lark.Tree) else None
        elif sub.data == "ident_arg" and str(sub.children[0]) in SCANS and len(sub.children) > 1:
            arguments = sub.children[1]
            if isinstance(arguments, lark.Tree):
                yield str(sub.children[0]), arguments, None


def _targets(read: lark.Tree[Any], target: TypeExpr, types: Mapping[str, TypeExpr]) -> Iterator[tuple[str, TypeExpr]]:
    """The types of what `read` reads of `self`: the whole of it if it is `self.a.b`, else every `self.a.b` in it
    (as in `(has(self.a) ? self.a : [])`)."""
    whole = _self_path(read)
    for path in [whole] if whole is not None else list(_paths(read)):
        node = _follow(target, path, types)
        if node is not None and not isinstance(node, str):
            yield ".".join(("self", *path)), node


def _bounded(node: TypeExpr) -> bool:
    """Whether a list, map, free-form object or string has a maximum size (anything else has no size)."""
    if kind(node) in ("array", "map", "string") or (kind(node) == "object" and not isinstance(node, Object)):
        return node.range is not None and node.range.high is not None
    return True


# Evaluation on examples.


@functools.cache
def _program(rule: str) -> Any:
    import celpy

    environment = celpy.Environment()
    return environment.program(_parse(rule), functions=_functions())


def evaluate(rules: Sequence[Mapping[str, str]], schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    """A message for each rule (x-kubernetes-validations entries) that is not true for `value`, a value that
    `schema` accepts, naming `path`."""
    from celpy import celtypes
    from celpy.evaluation import CELEvalError

    messages = []
    this = to_cel(schema, value)
    for entry in rules:
        rule = entry["rule"]
        try:
            result = _program(rule).evaluate({"self": this})
        except (CELEvalError, RuleError) as exc:
            result = exc
        if isinstance(result, CELEvalError | RuleError):
            messages.append(f"{path}: rule {rule!r} could not be evaluated: {_reason(result)}")
        elif not isinstance(result, celtypes.BoolType):
            messages.append(f"{path}: rule {rule!r} gave {result!r}, not true or false")
        elif not result:
            messages.append(f"{path}: {entry['message']} (rule {rule!r} is false)")
    return messages


def _reason(error: Exception) -> str:
    first = error.args[0] if error.args else error
    return " ".join(str(first).split())[:200]


def to_cel(schema: Mapping[str, Any], value: Any) -> Any:
    """`value` as the API server hands it to CEL under `schema`."""
    from celpy import celtypes
    from celpy.adapter import json_to_cel

    if value is None:
        return None
    if schema.get("x-kubernetes-int-or-string"):
        return celtypes.IntType(value) if isinstance(value, int) else celtypes.StringType(value)
    match schema.get("type"):
        case "integer":
            return celtypes.IntType(value)
        case "number":
            return celtypes.DoubleType(value)
        case "boolean":
            return celtypes.BoolType(value)
        case "string" if schema.get("format") == "date-time":
            return celtypes.TimestampType(value)
        case "string" if schema.get("format") == "byte":
            return celtypes.BytesType(base64.b64decode(value))
        case "string":
            return celtypes.StringType(value)
        case "array":
            return celtypes.ListType([to_cel(schema["items"], item) for item in value])
        case "object" if "properties" in schema:
            properties = schema["properties"]
            return celtypes.MapType(
                {
                    celtypes.StringType(key): to_cel(properties[key], item) if key in properties else json_to_cel(item)
                    for key, item in value.items()
                }
            )
        case "object" if isinstance(schema.get("additionalProperties"), dict):
            values = schema["additionalProperties"]
            return celtypes.MapType({celtypes.StringType(k): to_cel(values, v) for k, v in value.items()})
    return json_to_cel(value)


# Kubernetes' CEL extension functions (k8s.io/apiserver/pkg/cel/library and cel-go's strings extension).


@functools.cache
def _functions() -> dict[str, Callable[..., Any]]:
    from celpy import celtypes

    string, integer, listing = celtypes.StringType, celtypes.IntType, celtypes.ListType

    class URL(celtypes.StringType):
        """A parsed URL (Kubernetes' `url(...)`)."""

    def fail(message: str) -> None:
        raise ValueError(message)

    def char_at(text: str, index: int) -> Any:
        if not 0 <= index <= len(text):
            fail(f"index {index} out of range")
        return string(text[index : index + 1])

    def index_of(subject: Any, item: Any, start: int = 0) -> Any:
        if isinstance(subject, str):
            if not 0 <= start <= len(subject):
                fail(f"index {start} out of range")
            return integer(subject.find(item, start))
        return integer(next((i for i, x in enumerate(subject) if x == item), -1))

    def last_index_of(subject: Any, item: Any, end: int | None = None) -> Any:
        if isinstance(subject, str):
            return integer(subject.rfind(item, 0, None if end is None else end + len(item)))
        return integer(next((i for i in range(len(subject) - 1, -1, -1) if subject[i] == item), -1))

    def ascii_case(upper: bool) -> Callable[[str], Any]:
        return lambda text: string("".join((c.upper() if upper else c.lower()) if c.isascii() else c for c in text))

    def substring(text: str, start: int, end: int | None = None) -> Any:
        end = len(text) if end is None else end
        if not 0 <= start <= end <= len(text):
            fail(f"substring({start}, {end}) out of range for a string of {len(text)} characters")
        return string(text[start:end])

    def split(text: str, separator: str, limit: int = -1) -> Any:
        if limit == 0:
            return listing([])
        parts = list(text) if separator == "" else text.split(separator)
        if 0 < limit < len(parts):
            parts = [*parts[: limit - 1], separator.join(parts[limit - 1 :])]
        return listing([string(p) for p in parts])

    def find_all(text: str, regex: str, limit: int = -1) -> Any:
        found = [string(m.group()) for m in compile_re2(regex).finditer(text)]
        return listing(found if limit < 0 else found[:limit])

    def is_url(text: str) -> bool:
        if not text or any(c.isspace() or ord(c) < 0x20 for c in text):
            return False
        return text.startswith("/") or re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", text) is not None

    def url(text: str) -> Any:
        if not is_url(text):
            fail(f"{text!r} is not a URL")
        return URL(text)

    def parts(value: str) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(str(value))

    return {
        "charAt": char_at,
        "indexOf": index_of,
        "lastIndexOf": last_index_of,
        "lowerAscii": ascii_case(False),
        "upperAscii": ascii_case(True),
        "replace": lambda text, old, new, n=-1: string(text.replace(old, new, n)),
        "split": split,
        "substring": substring,
        "trim": lambda text: string(text.strip()),
        "join": lambda items, sep="": string(sep.join(items)),
        "find": lambda text, regex: string(m.group() if (m := compile_re2(regex).search(text)) else ""),
        "findAll": find_all,
        "isURL": lambda text: celtypes.BoolType(is_url(text)),
        "url": url,
        "getScheme": lambda u: string(parts(u).scheme),
        "getHost": lambda u: string(parts(u).netloc.rpartition("@")[2]),
        "getHostname": lambda u: string(parts(u).hostname or ""),
        "getPort": lambda u: string("" if parts(u).port is None else str(parts(u).port)),
        "getEscapedPath": lambda u: string(parts(u).path),
        "getQuery": lambda u: celtypes.MapType(
            {
                string(k): listing([string(v) for v in vs])
                for k, vs in urllib.parse.parse_qs(parts(u).query, keep_blank_values=True).items()
            }
        ),
    }

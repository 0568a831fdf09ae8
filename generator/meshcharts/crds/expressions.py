"""Type expressions of the compact type specs (`string`, `[Foo]`, `{string: Bar}`, `enum(A, B)`, `int32(1..65535)`,
...) and their `$` keys (`$doc`, `$oneOf`, `$required`, `$rules`, ...) parsed into the type model, every problem
collected with where it is. What a constraint applies to is checked once names are resolved (`constraints`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import re2  # google-re2: the regular expressions of Go's regexp, which the API server checks `pattern` with

from meshcharts.crds.model import LIST_TYPES, SCALARS, Array, Enum, Map, Object, Range, Ref, Rule, Scalar, TypeExpr
from meshcharts.errors import Problem


class Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        problem = Problem(where, message)
        if problem not in self.items:  # a shared type's problem, found again through another kind
            self.items.append(problem)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TYPE_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENUM_ITEM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\s*=\s*-?[0-9]+)?")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


class _SyntaxProblem(Exception):
    pass


class ExprParser:
    """Recursive descent over one type expression string, e.g. `{string: [StringMatch]}?`."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.pos = 0
        self.where = where

    def parse(self) -> TypeExpr:
        expr = self._expr(self.where)
        self._skip()
        if self.pos != len(self.text):
            raise _SyntaxProblem(f"unexpected {self.text[self.pos :]!r} after the type")
        return expr

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        self._skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _expect(self, char: str, context: str) -> None:
        if self._peek() != char:
            found = repr(self.text[self.pos :]) if self.pos < len(self.text) else "the end"
            raise _SyntaxProblem(f"expected {char!r} {context}, found {found}")
        self.pos += 1

    def _ident(self) -> str:
        self._skip()
        match = _IDENT.match(self.text, self.pos)
        if not match:
            found = repr(self.text[self.pos :]) if self.pos < len(self.text) else "the end"
            raise _SyntaxProblem(f"expected a type name, found {found}")
        self.pos = match.end()
        return match.group()

    def _expr(self, where: str) -> TypeExpr:
        char = self._peek()
        expr: TypeExpr
        if char == "[":
            self.pos += 1
            item = self._expr(where + "[]")
            self._expect("]", "to close the array type")
            expr = Array(item=item)
        elif char == "{":
            self.pos += 1
            key = self._ident()
            if key != "string":
                raise _SyntaxProblem(f"map keys are always strings: write {{string: T}}, not {{{key}: T}}")
            self._expect(":", "after {string")
            value = self._expr(where + "{}")
            self._expect("}", "to close the map type")
            expr = Map(value=value)
        else:
            name = self._ident()
            if name == "enum":
                values, numbers = self._enum_values()
                expr = Enum(values=values, numbers=numbers)
            else:
                expr = Scalar(name=name) if name in SCALARS else Ref(name=name)
        expr = replace(expr, where=where)
        if self._peek() == "(":
            expr = replace(expr, range=self._range())
        if self._peek() == "?":
            self.pos += 1
            expr = replace(expr, nullable=True)
        return expr

    def _range(self) -> Range:
        """`(low..high)`, either side may be left out: bounds of the value, length or size."""
        self.pos += 1
        close = self.text.find(")", self.pos)
        if close < 0:
            raise _SyntaxProblem("bad range: missing ')'")
        inner = self.text[self.pos : close]
        self.pos = close + 1
        low, dots, high = (part.strip() for part in inner.partition(".."))
        if not dots or not (low or high):
            raise _SyntaxProblem(f"bad range ({inner}): write (low..high), (low..) or (..high)")
        bad = [side for side in (low, high) if side and not _NUMBER.fullmatch(side)]
        if bad:
            raise _SyntaxProblem(f"bad range ({inner}): {bad[0]!r} is not a number")
        bounds = [_number(side) if side else None for side in (low, high)]
        if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            raise _SyntaxProblem(f"bad range ({inner}): the low end is above the high end")
        return Range(bounds[0], bounds[1])

    def _enum_values(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        if self._peek() != "(":
            raise _SyntaxProblem("bad enum syntax: write enum(A, B, ...)")
        close = self.text.find(")", self.pos)
        if close < 0:
            raise _SyntaxProblem("bad enum syntax: missing ')'")
        inner = self.text[self.pos + 1 : close]
        self.pos = close + 1
        items = tuple(v.strip() for v in inner.split(","))
        if items == ("",):
            raise _SyntaxProblem("bad enum syntax: enum() lists no values")
        bad = [v for v in items if not _ENUM_ITEM.fullmatch(v)]
        if bad:
            names = ", ".join(map(repr, bad))
            raise _SyntaxProblem(f"bad enum syntax: {names} is not a plain value name (or NAME=number)")
        values: list[str] = []
        numbers: list[int] = []
        for item in items:
            name, _, number = (part.strip() for part in item.partition("="))
            values.append(name)
            numbers.append(int(number) if number else (numbers[-1] + 1 if numbers else 0))
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise _SyntaxProblem(f"bad enum syntax: {', '.join(repeated)} listed twice")
        return tuple(values), tuple(numbers)


def _number(text: str) -> int | float:
    return int(text) if _INTEGER.fullmatch(text) else float(text)


_INTEGER = re.compile(r"-?[0-9]+")


def parse_type(node: Any, where: str, problems: Problems) -> TypeExpr | None:
    """A type from its YAML form: an expression string, a one-item list, or a mapping (object, map, $type)."""
    if isinstance(node, str):
        try:
            return ExprParser(node, where).parse()
        except _SyntaxProblem as exc:
            problems.add(where, f"{exc} in type {node!r}")
            return None
    if isinstance(node, list):
        if len(node) != 1:
            problems.add(
                where,
                f"an array type names one item type, e.g. [string]; this one has {len(node)} "
                '(to put enum(...) in an array, quote it: "[enum(A, B)]")',
            )
            return None
        item = parse_type(node[0], where + "[]", problems)
        return Array(item=item, where=where) if item is not None else None
    if isinstance(node, dict):
        return _parse_mapping_type(node, where, problems)
    if node is None:
        problems.add(where, "missing type")
    else:
        problems.add(where, f"expected a type, found {type(node).__name__} {node!r}")
    return None


def _parse_doc(node: Mapping[str, Any], where: str, problems: Problems) -> str | None:
    doc = node.get("$doc")
    if doc is not None and not (isinstance(doc, str) and doc.strip()):
        problems.add(f"{where}.$doc", "must be non-empty text")
        return None
    return doc.strip() if isinstance(doc, str) else None


# `$` keys by the form of the mapping they are in; each is described in generator/specs/crds/README.md.
_ANY_TYPE_KEYS = ("$doc", "$rules")
_TYPE_KEYS = (*_ANY_TYPE_KEYS, "$type", "$pattern", "$required", "$listType", "$listMapKeys")
_MAP_KEYS = _ANY_TYPE_KEYS
_OBJECT_KEYS = (*_ANY_TYPE_KEYS, "$oneOf", "$required", "$keepUnknown")


def _parse_mapping_type(node: Mapping[str, Any], where: str, problems: Problems) -> TypeExpr | None:
    meta = {k for k in node if isinstance(k, str) and k.startswith("$")}
    fields = [k for k in node if k not in meta]
    doc = _parse_doc(node, where, problems)
    parsed: TypeExpr | None
    allowed: tuple[str, ...]
    if "$type" in node:
        allowed = _TYPE_KEYS
        for key in sorted(meta - set(_TYPE_KEYS)):
            beside = ", ".join(k for k in _TYPE_KEYS if k != "$type")
            problems.add(f"{where}.{key}", f"unknown key; beside $type are allowed {beside}")
        for key in fields:
            problems.add(f"{where}.{key}", "a type given with $type has no fields; nest them under $type")
        parsed = parse_type(node["$type"], where, problems)
    elif fields == ["string"]:
        allowed = _MAP_KEYS
        for key in sorted(meta - set(_MAP_KEYS)):
            problems.add(f"{where}.{key}", f"unknown key; a map type {{string: T}} allows only {', '.join(_MAP_KEYS)}")
        value = parse_type(node["string"], where + "{}", problems)
        parsed = Map(value=value, where=where) if value is not None else None
    else:
        allowed = _OBJECT_KEYS
        parsed = _parse_object(node, fields, meta, where, problems)
    constraints = _parse_constraints({k: v for k, v in node.items() if k in allowed}, where, problems)
    if parsed is None or constraints is None:
        return None
    if doc is not None:
        parsed = replace(parsed, doc=doc)
    rules = constraints.pop("rules", ())
    required = constraints.pop("required", ())
    return replace(
        parsed,
        **constraints,
        rules=parsed.rules + rules,
        required=parsed.required + tuple(n for n in required if n not in parsed.required),
    )


def _names_list(raw: Any, where: str, what: str, problems: Problems) -> tuple[str, ...] | None:
    if not (isinstance(raw, list) and raw and all(isinstance(n, str) and _FIELD_NAME.fullmatch(n) for n in raw)):
        problems.add(where, f"must be a non-empty list of {what}")
        return None
    repeated = sorted({n for n in raw if raw.count(n) > 1})
    if repeated:
        problems.add(where, f"{', '.join(map(repr, repeated))} listed twice")
        return None
    return tuple(raw)


def _parse_constraints(node: Mapping[str, Any], where: str, problems: Problems) -> dict[str, Any] | None:
    """The constraints given by `$` keys (not the ones an object reads itself), as model attributes; None if
    one is malformed (reported)."""
    found: dict[str, Any] = {}
    ok = True
    if "$pattern" in node:
        found["pattern"] = _parse_pattern(node["$pattern"], f"{where}.$pattern", problems)
        ok = ok and found["pattern"] is not None
    if "$required" in node and "$type" in node:  # an object reads its own $required with its fields
        found["required"] = _names_list(node["$required"], f"{where}.$required", "field names", problems)
        ok = ok and found["required"] is not None
    if "$listType" in node:
        list_type = node["$listType"]
        if list_type not in LIST_TYPES:
            problems.add(f"{where}.$listType", f"must be one of {', '.join(LIST_TYPES)} (found {list_type!r})")
            ok = False
        else:
            found["list_type"] = list_type
            if list_type == "map" and "$listMapKeys" not in node:
                problems.add(f"{where}.$listType", "a list of type map needs $listMapKeys: the item fields keying it")
                ok = False
    if "$listMapKeys" in node:
        keys = _names_list(node["$listMapKeys"], f"{where}.$listMapKeys", "item field names", problems)
        if node.get("$listType") != "map":
            problems.add(f"{where}.$listMapKeys", "only for $listType: map")
            ok = False
        found["list_map_keys"] = keys
        ok = ok and keys is not None
    if "$rules" in node:
        rules = _parse_rules(node["$rules"], f"{where}.$rules", problems)
        ok = ok and rules is not None
        found["rules"] = rules
    return found if ok else None


def _parse_pattern(raw: Any, where: str, problems: Problems) -> str | None:
    if not (isinstance(raw, str) and raw):
        problems.add(where, "must be a regular expression (RE2 syntax, as the API server reads it)")
        return None
    try:
        compile_re2(raw)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        problems.add(where, f"not a valid RE2 regular expression: {detail}")
        return None
    return raw


@functools.cache
def compile_re2(pattern: str) -> Any:
    """`pattern` compiled as the API server's Go regexp would (RE2 syntax); re2.error if it is not valid."""
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


_RULE_KEYS = ("rule", "message")


def _parse_rules(raw: Any, where: str, problems: Problems) -> tuple[Rule, ...] | None:
    if not (isinstance(raw, list) and raw):
        problems.add(where, "must be a non-empty list of {rule: CEL expression, message: text}")
        return None
    rules: list[Rule] = []
    for index, entry in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(entry, dict):
            problems.add(at, "must be a mapping {rule: CEL expression, message: text}")
            continue
        for key in entry:
            if key not in _RULE_KEYS:
                problems.add(f"{at}.{key}", f"unknown key; a rule has {', '.join(_RULE_KEYS)}")
        texts = [entry.get(key) for key in _RULE_KEYS]
        for key, text in zip(_RULE_KEYS, texts, strict=True):
            if not (isinstance(text, str) and text.strip()):
                problems.add(f"{at}.{key}", "required: non-empty text")
        if all(isinstance(t, str) and t.strip() for t in texts) and all(k in _RULE_KEYS for k in entry):
            rule = Rule(rule=entry["rule"].strip(), message=entry["message"].strip())
            if rule.rule in (r.rule for r in rules):
                problems.add(f"{at}.rule", "the same rule is listed twice")
            rules.append(rule)
    return tuple(rules) if len(rules) == len(raw) else None


def _parse_object(
    node: Mapping[str, Any], fields: list[Any], meta: set[str], where: str, problems: Problems
) -> Object | None:
    for key in sorted(meta - set(_OBJECT_KEYS)):
        allowed = ", ".join(_OBJECT_KEYS)
        problems.add(f"{where}.{key}", f"unknown key; an object type allows {allowed} beside its fields")
    ok = True
    parsed_fields: list[tuple[str, TypeExpr]] = []
    for name in fields:
        if not (isinstance(name, str) and _FIELD_NAME.fullmatch(name)):
            problems.add(f"{where}.{name}", "a field name is letters, digits and '_', not starting with a digit")
            ok = False
            continue
        expr = parse_type(node[name], f"{where}.{name}", problems)
        if expr is None:
            ok = False
        else:
            parsed_fields.append((name, expr))
    one_of = _parse_one_of(node["$oneOf"], fields, f"{where}.$oneOf", problems) if "$oneOf" in node else ()
    required: tuple[str, ...] | None = ()
    if "$required" in node:
        required = _names_list(node["$required"], f"{where}.$required", "field names", problems)
        for name in required or ():
            if name not in fields:
                problems.add(f"{where}.$required", f"{name!r} is not a field of this object")
                required = None
    keep_unknown = node.get("$keepUnknown", False)
    if not isinstance(keep_unknown, bool):
        problems.add(f"{where}.$keepUnknown", f"must be true or false, not {keep_unknown!r}")
    if not ok or one_of is None or required is None or not isinstance(keep_unknown, bool):
        return None
    return Object(fields=tuple(parsed_fields), one_of=one_of, required=required, keep_unknown=keep_unknown, where=where)


def _parse_one_of(raw: Any, fields: list[Any], where: str, problems: Problems) -> tuple[tuple[str, ...], ...] | None:
    """`[a, b]`: at most one of a and b; `[[a, b], [c, d]]`: at most one of each group."""
    shape = "a non-empty list of field names, or of such lists (one per group)"
    if not (isinstance(raw, list) and raw):
        problems.add(where, f"must be {shape}")
        return None
    groups = raw if all(isinstance(g, list) for g in raw) else [raw]
    if not all(g and all(isinstance(f, str) for f in g) for g in groups):
        problems.add(where, f"must be {shape}")
        return None
    ok = True
    names = [name for group in groups for name in group]
    for name in dict.fromkeys(names):
        if name not in fields:
            problems.add(where, f"{name!r} is not a field of this object")
            ok = False
        elif names.count(name) > 1:
            problems.add(where, f"{name!r} listed twice")
            ok = False
    return tuple(tuple(group) for group in groups) if ok else None


def refs(expr: TypeExpr) -> Iterable[Ref]:
    match expr:
        case Ref():
            yield expr
        case Array(item=inner) | Map(value=inner):
            yield from refs(inner)
        case Object(fields=fields):
            for _, sub in fields:
                yield from refs(sub)
        case _:
            pass

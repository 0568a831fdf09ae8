"""Type expressions of the compact type specs (`string`, `[]Foo`, `map[string]Bar`, `enum(A, B)`, ...) parsed
into the type model, every problem collected with where it is."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from meshcharts.crds.model import SCALARS, Array, Enum, Map, Object, Ref, Scalar, TypeExpr
from meshcharts.errors import Problem


class Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(Problem(where, message))


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TYPE_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENUM_ITEM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\s*=\s*-?[0-9]+)?")


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
                expr = Scalar(name=name) if name in SCALARS else Ref(name=name, where=where)
        if self._peek() == "?":
            self.pos += 1
            expr = replace(expr, nullable=True)
        return expr

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
        return Array(item=item) if item is not None else None
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


def _parse_mapping_type(node: Mapping[str, Any], where: str, problems: Problems) -> TypeExpr | None:
    meta = {k for k in node if isinstance(k, str) and k.startswith("$")}
    fields = [k for k in node if k not in meta]
    doc = _parse_doc(node, where, problems)
    parsed: TypeExpr | None
    if "$type" in node:
        for key in sorted(meta - {"$type", "$doc"}):
            problems.add(f"{where}.{key}", "unknown key; beside $type only $doc is allowed")
        for key in fields:
            problems.add(f"{where}.{key}", "a type given with $type has no fields; nest them under $type")
        parsed = parse_type(node["$type"], where, problems)
    elif fields == ["string"]:
        for key in sorted(meta - {"$doc"}):
            problems.add(f"{where}.{key}", "unknown key; a map type {string: T} allows only $doc")
        value = parse_type(node["string"], where + "{}", problems)
        parsed = Map(value=value) if value is not None else None
    else:
        parsed = _parse_object(node, fields, meta, where, problems)
    if parsed is not None and doc is not None:
        parsed = replace(parsed, doc=doc)
    return parsed


def _parse_object(
    node: Mapping[str, Any], fields: list[Any], meta: set[str], where: str, problems: Problems
) -> Object | None:
    for key in sorted(meta - {"$doc", "$oneOf"}):
        problems.add(f"{where}.{key}", "unknown key; an object type allows $doc and $oneOf beside its fields")
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
    one_of: tuple[str, ...] = ()
    if "$oneOf" in node:
        raw = node["$oneOf"]
        if not (isinstance(raw, list) and raw and all(isinstance(f, str) for f in raw)):
            problems.add(f"{where}.$oneOf", "must be a non-empty list of field names")
            ok = False
        else:
            for name in raw:
                if name not in fields:
                    problems.add(f"{where}.$oneOf", f"{name!r} is not a field of this object")
                    ok = False
                elif raw.count(name) > 1:
                    problems.add(f"{where}.$oneOf", f"{name!r} listed twice")
                    ok = False
            one_of = tuple(raw)
    if not ok:
        return None
    return Object(fields=tuple(parsed_fields), one_of=one_of)


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

"""What the constraints of each type apply to, checked once names are resolved: a range to numbers, strings,
lists, maps or objects; a pattern to strings; required fields to objects; a list type to lists (a set to lists of
scalars, a map to lists of objects keyed by required scalar fields); what a reference adds to the type it names
not set there already; and CEL rules against the type they are written on (`cel`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from meshcharts.crds import cel
from meshcharts.crds.expressions import Problems
from meshcharts.crds.model import RANGE_KEYWORDS, Array, Map, Object, Range, Ref, TypeExpr, kind, resolved

_RANGED = {
    "integer": "the value",
    "number": "the value",
    "string": "the length",
    "array": "the number of items",
    "map": "the number of entries",
    "object": "the number of fields",
}
_SCALAR_KINDS = ("integer", "number", "string", "boolean", "timestamp", "intOrString", "enum")


def check_constraints(roots: Iterable[TypeExpr], types: Mapping[str, TypeExpr], problems: Problems) -> None:
    """Check every node of `roots` (types whose references all resolve in `types`, without cycles), following
    references: a named type's nodes are reported where it is declared, checked in the context of each use (a
    rule's cost depends on whether it is inside a list or map); what a reference adds, where the reference is."""
    for expr in roots:
        _walk(expr, types, problems, 0)


def _walk(
    expr: TypeExpr, types: Mapping[str, TypeExpr], problems: Problems, enclosing: int, use: Ref | None = None
) -> None:
    """Check `expr`, inside `enclosing` lists or maps, and what is below it. `use` is the reference through which
    `expr`, a named type, was reached: what the reference adds belongs to the node."""
    if isinstance(expr, Ref):
        base = resolved(types[expr.name], types)
        twice = [
            (f"{expr.where}.$pattern" if attr == "pattern" else expr.where, what)
            for attr, what in (("range", "a range"), ("pattern", "a $pattern"), ("list_type", "a $listType"))
            if getattr(expr, attr) is not None and getattr(base, attr) is not None
        ]
        for where, what in twice:
            problems.add(where, f"{expr.name} already has {what}; declare another type for a different one")
        _check(expr, resolved(expr, types), types, problems, enclosing)
        _walk(types[expr.name], types, problems, enclosing, use=expr)
        return
    node = resolved(use, types) if use is not None else expr
    _check(expr, node, types, problems, enclosing)
    match node:
        case Array(item=item):
            _walk(item, types, problems, enclosing + 1)
        case Map(value=value):
            _walk(value, types, problems, enclosing + 1)
        case Object(fields=fields):
            for _, sub in fields:
                _walk(sub, types, problems, enclosing)
        case _:
            pass


def _check(own: TypeExpr, target: TypeExpr, types: Mapping[str, TypeExpr], problems: Problems, enclosing: int) -> None:
    """The constraints written on `own` against `target`: `own` itself, or with what a reference to it adds."""
    where = own.where
    what = kind(target)
    if own.range is not None:
        _check_range(own.range, what, where, problems)
    if own.pattern is not None and what != "string":
        problems.add(f"{where}.$pattern", f"a pattern applies to strings, not to a value of kind {what}")
    if own.required:
        if not isinstance(target, Object):
            problems.add(f"{where}.$required", f"required fields apply to objects with fields, not to {what}")
        else:
            fields = dict(target.fields)
            for name in own.required:
                if name not in fields:
                    of = own.name if isinstance(own, Ref) else "this object"
                    problems.add(f"{where}.$required", f"{name!r} is not a field of {of}")
    if own.list_type is not None:
        if not isinstance(target, Array):
            problems.add(f"{where}.$listType", f"a list type applies to lists, not to a value of kind {what}")
        else:
            _check_list(target, types, where, problems)
    if own.rules:
        cel.check_rules(own.rules, target, types, f"{where}.$rules", problems, enclosing)


def _check_range(bounds: Range, what: str, where: str, problems: Problems) -> None:
    if what not in RANGE_KEYWORDS:
        hint = {"enum": "; an enum lists its values", "boolean": "", "timestamp": "", "intOrString": ""}
        problems.add(where, f"a range applies to numbers, strings, lists and maps, not to {what}{hint.get(what, '')}")
        return
    for bound in (bounds.low, bounds.high):
        if bound is None:
            continue
        if what != "number" and not isinstance(bound, int):
            problems.add(where, f"a range on {what} bounds {_RANGED[what]}: {bound} is not a whole number")
        elif what not in ("integer", "number") and bound < 0:
            problems.add(where, f"a range on {what} bounds {_RANGED[what]}, which cannot be {bound}")


def _check_list(array: Array, types: Mapping[str, TypeExpr], where: str, problems: Problems) -> None:
    item = resolved(array.item, types)
    if array.list_type == "set" and kind(item) not in _SCALAR_KINDS:
        problems.add(f"{where}.$listType", f"a set holds scalars (strings, numbers, ...), not {kind(item)}; use atomic")
    if array.list_type != "map":
        return
    if not isinstance(item, Object):
        problems.add(f"{where}.$listType", f"a list of type map holds objects with fields, not {kind(item)}")
        return
    fields = dict(item.fields)
    for key in array.list_map_keys:
        if key not in fields:
            problems.add(f"{where}.$listMapKeys", f"{key!r} is not a field of the list's items")
        elif kind(resolved(fields[key], types)) not in _SCALAR_KINDS:
            problems.add(f"{where}.$listMapKeys", f"{key!r} must be a scalar field to key a list")
        elif key not in item.required:
            problems.add(
                f"{where}.$listMapKeys",
                f"{key!r} must be in the items' $required: the API server needs every item to have its keys",
            )

"""Resolving the named types a draft refers to, and refusing reference cycles."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from meshcharts.crds.expressions import TYPE_NAME, Problems, refs
from meshcharts.crds.model import SCALARS, TypeExpr
from meshcharts.crds.specfiles import Draft, SpecFile


def resolve_types(
    shared: Mapping[str, tuple[SpecFile, TypeExpr]], broken: set[str], drafts: list[Draft], problems: Problems
) -> None:
    """Report unknown references (not those to types reported broken), shadowing, unused and cyclic types."""
    used: set[str] = set()

    def check(expr: TypeExpr, scope: Mapping[str, TypeExpr], seen_in: set[str], known_bad: set[str]) -> None:
        for ref in refs(expr):
            seen_in.add(ref.name)
            if ref.name not in scope and ref.name not in known_bad:
                if not TYPE_NAME.fullmatch(ref.name):
                    problems.add(ref.where, f"unknown type {ref.name!r}; scalars are {', '.join(SCALARS)}")
                else:
                    hint = difflib.get_close_matches(ref.name, list(scope), n=1)
                    problems.add(
                        ref.where,
                        f"unknown type {ref.name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                    )

    shared_scope = {name: expr for name, (_, expr) in shared.items()}
    for _, expr in shared.values():
        check(expr, shared_scope, used, broken)
    for draft in drafts:
        for name in draft.file.types:
            if name in shared:
                problems.add(
                    f"{draft.file.where}:types.{name}",
                    f"shadows the shared type of that name in {shared[name][0].where}; rename one",
                )
        scope = {**shared_scope, **draft.file.types}
        local_used: set[str] = set()
        for local_expr in (draft.spec, draft.status, *draft.file.types.values()):
            if local_expr is not None:
                check(local_expr, scope, local_used, broken | draft.file.broken)
        for name in draft.file.types:
            if name not in local_used:
                problems.add(f"{draft.file.where}:types.{name}", "declared but never used")
        used |= local_used
    for name, (file, _) in shared.items():
        if name not in used:
            problems.add(f"{file.where}:types.{name}", "declared but used by no API type")

    find_cycles({name: (f"{file.where}:types.{name}", expr) for name, (file, expr) in shared.items()}, problems)
    for draft in drafts:
        local = {name: (f"{draft.file.where}:types.{name}", expr) for name, expr in draft.file.types.items()}
        find_cycles(local, problems)


def find_cycles(types: Mapping[str, tuple[str, TypeExpr]], problems: Problems) -> None:
    """Report each cycle among `types` once; structural schemas cannot express recursion."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    found: set[frozenset[str]] = set()

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        stack.append(name)
        for ref in refs(types[name][1]):
            if ref.name not in types:
                continue
            if state.get(ref.name) == 1:
                cycle = [*stack[stack.index(ref.name) :], ref.name]
                key = frozenset(cycle)
                if key not in found:
                    found.add(key)
                    problems.add(types[cycle[0]][0], f"cycle between types: {' -> '.join(cycle)}")
            elif ref.name not in state:
                visit(ref.name, stack)
        stack.pop()
        state[name] = 2

    for name in types:
        if name not in state:
            visit(name, [])

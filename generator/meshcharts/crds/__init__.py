"""Istio's API types: compact type specs (generator/specs/crds) -> CustomResourceDefinitions as data.

`load_api_types` reads and validates every spec file, reporting all problems at once; `render_crd` expands one
APIType into an apiextensions.k8s.io/v1 CustomResourceDefinition whose schemas are structural, so the API
server prunes and validates with them. The format is described in generator/specs/crds/README.md.

One module per job: `model` (the type model), `expressions` (type expressions, their constraints and where a
problem is), `specfiles` (reading and checking the files), `resolve` (named types and cycles), `constraints` (what
each constraint applies to), `cel` (CEL validation rules, with cel-python), `load` (all of it, patched for a
release line), `render` (CRDs and their schemas), `validate` (the files' examples against the schemas).
`meshconfig` builds on `expressions` and `specfiles` for the values types of MeshConfig.
"""

from meshcharts.crds.expressions import ExprParser, Problems, refs
from meshcharts.crds.load import LinePatch, load_api_types, render_all
from meshcharts.crds.model import (
    CRD_API_VERSION,
    PRINTER_COLUMN_TYPES,
    SCALARS,
    SPEC_API_VERSION,
    APIType,
    Array,
    Enum,
    Map,
    Object,
    PrinterColumn,
    Range,
    Ref,
    Rule,
    Scalar,
    TypeExpr,
    Version,
)
from meshcharts.crds.render import render_crd, version_schema
from meshcharts.crds.resolve import find_cycles
from meshcharts.crds.specfiles import SpecFile, check_header, check_keys, parse_types_block, read_spec
from meshcharts.crds.validate import examples, validate

__all__ = [
    "CRD_API_VERSION",
    "PRINTER_COLUMN_TYPES",
    "SCALARS",
    "SPEC_API_VERSION",
    "APIType",
    "Array",
    "Enum",
    "ExprParser",
    "LinePatch",
    "Map",
    "Object",
    "PrinterColumn",
    "Problems",
    "Range",
    "Ref",
    "Rule",
    "Scalar",
    "SpecFile",
    "TypeExpr",
    "Version",
    "check_header",
    "check_keys",
    "examples",
    "find_cycles",
    "load_api_types",
    "parse_types_block",
    "read_spec",
    "refs",
    "render_all",
    "render_crd",
    "validate",
    "version_schema",
]

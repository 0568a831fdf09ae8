"""Tabulate the field paths of a protobuf message as the istiod chart's `meshConfig` sees them:
`path<TAB>type`, one row per field, depth first in declaration order.

Usage: python meshconfig_fields_tsv.py API_DIR [--root MESSAGE] > fields.tsv

API_DIR is a checkout of istio/api (another project's, kept outside this repository: a `git archive` of a tag
or the Go module cache's copy); imports are found under API_DIR and API_DIR/common-protos, and the root message
defaults to istio.mesh.v1alpha1.MeshConfig. Reads .proto files and writes facts only: field names as protobuf
JSON names (lowerCamelCase, or a field's json_name), `x[]` a repeated field's item, `x{}` a map's value, and the
JSON type of each: string, integer (every integer kind and its wrapper), number (double, float and wrappers),
boolean, duration (google.protobuf.Duration), struct (google.protobuf.Struct: any JSON object), object (a
message, its fields on the following rows) and enum(NAME=number, ...) in declaration order. Deprecated fields
are tabulated like the others: protobuf JSON still reads them. Run on istio/api at tag 1.12.2 it writes
istio-1.12-meshconfig/fields.tsv byte for byte.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = "istio.mesh.v1alpha1.MeshConfig"
INTEGERS = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}
SCALARS = {
    **dict.fromkeys(INTEGERS, "integer"),
    **dict.fromkeys(("double", "float"), "number"),
    **dict.fromkeys(("string", "bytes"), "string"),
    "bool": "boolean",
}
WELL_KNOWN = {
    "google.protobuf.Duration": "duration",
    "google.protobuf.Timestamp": "string",
    "google.protobuf.Struct": "struct",
    "google.protobuf.BoolValue": "boolean",
    "google.protobuf.StringValue": "string",
    "google.protobuf.BytesValue": "string",
    "google.protobuf.DoubleValue": "number",
    "google.protobuf.FloatValue": "number",
    **{f"google.protobuf.{kind}Value": "integer" for kind in ("Int32", "Int64", "UInt32", "UInt64")},
}
_TOKEN = re.compile(
    r'\s+|//[^\n]*|/\*.*?\*/|(?P<tok>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[-+]?[0-9][\w.+-]*|\.?[A-Za-z_][\w.]*|.)',
    re.DOTALL,
)


@dataclass
class Field:
    name: str
    json: str
    type: str
    label: str = ""  # repeated, or map (then `type` is the value type)


@dataclass
class Message:
    name: str  # full name
    fields: list[Field] = field(default_factory=list)


@dataclass
class Enum:
    name: str
    values: list[tuple[str, int]] = field(default_factory=list)


def json_name(name: str) -> str:
    """protoc's default JSON name: underscores dropped, the letter after each one upper-cased."""
    out, upper = [], False
    for char in name:
        if char == "_":
            upper = True
        else:
            out.append(char.upper() if upper else char)
            upper = False
    return "".join(out)


class Parser:
    """The parts of a .proto file that shape JSON: packages, imports, messages, fields, maps, oneofs, enums."""

    def __init__(self, text: str, where: str) -> None:
        self.tokens = [m.group("tok") for m in _TOKEN.finditer(text) if m.group("tok")]
        self.pos = 0
        self.where = where
        self.package = ""
        self.imports: list[str] = []
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, Enum] = {}
        self.scopes: dict[str, str] = {}  # type full name -> the scope its field types resolve from

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def next(self) -> str:
        token = self.peek()
        if not token:
            raise SystemExit(f"{self.where}: unexpected end of file")
        self.pos += 1
        return token

    def expect(self, token: str) -> None:
        found = self.next()
        if found != token:
            raise SystemExit(f"{self.where}: expected {token!r}, found {found!r} (token {self.pos})")

    def skip_statement(self) -> None:
        """Up to and including `;`, or a balanced `{...}` block (options with aggregate values, services)."""
        depth = 0
        while True:
            token = self.next()
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if depth == 0:
                    if self.peek() == ";":
                        self.next()
                    return
            elif token == ";" and depth == 0:
                return

    def field_options(self) -> dict[str, str]:
        """A field's `[name = value, ...]`, each value as its text (nested brackets and braces kept whole)."""
        options: dict[str, str] = {}
        if self.peek() != "[":
            return options
        self.next()
        key: list[str] = []
        value: list[str] | None = None
        depth = 0
        while True:
            token = self.next()
            if depth == 0 and token in (",", "]"):
                if value is not None:
                    options["".join(key)] = "".join(value)
                if token == "]":
                    return options
                key, value = [], None
                continue
            if token in ("[", "{"):
                depth += 1
            elif token in ("]", "}"):
                depth -= 1
            if depth == 0 and token == "=" and value is None:
                value = []
            elif value is None:
                key.append(token)
            else:
                value.append(token)

    def parse(self) -> Parser:
        while self.peek():
            token = self.next()
            if token == "package":
                self.package = self.next()
                self.expect(";")
            elif token == "import":
                if self.peek() in ("public", "weak"):
                    self.next()
                self.imports.append(self.next().strip("\"'"))
                self.expect(";")
            elif token == "message":
                self.message(self.package)
            elif token == "enum":
                self.enum(self.package)
            elif token == ";":
                continue
            else:  # syntax, option, service, extend
                self.skip_statement()
        return self

    def full(self, scope: str, name: str) -> str:
        return f"{scope}.{name}" if scope else name

    def enum(self, scope: str) -> None:
        enum = Enum(self.full(scope, self.next()))
        self.expect("{")
        while (token := self.next()) != "}":
            if token in ("option", "reserved"):
                self.skip_statement()
            elif token != ";":
                self.expect("=")
                enum.values.append((token, int(self.next(), 0)))
                self.field_options()
                self.expect(";")
        self.enums[enum.name] = enum

    def message(self, scope: str) -> None:
        message = Message(self.full(scope, self.next()))
        self.messages[message.name] = message
        self.scopes[message.name] = message.name
        self.expect("{")
        self.body(message)

    def body(self, message: Message) -> None:
        while (token := self.next()) != "}":
            if token == "message":
                self.message(message.name)
            elif token == "enum":
                self.enum(message.name)
            elif token == "oneof":
                self.next()
                self.expect("{")
                self.body(message)  # a oneof's fields are the message's, in their place
            elif token in ("option", "reserved", "extensions", "extend"):
                self.skip_statement()
            elif token == ";":
                continue
            else:
                self.field(message, token)

    def field(self, message: Message, token: str) -> None:
        label = ""
        if token in ("repeated", "optional", "required"):
            label = "repeated" if token == "repeated" else ""
            token = self.next()
        if token == "map":
            self.expect("<")
            self.next()  # the key: always a string in JSON
            self.expect(",")
            token, label = self.next(), "map"
            self.expect(">")
        name = self.next()
        self.expect("=")
        self.next()
        options = self.field_options()
        self.expect(";")
        json = options.get("json_name", "").strip("\"'") or json_name(name)
        message.fields.append(Field(name, json, token, label))


class Protos:
    """Every message and enum of the files reachable from the root file's imports."""

    def __init__(self, api: Path) -> None:
        self.includes = [api, api / "common-protos"]
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, Enum] = {}
        self.read: set[str] = set()

    def load(self, name: str) -> None:
        if name in self.read or name.startswith(("google/protobuf/", "google/api/", "gogoproto/")):
            return  # well-known types are tabulated by name; the others hold options only
        self.read.add(name)
        path = next((inc / name for inc in self.includes if (inc / name).is_file()), None)
        if path is None:
            return  # an import with no file: fine unless one of its types is reached (then resolve() says so)
        parsed = Parser(path.read_text(encoding="utf-8"), name).parse()
        self.messages.update(parsed.messages)
        self.enums.update(parsed.enums)
        for imported in parsed.imports:
            self.load(imported)

    def resolve(self, name: str, scope: str) -> str:
        """Protobuf's scoping: the innermost enclosing scope that has the name (a leading dot: fully qualified)."""
        if name.startswith("."):
            return name[1:]
        parts = scope.split(".")
        for i in range(len(parts), -1, -1):
            candidate = ".".join([*parts[:i], name])
            if candidate in self.messages or candidate in self.enums or candidate in WELL_KNOWN:
                return candidate
        if name.startswith("google.protobuf."):
            raise SystemExit(f"unsupported well-known type {name} (in {scope})")
        raise SystemExit(f"unknown type {name} (in {scope}): is its file under the include folders?")

    def rows(self, message: str, prefix: str = "", seen: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
        if message in seen:
            raise SystemExit(f"{message} contains itself (at {prefix}): not tabulable")
        for f in self.messages[message].fields:
            path = f"{prefix}.{f.json}" if prefix else f.json
            path += {"repeated": "[]", "map": "{}"}.get(f.label, "")
            if f.type in SCALARS:
                yield path, SCALARS[f.type]
                continue
            full = self.resolve(f.type, message)
            if full in WELL_KNOWN:
                yield path, WELL_KNOWN[full]
            elif full in self.enums:
                yield path, "enum(" + ", ".join(f"{n}={v}" for n, v in self.enums[full].values) + ")"
            else:
                yield path, "object"
                yield from self.rows(full, path, (*seen, message))


def main(argv: list[str]) -> int:
    args = list(argv)
    root = ROOT
    if "--root" in args:
        i = args.index("--root")
        root = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    api = Path(args[0])
    protos = Protos(api)
    package = root.rsplit(".", 1)[0]
    for path in sorted(api.glob("*/*/*.proto")):  # the root's package's files, then what they import
        text = path.read_text(encoding="utf-8")
        if re.search(rf"^package\s+{re.escape(package)}\s*;", text, flags=re.MULTILINE):
            protos.load(path.relative_to(api).as_posix())
    if root not in protos.messages:
        print(f"no message {root} under {api}", file=sys.stderr)
        return 1
    print("path\ttype")
    for path, kind in protos.rows(root):
        print(f"{path}\t{kind}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

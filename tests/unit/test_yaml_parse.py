"""`meshcharts._yaml.parse`/`parse_all` (libyaml's parser, what the test layers read renders and injected pods with)
read the same documents as PyYAML's `safe_load`/`safe_load_all`."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from meshcharts import _yaml
from tests import REPO

# Every YAML file of the repository's specs, CI values and test data, spread over the kinds of file there are;
# one in eight of the injected pods (about 1,500 files of the same shape), all of everything else.
FILES = (
    sorted(
        p for p in itertools.chain(*(REPO.glob(f"{d}/**/*.yaml") for d in ("generator/specs", "generator/lines", "ci")))
    )
    + sorted(REPO.glob("tests/data/**/*.yaml"))[::8]
)


def test_libyamls_parser_is_the_one_used_where_pyyaml_has_it() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("requires PyYAML built with libyaml (yaml.__with_libyaml__ is False here)")
    assert _yaml.SafeLoader is yaml.CSafeLoader


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_parse_all_reads_what_safe_load_all_reads(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert _yaml.parse_all(text) == list(yaml.safe_load_all(text))


def test_parse_reads_one_document_as_safe_load_does_and_refuses_two() -> None:
    text = "a: 1\nb: [x, 'y', 2.5, true, null, 2026-12-06]\nc: |\n  line\n"
    assert _yaml.parse(text) == yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError):
        _yaml.parse("a: 1\n---\nb: 2\n")
    # A safe loader: no Python objects from tags.
    with pytest.raises(yaml.YAMLError):
        _yaml.parse("!!python/object/apply:os.system ['true']\n")

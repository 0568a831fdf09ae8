"""A line whose line.yaml says `release: false` is generated and tested, not published: `meshcharts release` refuses
it, naming it, and writes nothing. Held on a line made for the test, so that it keeps holding once the repository's
own unreleased line (1.31) says `release: true`."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcharts import repo, spec, write
from meshcharts.errors import RepoError
from tests.unit.trees import make_tree

LINE = """\
apiVersion: meshcharts/v1alpha1
kind: Line
line: "1.13"
basedOn: "1.12"
suite: {version: 1.13.0}
release: false
"""


def test_release_refuses_a_line_that_says_release_false_and_writes_nothing(tmp_path: Path) -> None:
    layout = make_tree(tmp_path)
    (layout.lines_dir / "1.13").mkdir(parents=True)
    line = layout.for_line("1.13")
    assert line.overlay is not None
    line.overlay.write_text(LINE)
    assert not spec.line_released(line) and spec.line_released(layout)
    write.generate_all(layout)
    assert (layout.root / "lines" / "1.13").is_dir()  # generated all the same
    layout.packages.mkdir()
    with pytest.raises(RepoError, match=r"line 1\.13 is not released yet \(`release: false` in .*line\.yaml\)"):
        repo.release(line, sign_key=None)
    assert not any(layout.packages.iterdir()) and not layout.index.exists()
    line.overlay.write_text(LINE.replace("release: false\n", "release: true\n"))
    assert spec.line_released(line)

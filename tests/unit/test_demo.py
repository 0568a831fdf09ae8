"""The main job's scratch copy of the repository: everything release and serve read, and a clear refusal."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from meshcharts import demo
from meshcharts.errors import ClusterError, RepoError
from tests.conftest import REPO


def test_the_scratch_copy_holds_what_release_and_serve_read(tmp_path: Path) -> None:
    layout = demo.copy_repository(REPO, tmp_path / "copy")
    for part in demo.REPOSITORY_PARTS:
        assert (layout.root / part).exists(), part
    assert layout.index.read_bytes() == (REPO / "index.yaml").read_bytes()
    assert sorted(p.name for p in layout.packages.iterdir()) == sorted(p.name for p in (REPO / "packages").iterdir())


def test_a_repository_without_its_public_key_is_refused_naming_it(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for part in demo.REPOSITORY_PARTS:
        if part != "meshcharts.asc":
            src = REPO / part
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, source / part)
    with pytest.raises(RepoError, match=r"meshcharts\.asc is missing"):
        demo.copy_repository(source, tmp_path / "copy")


def test_show_hands_a_commands_output_to_out_and_its_stderr_to_say() -> None:
    said: list[str] = []
    shown: list[str] = []
    script = "import sys; print('NAME READY'); print('careful', file=sys.stderr)"
    demo.show([sys.executable, "-c", script], said.append, shown.append)
    assert shown == ["NAME READY"]
    assert said[0].startswith(f"$ {Path(sys.executable).name} -c ")
    assert said[1:] == ["careful"]


def test_show_of_a_failing_command_raises_with_its_stderr() -> None:
    script = "import sys; print('no such resource', file=sys.stderr); sys.exit(4)"
    with pytest.raises(ClusterError, match=r"exited 4:\nno such resource"):
        demo.show([sys.executable, "-c", script], lambda _: None, lambda _: None)

"""meshcharts as its users have it: a wheel installed into a project's own virtual environment, no checkout.

The wheel and sdist are built from a copy of this tree (nothing is written into the checkout) and checked with
twine; the wheel goes into a fresh virtual environment inside a directory that holds only the user's test and
values files, where the README's "Test your own values in CI" commands and test run as written there: the Helm
repository is this tree's committed one, served on loopback under the alias `meshcharts`. Nothing points back
at this checkout: no MESHCHARTS_ROOT, no PYTHONPATH, the checkout's environment off PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

from meshcharts import tools
from tests import REPO

README = REPO / "README.md"

pytestmark = [
    pytest.mark.local_only("brings up a local cluster of its own with the installed package's `cluster up`"),
    pytest.mark.any_kubernetes("the README's own `cluster up`, at the default Kubernetes, or no cluster"),
    pytest.mark.slow,
]

# The user's values files. The gateway's is what the README's test reads; istiod's is what its pytest line passes.
USER_VALUES = {
    "gateway.yaml": "service:\n  type: ClusterIP\nlabels:\n  team: edge\n",
    "istiod.yaml": "pilot:\n  autoscaleEnabled: false\n",
}


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"### {title}\n")
    end = text.find("\n## ", start)
    return text[start : end if end != -1 else len(text)]


def fenced(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def shell_commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, trailing comments dropped."""
    commands: list[str] = []
    pending = ""
    for raw in block.splitlines():
        line = re.sub(r"\s+#\s.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        if pending + line:
            commands.append((pending + line).strip())
        pending = ""
    return commands


def test_the_readme_shows_the_user_commands_and_test_this_module_runs() -> None:
    section = readme_section("Test your own values in CI")
    [commands, *_] = [shell_commands(block) for block in fenced(section, "sh")]
    assert commands[0].startswith("python3 -m venv .venv && .venv/bin/pip install meshcharts"), commands
    assert any(c.startswith(".venv/bin/meshcharts cluster up") for c in commands), commands
    assert any(c.startswith(".venv/bin/pytest tests") for c in commands), commands
    assert commands[-1].startswith(".venv/bin/meshcharts cluster down"), commands
    [test] = fenced(section, "python")
    assert test.startswith("# tests/test_my_values.py\n"), test


def scrubbed_env(home: Path) -> dict[str, str]:
    """The environment of a user's shell: nothing of this checkout or of this test run, its own HOME and Helm
    configuration, the shared toolchain cache (the tools are already built there; `tools install` finds them)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "MESHCHARTS", "HELM_", "KUBECONFIG", "PYTHON", "VIRTUAL_ENV", "COV_"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(REPO)))
    env["HOME"] = str(home)
    env["MESHCHARTS_CACHE"] = str(tools.cache_root())
    for kind in ("CONFIG", "CACHE", "DATA"):
        env[f"HELM_{kind}_HOME"] = str(home / f"helm-{kind.lower()}")
    return env


def run(argv: str | list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    shell = isinstance(argv, str)
    done = subprocess.run(
        argv, cwd=cwd, env=env, shell=shell, executable="/bin/bash" if shell else None,
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(
            f"`{argv if shell else shlex.join(argv)}` exited {done.returncode} in {cwd}\n"
            f"stdout:\n{done.stdout[-6000:]}\nstderr:\n{done.stderr[-6000:]}",
            pytrace=False,
        )
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel (`python -m build`: the wheel is built from the sdist) of a copy of this tree."""
    work = tmp_path_factory.mktemp("build")
    tree = work / "tree"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    out = work / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(out), str(tree)], cwd=work, env=dict(os.environ), timeout=600)
    run([sys.executable, "-m", "twine", "check", "--strict", *map(str, out.iterdir())], cwd=work,
        env=dict(os.environ), timeout=120)  # fmt: skip
    return out


def test_the_wheel_carries_what_the_installed_package_reads_at_run_time(dist: Path) -> None:
    import zipfile

    [wheel] = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = sorted(p.name for p in (REPO / "generator/meshcharts/data/toolchain").iterdir())
    missing = [
        f"meshcharts/data/toolchain/{m}/{f}"
        for m in modules
        for f in ("go.mod", "go.sum")
        if f"meshcharts/data/toolchain/{m}/{f}" not in names
    ]
    missing += [
        n
        for n in (
            "meshcharts/data/kwok/loadbalancer-stage.yaml",
            "meshcharts/data/kwok/uninjected-pod-stage.yaml",
            "meshcharts/data/kind/cluster.yaml",
            "meshcharts/data/kind/node-images.yaml",
            "meshcharts/py.typed",
        )
        if n not in names
    ]
    assert not missing, f"{wheel.name} lacks {missing}"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert wheel.name == f"meshcharts-{version}-py3-none-any.whl"


def test_a_users_project_runs_the_readme_example_from_the_installed_wheel(
    dist: Path, chart_repo: str, tmp_path: Path
) -> None:
    section = readme_section("Test your own values in CI")
    [commands, *_] = [shell_commands(block) for block in fenced(section, "sh")]
    [user_test] = fenced(section, "python")

    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "values").mkdir()
    (project / "tests" / "test_my_values.py").write_text(user_test)
    for name, text in USER_VALUES.items():
        (project / "values" / name).write_text(text)
    env = scrubbed_env(tmp_path / "home")
    [wheel] = dist.glob("*.whl")
    cluster = f"wheel-{uuid.uuid4().hex[:8]}"

    def as_here(command: str) -> str:
        command = command.replace(".venv/bin/pip install meshcharts", f".venv/bin/pip install --quiet {wheel}")
        command = command.replace("https://meshcharts.github.io/charts", chart_repo)
        return command.replace("--name my-values", f"--name {cluster}").replace(
            "--cluster-name my-values", f"--cluster-name {cluster}"
        )

    up = next(i for i, c in enumerate(commands) if c.startswith(".venv/bin/meshcharts cluster up"))
    for command in commands[:up]:
        out = run(as_here(command), cwd=project, env=env, timeout=600)
        if "--version" in command:
            version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
            assert out.strip() == f"meshcharts {version}"
    python = project / ".venv" / "bin" / "python"
    # The package runs from the environment's site-packages, and the environment is consistent.
    where = run([str(python), "-c", "import meshcharts; print(meshcharts.__file__)"], cwd=project, env=env, timeout=60)
    assert Path(where.strip()).is_relative_to(project / ".venv"), where
    run([str(python), "-m", "pip", "check"], cwd=project, env=env, timeout=120)

    kubeconfig = run(as_here(commands[up]), cwd=project, env=env, timeout=300).strip()
    try:
        assert Path(kubeconfig).is_file(), kubeconfig
        for command in commands[up + 1 : -1]:
            out = run(as_here(command) + " -p no:cacheprovider -rA", cwd=project, env=env, timeout=900)
            assert re.search(r"\b1 passed\b", out), out[-3000:]
            assert "PASSED tests/test_my_values.py::test_my_gateway_values_come_up_through_the_injector" in out
    finally:
        run(as_here(commands[-1]), cwd=project, env=env, timeout=300)
    assert not Path(kubeconfig).exists(), f"cluster down left {kubeconfig}"

"""--allowed-skips: a skip no entry allows fails its test, so a CI run missing a tool cannot pass by skipping."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from meshcharts.errors import UsageError
from meshcharts.testing import skips
from tests import REPO

pytest_plugins = ["pytester"]


ALLOWED = """
- reason: '^requires ah '
  why: not served
- reason: '^kind only'
  why: scoped
  providers: [kind]
"""

TESTS = """
import pytest

def test_allowed():
    pytest.skip("requires ah (artifacthub)")

def test_missing_tool():
    pytest.skip("requires istioctl from the toolchain")

@pytest.mark.skip(reason="kind only: a marker")
def test_scoped_to_another_provider():
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False

def test_passes():
    pass
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_skip_no_entry_allows_fails_naming_its_reason(pytester: pytest.Pytester, workers: list[str]) -> None:
    allowed = pytester.makefile(".yaml", allowed=ALLOWED)
    pytester.makepyfile(test_gate=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *workers, "--allowed-skips", str(allowed))
    # A skip at setup (a marker, a fixture) becomes an error of the setup, one in the test's body a failure.
    result.assert_outcomes(passed=1, skipped=1, failed=1, errors=1, xfailed=1)
    out = result.stdout.str()
    assert "skipped (requires istioctl from the toolchain), and" in out
    assert "allows no such skip with --cluster-provider local" in out
    assert "skipped (kind only: a marker)" in out
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_without_the_option_skips_stay_skips(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)


def test_a_module_skipped_at_collection_fails_too(pytester: pytest.Pytester) -> None:
    allowed = pytester.makefile(".yaml", allowed=ALLOWED)
    pytester.makepyfile(
        test_module='import pytest\npytest.skip("requires cosign", allow_module_level=True)\ndef test_x(): pass\n'
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--allowed-skips", str(allowed))
    result.assert_outcomes(errors=1)
    assert "skipped (requires cosign), and" in result.stdout.str()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reason: x", "expected a list of entries"),
        ("- why: no reason", "entry 1: `reason` must be a regular expression"),
        ("- reason: x\n  why: ok\n- reason: y\n", "entry 2: `why` must say why"),
        ("- reason: '('\n  why: ok", "entry 1: `reason` is not a regular expression"),
        ("- reason: x\n  why: ok\n  provider: [kind]", "entry 1: unknown keys ['provider']"),
        ("- reason: x\n  why: ok\n  providers: kind", "entry 1: `providers` must be a non-empty list"),
    ],
)
def test_a_bad_allowlist_is_refused_naming_the_entry(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "allowed.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=rf"--allowed-skips {re.escape(str(path))}: .*{re.escape(message)}"):
        skips.load(path)


def test_the_projects_allowlist_loads_and_each_entry_says_why() -> None:
    allowed = skips.load(REPO / "ci" / "allowed-skips.yaml")
    assert allowed
    # The local run allows no skip of a missing tool: only ah, which no machine here can build.
    for reason in (
        "requires istioctl from the toolchain: not built",
        "requires checkov: not installed",
        "requires gpg (Debian package gnupg)",
        "requires the built toolchain (kube-apiserver): run `meshcharts tools install --k8s-version v1.36.3`",
        "requires docker or podman for kind (no container engine socket answers here)",
    ):
        assert not skips.allows(allowed, reason, "local"), reason


@pytest.mark.parametrize(
    ("selection", "tool"),
    [
        ("tests/oracle/test_injection.py::test_injected_pod_equals_istio_1_12", "requires helm from the toolchain"),
        ("tests/render/test_scan.py::test_a_privileged_container_is_a_finding_in_the_render_that_has_it", "checkov"),
        ("tests/render/test_cosign.py::test_verify_accepts_every_pushed_chart_by_the_digest_push_signed", "cosign"),
        ("tests/e2e/test_base.py::test_all_crds_are_established_after_install", "requires the built toolchain"),
    ],
)
def test_this_suite_fails_naming_a_tool_missing_from_a_scratch_cache(tmp_path: Path, selection: str, tool: str) -> None:
    """The project's own tests, with its allowlist, against an empty toolchain cache: each fails naming the tool."""
    env = {**os.environ, "MESHCHARTS_CACHE": str(tmp_path / "cache")}
    env.pop("MESHCHARTS_CHECKOV", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-x",
         "--allowed-skips", "ci/allowed-skips.yaml", selection],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert "allows no such skip" in out, out[-3000:]
    assert tool in out, out[-3000:]

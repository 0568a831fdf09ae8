"""`meshcharts push` signs with cosign unless told otherwise, and refuses before pushing anything when it
does not know how; the digest it signs is the one `helm push` reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcharts import cli
from meshcharts.cosign import Cosign, pushed_digest
from meshcharts.errors import RepoError

DIGEST = "sha256:" + "ab" * 32


def test_push_without_a_signing_choice_is_refused_before_anything_is_pushed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MESHCHARTS_COSIGN_KEY", raising=False)
    assert cli.main(["push", "oci://127.0.0.1:1/charts"]) == 2
    said = capsys.readouterr().err
    assert "push signs every chart with cosign: pass --cosign-key KEY" in said
    assert "pushed" not in said


def test_push_refuses_two_signing_choices_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESHCHARTS_COSIGN_KEY", "/nonexistent/cosign.key")
    assert cli.main(["push", "oci://127.0.0.1:1/charts", "--unsigned"]) == 2
    assert "choose one of --cosign-key (or MESHCHARTS_COSIGN_KEY), --keyless and --unsigned" in capsys.readouterr().err


@pytest.mark.parametrize(
    "output",
    [
        f"Pushed: 127.0.0.1:5000/charts/gateway:1.12.0\nDigest: {DIGEST}\n",
        f"WARNING: something\nDigest: {DIGEST}",
    ],
)
def test_the_digest_helm_push_reports_is_the_one_signed(output: str) -> None:
    assert pushed_digest(output) == DIGEST


def test_a_push_that_reports_no_digest_is_an_error_that_shows_what_helm_said() -> None:
    with pytest.raises(RepoError, match="helm push reported no digest; its output was:\nPushed: x"):
        pushed_digest("Pushed: x\n")


def test_cosign_never_signs_a_tag_only_a_digest() -> None:
    cosign = Cosign(binary=Path("/nonexistent/cosign"))
    with pytest.raises(RepoError, match="names no digest: sign what was pushed, not a tag that can move"):
        cosign.sign("127.0.0.1:5000/charts/gateway:1.12.0", key="cosign.key")

"""Waiting for the host istiod to be ready gives up early, naming why, once its log shows an informer list that keeps
failing; a list that fails a moment and then stops failing does not end the wait.

The logs in tests/data/istiod-1.31-logs/ are lines the toolchain's pilot-discovery (Istio 1.31) wrote on a local
cluster here, filtered to the list failures, lease refusals and readiness lines: without the chart's ClusterRole
rule on mutatingwebhookconfigurations (`without-webhook-rbac.log`), and running the 1.12 chart without the
`--configDir` adaptation, where it lists v1 kinds the 1.12 CRDs do not serve (`without-configdir.log`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshcharts.cluster.local import istiod as host_istiod
from meshcharts.errors import ClusterError

LOGS = Path(__file__).resolve().parents[1] / "data" / "istiod-1.31-logs"
# A loopback address nothing of this suite listens on: /ready is never answered there.
NOWHERE = "127.254.254.254"


def _log(name: str) -> str:
    return (LOGS / name).read_text()


def _failures(log: str, kind: str) -> list[str]:
    return [line for line in log.splitlines() if f"failed to list *{kind}:" in line]


def test_a_refused_list_is_stuck_once_it_failed_four_times_over_five_seconds() -> None:
    log = _log("without-webhook-rbac.log")
    [stuck] = host_istiod.stuck_lists(log)
    assert stuck.startswith(
        "*v1.MutatingWebhookConfiguration: mutatingwebhookconfigurations.admissionregistration.k8s.io is forbidden: "
        'User "system:serviceaccount:'
    ), stuck
    assert stuck.endswith("(5 failures over 16 s)"), stuck
    # Its first three failures (4.5 s apart) may still be a binding's lag: not stuck yet.
    failures = _failures(log, "v1.MutatingWebhookConfiguration")
    assert host_istiod.stuck_lists("\n".join(failures[:3])) == []
    assert host_istiod.stuck_lists("\n".join(failures[:4])) == [
        stuck.replace("(5 failures over 16 s)", "(4 failures over 9 s)")
    ]


def test_unserved_versions_are_stuck_in_the_order_they_first_failed_and_lease_refusals_are_not_lists() -> None:
    log = _log("without-configdir.log")
    assert "leases.coordination.k8s.io" in log
    stuck = host_istiod.stuck_lists(log)
    assert [s.split(":", 1)[0] for s in stuck] == ["*v1.Sidecar", "*v1.ServiceEntry", "*v1.VirtualService"]
    assert all("the server could not find the requested resource (get " in s for s in stuck), stuck


def test_four_failures_within_five_seconds_are_not_stuck() -> None:
    """The same four failures, their timestamps pulled to one second apart: a list that failed while a CRD or a
    binding was being created and then succeeded logs nothing more, so a short burst must not end the wait."""
    failures = _failures(_log("without-webhook-rbac.log"), "v1.MutatingWebhookConfiguration")[:4]
    burst = [re.sub(r"T07:1\d:\d\d\.", f"T07:12:0{i}.", line, count=1) for i, line in enumerate(failures)]
    assert [line[:19] for line in burst] == [f"2026-12-06T07:12:0{i}" for i in range(4)]
    assert host_istiod.stuck_lists("\n".join(burst)) == []


def _waiting(tmp_path: Path, log: str) -> tuple[host_istiod.HostIstiod, subprocess.Popen[bytes]]:
    istiod = host_istiod.HostIstiod(tmp_path / "istiod")
    istiod.directory.mkdir()
    istiod.log.write_text(log)
    # A process that stays up and never answers, as an istiod waiting for its informers does.
    return istiod, subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_the_wait_gives_up_at_a_stuck_list_naming_it_and_the_refusal(tmp_path: Path) -> None:
    istiod, process = _waiting(tmp_path, _log("without-webhook-rbac.log"))
    try:
        started = time.monotonic()
        with pytest.raises(ClusterError) as failed:
            host_istiod._wait_ready(istiod, process, NOWHERE, timeout=60)
        assert time.monotonic() - started < 30, "gave up at the timeout, not at the stuck list"
    finally:
        process.kill()
        process.wait()
    message = str(failed.value)
    assert re.match(rf"gave up after \d+s waiting for istiod at {NOWHERE} to be ready: it keeps failing", message)
    assert "\n  refused by the API server: mutatingwebhookconfigurations.admissionregistration.k8s.io is forbidden" in (
        message
    )
    assert "\n  list failing: *v1.MutatingWebhookConfiguration: " in message
    assert message.rstrip().endswith(_log("without-webhook-rbac.log").splitlines()[-1])


def test_without_a_stuck_list_the_wait_lasts_until_its_timeout(tmp_path: Path) -> None:
    failures = _failures(_log("without-webhook-rbac.log"), "v1.MutatingWebhookConfiguration")
    istiod, process = _waiting(tmp_path, "\n".join(failures[:3]) + "\n")
    try:
        with pytest.raises(ClusterError, match=rf"^timed out after 2s waiting for istiod at {re.escape(NOWHERE)}"):
            host_istiod._wait_ready(istiod, process, NOWHERE, timeout=2)
    finally:
        process.kill()
        process.wait()


def test_what_an_earlier_istiod_wrote_into_the_log_does_not_end_the_wait(tmp_path: Path) -> None:
    """The log of one istiod directory is appended to by every istiod started there (a test starts one without an
    adaptation, then one with all of them): only what this process wrote counts."""
    earlier = _log("without-webhook-rbac.log")
    istiod, process = _waiting(tmp_path, earlier)
    try:
        with pytest.raises(ClusterError, match=r"^timed out after 2s waiting for istiod") as failed:
            host_istiod._wait_ready(istiod, process, NOWHERE, timeout=2, log_from=len(earlier.encode()))
    finally:
        process.kill()
        process.wait()
    assert "refused by the API server" not in str(failed.value).split("; last lines of its log")[0]

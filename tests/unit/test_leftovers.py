"""ci/leftovers.py, the gate at the end of .ci/test: anything a run started and left running fails it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests import REPO

GATE = REPO / "ci" / "leftovers.py"


def _gate(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GATE), "--", *command],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_clean_command_passes_with_its_own_exit_status() -> None:
    assert _gate("true").returncode == 0
    done = _gate("sh", "-c", "exit 3")
    assert done.returncode == 3
    assert "nothing the command started is still running" in done.stderr


def test_a_daemon_the_command_left_behind_is_listed_stopped_by_pid_and_fails_the_run() -> None:
    """A detached process (new session, parent gone: what gpg-agent and kwokctl's components do) outliving the
    command it came from."""
    marker = f"leftover-probe-{time.monotonic_ns()}"
    sleeper = f"[sys.executable, '-c', 'import time; time.sleep(300)', '{marker}']"
    script = f"import subprocess, sys; p = subprocess.Popen({sleeper}, start_new_session=True); print(p.pid)"
    done = _gate(sys.executable, "-c", script)
    assert done.returncode == 1, done.stderr
    pid = int(done.stdout.strip())
    assert f"pid {pid}: " in done.stderr and marker in done.stderr
    assert "stopped them by pid; failing" in done.stderr
    assert not _alive(pid)

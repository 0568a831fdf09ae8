#!/usr/bin/env python3
"""Run a command and fail if anything it started is still running when it ends.

    python3 ci/leftovers.py -- COMMAND [ARG...]

This process makes itself the child subreaper (Linux prctl PR_SET_CHILD_SUBREAPER), so every process the
command starts and abandons -- a daemon that forked away (gpg-agent), a cluster component kwokctl detached
with setsid, an egress proxy, an istiod -- is re-parented here instead of to init. It reaps them as they
exit. When the command has exited, every process still running below this one is something the command
started and did not stop: each is listed with its pid and command line, stopped by pid (SIGTERM, then
SIGKILL), and the exit status is 1. Otherwise the exit status is the command's own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
GRACE_SECONDS = 10.0


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(err)}")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of `pid`, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def descendants(root: int) -> dict[int, str]:
    """Live (not zombie) processes below `root`, pid -> command line."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            stat = _stat(int(proc.name))
            if stat is not None and stat[0] not in ("Z", "X"):
                parents[int(proc.name)] = stat[1]
    found: dict[int, str] = {}
    for pid in parents:
        ancestor = parents.get(pid)
        seen = 0
        while ancestor is not None and ancestor != root and seen < 64:
            ancestor = parents.get(ancestor)
            seen += 1
        if ancestor == root:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            found[pid] = cmdline.strip()
    return found


def reap() -> None:
    """Collect every child that has exited, without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def stop(pids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline:
            reap()
            if not any(pid in descendants(os.getpid()) for pid in pids):
                return
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--":
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    become_subreaper()
    child = subprocess.Popen(argv[1:])

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    status: int | None = None
    while status is None:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child.pid:
            status = os.waitstatus_to_exitcode(wait_status)
            child.returncode = status
    reap()
    left = descendants(os.getpid())
    if not left:
        print("leftovers: nothing the command started is still running", file=sys.stderr)
        return 0 if status is None else (status if status >= 0 else 128 - status)
    print(f"leftovers: {len(left)} process(es) the command started are still running after it exited:", file=sys.stderr)
    for pid, cmdline in sorted(left.items()):
        print(f"  pid {pid}: {cmdline}", file=sys.stderr)
    stop(sorted(left))
    print("leftovers: stopped them by pid; failing", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Running gpg without leaving a gpg-agent behind.

gpg starts a gpg-agent daemon for a GnuPG home on first need (signing, key generation, secret key listing)
and leaves it running after gpg exits. Whatever meshcharts starts it stops again: every call made through
`run` stops an agent that the call itself started, and leaves alone one that already served that home (a
user's own agent, started before us).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from meshcharts.errors import RepoError

_AGENT_EXIT_SECONDS = 10.0


def _home_args(home: Path | None) -> list[str]:
    return ["--homedir", str(home)] if home is not None else []


def agent_pid(home: Path | None) -> int | None:
    """The pid of the gpg-agent serving `home` (gpg's default home for None), never starting one."""
    argv = ["gpg-connect-agent", *_home_args(home), "--no-autostart", "getinfo pid", "/bye"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():
        if line.startswith("D ") and line[2:].strip().isdigit():
            return int(line[2:].strip())
    return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def stop_agent(home: Path | None) -> None:
    """Stop the gpg-agent of `home`, if one runs, and return once its process is gone (waited for by pid)."""
    pid = agent_pid(home)
    if pid is None:
        return
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            ["gpgconf", *_home_args(home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
    deadline = time.monotonic() + _AGENT_EXIT_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        raise RepoError(f"gpg-agent (pid {pid}) of GnuPG home {home or '(default)'} did not exit on `gpgconf --kill`")


@contextlib.contextmanager
def agent_scope(home: Path | None) -> Iterator[None]:
    """Within the block gpg may start an agent for `home`; after it, one it started is stopped."""
    before = agent_pid(home)
    try:
        yield
    finally:
        if before is None:
            stop_agent(home)


def run(args: Sequence[str], home: Path | None, stdin: str | None = None) -> str:
    """`gpg --batch --yes [--homedir HOME] ARGS`; its standard output, or RepoError with gpg's reason."""
    argv = ["gpg", "--batch", "--yes", *_home_args(home), *args]
    with agent_scope(home):
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
        except FileNotFoundError as err:
            raise RepoError("gpg is not installed: `apt-get install gnupg` (Debian) provides it") from err
    if done.returncode != 0:
        raise RepoError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.strip()}")
    return done.stdout

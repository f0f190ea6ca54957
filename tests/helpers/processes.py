"""Child processes that a test interrupts with SIGINT, as a user's Ctrl-C does."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def popen_interruptible(command: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` with SIGINT handled by default in the child.

    A suite started in the background (``cmd &`` in a script, nohup) runs with
    SIGINT ignored, and an ignored signal stays ignored in a child, so a
    command under test would never see the test's SIGINT. The child gets the
    default handling here, as from a terminal.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, **kwargs)
    finally:
        signal.signal(signal.SIGINT, previous)


def reap(process: subprocess.Popen[Any]) -> None:
    """Kill the process if it still runs, wait for it, and close its pipes.

    Closed here, not by the garbage collector during a later test.
    """
    if process.poll() is None:
        process.kill()
        process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGINT, timeout: float = 30) -> int:
    """Send ``sig``, wait up to ``timeout`` seconds for the exit code, and reap in any case."""
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    finally:
        reap(process)

"""What ``import asyncpod`` costs: the core pulls in no transport."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_no_transport_or_event_loop_library() -> None:
    """``import asyncpod`` loads none of aiohttp, httpcore, h11, trio or the transports."""
    code = (
        "import sys, asyncpod\n"
        "heavy = {'aiohttp', 'httpcore', 'h11', 'trio', 'asyncpod_transports', 'httptools'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"

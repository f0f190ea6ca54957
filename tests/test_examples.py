"""The examples run as their README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_operator_example_greets_against_its_own_sandbox(tmp_path: Path) -> None:
    """With no configuration, examples/greeter_operator.py starts a sandbox and reconciles."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ASYNCPOD_", "KUBE")) and k != "HOME"
    }
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "greeter_operator.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "starting the embedded sandbox" in lines[0]
    assert sorted(line for line in lines if line.startswith("greeted")) == [
        "greeted default/hello-ada: Hello, Ada!",
        "greeted default/hello-grace: Hello, Grace!",
        "greeted default/hello-linus: Hello, Linus!",
    ]
    assert result.stderr == ""


def test_mirror_operator_example_runs_against_its_own_sandbox(tmp_path: Path) -> None:
    """examples/mirror_operator.py leads, mirrors three sources, and logs one deletion once."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ASYNCPOD_", "KUBE")) and k != "HOME"
    }
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "mirror_operator.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["no configuration applies: starting the embedded sandbox", "leading"]
    assert {line for line in lines if line.startswith("mirrored")} == {
        "mirrored default/ada",
        "mirrored default/grace",
        "mirrored default/linus",
    }
    assert lines.count("logged the deletion of default/grace") == 1
    assert lines[-1] == "mirror-log: ['grace']"
    assert result.stderr == ""

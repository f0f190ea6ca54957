"""``asyncpod demo`` runs end to end against its own sandbox."""

from __future__ import annotations

import pytest

from asyncpod._cli import main


@pytest.mark.slow
def test_demo_walks_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo starts the sandbox, uses the three transports, watches and rotates."""
    code = main(["demo", "--workers", "4", "--rotations", "1", "--grace", "0.2"])
    out = capsys.readouterr().out
    assert "..data -> ..20" in out
    assert "direct HTTPS, Config.in_cluster(): bearer token from the folder" in out
    assert "Unix socket" in out
    assert "the watch saw ADDED, MODIFIED, DELETED, in order" in out
    assert "rotation 1: new token in ..20" in out
    # With the rotating token file of the in-cluster config, nothing fails.
    assert code == 0
    assert "zero failures" in out
    assert "new token read 1x" in out

"""Checking bearer tokens read from files and configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncpod import ConfigError
from asyncpod._credentials import MAX_TOKEN_SIZE, check_token, token_problem
from asyncpod._files import read_token_file


def test_jwt_accepted(tmp_path: Path) -> None:
    """A JWT with a trailing newline is read and stripped."""
    path = tmp_path / "token"
    path.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n")
    assert read_token_file(path) == "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def test_empty_file(tmp_path: Path) -> None:
    """An empty (or blank) token file names the file and says it is empty."""
    path = tmp_path / "token"
    path.write_text("  \n")
    with pytest.raises(ConfigError, match=f"{path}.*empty"):
        read_token_file(path)


def test_missing_file(tmp_path: Path) -> None:
    """A missing token file is a ConfigError naming it."""
    path = tmp_path / "absent"
    with pytest.raises(ConfigError, match="absent"):
        read_token_file(path)


def test_newline_inside_token_refused() -> None:
    """A token with an inner newline could inject a header: refused without echoing it."""
    with pytest.raises(ConfigError, match="offset 5") as caught:
        check_token("abcde\r\nX-Evil: 1", "the token of the kubeconfig config")
    assert "Evil" not in str(caught.value)


def test_oversized_file(tmp_path: Path) -> None:
    """A file larger than MAX_TOKEN_SIZE is refused after a bounded read."""
    path = tmp_path / "token"
    path.write_bytes(b"a" * (MAX_TOKEN_SIZE * 4))
    with pytest.raises(ConfigError, match="larger than"):
        read_token_file(path)


@given(st.binary(max_size=300))
def test_problem_message_never_echoes_bytes(raw: bytes) -> None:
    """Any bytes: either visible ASCII accepted, or a short problem that quotes none of them."""
    problem = token_problem(raw.strip())
    if problem is None:
        assert all(0x21 <= b <= 0x7E for b in raw.strip())
    else:
        assert len(problem) < 120

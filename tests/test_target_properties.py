"""Property tests of ``build_target``: no path or parameter escapes its place."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncpod._target import build_target

# What may appear in a request line's target (RFC 9112 3.2): visible ASCII,
# no space, no fragment.
ALLOWED = {chr(c) for c in range(0x21, 0x7F)} - {"#"}

paths = st.text(min_size=1).map(lambda s: "/" + s).filter(lambda p: not p.startswith("//"))
# Dropping "?" and "%" may leave "//" at the start ("/?/"): filter after the change.
plain_paths = paths.map(lambda p: p.replace("?", "").replace("%", "")).filter(
    lambda p: not p.startswith("//")
)
params = st.dictionaries(st.text(min_size=1), st.text(), max_size=5)


@given(paths)
def test_target_is_a_safe_request_target(path: str) -> None:
    """Any path becomes an origin-form target of visible ASCII: no CR, LF, space or '#'."""
    target = build_target(path)
    assert set(target) <= ALLOWED
    assert target.startswith("/")
    assert not target.startswith("//")


@given(plain_paths, params)
def test_params_stay_in_the_query(path: str, query: dict[str, str]) -> None:
    """Parameters never change the path, and come back exactly as given."""
    target = build_target(path, query)
    assert set(target) <= ALLOWED
    parts = urlsplit(target)
    assert unquote(parts.path) == path
    assert dict(parse_qsl(parts.query, keep_blank_values=True)) == query


@given(plain_paths)
def test_path_round_trips(path: str) -> None:
    """Decoding the target gives the path back: nothing is added or lost."""
    assert unquote(build_target(path)) == path


@pytest.mark.parametrize("path", ["", "api", "//evil.example/api", "http://evil.example/"])
def test_non_paths_refused(path: str) -> None:
    """Anything that is not an absolute path (a host, a URL) is refused."""
    with pytest.raises(ValueError, match="absolute path"):
        build_target(path)

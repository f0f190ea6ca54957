"""Developer sessions: tests, lint, typing and benchmarks."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typing", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on asyncio and trio, against real servers on loopback."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session(name="tests-shuffled")
def tests_shuffled(session: nox.Session) -> None:
    """The test suite in a random order (seed printed), as CI's second run."""
    session.install("-e", ".[dev]")
    session.run("pytest", "--random-order", *session.posargs)


@nox.session(name="tests-no-orjson")
def tests_no_orjson(session: nox.Session) -> None:
    """The test suite with the standard library's JSON decoder."""
    session.install("-e", ".[dev]")
    session.run("pip", "uninstall", "-y", "orjson")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: style and common bugs."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict over both packages."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """The side-by-side benchmark suite (ratios against raw aiohttp)."""
    session.install("-e", ".[dev,bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)

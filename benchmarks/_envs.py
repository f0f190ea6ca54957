"""The virtual environments the clients run in, so that asyncpod runs as users install it.

- ``user``: ``pip install <repo>`` and nothing else from the project (no dev extras, no
  msgspec), plus trio for the trio rows (what ``pip install 'asyncpod[trio]'`` adds).
  asyncpod, asyncpod's engines and raw aiohttp run here.
- ``peers``: ``pip install '<repo>[bench]'``: the peer clients, httpx and msgspec (the
  aiohttp + msgspec reference runs here).
- ``before``: a plain install of another git revision (``--before main``), to measure
  "before" and "after" in one run.
- ``official``: ``pip install kubernetes pytest`` and nothing of this project: the official
  client's e2e tests run there against ``asyncpod sandbox`` (``benchmarks/official_e2e.py``).

A worker is started from a folder that holds only a link to ``benchmarks/``, so that the
checkout's ``asyncpod`` never shadows the installed one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_root() -> Path:
    """Where the environments are kept between runs."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "asyncpod-bench"


@dataclass(frozen=True)
class Env:
    """One interpreter for workers, and the folder to start them from."""

    name: str
    python: str
    cwd: Path
    # Keep PYTHONPATH out of a worker's environment: it would add the checkout.
    isolated: bool = True


def _pip(python: Path, *args: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _venv(path: Path) -> tuple[Path, bool]:
    python = path / "bin" / "python"
    if python.exists():
        return python, False
    print(f"creating the {path.name!r} environment in {path}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return python, True


def _shim(root: Path) -> Path:
    """A folder that holds only a link to ``benchmarks/``: the workers' working directory."""
    shim = root / "shim"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "benchmarks"
    if link.is_symlink() and link.resolve() != REPO / "benchmarks":
        link.unlink()
    if not link.exists():
        link.symlink_to(REPO / "benchmarks", target_is_directory=True)
    return shim


def _install_plain(python: Path, source: Path, *extras: str) -> None:
    # pip builds and installs a source folder afresh each time (the code under
    # test changes); dependencies it already has stay, as for a user.
    _pip(python, str(source))
    if extras:
        _pip(python, *extras)


def prepare(root: Path, *, need: set[str], before: str | None) -> dict[str, Env]:
    """Create or refresh the environments named in ``need``; return them by name."""
    root.mkdir(parents=True, exist_ok=True)
    shim = _shim(root)
    envs: dict[str, Env] = {}
    if "user" in need:
        python, _ = _venv(root / "user")
        _install_plain(python, REPO, "trio")
        envs["user"] = Env("user", str(python), shim)
    if "peers" in need:
        python, fresh = _venv(root / "peers")
        stamp = root / "peers" / "bench-extra.sha"
        wanted = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
        if fresh or not stamp.exists() or stamp.read_text() != wanted:
            _pip(python, f"{REPO}[bench]", "httpx")
            stamp.write_text(wanted)
        envs["peers"] = Env("peers", str(python), shim)
    if "before" in need and before is not None:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", f"{before}^{{commit}}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        stamp = root / "before" / "bench-commit"
        if not stamp.exists() or stamp.read_text() != commit:
            # A plain install of exactly that revision: what another revision
            # installed (orjson, say) must not stay behind.
            shutil.rmtree(root / "before", ignore_errors=True)
        python, _ = _venv(root / "before")
        with tempfile.TemporaryDirectory(prefix="asyncpod-before-") as tmp:
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", before],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            _install_plain(python, Path(tmp), "trio")
        stamp.write_text(commit)
        envs["before"] = Env("before", str(python), shim)
    return envs


def official_env(root: Path) -> Env:
    """The official client and pytest alone (its e2e tests import no asyncpod)."""
    root.mkdir(parents=True, exist_ok=True)
    python, fresh = _venv(root / "official")
    if fresh:
        _pip(python, "kubernetes", "pytest")
    return Env("official", str(python), _shim(root))


def here() -> dict[str, Env]:
    """Every client in this interpreter, from the checkout (``--here``: quick, not as installed)."""
    env = Env("here", sys.executable, REPO, isolated=False)
    return {"user": env, "peers": env, "before": env}


def remove(root: Path) -> None:
    """Forget the environments (``--fresh``)."""
    shutil.rmtree(root, ignore_errors=True)

"""A service-account folder laid out as the kubelet's AtomicWriter does it.

Files live in a timestamped folder; ``..data`` is a relative symlink to it;
``token``, ``ca.crt`` and ``namespace`` are symlinks to ``..data/<name>``. A
rotation writes a new folder, points a temporary symlink at it, renames that
over ``..data`` (atomic) and deletes the old folder. See
shared/reference/kube-apiserver-1.36/sa-dir-layout.txt.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

_counter = itertools.count()


def _write_generation(root: Path, files: dict[str, bytes]) -> str:
    name = f"..2026_11_28_20_37_39.{next(_counter):010d}"
    folder = root / name
    folder.mkdir()
    for file, data in files.items():
        (folder / file).write_bytes(data)
    return name


def make_sa_folder(root: Path, files: dict[str, bytes]) -> Path:
    """Create the folder with ``files`` (name -> content) and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    generation = _write_generation(root, files)
    os.symlink(generation, root / "..data")
    for file in files:
        os.symlink(f"..data/{file}", root / file)
    return root


def rotate(root: Path, files: dict[str, bytes]) -> None:
    """Swap in new content atomically, as the kubelet does on renewal."""
    old = os.readlink(root / "..data")
    generation = _write_generation(root, files)
    tmp = root / "..data_tmp"
    os.symlink(generation, tmp)
    os.rename(tmp, root / "..data")
    shutil.rmtree(root / old)

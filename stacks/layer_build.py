"""Build the dependency layer without Docker, cached under ``.build/``.

``pip install --platform manylinux2014_<arch> --only-binary=:all:`` fetches wheels for the
Lambda runtime (not for this machine), so the layer is correct even when built on x86 or on
Python 3.11. The result is cached in ``.build/layers/deps-<key>/`` where the key hashes the
requirements file, the Python version, the platform and the pip flags: a repeated synth
reuses it and costs a (hard-link) copy.

Run ``python -m stacks.layer_build`` to pre-build (what ``make synth`` does implicitly).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "layers" / "requirements.txt"
CACHE_ROOT = REPO_ROOT / ".build" / "layers"
LAYER_SUBDIR = "python"  # Lambda puts /opt/python on sys.path
PYTHON_VERSION = "3.13"  # keep in step with stacks.constructs.layers.RUNTIME
PLATFORM = "manylinux2014_aarch64"  # keep in step with stacks.constructs.layers.ARCHITECTURE
_BUILD_FORMAT = "1"  # bump to invalidate every cached layer


def pip_arguments(target: Path) -> list[str]:
    return [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # .pyc for this machine's Python would be dead weight on Lambda
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--target",
        str(target),
        "--requirement",
        str(REQUIREMENTS),
    ]


def cache_key() -> str:
    digest = hashlib.sha256()
    digest.update(REQUIREMENTS.read_bytes())
    digest.update(f"|{PYTHON_VERSION}|{PLATFORM}|{_BUILD_FORMAT}".encode())
    return digest.hexdigest()[:20]


def build_dependencies() -> Path:
    """The directory holding ``python/<packages>``; built once per cache key."""
    target = CACHE_ROOT / f"deps-{cache_key()}"
    if (target / ".complete").exists():
        return target
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="deps-", dir=CACHE_ROOT))
    try:
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", "pip", *pip_arguments(staging / LAYER_SUBDIR)], check=True
        )
        shutil.rmtree(staging / LAYER_SUBDIR / "bin", ignore_errors=True)  # console scripts
        (staging / ".complete").write_text(cache_key(), encoding="utf-8")
        try:
            staging.rename(target)
        except OSError:  # another process finished first: theirs is as good as ours
            if not (target / ".complete").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def copy_tree(source: Path, destination: Path) -> None:
    """Hard-link when possible (instant, the cache is never modified), copy otherwise."""

    def link_or_copy(src: str, dst: str) -> object:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        return dst

    shutil.copytree(
        source,
        destination,
        copy_function=link_or_copy,
        dirs_exist_ok=True,
    )


if __name__ == "__main__":
    print(build_dependencies())

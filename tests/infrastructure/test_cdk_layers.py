"""The layers: what they ship, and the dependency build's cache."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from stacks import layer_build
from stacks.constructs.layers import SKIPPED_LAYER_NOTE
from tests.infrastructure.infra_support import REPO_ROOT, Synth, render


def _layer_asset(dev: Synth, description_prefix: str) -> Path:
    for layer in dev.resources("workflows", "AWS::Lambda::LayerVersion").values():
        if layer["Properties"]["Description"].startswith(description_prefix):
            return dev.outdir / f"asset.{render(layer['Properties']['Content']['S3Key'])[:-4]}"
    raise AssertionError(f"no layer described {description_prefix!r}")


def test_requirements_are_the_runtime_dependencies_minus_what_lambda_provides() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    expected = {
        dep
        for dep in pyproject["project"]["dependencies"]
        if not dep.startswith(("boto3", "botocore"))
    }
    lines = layer_build.REQUIREMENTS.read_text().splitlines()
    assert {line for line in lines if line and not line.startswith("#")} == expected


def test_runtime_layer_ships_the_library_without_the_local_cloud(dev: Synth) -> None:
    root = _layer_asset(dev, "careflow runtime library") / "python" / "careflow"
    assert (root / "catalog.py").is_file()
    assert not (root / "localcloud").exists()
    assert not list(root.rglob("__pycache__"))


def test_skipped_dependency_layer_is_a_labelled_placeholder(dev: Synth) -> None:
    asset = _layer_asset(dev, "careflow dependencies")
    assert [p.name for p in (asset / "python").iterdir()] == ["LAYER_BUILD_SKIPPED.txt"]
    assert (asset / "python" / "LAYER_BUILD_SKIPPED.txt").read_text() == SKIPPED_LAYER_NOTE


@pytest.fixture
def sandbox_cache(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Path:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydantic==2.13.4\n")
    monkeypatch.setattr(layer_build, "REQUIREMENTS", requirements)
    monkeypatch.setattr(layer_build, "CACHE_ROOT", tmp_path / "cache")
    return requirements


def test_cache_key_follows_the_requirements(sandbox_cache: Path) -> None:
    before = layer_build.cache_key()
    sandbox_cache.write_text("pydantic==2.13.3\n")
    assert layer_build.cache_key() != before


def test_dependencies_are_built_once_per_cache_key(
    sandbox_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_pip(argv: list[str], check: bool) -> None:
        calls.append(argv)
        target = Path(argv[argv.index("--target") + 1])
        (target / "pydantic").mkdir(parents=True)

    monkeypatch.setattr(subprocess, "run", fake_pip)
    first = layer_build.build_dependencies()
    second = layer_build.build_dependencies()
    assert first == second and (first / "python" / "pydantic").is_dir()
    assert len(calls) == 1
    argv = calls[0]
    assert argv[argv.index("--platform") + 1] == "manylinux2014_aarch64"
    assert argv[argv.index("--python-version") + 1] == "3.13"
    assert "--only-binary=:all:" in argv
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no staging dir left over


def test_dependency_wheels_target_the_functions_runtime_and_architecture() -> None:
    from stacks.constructs.layers import ARCHITECTURE, RUNTIME

    assert RUNTIME.name == f"python{layer_build.PYTHON_VERSION}"
    assert ARCHITECTURE.name == "arm64" and layer_build.PLATFORM.endswith("_aarch64")

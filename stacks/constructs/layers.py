"""The two Lambda layers, bundled locally (no Docker):

- ``runtime``: ``layers/runtime/careflow`` as ``python/careflow``, without the local cloud;
- ``dependencies``: the wheels of ``layers/requirements.txt`` for arm64 / CPython 3.13,
  built by :mod:`stacks.layer_build` and cached under ``.build/``.

``-c layer_build=skip`` (TEST ONLY) puts a one-file placeholder in the dependency layer so
infrastructure tests synthesize in seconds without pip. Never deploy such a synth.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import layer_build
from stacks.config import LayerBuild

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
RUNTIME_SOURCE = layer_build.REPO_ROOT / "layers" / "runtime"
# Never shipped: the local cloud (moto, threads, the virtual clock's server) and bytecode.
RUNTIME_EXCLUDES = ["careflow/localcloud", "**/__pycache__", "**/*.pyc"]
SKIPPED_LAYER_NOTE = "TEST-ONLY placeholder: synthesized with -c layer_build=skip; do not deploy.\n"
# Required by BundlingOptions; never pulled, because local bundling always succeeds or raises.
_UNUSED_IMAGE = DockerImage.from_registry("public.ecr.aws/sam/build-python3.13")


@jsii.implements(ILocalBundling)
class _RuntimeLibraryBundler:
    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        shutil.copytree(
            RUNTIME_SOURCE / "careflow",
            Path(output_dir) / layer_build.LAYER_SUBDIR / "careflow",
            ignore=shutil.ignore_patterns("localcloud", "__pycache__", "*.pyc"),
        )
        return True


@jsii.implements(ILocalBundling)
class _DependencyBundler:
    def __init__(self, mode: LayerBuild) -> None:
        self._mode = mode

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        destination = Path(output_dir) / layer_build.LAYER_SUBDIR
        if self._mode == "skip":
            destination.mkdir(parents=True, exist_ok=True)
            (destination / "LAYER_BUILD_SKIPPED.txt").write_text(SKIPPED_LAYER_NOTE)
            return True
        source = layer_build.build_dependencies() / layer_build.LAYER_SUBDIR
        layer_build.copy_tree(source, destination)
        return True


class CareflowLayers(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, build: LayerBuild) -> None:
        super().__init__(scope, construct_id)
        self.runtime = lambda_.LayerVersion(
            self,
            "Runtime",
            description="careflow runtime library (catalog, domain, ports, adapters)",
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            code=lambda_.Code.from_asset(
                str(RUNTIME_SOURCE),
                exclude=RUNTIME_EXCLUDES,
                asset_hash_type=AssetHashType.SOURCE,
                bundling=BundlingOptions(
                    image=_UNUSED_IMAGE, local=cast(ILocalBundling, _RuntimeLibraryBundler())
                ),
            ),
        )
        key = "skip" if build == "skip" else layer_build.cache_key()
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            description="careflow dependencies: " + ", ".join(_requirements()),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            code=lambda_.Code.from_asset(
                str(layer_build.REQUIREMENTS.parent),
                asset_hash=f"deps-{key}",
                asset_hash_type=AssetHashType.CUSTOM,
                bundling=BundlingOptions(
                    image=_UNUSED_IMAGE, local=cast(ILocalBundling, _DependencyBundler(build))
                ),
            ),
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.dependencies, self.runtime]


def _requirements() -> list[str]:
    lines = layer_build.REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

"""One synth per session and environment (``layer_build=skip``), shared by the tests.

``layer_build=skip`` replaces the pip-built dependency layer with a placeholder file so the
synth takes seconds; everything else is exactly what ``python app.py`` produces.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infrastructure.infra_support import Synth, synthesize


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize("dev", tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize("prod", tmp_path_factory.mktemp("cdk-prod"))

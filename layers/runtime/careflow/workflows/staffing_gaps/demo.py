"""The staffing demo (scenarios to come in the next commit)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from careflow.kit.spec import Scenario

if TYPE_CHECKING:
    from careflow.localcloud.demo import CaseReport, Demo

SCENARIOS: tuple[Scenario, ...] = ()


def run(demo: Demo) -> list[CaseReport]:
    return []

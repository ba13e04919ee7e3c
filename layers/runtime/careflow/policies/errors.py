"""What can go wrong with policies. Every error carries a message fit for one line."""

from __future__ import annotations

from dataclasses import dataclass


class PolicyError(Exception):
    """A policy cannot be read, merged, found or evaluated."""


@dataclass(frozen=True)
class Problem:
    """One problem in one policy file: where (file, field) and which rule it breaks."""

    source: str
    field: str
    rule: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"{where}: {self.rule}"


class InvalidPolicy(PolicyError):
    """A policy document breaks the format; ``problems`` lists each broken rule."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class PolicyNotFound(PolicyError):
    """No such policy, facility overlay or version in the store."""


class NoMatchingRow(PolicyError):
    """A decision table without a default matched no row for the given inputs."""


class BadDecisionInput(PolicyError):
    """Inputs to a decision table are missing, unknown or of the wrong type."""


class VersionConflict(PolicyError):
    """A version already published with different content: versions are immutable."""


class StaleVersion(PolicyError):
    """A version not newer than the current one: publish a higher version instead."""

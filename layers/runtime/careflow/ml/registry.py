"""The models careflow knows: their definitions (beside their workflows) and their artifacts."""

from __future__ import annotations

import importlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from careflow.ml.features import Feature

ARTIFACTS = Path(__file__).parent / "artifacts"

# One workflow instance as the state store keeps it, exported: {"workflow", "facility_id",
# "instance": Instance as JSON, "milestones": [...], "tasks": [...], "audit": [...]}.
HistoryRecord = dict[str, Any]
Example = tuple[dict[str, Any], str]  # (features, label)
Metric = Literal["accuracy", "macro_f1", "auc", "mrr"]


class UnknownModel(LookupError):
    """No model has this id; the message lists those that exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such model"


@dataclass(frozen=True)
class ModelDef:
    """A model: what it sees, what it answers, how it learns from history, and the trivial
    baseline (majority class, or the current rules) it must beat by ``margin`` on ``metric``."""

    id: str  # snake_case: the artifact's file name, the policy row, the metric dimension
    title: str
    workflow: str  # the workflow id whose history it learns from ("*": every workflow)
    owner: str
    features: tuple[Feature, ...]
    classes: tuple[str, ...]
    # History → (features, label) examples: the same function reads the generated history
    # and a hospital's own (the state store or an export of it).
    examples: Callable[[Sequence[HistoryRecord]], list[Example]]
    # Features → class scores of the baseline (one-hot for a rule's answer).
    baseline: Callable[[Mapping[str, Any]], dict[str, float]]
    baseline_name: str
    metric: Metric
    margin: float  # the primary metric must beat the baseline's by at least this much
    # (rng, count) → a synthetic history of ``count`` instances, its assumptions documented
    # in the function's docstring and the model card.
    generate: Callable[[random.Random, int], list[HistoryRecord]]
    history_size: int = 3000
    ok_class: str | None = None  # a risk model's "nothing goes wrong" class
    regularization: float = 1.0  # scikit-learn's C
    min_category_count: int = 3
    max_vocabulary: int = 1500
    # Named evaluation sets it never trains on (e.g. documents written by others), each a
    # list of examples; scored at training time and printed by ``careflow models eval``.
    # Returns {} when the sets are not at hand (an installed package without the repo).
    external: Callable[[], dict[str, list[Example]]] | None = None

    @property
    def artifact_path(self) -> Path:
        return ARTIFACTS / f"{self.id}.json"

    def risk(self, scores: Mapping[str, float]) -> float:
        """1 - P(ok class): the chance something goes wrong."""
        return 1.0 - scores.get(self.ok_class or "", 0.0)


def _ml_refs() -> list[str]:
    from careflow.kit import registry

    refs = [ref for wf in registry.workflows() for ref in getattr(wf, "models", ())]
    return [*refs, "careflow.ml.priority:MODEL"]


@cache
def definitions() -> dict[str, ModelDef]:
    """Every model, by id: those the workflows' specs name, and the inbox's task priority."""
    out: dict[str, ModelDef] = {}
    for ref in _ml_refs():
        module, _, name = ref.partition(":")
        defn = getattr(importlib.import_module(module), name)
        out[defn.id] = defn
    return dict(sorted(out.items()))


def definition(model_id: str) -> ModelDef:
    try:
        return definitions()[model_id]
    except KeyError:
        raise UnknownModel(f"no model {model_id!r} (models: {', '.join(definitions())})") from None


@cache
def artifact(model_id: str) -> dict[str, Any] | None:
    """The installed artifact of a model, or None if it was never trained."""
    path = ARTIFACTS / f"{model_id}.json"
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded
